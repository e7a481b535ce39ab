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
    // The baseline first: it is quick, and a baseline that cannot score these images should
    // fail before the long pass over every class.
    let discriminative = match &request.baseline {
        Some(baseline) => {
            let own = baseline_images(baseline, &set, dataset, request, data_dir)?;
            let p = classifier_posteriors(baseline, own.as_ref().unwrap_or(&set), device)?;
            let (accuracy, ece) = bayes::accuracy_and_ece(&p, &labels, 15);
            Some(Scores { accuracy, ece })
        }
        None => None,
    };
    let prior = bayes::log_prior(&train_labels, model.classes());
    let log_lik = bayes::class_log_likelihoods(model, &set, request.batch_size, device, progress)?;
    let posteriors: Vec<Vec<f64>> = log_lik
        .iter()
        .map(|l| bayes::posterior(l, &prior))
        .collect();
    let (accuracy, ece) = bayes::accuracy_and_ece(&posteriors, &labels, 15);
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
