//! A generative classifier by Bayes' rule: with a class-conditional density p(x|y) and the class
//! prior p(y) (label counts of the training split),
//!
//! ```text
//! log p(y|x) = log p(x|y) + log p(y) - log Σ_y' p(x|y') p(y')      (log-sum-exp)
//! ```
//!
//! and the calibration of any classifier's posteriors: expected calibration error over equal-
//! width confidence bins, `ECE = Σ_b (n_b / n) |accuracy_b - confidence_b|`.

use crate::data::{ImageSet, batch};
use crate::error::{Error, Result};
use crate::models::Autoregressive;
use crate::progress::Progress;
use burn::tensor::{Device, Int, Tensor, TensorData};

/// `log p(x|y)` in nats for every image of `set` and every class: `[n][classes]`.
pub fn class_log_likelihoods(
    model: &(impl Autoregressive + ?Sized),
    set: &ImageSet,
    batch_size: usize,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<Vec<Vec<f64>>> {
    let classes = model.classes();
    if classes == 0 {
        return Err(Error::Invalid(
            "a Bayes classifier needs a class-conditional model p(x|y): train gated-pixelcnn --conditional".into(),
        ));
    }
    let pixels = set.epoch_pixels(0);
    let shape = [set.shape.channels, set.shape.height, set.shape.width];
    let indices: Vec<usize> = (0..set.len()).collect();
    let mut out: Vec<Vec<f64>> = Vec::with_capacity(set.len());
    progress.start("log p(x|y) for every class", set.len() as u64);
    for chunk in indices.chunks(batch_size.max(1)) {
        let images = batch::to_tensor(&pixels, chunk, shape, set.levels, device);
        // [classes][chunk]
        let per_class: Vec<Vec<f32>> = (0..classes)
            .map(|y| {
                let labels = Tensor::<1, Int>::from_data(
                    TensorData::new(vec![y as i64; chunk.len()], [chunk.len()]),
                    device,
                );
                super::read_back(
                    model
                        .conditionals(images.clone(), Some(&labels))
                        .log_prob(images.clone()),
                )
            })
            .collect::<Result<_>>()?;
        out.extend(
            (0..chunk.len()).map(|k| per_class.iter().map(|c| c[k] as f64).collect::<Vec<_>>()),
        );
        progress.update((chunk[0] + chunk.len()) as u64, "");
    }
    progress.finish(&format!("{} images x {classes} classes", set.len()));
    Ok(out)
}

/// Log prior from label counts (add-one smoothing so no class has probability zero).
pub fn log_prior(labels: &[u8], classes: usize) -> Vec<f64> {
    let mut counts = vec![1.0; classes];
    for &l in labels {
        if (l as usize) < classes {
            counts[l as usize] += 1.0;
        }
    }
    let total: f64 = counts.iter().sum();
    counts.iter().map(|c| (c / total).ln()).collect()
}

/// `log Σ_i exp(x_i)`.
pub fn log_sum_exp(x: &[f64]) -> f64 {
    let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + x.iter().map(|v| (v - max).exp()).sum::<f64>().ln()
}

/// p(y|x) from `log p(x|y)` and `log p(y)`.
pub fn posterior(log_likelihood: &[f64], log_prior: &[f64]) -> Vec<f64> {
    let joint: Vec<f64> = log_likelihood
        .iter()
        .zip(log_prior)
        .map(|(a, b)| a + b)
        .collect();
    let log_evidence = log_sum_exp(&joint);
    joint.iter().map(|j| (j - log_evidence).exp()).collect()
}

/// Accuracy and expected calibration error (`bins` equal-width confidence bins) of posteriors.
pub fn accuracy_and_ece(posteriors: &[Vec<f64>], labels: &[u8], bins: usize) -> (f64, f64) {
    let mut bin_count = vec![0.0; bins];
    let mut bin_correct = vec![0.0; bins];
    let mut bin_confidence = vec![0.0; bins];
    let mut correct_total = 0.0;
    for (p, &label) in posteriors.iter().zip(labels) {
        let (predicted, confidence) = argmax(p);
        let correct = (predicted == label as usize) as u8 as f64;
        correct_total += correct;
        let b = ((confidence * bins as f64) as usize).min(bins - 1);
        bin_count[b] += 1.0;
        bin_correct[b] += correct;
        bin_confidence[b] += confidence;
    }
    let n = posteriors.len().max(1) as f64;
    let ece = (0..bins)
        .filter(|&b| bin_count[b] > 0.0)
        .map(|b| {
            (bin_count[b] / n)
                * (bin_correct[b] / bin_count[b] - bin_confidence[b] / bin_count[b]).abs()
        })
        .sum();
    (correct_total / n, ece)
}

/// The class a posterior picks (the first of equal maxima) and its probability.
pub fn argmax(p: &[f64]) -> (usize, f64) {
    p.iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 { (i, v) } else { best }
        })
}

/// Confusion counts `[true class][predicted class]` of posteriors over `classes` classes.
pub fn confusion(posteriors: &[Vec<f64>], labels: &[u8], classes: usize) -> Vec<Vec<u64>> {
    let mut counts = vec![vec![0u64; classes]; classes];
    for (p, &label) in posteriors.iter().zip(labels) {
        let predicted = argmax(p).0;
        if (label as usize) < classes && predicted < classes {
            counts[label as usize][predicted] += 1;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posterior_is_bayes_rule() {
        // p(x|y) = [0.2, 0.1], p(y) = [0.25, 0.75] -> p(y|x) = [0.05, 0.075] / 0.125.
        let p = posterior(&[0.2f64.ln(), 0.1f64.ln()], &[0.25f64.ln(), 0.75f64.ln()]);
        assert!((p[0] - 0.4).abs() < 1e-12 && (p[1] - 0.6).abs() < 1e-12);
    }

    #[test]
    fn ece_of_a_calibrated_and_an_overconfident_classifier() {
        // Confidence 0.75 and right 3 times out of 4: calibrated.
        let calibrated = vec![vec![0.75, 0.25]; 4];
        let (acc, ece) = accuracy_and_ece(&calibrated, &[0, 0, 0, 1], 10);
        assert!((acc - 0.75).abs() < 1e-12 && ece.abs() < 1e-12);
        // Confidence 0.99 and right half the time: ECE 0.49.
        let over = vec![vec![0.99, 0.01]; 4];
        let (_, ece) = accuracy_and_ece(&over, &[0, 1, 0, 1], 10);
        assert!((ece - 0.49).abs() < 1e-12);
    }

    #[test]
    fn confusion_counts_true_rows_and_predicted_columns() {
        let p = [vec![0.9, 0.1], vec![0.2, 0.8], vec![0.6, 0.4]];
        // Labels 0, 0, 1: one right 0, one 0 taken for 1, one 1 taken for 0.
        assert_eq!(confusion(&p, &[0, 0, 1], 2), vec![vec![1, 1], vec![1, 0]]);
    }
}
