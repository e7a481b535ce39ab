//! The lecture's first picture, on real inputs: a discriminative classifier p(y|x) labels
//! whatever it is shown, often confidently when the input is unlike its training data; a
//! generative model's evidence
//!
//! ```text
//! log p(x) = log Σ_y p(x|y) p(y)          (log-sum-exp over the classes)
//! ```
//!
//! says the input is unlike the data, and the input is rejected. The rejection threshold is
//! the 99th percentile of -log p(x) on the in-distribution validation images, so that about
//! 1% of real test images are rejected too; the measured rate is reported beside the others.

use super::{check_shape, classifier_posteriors};
use crate::data::{self, Binarization, ImageSet, Levels, Split};
use crate::error::Result;
use crate::eval::bayes;
use crate::models::{Autoregressive, ImageSpec};
use crate::progress::Progress;
use crate::viz::panels;
use burn::tensor::Device;
use std::path::{Path, PathBuf};

/// Which inputs to judge besides the in-distribution test images.
#[derive(Debug, Clone)]
pub struct RejectRequest {
    /// Data sets whose test images are shown to both classifiers, or `noise` (uniform random
    /// images of the classifier's form).
    pub sets: Vec<String>,
    /// Images scored per set (and validation images behind the threshold).
    pub pool: usize,
    /// Images drawn per set: the most confidently labelled ones.
    pub show: usize,
}

/// The threshold's quantile of the in-distribution validation -log p(x).
pub const QUANTILE: f64 = 0.99;
/// A discriminative verdict at least this sure counts as confident.
pub const CONFIDENT: f64 = 0.9;
/// Seed of the binarisation of 8-bit inputs for a binary model (fixed, so reruns agree).
const FORM_SEED: u64 = 0x5EED_0100;
/// Seed of the noise images (that of `genmodels ood`).
const NOISE_SEED: u64 = 7;

/// One judged image.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verdict {
    /// Index in its set.
    pub index: usize,
    /// The discriminative classifier's label and its probability.
    pub label: usize,
    pub confidence: f64,
    /// -log p(x) under the generative model, in nats.
    pub nll: f64,
    pub rejected: bool,
}

/// Both classifiers' verdicts on one set of inputs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SetVerdicts {
    pub benchmark: String,
    pub images: usize,
    /// Share the discriminative classifier labels with probability >= [`CONFIDENT`].
    pub confident_share: f64,
    /// Share the generative model rejects.
    pub rejected_share: f64,
    /// Of the confidently labelled ones, the share rejected.
    pub confident_rejected_share: f64,
    pub mean_nll: f64,
    /// The images drawn in the picture.
    pub shown: Vec<Verdict>,
}

/// What [`judge`] found; part of the `classify` report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VerdictReport {
    /// Reject when -log p(x) exceeds this (nats).
    pub threshold_nll: f64,
    pub threshold_quantile: f64,
    pub threshold_images: usize,
    /// The in-distribution test images: how often real data is rejected.
    pub in_distribution: SetVerdicts,
    pub sets: Vec<SetVerdicts>,
    pub picture: PathBuf,
}

/// The two judges and how each wants its images.
pub(super) struct Judges<'a> {
    pub model: &'a dyn Autoregressive,
    pub model_run: &'a Path,
    pub model_image: ImageSpec,
    pub log_prior: &'a [f64],
    pub baseline: &'a Path,
    /// The form of the baseline's training images (8-bit MNIST for a p(x|y) of binarised MNIST).
    pub baseline_levels: Levels,
    pub batch_size: usize,
}

/// The in-distribution test images as both judges saw them in the Bayes pass.
pub(super) struct Scored<'a> {
    /// In the baseline's form: what is drawn.
    pub shown: &'a ImageSet,
    /// The benchmark p(x) was computed on (the model's form of the same images).
    pub scored_benchmark: String,
    pub log_likelihoods: &'a [Vec<f64>],
    pub posteriors: &'a [Vec<f64>],
}

