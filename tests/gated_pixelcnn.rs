//! The Gated PixelCNN has no blind spot: by gradients, every pixel before i in raster order
//! influences pixel i, none at or after i does; the plain PixelCNN misses pixels to the upper
//! right. Both receptive fields are printed as text. Also: class conditioning changes the
//! conditionals, and unconditional use ignores labels.

mod common;

use burn::tensor::{Device, Int, Tensor, TensorData};
use genmodels::data::Levels;
use genmodels::models::{Autoregressive, GatedPixelCnnConfig, PixelCnnConfig};

/// For output pixel `target`, which input pixels have a non-zero gradient for at least one of
/// a batch of fixed pseudo-random inputs: `[h*w]`. One input is not enough: for some weights
/// every ReLU of the output head is off at `target` for that input, and the whole gradient is
/// zero; dependence is a property of the architecture, so any input that shows it counts.
fn receptive_field(
    model: &dyn Autoregressive,
    side: usize,
    target: usize,
    device: &Device,
) -> Vec<bool> {
    const INPUTS: usize = 16;
    let pixels = side * side;
    let values: Vec<f32> = (0..INPUTS * pixels)
        .map(|i| ((i * 2_654_435_761usize) >> 7) % 2)
        .map(|bit| bit as f32)
        .collect();
    let x = Tensor::<4>::from_data(TensorData::new(values, [INPUTS, 1, side, side]), device)
        .require_grad();
    let labels = Tensor::<1, Int>::from_data(TensorData::new(vec![3i64; INPUTS], [INPUTS]), device);
    let genmodels::nn::PixelHead::Bernoulli(logits) = model.conditionals(x.clone(), Some(&labels))
    else {
        panic!("binary model")
    };
    let (r, c) = (target / side, target % side);
    // Items are independent, so the gradient of the sum holds each item's own gradient.
    let grads = logits
        .slice([0..INPUTS, 0..1, r..r + 1, c..c + 1])
        .sum()
        .backward();
    let g: Vec<f32> = x.grad(&grads).unwrap().try_into_vec_as::<f32>().unwrap();
    (0..pixels)
        .map(|j| (0..INPUTS).any(|b| g[b * pixels + j] != 0.0))
        .collect()
}

fn render(field: &[bool], side: usize, target: usize) -> String {
    (0..side)
        .map(|r| {
            (0..side)
                .map(|c| {
                    let i = r * side + c;
                    if i == target {
                        'X'
                    } else if field[i] {
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

#[test]
fn gated_has_full_causal_field_and_plain_pixelcnn_has_a_blind_spot() {
    let side = 8;
    let spec = common::spec(1, side, Levels::Binary);
    let device = Device::flex().autodiff();
    let gated = genmodels::seeded::build(&device, 4, || {
        GatedPixelCnnConfig {
            hidden_channels: 8,
            layers: 6,
            first_kernel: 5,
            kernel: 3,
            output_hidden: 8,
            classes: None,
        }
        .init(&spec, &device)
    });
    let plain = genmodels::seeded::build(&device, 4, || {
        PixelCnnConfig {
            hidden_channels: 4,
            residual_blocks: 5,
            first_kernel: 5,
            block_kernel: 3,
            output_hidden: 8,
        }
        .init(&spec, &device)
    });
    for target in 0..side * side {
        let field = receptive_field(&gated, side, target, &device);
        for (j, &seen) in field.iter().enumerate() {
            assert_eq!(
                seen,
                j < target,
                "gated: pixel {target} {} pixel {j}\n{}",
                if seen { "sees" } else { "misses" },
                render(&field, side, target)
            );
        }
        let plain_field = receptive_field(&plain, side, target, &device);
        assert!(
            plain_field
                .iter()
                .enumerate()
                .all(|(j, &seen)| !seen || j < target),
            "plain PixelCNN is not causal at {target}"
        );
    }
    let target = 5 * side + 3;
    let plain_field = receptive_field(&plain, side, target, &device);
    let gated_field = receptive_field(&gated, side, target, &device);
    println!(
        "plain PixelCNN, pixel X (# = influences X):\n{}\n",
        render(&plain_field, side, target)
    );
    println!(
        "Gated PixelCNN, pixel X:\n{}",
        render(&gated_field, side, target)
    );
    let blind: Vec<usize> = (0..target).filter(|&j| !plain_field[j]).collect();
    assert!(
        !blind.is_empty(),
        "the plain PixelCNN should have a blind spot"
    );
    // The blind spot lies above and to the right of the target.
    assert!(
        blind
            .iter()
            .all(|&j| j / side < target / side && j % side > target % side),
        "{blind:?}"
    );
}

#[test]
fn class_embedding_changes_the_conditionals() {
    let spec = common::spec(1, 6, Levels::Binary);
    let device = Device::flex();
    let model = genmodels::seeded::build(&device, 5, || {
        GatedPixelCnnConfig {
            hidden_channels: 8,
            layers: 3,
            first_kernel: 3,
            kernel: 3,
            output_hidden: 8,
            classes: Some(4),
        }
        .init(&spec, &device)
    });
    let x = Tensor::<4>::zeros([2, 1, 6, 6], &device);
    let labels =
        |a: i64, b: i64| Tensor::<1, Int>::from_data(TensorData::new(vec![a, b], [2]), &device);
    let logits = |l: Tensor<1, Int>| -> Vec<f32> {
        model
            .logits(x.clone(), Some(&l))
            .try_into_vec_as::<f32>()
            .unwrap()
    };
    let same = logits(labels(1, 1));
    assert_eq!(
        same[..36],
        same[36..],
        "same class, same input: same logits"
    );
    let different = logits(labels(1, 2));
    assert_ne!(
        different[..36],
        different[36..],
        "the class must change the logits"
    );
}
