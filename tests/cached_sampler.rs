//! The cached samplers give exactly what the naive sampler gives under the same seed, for
//! random models of every autoregressive family: Gated PixelCNN (binary and 8-bit,
//! unconditional and class-conditional), PixelCNN, Row LSTM, Diagonal BiLSTM and PixelCNN++,
//! each grey and colour (R -> G -> B); sampling and completion. Their teacher-forced logits (for
//! PixelCNN++, mixture parameters) equal the parallel forward pass at every pixel.

mod common;

use burn::tensor::{Device, Int, Tensor, TensorData};
use genmodels::data::Levels;
use genmodels::models::{
    Autoregressive, GatedPixelCnnConfig, ImageSpec, Model, PixelCnnConfig, PixelCnnPpConfig,
    PixelRnnConfig, RnnKind,
};
use genmodels::progress::Silent;
use genmodels::sample::{self, SampleSpec, cached};

/// The naive and the fast sampler of `model` draw the same values under one seed, for
/// sampling from scratch or completing the bottom half of random images: for one image (the
/// cache's matrix-vector products) and for ten (one matrix product per tap for each thread's
/// group of images).
fn same_as_naive(
    model: &(impl Autoregressive + Model),
    spec: &ImageSpec,
    classes: Option<&[u8]>,
    sample_seed: u64,
    complete: bool,
    what: &str,
) {
    let device = Device::flex();
    for n in [1, 10] {
        let classes = classes.map(|c| &c[..n]);
        let request = SampleSpec {
            shape: spec.shape,
            levels: spec.levels,
            seed: sample_seed,
            classes,
        };
        let (images, known) = if complete {
            (
                common::random_images(spec, n, sample_seed),
                sample::top_half_known(spec.shape),
            )
        } else {
            (
                vec![0; n * spec.shape.dims()],
                vec![false; spec.shape.dims()],
            )
        };
        let naive =
            sample::complete(model, &request, &images, &known, &device, &mut Silent).unwrap();
        let fast = Model::fast_sampler(model)
            .unwrap()
            .expect("every autoregressive model has a fast sampler")
            .complete(&request, &images, &known, &mut Silent);
        assert_eq!(
            naive, fast,
            "{what}, {n} images, seed {sample_seed}, complete {complete}"
        );
        let distinct = naive
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        assert!(distinct > 1, "{what}: all sampled pixels equal");
    }
}

/// `cached` `[n][H][W][O]` against `parallel` `[n][O][H][W]`, elementwise to 1e-5 relative.
fn same_logits(cached: &[f32], parallel: &[f32], n: usize, plane: usize, what: &str) {
    assert_eq!(cached.len(), parallel.len(), "{what}: logit counts");
    let outputs = cached.len() / (n * plane);
    for b in 0..n {
        for pos in 0..plane {
            for o in 0..outputs {
                let (c, p) = (
                    cached[(b * plane + pos) * outputs + o],
                    parallel[(b * outputs + o) * plane + pos],
                );
                assert!(
                    (c - p).abs() <= 1e-5 * (1.0 + p.abs()),
                    "{what}: image {b} pixel {pos} output {o}: cached {c} vs parallel {p}"
                );
            }
        }
    }
}

/// The model input of `images` as the naive path builds it.
fn input(spec: &ImageSpec, images: &[u8], n: usize, device: &Device) -> Tensor<4> {
    let scale = 1.0 / (spec.levels.count() - 1) as f32;
    let x: Vec<f32> = images.iter().map(|&v| v as f32 * scale).collect();
    let s = spec.shape;
    Tensor::<4>::from_data(
        TensorData::new(x, [n, s.channels, s.height, s.width]),
        device,
    )
}

fn pixelcnn(spec: &ImageSpec, seed: u64) -> genmodels::models::PixelCnn {
    let device = Device::flex();
    let config = PixelCnnConfig {
        hidden_channels: 6,
        residual_blocks: 3,
        first_kernel: 5,
        block_kernel: 3,
        output_hidden: 9,
    };
    genmodels::seeded::build(&device, seed, || config.init(spec, &device))
}

