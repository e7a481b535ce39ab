//! PixelRNN causality by gradients: for every pixel i, the logits at i have zero gradient with
//! respect to every input pixel at or after i; the Diagonal BiLSTM sees every pixel before i
//! (no blind spot), the Row LSTM a triangle above. Fields printed as text.

mod common;

use burn::tensor::{Device, Tensor, TensorData};
use genmodels::data::Levels;
use genmodels::models::{PixelRnnConfig, RnnKind};

fn field(
    model: &genmodels::models::PixelRnn,
    side: usize,
    target: usize,
    device: &Device,
) -> Vec<bool> {
    let values: Vec<f32> = (0..side * side).map(|i| ((i * 5) % 2) as f32).collect();
    let x =
        Tensor::<4>::from_data(TensorData::new(values, [1, 1, side, side]), device).require_grad();
    let (r, c) = (target / side, target % side);
    let grads = model
        .logits(x.clone())
        .slice([0..1, 0..1, r..r + 1, c..c + 1])
        .sum()
        .backward();
    let g: Vec<f32> = x.grad(&grads).unwrap().try_into_vec_as::<f32>().unwrap();
    g.iter().map(|&v| v != 0.0).collect()
}

fn render(f: &[bool], side: usize, target: usize) -> String {
    (0..side)
        .map(|r| {
            (0..side)
                .map(|c| {
                    if r * side + c == target {
                        'X'
                    } else if f[r * side + c] {
                        '#'
                    } else {
                        '.'
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

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
    for target in 0..side * side {
        let f = field(&model, side, target, &device);
        for (j, &seen) in f.iter().enumerate() {
            assert!(
                !seen || j < target,
                "{kind:?}: pixel {target} sees its future {j}\n{}",
                render(&f, side, target)
            );
            if full_field {
                assert!(
                    seen || j >= target,
                    "{kind:?}: pixel {target} misses {j}\n{}",
                    render(&f, side, target)
                );
            }
        }
        if target > 0 {
            assert!(
                f.iter().any(|&s| s),
                "{kind:?}: pixel {target} sees nothing"
            );
        }
    }
    let target = 4 * side + 2;
    println!(
        "{kind:?}, pixel X (# = influences X):\n{}\n",
        render(&field(&model, side, target, &device), side, target)
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
