//! The maths of PixelCNN: causality by gradients, and log-likelihoods against an independent
//! per-pixel computation.

mod common;

use burn::tensor::{Device, Tensor, TensorData};
use genmodels::data::Levels;
use genmodels::models::{DensityModel, ImageSpec, PixelCnnConfig};

/// Every conditional depends only on earlier inputs (raster, then R -> G -> B), and on at
/// least one of them; prints the receptive field of the last pixel.
fn check_causality(spec: ImageSpec, config: PixelCnnConfig) {
    let device = Device::flex().autodiff();
    let model = genmodels::seeded::build(&device, 3, || config.init(&spec, &device));
    let fields = common::causality::assert_causal(&model, &spec, &device);
    let last = spec.shape.height * spec.shape.width - 1;
    println!(
        "receptive field of the last pixel (channel 0 inputs):\n{}",
        common::causality::render(&fields[fields.len() - 1], &spec, last)
    );
}

#[test]
fn pixelcnn_is_causal_for_binary_images() {
    check_causality(common::spec(1, 7, Levels::Binary), common::tiny_pixelcnn());
}

#[test]
fn pixelcnn_is_causal_across_rgb_channels_with_256_way_outputs() {
    // Wide enough that, at the first pixel, some ReLU path from R to the G and B logits is
    // alive (with 2-3 units per colour group all of them can be dead for a random model).
    let config = PixelCnnConfig {
        hidden_channels: 12,
        residual_blocks: 1,
        first_kernel: 3,
        block_kernel: 3,
        output_hidden: 36,
    };
    check_causality(common::spec(3, 4, Levels::Bits8), config);
}

fn log_sigmoid(x: f64) -> f64 {
    -((-x).exp().ln_1p())
}

#[test]
fn bernoulli_nll_equals_a_per_pixel_computation() {
    let spec = common::spec(1, 8, Levels::Binary);
    let device = Device::flex();
    let model =
        genmodels::seeded::build(&device, 11, || common::tiny_pixelcnn().init(&spec, &device));
    let n = 3;
    let pixels = common::random_images(&spec, n, 9);
    let images: Vec<f32> = pixels.iter().map(|&v| v as f32).collect();
    let x = Tensor::<4>::from_data(TensorData::new(images, [n, 1, 8, 8]), &device);
    let model_log_p: Vec<f32> = model
        .log_prob(x.clone(), None)
        .try_into_vec_as::<f32>()
        .unwrap();
    let logits: Vec<f32> = model.logits(x).try_into_vec_as::<f32>().unwrap();
    for i in 0..n {
        let expected: f64 = (0..64)
            .map(|j| {
                let l = logits[i * 64 + j] as f64;
                if pixels[i * 64 + j] == 1 {
                    log_sigmoid(l)
                } else {
                    log_sigmoid(-l)
                }
            })
            .sum();
        let got = model_log_p[i] as f64;
        assert!(
            (got - expected).abs() < 1e-3 * expected.abs().max(1.0),
            "image {i}: {got} vs {expected}"
        );
    }
}

#[test]
fn categorical_nll_equals_a_per_pixel_log_softmax() {
    let spec = common::spec(3, 4, Levels::Bits8);
    let device = Device::flex();
    let model =
        genmodels::seeded::build(&device, 12, || common::tiny_pixelcnn().init(&spec, &device));
    let n = 2;
    let pixels = common::random_images(&spec, n, 10);
    let images: Vec<f32> = pixels.iter().map(|&v| v as f32 / 255.0).collect();
    let x = Tensor::<4>::from_data(TensorData::new(images, [n, 3, 4, 4]), &device);
    let model_log_p: Vec<f32> = model
        .log_prob(x.clone(), None)
        .try_into_vec_as::<f32>()
        .unwrap();
    let logits: Vec<f32> = model.logits(x).try_into_vec_as::<f32>().unwrap(); // [n, 3*256, 4, 4]
    let plane = 16;
    for i in 0..n {
        let mut expected = 0.0f64;
        for c in 0..3 {
            for p in 0..plane {
                let at = |v: usize| logits[((i * 3 + c) * 256 + v) * plane + p] as f64;
                let max = (0..256).map(at).fold(f64::NEG_INFINITY, f64::max);
                let log_z = max + (0..256).map(|v| (at(v) - max).exp()).sum::<f64>().ln();
                let value = pixels[(i * 3 + c) * plane + p] as usize;
                expected += at(value) - log_z;
            }
        }
        let got = model_log_p[i] as f64;
        assert!(
            (got - expected).abs() < 1e-3 * expected.abs(),
            "image {i}: {got} vs {expected}"
        );
    }
}