fn pixelrnn(kind: RnnKind, spec: &ImageSpec, seed: u64) -> genmodels::models::PixelRnn {
    let device = Device::flex();
    let config = PixelRnnConfig {
        cell: kind,
        hidden_channels: 4,
        layers: 3,
        first_kernel: 5,
        row_kernel: 3,
        output_hidden: 7,
    };
    genmodels::seeded::build(&device, seed, || config.init(spec, &device))
}

#[test]
fn pixelcnn_grey_and_colour_match_naive() {
    for (channels, levels, seed) in [
        (1, Levels::Binary, 31),
        (1, Levels::Bits8, 32),
        (3, Levels::Binary, 33),
        (3, Levels::Bits8, 34),
    ] {
        let spec = common::spec(channels, 5, levels);
        let model = pixelcnn(&spec, seed);
        let what = format!("pixelcnn {channels}ch {levels:?}");
        same_as_naive(&model, &spec, None, seed + 100, false, &what);
        same_as_naive(&model, &spec, None, seed + 200, true, &what);
    }
}

#[test]
fn pixelcnn_cached_logits_equal_the_parallel_forward_pass() {
    let device = Device::flex();
    for (channels, levels) in [(1, Levels::Binary), (3, Levels::Bits8)] {
        let spec = common::spec(channels, 6, levels);
        let model = pixelcnn(&spec, 41);
        let n = 10;
        let images = common::random_images(&spec, n, 42);
        let request = SampleSpec {
            shape: spec.shape,
            levels,
            seed: 0,
            classes: None,
        };
        let cached =
            cached::pixelcnn::teacher_forced_logits(&model.to_host().unwrap(), &request, &images);
        let parallel: Vec<f32> = (model.logits(input(&spec, &images, n, &device)))
            .try_into_vec_as::<f32>()
            .unwrap();
        same_logits(&cached, &parallel, n, 36, &format!("pixelcnn {channels}ch"));
    }
}

#[test]
fn pixelrnns_match_naive() {
    for (kind, levels, seed) in [
        (RnnKind::RowLstm, Levels::Binary, 51),
        (RnnKind::RowLstm, Levels::Bits8, 52),
        (RnnKind::DiagonalBilstm, Levels::Binary, 53),
        (RnnKind::DiagonalBilstm, Levels::Bits8, 54),
    ] {
        for channels in [1, 3] {
            let spec = common::spec(channels, 5, levels);
            let model = pixelrnn(kind, &spec, seed);
            let what = format!("{kind:?} {channels}ch {levels:?}");
            same_as_naive(&model, &spec, None, seed + 100, false, &what);
            same_as_naive(&model, &spec, None, seed + 200, true, &what);
        }
    }
}

#[test]
fn gated_colour_matches_naive() {
    let device = Device::flex();
    for (levels, classes, seed) in [(Levels::Bits8, None, 71), (Levels::Binary, Some(3), 72)] {
        let spec = common::spec(3, 5, levels);
        let config = GatedPixelCnnConfig {
            hidden_channels: 6,
            layers: 3,
            first_kernel: 3,
            kernel: 3,
            output_hidden: 9,
            classes,
        };
        let model = genmodels::seeded::build(&device, seed, || config.init(&spec, &device));
        let class_list: Vec<u8> = (0..10).map(|i| i % 3).collect();
        let classes = classes.map(|_| &class_list[..]);
        let what = format!("gated 3ch {levels:?}");
        same_as_naive(&model, &spec, classes, seed + 100, false, &what);
        same_as_naive(&model, &spec, classes, seed + 200, true, &what);
    }
}

