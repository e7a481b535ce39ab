//! The Bayes classifier p(y|x) ∝ p(x|y) p(y) from a class-conditional density run, against a
//! discriminative classifier: accuracy and expected calibration error (15 bins).

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
}

/// Accuracy (a fraction) and ECE of one classifier.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Scores {
    pub accuracy: f64,
    pub ece: f64,
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
    let prior = bayes::log_prior(&train_labels, model.classes());
    let log_lik = bayes::class_log_likelihoods(model, &set, request.batch_size, device, progress)?;
    let posteriors: Vec<Vec<f64>> = log_lik
        .iter()
        .map(|l| bayes::posterior(l, &prior))
        .collect();
    let (accuracy, ece) = bayes::accuracy_and_ece(&posteriors, &labels, 15);
    let discriminative = match &request.baseline {
        Some(baseline) => {
            let p = classifier_posteriors(baseline, &set, device)?;
            let (accuracy, ece) = bayes::accuracy_and_ece(&p, &labels, 15);
            Some(Scores { accuracy, ece })
        }
        None => None,
    };
    let report = BayesReport {
        benchmark: set.benchmark(),
        images: set.len(),
        bayes: Scores { accuracy, ece },
        discriminative,
        baseline_run: request.baseline.clone(),
    };
    crate::atomic::write_json(
        &run.join(crate::layout::classify_file(&request.split.to_string())),
        &report,
    )?;
    Ok(report)
}