/// Judges the request's sets and the in-distribution test images, and draws the picture.
#[allow(clippy::too_many_arguments)]
pub(super) fn judge(
    judges: &Judges,
    request: &RejectRequest,
    dataset: &str,
    in_test: Scored,
    data_dir: &Path,
    picture: &Path,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<VerdictReport> {
    let j = judges;
    let valid = data::load(dataset, Split::Valid, data_dir)?.truncate(request.pool);
    let valid_nll = nll(j, &valid, device, progress)?;
    let threshold = quantile(&valid_nll, QUANTILE);
    let in_nll: Vec<f64> = in_test
        .log_likelihoods
        .iter()
        .map(|l| -bayes::log_sum_exp(&joint(l, j.log_prior)))
        .collect();
    // Real images: the first ones, as a reference for the others.
    let first: Vec<usize> = (0..request.show.min(in_test.shown.len())).collect();
    let mut benchmark = in_test.shown.benchmark();
    if in_test.scored_benchmark != benchmark {
        benchmark = format!("{benchmark}; p(x) on {}", in_test.scored_benchmark);
    }
    let in_distribution = verdicts(benchmark, in_test.posteriors, &in_nll, threshold, &first);
    let mut sets = Vec::new();
    let mut pictured = Vec::new();
    for name in &request.sets {
        let raw = match name.as_str() {
            "noise" => {
                super::ood::noise_like(&in_test.shown.clone().truncate(request.pool), NOISE_SEED)
            }
            name => data::load(name, Split::Test, data_dir)?.truncate(request.pool),
        };
        let shown = in_form(&raw, j.baseline_levels);
        let scored = in_form(&raw, j.model_image.levels);
        check_shape(&j.model_image, &scored, j.model_run)?;
        let posteriors = classifier_posteriors(j.baseline, &shown, device)?;
        let set_nll = nll(j, &scored, device, progress)?;
        let mut order: Vec<usize> = (0..raw.len()).collect();
        order.sort_by(|&a, &b| {
            bayes::argmax(&posteriors[b])
                .1
                .total_cmp(&bayes::argmax(&posteriors[a]).1)
        });
        order.truncate(request.show);
        let mut benchmark = raw.benchmark();
        if scored.levels != raw.levels {
            benchmark.push_str(", binarised for p(x)");
        }
        sets.push(verdicts(
            benchmark,
            &posteriors,
            &set_nll,
            threshold,
            &order,
        ));
        pictured.push(shown);
    }
    let report = VerdictReport {
        threshold_nll: threshold,
        threshold_quantile: QUANTILE,
        threshold_images: valid.len(),
        in_distribution,
        sets,
        picture: picture.to_path_buf(),
    };
    draw(j, &report, in_test.shown, &pictured, dataset)?;
    Ok(report)
}

/// -log p(x) of every image of `set` under the class-conditional model and the prior.
fn nll(
    j: &Judges,
    set: &ImageSet,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<Vec<f64>> {
    let log_lik = bayes::class_log_likelihoods(j.model, set, j.batch_size, device, progress)?;
    Ok(log_lik
        .iter()
        .map(|l| -bayes::log_sum_exp(&joint(l, j.log_prior)))
        .collect())
}

fn joint(log_likelihood: &[f64], log_prior: &[f64]) -> Vec<f64> {
    log_likelihood
        .iter()
        .zip(log_prior)
        .map(|(a, b)| a + b)
        .collect()
}

/// The `q`-quantile of `values` (the smallest value at or above a share `q` of them).
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn verdicts(
    benchmark: String,
    posteriors: &[Vec<f64>],
    nll: &[f64],
    threshold: f64,
    shown: &[usize],
) -> SetVerdicts {
    let n = nll.len().max(1) as f64;
    let confident: Vec<bool> = posteriors
        .iter()
        .map(|p| bayes::argmax(p).1 >= CONFIDENT)
        .collect();
    let rejected: Vec<bool> = nll.iter().map(|&v| v > threshold).collect();
    let both = confident
        .iter()
        .zip(&rejected)
        .filter(|(c, r)| **c && **r)
        .count();
    let confident_count = confident.iter().filter(|c| **c).count();
    SetVerdicts {
        benchmark,
        images: nll.len(),
        confident_share: confident_count as f64 / n,
        rejected_share: rejected.iter().filter(|r| **r).count() as f64 / n,
        confident_rejected_share: both as f64 / confident_count.max(1) as f64,
        mean_nll: nll.iter().sum::<f64>() / n,
        shown: shown
            .iter()
            .map(|&index| {
                let (label, confidence) = bayes::argmax(&posteriors[index]);
                Verdict {
                    index,
                    label,
                    confidence,
                    nll: nll[index],
                    rejected: rejected[index],
                }
            })
            .collect(),
    }
}

/// `set` in the form a model of `levels` images takes: 8-bit images binarised once
/// (x ~ Bernoulli(grey / 255), fixed seed) for a binary model, binary ones spread to 0 and 255
/// for an 8-bit one.
pub fn in_form(set: &ImageSet, levels: Levels) -> ImageSet {
    let mut out = set.clone();
    match (set.levels, levels) {
        (Levels::Bits8, Levels::Binary) => {
            out.pixels = data::binarize_stochastic(&set.pixels, FORM_SEED);
            out.binarization = Binarization::Dynamic;
        }
        (Levels::Binary, Levels::Bits8) => {
            out.pixels = set.pixels.iter().map(|&p| p * 255).collect();
        }
        _ => {}
    }
    out.levels = levels;
    out
}

fn draw(
    j: &Judges,
    report: &VerdictReport,
    in_shown: &ImageSet,
    sets: &[ImageSet],
    dataset: &str,
) -> Result<()> {
    let shares = |v: &SetVerdicts| {
        format!(
            "{} images: {:.0}% labelled with >= {:.0}% confidence, {:.1}% rejected by p(x)",
            v.images,
            v.confident_share * 100.0,
            CONFIDENT * 100.0,
            v.rejected_share * 100.0
        )
    };
    let i = &report.in_distribution;
    let mut rows = vec![panels::Row {
        heading: format!(
            "{} (the first {}) - {}",
            i.benchmark,
            i.shown.len(),
            shares(i)
        ),
        cells: cells(in_shown, i),
    }];
    for (set, v) in sets.iter().zip(&report.sets) {
        rows.push(panels::Row {
            heading: format!(
                "{} (the {} labelled most confidently) - {}",
                v.benchmark,
                v.shown.len(),
                shares(v)
            ),
            cells: cells(set, v),
        });
    }
    let title = vec![
        format!("A discriminative classifier labels anything; p(x) says what is unlike {dataset}"),
        format!(
            "classifier: {} p(y|x). Generative: {}, p(x) = sum_y p(x|y) p(y), rejects when -log p(x) > {:.1} nats",
            short(j.baseline),
            short(j.model_run),
            report.threshold_nll
        ),
        format!(
            "(the {:.0}th percentile on {} validation images); images drawn as the classifier sees them",
            report.threshold_quantile * 100.0,
            report.threshold_images
        ),
    ];
    panels::verdict_svg(
        &report.picture,
        &title,
        &rows,
        in_shown.shape,
        in_shown.levels,
    )
}

/// A run's folder name, for a title.
fn short(run: &Path) -> String {
    run.file_name()
        .map_or_else(|| run.display().to_string(), |n| n.to_string_lossy().into())
}

/// The picture's cells of the images `v` shows from `set`.
fn cells<'a>(set: &'a ImageSet, v: &SetVerdicts) -> Vec<panels::Cell<'a>> {
    let dims = set.shape.dims();
    v.shown
        .iter()
        .map(|x| panels::Cell {
            pixels: &set.pixels[x.index * dims..(x.index + 1) * dims],
            lines: vec![
                format!("classifier: {} ({:.1}%)", x.label, x.confidence * 100.0),
                format!("-log p(x) = {:.0} nats", x.nll),
                if x.rejected {
                    "p(x): rejected"
                } else {
                    "p(x): accepted"
                }
                .into(),
            ],
            alarm: x.rejected,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_is_the_value_at_its_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert_eq!(quantile(&[3.0], 0.99), 3.0);
    }

    #[test]
    fn verdicts_count_confident_and_rejected_inputs() {
        let p = [vec![0.95, 0.05], vec![0.6, 0.4], vec![0.01, 0.99]];
        let v = verdicts("x".into(), &p, &[10.0, 30.0, 50.0], 20.0, &[2]);
        assert!((v.confident_share - 2.0 / 3.0).abs() < 1e-12);
        assert!((v.rejected_share - 2.0 / 3.0).abs() < 1e-12);
        assert!((v.confident_rejected_share - 0.5).abs() < 1e-12);
        assert_eq!(v.shown[0].label, 1);
        assert!(v.shown[0].rejected);
    }
}
