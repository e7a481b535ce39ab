//! What the lecture says generative models are for, measured on trained runs: the Bayes
//! classifier from a class-conditional p(x|y) (`classify`), out-of-distribution scores
//! (`ood`), features learnt without labels serving a classifier (`features`: an autoencoder
//! fine-tuned; `semi`: a VAE's q(z|x) means under small classifiers, Kingma et al.'s M1). Each
//! takes a request and returns a report; the CLI prints it.

pub mod classify;
pub mod features;
pub mod m2;
pub mod ood;
pub mod semi;
pub mod verdicts;

use crate::data::{self, ImageSet};
use crate::error::{Error, Result};
use crate::models::ImageSpec;
use crate::run::load_trained;
use crate::train::checkpoint::Which;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use std::path::Path;

/// Mean and population standard deviation of `values` (0 and 0 when empty): the spread of a
/// figure over seeds.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// Share of the rows of `inputs` (`d` features each, one per label) whose largest logit is
/// their label; `logits` maps `[b, d]` to `[b, classes]` and runs on blocks of 1,000 rows.
fn argmax_accuracy(
    inputs: &[f32],
    d: usize,
    labels: &[u8],
    logits: impl Fn(Tensor<2>) -> Tensor<2>,
) -> Result<f64> {
    let device = Device::flex();
    let mut correct = 0usize;
    for (rows, y) in inputs.chunks(1000 * d).zip(labels.chunks(1000)) {
        let x = Tensor::<2>::from_data(TensorData::new(rows.to_vec(), [y.len(), d]), &device);
        let predicted = crate::error::host_ints(logits(x).argmax(1).reshape([y.len()]))?;
        correct += (predicted.iter().zip(y))
            .filter(|&(&p, &t)| p == t as i64)
            .count();
    }
    Ok(correct as f64 / labels.len().max(1) as f64)
}

/// Softmax posteriors `[n][classes]` of a discriminative classifier run on `set`.
pub fn classifier_posteriors(
    run_dir: &Path,
    set: &ImageSet,
    device: &Device,
) -> Result<Vec<Vec<f64>>> {
    let trained = load_trained(run_dir, Which::Best, device)?;
    let Some(classifier) = trained.model.as_classifier() else {
        return Err(Error::Invalid(format!(
            "{} holds a {}, not a classifier",
            run_dir.display(),
            trained.config.model.name()
        )));
    };
    check_shape(&trained.image, set, run_dir)?;
    let pixels = set.epoch_pixels(0);
    let shape = [set.shape.channels, set.shape.height, set.shape.width];
    let indices: Vec<usize> = (0..set.len()).collect();
    let mut out = Vec::new();
    for chunk in indices.chunks(500) {
        let images = data::batch::to_tensor(&pixels, chunk, shape, set.levels, device);
        let p = crate::error::host(softmax(classifier.logits(images), 1))?;
        let classes = p.len() / chunk.len();
        out.extend(
            p.chunks(classes)
                .map(|row| row.iter().map(|&v| v as f64).collect::<Vec<_>>()),
        );
    }
    Ok(out)
}

/// Refuses images of another shape or level count than the run was trained on.
pub fn check_shape(image: &ImageSpec, set: &ImageSet, run_dir: &Path) -> Result<()> {
    if image.shape != set.shape || image.levels != set.levels {
        return Err(Error::Invalid(format!(
            "{} was trained on {}x{}x{} {:?} images; {} has {}x{}x{} {:?} images",
            run_dir.display(),
            image.shape.channels,
            image.shape.height,
            image.shape.width,
            image.levels,
            set.benchmark(),
            set.shape.channels,
            set.shape.height,
            set.shape.width,
            set.levels
        )));
    }
    Ok(())
}
