//! PixelRNN causality by gradients: for every pixel i, the logits at i have zero gradient with
//! respect to every input pixel at or after i; the Diagonal BiLSTM sees every pixel before i
//! (no blind spot), the Row LSTM a triangle above. Fields printed as text. For colour images
//! the same holds per channel in R -> G -> B order: channel c at pixel i depends on no later
//! pixel and on no channel >= c of pixel i, and does depend on channels < c of pixel i.

mod common;

use burn::tensor::Device;
use common::causality;
use genmodels::data::Levels;
use genmodels::models::{PixelRnnConfig, RnnKind};

fn check(kind: RnnKind, full_field: bool) {
    let side = 6;
    check_on(kind, full_field, common::spec(1, side, Levels::Binary));
}

fn check_on(kind: RnnKind, full_field: bool, spec: genmodels::models::ImageSpec) {
    let side = spec.shape.width;
    let device = Device::flex().autodiff();
    let model = genmodels::seeded::build(&device, 8, || {
        PixelRnnConfig {
            cell: kind,
            // 4 states per colour group in colour (see tests/gated_pixelcnn.rs on why).
            hidden_channels: 4 * spec.shape.channels,
            layers: 2,
            first_kernel: 3,
            row_kernel: 3,
            output_hidden: 32,
        }
        .init(&spec, &device)
    });
    let fields = causality::assert_causal(&model, &spec, &device);
    causality::assert_sees_own_earlier_channels(&fields, &spec, &format!("{kind:?}"));
    if full_field {
        causality::assert_full_field(&fields, &spec, &format!("{kind:?}"));
    }
    let target = 4 * side + 2;
    let target_field = &fields[causality::order(&spec, 0, target)];
    println!(
        "{kind:?}, pixel X (# = influences X):\n{}\n",
        causality::render(target_field, &spec, target)
    );
}

#[test]
fn row_lstm_is_causal() {
    check(RnnKind::RowLstm, false);
}

#[test]
fn diagonal_bilstm_is_causal_and_sees_every_earlier_pixel() {
    check(RnnKind::DiagonalBilstm, true);
}

#[test]
fn row_lstm_is_causal_across_rgb_channels() {
    check_on(RnnKind::RowLstm, false, common::spec(3, 5, Levels::Bits8));
}

#[test]
fn diagonal_bilstm_is_causal_across_rgb_channels_and_sees_every_earlier_value() {
    check_on(
        RnnKind::DiagonalBilstm,
        true,
        common::spec(3, 5, Levels::Bits8),
    );
}
