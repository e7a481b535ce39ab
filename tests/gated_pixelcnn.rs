//! The Gated PixelCNN has no blind spot: by gradients, every pixel before i in raster order
//! influences pixel i, none at or after i does; the plain PixelCNN misses pixels to the upper
//! right. Both receptive fields are printed as text. Also: class conditioning changes the
//! conditionals, and unconditional use ignores labels.

mod common;

use burn::tensor::{Device, Int, Tensor, TensorData};
use common::causality;
use genmodels::data::Levels;
use genmodels::models::{GatedPixelCnnConfig, PixelCnnConfig};

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
    let gated_fields = causality::assert_causal(&gated, &spec, &device);
    for (target, field) in gated_fields.iter().enumerate() {
        for (j, &seen) in field.iter().enumerate() {
            assert!(
                seen || j >= target,
                "gated: pixel {target} misses pixel {j}\n{}",
                causality::render(field, &spec, target)
            );
        }
    }
    let plain_fields = causality::assert_causal(&plain, &spec, &device);
    let target = 5 * side + 3;
    let plain_field = &plain_fields[target];
    println!(
        "plain PixelCNN, pixel X (# = influences X):\n{}\n",
        causality::render(plain_field, &spec, target)
    );
    println!(
        "Gated PixelCNN, pixel X:\n{}",
        causality::render(&gated_fields[target], &spec, target)
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

/// Colour: channel c of pixel i depends on every earlier pixel's channels and on the channels
/// < c of pixel i, and on nothing at or after (pixel i, channel c); conditional too.
#[test]
fn gated_is_causal_across_rgb_channels_with_no_blind_spot() {
    let spec = common::spec(3, 5, Levels::Bits8);
    let device = Device::flex().autodiff();
    for classes in [None, Some(4)] {
        let gated = genmodels::seeded::build(&device, 6, || {
            // 8 units per colour group: with fewer, the head's ReLUs can be off at a pixel for
            // every test input, which hides a dependence the architecture has.
            GatedPixelCnnConfig {
                hidden_channels: 24,
                layers: 4,
                first_kernel: 3,
                kernel: 3,
                output_hidden: 24,
                classes,
            }
            .init(&spec, &device)
        });
        let fields = causality::assert_causal(&gated, &spec, &device);
        causality::assert_full_field(&fields, &spec, "gated, colour");
    }
}
