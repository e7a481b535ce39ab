//! The cached sampler gives exactly what the naive sampler gives under the same seed, for
//! random Gated PixelCNNs: binary and 8-bit outputs, unconditional and class-conditional,
//! sampling and completion.

mod common;

use burn::tensor::{Device, Int, Tensor, TensorData};
use genmodels::data::Levels;
use genmodels::models::{GatedPixelCnnConfig, Model};
use genmodels::progress::Silent;
use genmodels::sample::{self, SampleSpec, cached};

fn check(
    levels: Levels,
    classes: Option<usize>,
    model_seed: u64,
    sample_seed: u64,
    complete: bool,
) {
    let side = 7;
    let spec = common::spec(1, side, levels);
    let device = Device::flex();
    let config = GatedPixelCnnConfig {
        hidden_channels: 6,
        layers: 4,
        first_kernel: 5,
        kernel: 3,
        output_hidden: 10,
        classes,
    };
    let model = genmodels::seeded::build(&device, model_seed, || config.init(&spec, &device));
    let n = 3;
    let class_list: Vec<u8> = (0..n as u8)
        .map(|i| i % classes.unwrap_or(1) as u8)
        .collect();
    let request = SampleSpec {
        shape: spec.shape,
        levels,
        seed: sample_seed,
        classes: classes.map(|_| &class_list[..]),
    };
    let (images, known) = if complete {
        (
            common::random_images(&spec, n, sample_seed),
            sample::top_half_known(spec.shape),
        )
    } else {
        (
            vec![0; n * spec.shape.dims()],
            vec![false; spec.shape.dims()],
        )
    };
    let naive = sample::complete(&model, &request, &images, &known, &device, &mut Silent).unwrap();
    // Through the registry's capability, as `sample`, `complete` and `serve` find it.
    let fast = Model::fast_sampler(&model)
        .unwrap()
        .expect("the Gated PixelCNN has a fast sampler")
        .complete(&request, &images, &known, &mut Silent);
    assert_eq!(
        naive, fast,
        "levels {levels:?}, classes {classes:?}, seeds {model_seed}/{sample_seed}, complete {complete}"
    );
    // The samples are not degenerate: some pixels of each kind were drawn.
    let distinct = naive
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    assert!(distinct > 1, "all sampled pixels equal");
}

#[test]
fn binary_unconditional_matches_naive() {
    for (m, s) in [(1, 1), (2, 7), (3, 42)] {
        check(Levels::Binary, None, m, s, false);
    }
}

#[test]
fn binary_conditional_and_completion_match_naive() {
    check(Levels::Binary, Some(3), 4, 5, false);
    check(Levels::Binary, None, 6, 8, true);
    check(Levels::Binary, Some(2), 9, 10, true);
}

#[test]
fn eight_bit_matches_naive() {
    check(Levels::Bits8, None, 11, 12, false);
    check(Levels::Bits8, Some(3), 13, 14, true);
}

#[test]
fn cached_logits_equal_the_parallel_forward_pass() {
    for (levels, classes) in [
        (Levels::Binary, None),
        (Levels::Binary, Some(4)),
        (Levels::Bits8, Some(3)),
    ] {
        let spec = common::spec(1, 6, levels);
        let device = Device::flex();
        let config = GatedPixelCnnConfig {
            hidden_channels: 5,
            layers: 3,
            first_kernel: 5,
            kernel: 3,
            output_hidden: 7,
            classes,
        };
        let model = genmodels::seeded::build(&device, 21, || config.init(&spec, &device));
        let n = 2;
        let images = common::random_images(&spec, n, 22);
        let class_list = [1u8, 2];
        let request = SampleSpec {
            shape: spec.shape,
            levels,
            seed: 0,
            classes: classes.map(|_| &class_list[..]),
        };
        let cached = cached::teacher_forced_logits(&model.to_host().unwrap(), &request, &images);
        let x: Vec<f32> = images
            .iter()
            .map(|&v| v as f32 * (1.0 / (levels.count() - 1) as f32))
            .collect();
        let x = Tensor::<4>::from_data(TensorData::new(x, [n, 1, 6, 6]), &device);
        let labels = Tensor::<1, Int>::from_data(TensorData::new(vec![1i64, 2], [n]), &device);
        let parallel: Vec<f32> = model
            .logits(x, Some(&labels))
            .try_into_vec_as::<f32>()
            .unwrap(); // [n, L, 6, 6]
        let outputs = cached.len() / (n * 36);
        for b in 0..n {
            for pos in 0..36 {
                for o in 0..outputs {
                    let (c, p) = (
                        cached[(b * 36 + pos) * outputs + o],
                        parallel[(b * outputs + o) * 36 + pos],
                    );
                    assert!(
                        (c - p).abs() <= 1e-5 * (1.0 + p.abs()),
                        "{levels:?} {classes:?} image {b} pixel {pos} output {o}: cached {c} vs parallel {p}"
                    );
                }
            }
        }
    }
}
