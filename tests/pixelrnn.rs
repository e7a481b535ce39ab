//! PixelRNN causality by gradients: for every pixel i, the logits at i have zero gradient with
//! respect to every input pixel at or after i; the Diagonal BiLSTM sees every pixel before i
//! (no blind spot), the Row LSTM a triangle above. Fields printed as text.

mod common;

use burn::tensor::Device;
use common::causality;
use genmodels::data::Levels;
use genmodels::models::{PixelRnnConfig, RnnKind};

fn check(kind: RnnKind, full_field: bool) {
    let side = 6;
    let spec = common::spec(1, side, Levels::Binary);
    let device = Device::flex().autodiff();
    let model = genmodels::seeded::build(&device, 8, || {
        PixelRnnConfig {
            cell: kind,
            hidden_channels: 4,
            layers: 2,
            first_kernel: 3,
            row_kernel: 3,
            output_hidden: 32,
        }
        .init(&spec, &device)
    });
    let fields = causality::assert_causal(&model, &spec, &device);
    if full_field {
        for (target, f) in fields.iter().enumerate() {
            for (j, &seen) in f.iter().enumerate() {
                assert!(
                    seen || j >= target,
                    "{kind:?}: pixel {target} misses {j}\n{}",
                    causality::render(f, &spec, target)
                );
            }
        }
    }
    let target = 4 * side + 2;
    println!(
        "{kind:?}, pixel X (# = influences X):\n{}\n",
        causality::render(&fields[target], &spec, target)
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