#[test]
fn pixelrnn_cached_logits_equal_the_parallel_forward_pass() {
    let device = Device::flex();
    for (kind, channels) in [
        (RnnKind::RowLstm, 1),
        (RnnKind::DiagonalBilstm, 1),
        (RnnKind::RowLstm, 3),
        (RnnKind::DiagonalBilstm, 3),
    ] {
        // Not square: the skew's padding depends on the height, the mirroring on the width.
        let spec = ImageSpec {
            shape: genmodels::data::ImageShape {
                channels,
                height: 5,
                width: 7,
            },
            levels: Levels::Bits8,
        };
        let model = pixelrnn(kind, &spec, 61);
        let n = 10;
        let images = common::random_images(&spec, n, 62);
        let request = SampleSpec {
            shape: spec.shape,
            levels: spec.levels,
            seed: 0,
            classes: None,
        };
        let cached =
            cached::pixelrnn::teacher_forced_logits(&model.to_host().unwrap(), &request, &images);
        let parallel: Vec<f32> = (model.logits(input(&spec, &images, n, &device)))
            .try_into_vec_as::<f32>()
            .unwrap();
        same_logits(&cached, &parallel, n, 35, &format!("{kind:?} {channels}ch"));
    }
}

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
    // Ten images: each thread's group takes the matrix products.
    let n = 10;
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
    for (channels, levels, classes) in [
        (1, Levels::Binary, None),
        (1, Levels::Binary, Some(4)),
        (1, Levels::Bits8, Some(3)),
        (3, Levels::Bits8, Some(3)),
    ] {
        let spec = common::spec(channels, 6, levels);
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
        let n = 10;
        let images = common::random_images(&spec, n, 22);
        let class_list: Vec<u8> = (0..n).map(|i| (1 + i as u8) % 3).collect();
        let request = SampleSpec {
            shape: spec.shape,
            levels,
            seed: 0,
            classes: classes.map(|_| &class_list[..]),
        };
        let cached =
            cached::gated::teacher_forced_logits(&model.to_host().unwrap(), &request, &images);
        let x: Vec<f32> = images
            .iter()
            .map(|&v| v as f32 * (1.0 / (levels.count() - 1) as f32))
            .collect();
        let x = Tensor::<4>::from_data(TensorData::new(x, [n, channels, 6, 6]), &device);
        let labels = Tensor::<1, Int>::from_data(
            TensorData::new(
                class_list.iter().map(|&c| c as i64).collect::<Vec<_>>(),
                [n],
            ),
            &device,
        );
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

/// A PixelCNN++ small enough to sample naively in a test, at all three resolutions.
fn pixelcnn_pp(spec: &ImageSpec, seed: u64, dropout: f64) -> genmodels::models::PixelCnnPp {
    let device = Device::flex();
    let config = PixelCnnPpConfig {
        filters: 4,
        resnets_per_stage: 1,
        mixtures: Some(3),
        dropout,
    };
    genmodels::seeded::build(&device, seed, || config.init(spec, &device))
}

#[test]
fn pixelcnn_pp_grey_and_colour_match_naive() {
    for (channels, seed) in [(1, 81), (3, 82)] {
        let spec = common::spec(channels, 8, Levels::Bits8);
        let model = pixelcnn_pp(&spec, seed, 0.0);
        let what = format!("pixelcnn++ {channels}ch");
        same_as_naive(&model, &spec, None, seed + 100, false, &what);
        same_as_naive(&model, &spec, None, seed + 200, true, &what);
    }
}

/// Every position of every layer, through both halvings and doublings, on a non-square image
/// (the transposed convolutions' left crop is along the width); with dropout in the model, which
/// sampling, like evaluation, leaves out.
#[test]
fn pixelcnn_pp_cached_parameters_equal_the_parallel_forward_pass() {
    let device = Device::flex();
    for channels in [1, 3] {
        let spec = ImageSpec {
            shape: genmodels::data::ImageShape {
                channels,
                height: 8,
                width: 12,
            },
            levels: Levels::Bits8,
        };
        let model = pixelcnn_pp(&spec, 91, 0.3);
        let n = 6;
        let images = common::random_images(&spec, n, 92);
        let request = SampleSpec {
            shape: spec.shape,
            levels: spec.levels,
            seed: 0,
            classes: None,
        };
        let cached = cached::pixelcnn_pp::teacher_forced_parameters(
            &model.to_host().unwrap(),
            &request,
            &images,
        );
        let parallel: Vec<f32> = (model.mixture_parameters(input(&spec, &images, n, &device)))
            .try_into_vec_as::<f32>()
            .unwrap();
        same_logits(
            &cached,
            &parallel,
            n,
            96,
            &format!("pixelcnn++ {channels}ch"),
        );
    }
}
