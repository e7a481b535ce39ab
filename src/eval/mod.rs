//! Evaluation: exact negative log-likelihood of a density model over a whole split, batched.

pub mod bayes;
pub mod latent;
pub mod ood;

use crate::data::{ImageSet, batch};
use crate::error::Result;
use crate::models::DensityModel;
use crate::progress::Progress;
use crate::units::bits_per_dim;
use burn::tensor::Device;

/// The result of an evaluation, printed and written as JSON.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EvalReport {
    /// Data set, binarization and split, e.g. "binarized-mnist [static binarization (S)], split test".
    pub benchmark: String,
    pub dataset: String,
    pub split: String,
    /// "exact NLL" for autoregressive models.
    pub estimator: String,
    pub images: usize,
    pub nll_nats_per_image: f64,
    pub bits_per_dim: f64,
    /// Classification accuracy (a fraction), for a classifier's evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
}

/// `log p(x)` (nats) of every image of `set`, batched; for a class-conditional model, of
/// p(x|y) given each image's label.
pub fn per_image_log_prob(
    model: &(impl DensityModel + ?Sized),
    set: &ImageSet,
    batch_size: usize,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<Vec<f64>> {
    let n = set.len();
    let dims = set.shape.dims();
    let pixels = set.epoch_pixels(0);
    let indices: Vec<usize> = (0..n).collect();
    let mut out = Vec::with_capacity(n);
    progress.start(&format!("log p(x) {}", set.split), n as u64);
    for chunk in indices.chunks(batch_size.max(1)) {
        let batch = batch::make(set, &pixels, chunk, device);
        let log_p = read_back(model.log_prob(batch.images, batch.labels.as_ref()))?;
        out.extend(log_p.iter().map(|&v| v as f64));
        let nll = -out.iter().sum::<f64>() / out.len() as f64;
        progress.update(
            out.len() as u64,
            &format!("{nll:.2} nats, {:.4} bits/dim", bits_per_dim(nll, dims)),
        );
    }
    let nll = -out.iter().sum::<f64>() / n.max(1) as f64;
    progress.finish(&format!(
        "{nll:.2} nats, {:.4} bits/dim",
        bits_per_dim(nll, dims)
    ));
    Ok(out)
}

/// A tensor's values on the host; a failed read-back is an error, never an empty vector.
pub fn read_back<const D: usize>(tensor: burn::tensor::Tensor<D>) -> Result<Vec<f32>> {
    tensor
        .try_into_vec_as::<f32>()
        .map_err(crate::Error::read_back)
}

/// Runs a classifier over every image of `set` in batches, calling `visit` with each batch's
/// logits `[b, classes]` and labels; an unlabelled set is an error.
fn for_labelled_batches(
    model: &crate::models::Classifier,
    set: &ImageSet,
    batch_size: usize,
    device: &Device,
    mut visit: impl FnMut(burn::tensor::Tensor<2>, &[u8]) -> Result<()>,
) -> Result<()> {
    let labels = set.labels.as_ref().ok_or_else(|| {
        crate::Error::Invalid(format!(
            "{} has no labels to score a classifier on",
            set.benchmark()
        ))
    })?;
    let pixels = set.epoch_pixels(0);
    let shape = [set.shape.channels, set.shape.height, set.shape.width];
    let indices: Vec<usize> = (0..set.len()).collect();
    for chunk in indices.chunks(batch_size.max(1)) {
        let images = batch::to_tensor(&pixels, chunk, shape, set.levels, device);
        let chunk_labels = &labels[chunk[0]..chunk[0] + chunk.len()];
        visit(model.logits(images), chunk_labels)?;
    }
    Ok(())
}

/// `log p(y|x)` (nats) of every image's label under a classifier, `[n]` in `set` order.
pub fn log_likelihood_of_labels(
    model: &crate::models::Classifier,
    set: &ImageSet,
    batch_size: usize,
    device: &Device,
) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(set.len());
    for_labelled_batches(model, set, batch_size, device, |logits, labels| {
        let log_p = read_back(burn::tensor::activation::log_softmax(logits, 1))?;
        let classes = log_p.len() / labels.len().max(1);
        out.extend(
            labels
                .iter()
                .zip(log_p.chunks(classes))
                .map(|(&y, row)| row.get(y as usize).map_or(f64::NEG_INFINITY, |&v| v as f64)),
        );
        Ok(())
    })?;
    Ok(out)
}

/// Exact NLL (nats per image, and bits/dim) of `model` on every image of `set`; for a
/// class-conditional model, of p(x|y) given each image's label.
pub fn exact_nll(
    model: &(impl DensityModel + ?Sized),
    set: &ImageSet,
    batch_size: usize,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<EvalReport> {
    let log_p = per_image_log_prob(model, set, batch_size, device, progress)?;
    let nll = -log_p.iter().sum::<f64>() / set.len().max(1) as f64;
    Ok(EvalReport {
        benchmark: set.benchmark(),
        dataset: set.dataset.clone(),
        split: set.split.to_string(),
        estimator: "exact NLL".into(),
        images: set.len(),
        nll_nats_per_image: nll,
        bits_per_dim: bits_per_dim(nll, set.shape.dims()),
        accuracy: None,
    })
}

/// Test accuracy of a classifier: the fraction of `set` whose argmax logit is the label.
pub fn accuracy(
    model: &crate::models::Classifier,
    set: &ImageSet,
    batch_size: usize,
    device: &Device,
) -> Result<f64> {
    let mut correct = 0usize;
    for_labelled_batches(model, set, batch_size, device, |logits, labels| {
        let predicted: Vec<i64> = logits
            .argmax(1)
            .try_into_vec_as::<i64>()
            .map_err(crate::Error::read_back)?;
        correct += labels
            .iter()
            .zip(&predicted)
            .filter(|(y, p)| **y as i64 == **p)
            .count();
        Ok(())
    })?;
    Ok(correct as f64 / set.len().max(1) as f64)
}
