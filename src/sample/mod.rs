//! Ancestral sampling from autoregressive models, pixel by pixel in the model's order (raster,
//! channels R -> G -> B), and image completion: the same loop with some pixels held fixed.
//!
//! This is the naive sampler: one full forward pass per generated pixel value. Random numbers
//! come from a seeded ChaCha generator on the host, one per image per pixel in that order, so a
//! faster (cached) sampler can be checked against it draw for draw.

pub mod cached;
pub mod latent;

use crate::data::{ImageShape, Levels, batch};
use crate::models::Autoregressive;
use crate::nn::dist::draw;
use crate::progress::Progress;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use crate::models::SampleSpec;

/// Draws `n` images from the model. Returns row-major bytes `[n, c, h, w]` in 0..levels.
pub fn sample(
    model: &(impl Autoregressive + ?Sized),
    spec: &SampleSpec,
    n: usize,
    device: &Device,
    progress: &mut dyn Progress,
) -> crate::Result<Vec<u8>> {
    let unknown = vec![false; spec.shape.dims()];
    complete(
        model,
        spec,
        &vec![0; n * spec.shape.dims()],
        &unknown,
        device,
        progress,
    )
}

/// Samples every pixel value where `known` (per position, `c*h*w`) is false, conditioning on
/// the values of `images` elsewhere. `images`: row-major `[n, c, h, w]`.
pub fn complete(
    model: &(impl Autoregressive + ?Sized),
    spec: &SampleSpec,
    images: &[u8],
    known: &[bool],
    device: &Device,
    progress: &mut dyn Progress,
) -> crate::Result<Vec<u8>> {
    let shape = spec.shape;
    let dims = shape.dims();
    assert_eq!(known.len(), dims, "known mask must cover one image");
    let n = images.len() / dims;
    let labels = spec.classes.map(|classes| {
        assert_eq!(classes.len(), n, "one class per image");
        let values: Vec<i64> = classes.iter().map(|&c| c as i64).collect();
        Tensor::<1, Int>::from_data(TensorData::new(values, [n]), device)
    });
    let mut values = images.to_vec();
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
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
                    spec.levels,
                    device,
                );
                let probabilities = model
                    .conditionals(input, labels.as_ref())
                    .probabilities_at(channel, row, col)?;
                for (image, p) in probabilities.iter().enumerate() {
                    values[image * dims + position] = draw(p, rng.random::<f32>()) as u8;
                }
                done += 1;
                progress.update(done, &format!("pixel {done}/{todo}"));
            }
        }
    }
    progress.finish(&format!("{n} images, {todo} pixels each"));
    Ok(values)
}

/// The "bottom half unknown" mask used by `genmodels complete`.
pub fn top_half_known(shape: ImageShape) -> Vec<bool> {
    let plane = shape.height * shape.width;
    (0..shape.dims())
        .map(|i| (i % plane) / shape.width < shape.height / 2)
        .collect()
}

/// A request to [`draw_any`].
#[derive(Debug, Clone, Copy)]
pub struct Draw<'a> {
    pub n: usize,
    pub seed: u64,
    /// One class per image, for class-conditional models.
    pub classes: Option<&'a [u8]>,
    /// Use the naive sampler even where a cached one exists.
    pub naive: bool,
}

/// Samples from any model: pixel by pixel for autoregressive models (values in `spec.levels`;
/// `classes`, one per image, for class-conditional ones), decoded prior draws (8-bit means) for
/// latent models. Returns the bytes and their levels. Refuses classes the model cannot use.
/// Models with a fast sampler use it unless `naive` (same images, far faster).
pub fn draw_any(
    model: &crate::models::AnyModel,
    spec: &crate::models::ImageSpec,
    draw: &Draw,
    device: &Device,
    progress: &mut dyn Progress,
) -> crate::Result<(Vec<u8>, Levels)> {
    let Draw {
        n,
        seed,
        classes,
        naive,
    } = *draw;
    if let Some(ar) = model.as_autoregressive() {
        let model_classes = ar.classes();
        match classes {
            Some(_) if model_classes == 0 => {
                return Err(crate::Error::Invalid(
                    "this model is unconditional: --class needs a model trained with --conditional"
                        .into(),
                ));
            }
            Some(cs) if cs.iter().any(|&c| c as usize >= model_classes) => {
                return Err(crate::Error::Invalid(format!(
                    "class {} is outside the {model_classes} classes (0..={}) this model was trained with",
                    cs.iter().max().copied().unwrap_or(0),
                    model_classes - 1
                )));
            }
            None if model_classes > 0 => {
                return Err(crate::Error::Invalid(
                    "this model is class-conditional: name the class with --class C (or --per-class K)".into(),
                ));
            }
            _ => {}
        }
        let request = SampleSpec {
            shape: spec.shape,
            levels: spec.levels,
            seed,
            classes,
        };
        let fast = if naive { None } else { model.fast_sampler()? };
        let images = match fast {
            Some(fast) => {
                let unknown = vec![false; spec.shape.dims()];
                let blank = vec![0; n * spec.shape.dims()];
                fast.complete(&request, &blank, &unknown, progress)
            }
            None => sample(ar, &request, n, device, progress)?,
        };
        return Ok((images, spec.levels));
    }
    if classes.is_some() {
        return Err(crate::Error::Invalid(
            "--class needs a class-conditional autoregressive model".into(),
        ));
    }
    if let Some(latent) = model.as_latent() {
        return Ok((
            latent::prior_samples(latent, n, seed, device)?,
            Levels::Bits8,
        ));
    }
    Err(crate::Error::Invalid(
        "this model has no distribution to sample from (an autoencoder has no prior): train a vae-mlp, vae-conv or pixelcnn".into(),
    ))
}
