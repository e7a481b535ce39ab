//! The Bayes classifier p(y|x) ∝ p(x|y) p(y) from a class-conditional density run, against a
//! discriminative classifier: accuracy, expected calibration error (15 bins) and confusion
//! matrices (`MODEL/confusion-<split>.svg`), and optionally both classifiers' verdicts on inputs
//! unlike the data ([`super::verdicts`]).

use super::verdicts::{self, Judges, RejectRequest, Scored, VerdictReport};
use super::{check_shape, classifier_posteriors};
use crate::data::{self, Split};
use crate::error::{Error, Result};
use crate::eval::bayes;
use crate::progress::Progress;
use crate::run::load_trained;
use crate::train::checkpoint::Which;
use burn::tensor::Device;
use std::path::{Path, PathBuf};

/// What to classify.
#[derive(Debug, Clone)]
pub struct ClassifyRequest {
    /// A class-conditional density run (gated-pixelcnn --conditional).
    pub model: PathBuf,
    /// A discriminative classifier run to compare with.
    pub baseline: Option<PathBuf>,
    pub split: Split,
    pub limit: Option<usize>,
    pub batch_size: usize,
    /// Out-of-distribution inputs to judge with both classifiers (needs `baseline`).
    pub reject: Option<RejectRequest>,
}

/// Accuracy (a fraction), ECE and confusion counts `[true][predicted]` of one classifier.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Scores {
    pub accuracy: f64,
    pub ece: f64,
    pub confusion: Vec<Vec<u64>>,
}

impl Scores {
    fn of(posteriors: &[Vec<f64>], labels: &[u8], classes: usize) -> Self {
        let (accuracy, ece) = bayes::accuracy_and_ece(posteriors, labels, 15);
        Scores {
            accuracy,
            ece,
            confusion: bayes::confusion(posteriors, labels, classes),
        }
    }

    /// The `n` most frequent mistakes: (true class, predicted class, count), most first.
    pub fn top_confusions(&self, n: usize) -> Vec<(usize, usize, u64)> {
        let mut all: Vec<(usize, usize, u64)> = self
            .confusion
            .iter()
            .enumerate()
            .flat_map(|(t, row)| row.iter().enumerate().map(move |(p, &c)| (t, p, c)))
            .filter(|&(t, p, c)| t != p && c > 0)
            .collect();
        all.sort_by(|a, b| b.2.cmp(&a.2).then((a.0, a.1).cmp(&(b.0, b.1))));
        all.truncate(n);
        all
    }
}

/// What [`classify`] measured; also written to `MODEL/classify-<split>.json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BayesReport {
    pub benchmark: String,
    pub images: usize,
    pub bayes: Scores,
    /// The discriminative baseline, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discriminative: Option<Scores>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_run: Option<PathBuf>,
    /// The confusion matrices drawn side by side.
    pub confusion_picture: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdicts: Option<VerdictReport>,
}

