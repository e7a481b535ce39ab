//! Ancestral sampling from autoregressive models, pixel by pixel in the model's order (raster,
//! channels R -> G -> B), and image completion: the same loop with some pixels held fixed.
//!
//! This is the naive sampler: one full forward pass per generated pixel value. Random numbers
//! come from a seeded ChaCha generator on the host, one per image per pixel in that order, so a
//! faster (cached) sampler can be checked against it draw for draw.

pub mod latent;

use crate::data::{ImageShape, Levels, batch};
use crate::models::Autoregressive;
use crate::nn::dist::draw;
use crate::progress::Progress;
use burn::tensor::Device;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Draws `n` images from the model. Returns row-major bytes `[n, c, h, w]` in 0..levels.
pub fn sample(
    model: &(impl Autoregressive + ?Sized),
    shape: ImageShape,
    levels: Levels,
    n: usize,
    seed: u64,
    device: &Device,
    progress: &mut dyn Progress,
) -> Vec<u8> {
    let unknown = vec![false; shape.dims()];
    complete(
        model,
        shape,
        levels,
        &vec![0; n * shape.dims()],
        &unknown,
        seed,
        device,
        progress,
    )
}

/// Samples every pixel value where `known` (per position, `c*h*w`) is false, conditioning on
/// the values of `images` elsewhere. `images`: row-major `[n, c, h, w]`.
#[allow(clippy::too_many_arguments)]
pub fn complete(
    model: &(impl Autoregressive + ?Sized),
    shape: ImageShape,
    levels: Levels,
    images: &[u8],
    known: &[bool],
    seed: u64,
    device: &Device,
    progress: &mut dyn Progress,
) -> Vec<u8> {
    let dims = shape.dims();
    assert_eq!(known.len(), dims, "known mask must cover one image");
    let n = images.len() / dims;
    let mut values = images.to_vec();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let all: Vec<usize> = (0..n).collect();
    let plane = shape.height * shape.width;
    let todo = known.iter().filter(|k| !**k).count() as u64;
    progress.start("sampling", todo);
    let mut done = 0;
    for row in 0..shape.height {
        for col in 0..shape.width {
            for channel in 0..shape.channels {
                let position = channel * plane + row * shape.width + col;
                if known[position] {
                    continue;
                }
                let input = batch::to_tensor(
                    &values,
                    &all,
                    [shape.channels, shape.height, shape.width],
                    levels,
                    device,
                );
                let probabilities = model
                    .conditionals(input)
                    .probabilities_at(channel, row, col);
                for (image, p) in probabilities.iter().enumerate() {
                    values[image * dims + position] = draw(p, rng.random::<f32>()) as u8;
                }
                done += 1;
                progress.update(done, &format!("pixel {done}/{todo}"));
            }
        }
    }
    progress.finish(&format!("{n} images, {todo} pixels each"));
    values
}

/// The "bottom half unknown" mask used by `genmodels complete`.
pub fn top_half_known(shape: ImageShape) -> Vec<bool> {
    let plane = shape.height * shape.width;
    (0..shape.dims())
        .map(|i| (i % plane) / shape.width < shape.height / 2)
        .collect()
}

/// Samples from any model: pixel by pixel for autoregressive models (values in `spec.levels`),
/// decoded prior draws (8-bit means) for latent models. Returns the bytes and their levels.
pub fn draw_any(
    model: &crate::models::AnyModel,
    spec: &crate::models::ImageSpec,
    n: usize,
    seed: u64,
    device: &Device,
    progress: &mut dyn Progress,
) -> crate::Result<(Vec<u8>, Levels)> {
    if let Some(ar) = model.as_autoregressive() {
        return Ok((
            sample(ar, spec.shape, spec.levels, n, seed, device, progress),
            spec.levels,
        ));
    }
    if let Some(latent) = model.as_latent() {
        return Ok((
            latent::prior_samples(latent, n, seed, device),
            Levels::Bits8,
        ));
    }
    Err(crate::Error::Invalid(
        "this model has no distribution to sample from (an autoencoder has no prior): train a vae-mlp, vae-conv or pixelcnn".into(),
    ))
}
