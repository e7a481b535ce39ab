//! Pictures from latent-variable models, written once in terms of [`LatentModel`]: samples from
//! the prior, reconstructions, linear interpolations between codes, and the decoded manifold of
//! a 2-D latent space. Images are the decoder's mean image, in 8-bit grey.

use crate::data::{ImageSet, Levels, batch};
use crate::error::{Error, Result};
use crate::models::LatentModel;
use crate::nn::DiagGaussian;
use burn::tensor::{Device, Tensor, TensorData};

fn to_grey(means: Tensor<4>) -> Result<Vec<u8>> {
    batch::to_bytes(means, Levels::Bits8)
}

/// `n` images decoded from z ~ N(0, I) (seeded).
pub fn prior_samples(
    model: &(impl LatentModel + ?Sized),
    n: usize,
    seed: u64,
    device: &Device,
) -> Result<Vec<u8>> {
    crate::seeded::with_seed(device, seed, || {
        let z = DiagGaussian::standard(n, model.latent_dim(), device).rsample();
        to_grey(model.decode(z).mean_image())
    })
}

/// Reconstructions of the first `n` images of `set` from their posterior means.
pub fn reconstructions(
    model: &(impl LatentModel + ?Sized),
    set: &ImageSet,
    n: usize,
    device: &Device,
) -> Result<Vec<u8>> {
    let images = first_images(set, n, device);
    to_grey(model.decode(model.encode(images).mean).mean_image())
}

/// `steps` images decoded along the straight line between the posterior means of images `a`
/// and `b` of `set` (endpoints included).
pub fn interpolation(
    model: &(impl LatentModel + ?Sized),
    set: &ImageSet,
    a: usize,
    b: usize,
    steps: usize,
    device: &Device,
) -> Result<Vec<u8>> {
    let shape = [set.shape.channels, set.shape.height, set.shape.width];
    let pixels = set.epoch_pixels(0);
    let images = batch::to_tensor(&pixels, &[a, b], shape, set.levels, device);
    let mean = model.encode(images).mean; // [2, d]
    let d = model.latent_dim();
    let codes = crate::error::host(mean)?;
    let mut line = Vec::with_capacity(steps * d);
    for s in 0..steps {
        let t = s as f32 / (steps.max(2) - 1) as f32;
        line.extend((0..d).map(|j| (1.0 - t) * codes[j] + t * codes[d + j]));
    }
    let z = Tensor::<2>::from_data(TensorData::new(line, [steps, d]), device);
    to_grey(model.decode(z).mean_image())
}

/// The decoded manifold of a 2-D latent: a `side` x `side` grid over z in [-span, span]²
/// (row-major, z_2 decreasing down the rows). Errors for other latent sizes.
pub fn manifold(
    model: &(impl LatentModel + ?Sized),
    side: usize,
    span: f32,
    device: &Device,
) -> Result<Vec<u8>> {
    if model.latent_dim() != 2 {
        return Err(Error::Invalid(format!(
            "a 2-D latent map needs a 2-D latent space; this model has {} dimensions (train with --latent-dim 2)",
            model.latent_dim()
        )));
    }
    let at = |i: usize| -span + 2.0 * span * i as f32 / (side.max(2) - 1) as f32;
    let grid: Vec<f32> = (0..side)
        .flat_map(|r| (0..side).flat_map(move |c| [at(c), at(side - 1 - r)]))
        .collect();
    let z = Tensor::<2>::from_data(TensorData::new(grid, [side * side, 2]), device);
    to_grey(model.decode(z).mean_image())
}

/// Posterior means of the first `n` images, `[n][latent]`.
pub fn posterior_means(
    model: &(impl LatentModel + ?Sized),
    set: &ImageSet,
    n: usize,
    device: &Device,
) -> Result<Vec<Vec<f32>>> {
    let d = model.latent_dim();
    let mut out = Vec::new();
    let n = n.min(set.len());
    let shape = [set.shape.channels, set.shape.height, set.shape.width];
    let pixels = set.epoch_pixels(0);
    let indices: Vec<usize> = (0..n).collect();
    for chunk in indices.chunks(500) {
        let images = batch::to_tensor(&pixels, chunk, shape, set.levels, device);
        let means = crate::error::host(model.encode(images).mean)?;
        out.extend(means.chunks(d).map(<[f32]>::to_vec));
    }
    Ok(out)
}

fn first_images(set: &ImageSet, n: usize, device: &Device) -> Tensor<4> {
    let shape = [set.shape.channels, set.shape.height, set.shape.width];
    let pixels = set.epoch_pixels(0);
    let indices: Vec<usize> = (0..n.min(set.len())).collect();
    batch::to_tensor(&pixels, &indices, shape, set.levels, device)
}