/// Scores the Bayes classifier of `request.model` (and the baseline) on a labelled split.
pub fn classify(
    request: &ClassifyRequest,
    data_dir: &Path,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<BayesReport> {
    let run = &request.model;
    let trained = load_trained(run, Which::Best, device)?;
    let Some(model) = trained
        .model
        .as_autoregressive()
        .filter(|m| m.classes() > 0)
    else {
        return Err(Error::Invalid(format!(
            "{} holds a {} without class conditioning: the Bayes classifier needs p(x|y) (train gated-pixelcnn --conditional)",
            run.display(),
            trained.config.model.name()
        )));
    };
    let dataset = &trained.config.data.dataset;
    let mut set = data::load(dataset, request.split, data_dir)?;
    if let Some(limit) = request.limit {
        set = set.truncate(limit);
    }
    check_shape(&trained.image, &set, run)?;
    let Some(labels) = set.labels.clone() else {
        return Err(Error::Invalid(format!(
            "{} has no labels to score",
            set.benchmark()
        )));
    };
    let Some(train_labels) = data::load(dataset, Split::Train, data_dir)?.labels else {
        return Err(Error::Invalid(format!(
            "{dataset}'s training split has no labels for the class prior p(y)"
        )));
    };
    if request.reject.is_some() && request.baseline.is_none() {
        return Err(Error::Invalid(
            "--reject shows both classifiers' verdicts: give the discriminative one with --baseline".into(),
        ));
    }
    let classes = model.classes();
    // The baseline first: it is quick, and a baseline that cannot score these images should
    // fail before the long pass over every class.
    let baseline = match &request.baseline {
        Some(baseline) => {
            let own = baseline_images(baseline, &set, dataset, request, data_dir)?;
            let own = own.unwrap_or_else(|| set.clone());
            let p = classifier_posteriors(baseline, &own, device)?;
            Some((baseline, own, p))
        }
        None => None,
    };
    let discriminative = baseline
        .as_ref()
        .map(|(_, _, p)| Scores::of(p, &labels, classes));
    let prior = bayes::log_prior(&train_labels, classes);
    let log_lik = bayes::class_log_likelihoods(model, &set, request.batch_size, device, progress)?;
    let posteriors: Vec<Vec<f64>> = log_lik
        .iter()
        .map(|l| bayes::posterior(l, &prior))
        .collect();
    let split = request.split.to_string();
    let bayes_scores = Scores::of(&posteriors, &labels, classes);
    let confusion_picture = run.join(crate::layout::confusion_file(&split));
    let mut matrices = vec![crate::viz::panels::Matrix {
        title: format!(
            "Bayes rule on p(x|y): {:.2}%",
            bayes_scores.accuracy * 100.0
        ),
        counts: &bayes_scores.confusion,
    }];
    if let Some(d) = &discriminative {
        matrices.push(crate::viz::panels::Matrix {
            title: format!("discriminative p(y|x): {:.2}%", d.accuracy * 100.0),
            counts: &d.confusion,
        });
    }
    crate::viz::panels::confusion_svg(
        &confusion_picture,
        &format!("{}: {} images", set.benchmark(), set.len()),
        &matrices,
    )?;
    let verdicts = match (&request.reject, &baseline) {
        (Some(reject), Some((baseline, shown, baseline_posteriors))) => {
            let judges = Judges {
                model,
                model_run: run,
                model_image: trained.image,
                log_prior: &prior,
                baseline,
                baseline_levels: shown.levels,
                batch_size: request.batch_size,
            };
            let scored = Scored {
                shown,
                scored_benchmark: set.benchmark(),
                log_likelihoods: &log_lik,
                posteriors: baseline_posteriors,
            };
            let picture = run.join(crate::layout::verdicts_file(&split));
            Some(verdicts::judge(
                &judges, reject, dataset, scored, data_dir, &picture, device, progress,
            )?)
        }
        _ => None,
    };
    let report = BayesReport {
        benchmark: set.benchmark(),
        images: set.len(),
        bayes: bayes_scores,
        discriminative,
        baseline_run: request.baseline.clone(),
        confusion_picture,
        verdicts,
    };
    crate::atomic::write_json(&run.join(crate::layout::classify_file(&split)), &report)?;
    Ok(report)
}

/// The scored images in the form the baseline was trained on, when its data set is another
/// (`None` when it is the model's own): a classifier of 8-bit MNIST scores the MNIST test images
/// that a p(x|y) of dynamically binarised MNIST sees binarised. Refused when that data set's
/// split has other labels, that is, other images.
fn baseline_images(
    baseline: &Path,
    set: &data::ImageSet,
    dataset: &str,
    request: &ClassifyRequest,
    data_dir: &Path,
) -> Result<Option<data::ImageSet>> {
    let own_dataset = crate::config::load_run_config(baseline)?.data.dataset;
    if own_dataset == dataset {
        return Ok(None);
    }
    let mut own = data::load(&own_dataset, request.split, data_dir)?;
    if let Some(limit) = request.limit {
        own = own.truncate(limit);
    }
    if own.labels != set.labels {
        return Err(Error::Invalid(format!(
            "{} was trained on {own_dataset}, whose {} split holds other images than {}: \
             the two classifiers must score the same images",
            baseline.display(),
            request.split,
            set.benchmark()
        )));
    }
    Ok(Some(own))
}
