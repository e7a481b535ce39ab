//! Naive vs cached sampling speed of any autoregressive model (Gated PixelCNN, PixelCNN, Row
//! LSTM, Diagonal BiLSTM, PixelCNN++) on the image size of its config's `[image]` (default 28x28
//! binary, or 8-bit for a model of 8-bit images only).
//!
//! `cargo run --release --example sampler_speed -- [config.toml] [batch sizes, e.g. 1,16,256] [naive pixels]`
//!
//! The naive sampler costs one full forward pass per pixel whatever the pixel, so it is timed
//! on the first `naive pixels` pixels (default all 784) and scaled to a whole image; the
//! cached sampler is always timed on whole images. Weights are random (speed does not depend
//! on them); the model shape comes from the config's `[model]` table.
use burn::tensor::Device;
use genmodels::models::{benchmark_image, build};
use genmodels::progress::Silent;
use genmodels::sample::{self, SampleSpec};
use std::time::Instant;

fn main() -> genmodels::Result<()> {
    genmodels::allocator::tune(); // as the genmodels command does
    let args: Vec<String> = std::env::args().collect();
    let config_path = args
        .get(1)
        .map_or("configs/gated-pixelcnn-bmnist.toml", String::as_str);
    let batches: Vec<usize> = args
        .get(2)
        .map_or("1,16,256", String::as_str)
        .split(',')
        .filter_map(|b| b.parse().ok())
        .collect();
    let naive_pixels: usize = args.get(3).and_then(|p| p.parse().ok()).unwrap_or(784);
    let config = genmodels::config::RunConfig::load(std::path::Path::new(config_path))?;
    let spec = config
        .image
        .unwrap_or_else(|| benchmark_image(&config.model));
    let shape = spec.shape;
    let device = Device::flex();
    device.seed(1);
    let model = build(&config.model, &spec, &device);
    let (Some(ar), Some(fast)) = (model.as_autoregressive(), model.fast_sampler()?) else {
        return Err(genmodels::Error::Invalid(
            "the config must describe an autoregressive model with a fast sampler".into(),
        ));
    };
    let classes_of_model = ar.classes().max(1);
    println!("| batch | naive images/s | cached images/s | speed-up |\n|---:|---:|---:|---:|");
    for &n in &batches {
        let classes: Vec<u8> = (0..n).map(|i| (i % classes_of_model) as u8).collect();
        let request = SampleSpec {
            shape,
            levels: spec.levels,
            seed: 1,
            classes: (ar.classes() > 0).then_some(&classes[..]),
        };
        let blank = vec![0u8; n * shape.dims()];
        // Naive: the first `naive_pixels` pixels unknown, the rest fixed, then scaled to 784.
        let pixels = naive_pixels.min(shape.dims());
        let known: Vec<bool> = (0..shape.dims()).map(|i| i >= pixels).collect();
        let start = Instant::now();
        sample::complete(ar, &request, &blank, &known, &device, &mut Silent)?;
        let naive_seconds = start.elapsed().as_secs_f64() * shape.dims() as f64 / pixels as f64;
        let unknown = vec![false; shape.dims()];
        let start = Instant::now();
        fast.complete(&request, &blank, &unknown, &mut Silent);
        let cached_seconds = start.elapsed().as_secs_f64();
        println!(
            "| {n} | {:.3}{} | {:.2} | {:.0}x |",
            n as f64 / naive_seconds,
            if pixels < shape.dims() {
                format!(" (from {pixels} pixels)")
            } else {
                String::new()
            },
            n as f64 / cached_seconds,
            naive_seconds / cached_seconds
        );
    }
    Ok(())
}
