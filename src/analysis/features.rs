//! The lecture's feature-learning recipe, measured: train an autoencoder without labels, drop
//! its decoder, put a linear head on its encoder and fine-tune with few labels; compare with
//! the same classifier randomly initialised. Test accuracy per label count and
//! initialisation, mean and spread over seeds. Every model is a run under `out/`.

use crate::config::{DataConfig, OptimConfig, RunConfig, Schedule, TrainConfig};
use crate::data::{self, Split};
use crate::error::{Error, Result};
use crate::models::{AnyModel, ClassifierConfig, ModelConfig};
use crate::progress::{Progress, Silent};
use crate::run::{EvalRequest, Run, load_trained};
use crate::train::{self, checkpoint::Which};
use std::path::{Path, PathBuf};

/// What to run.
#[derive(Debug, Clone)]
pub struct FeaturesRequest {
    /// A labelled data set.
    pub data: String,
    pub out: PathBuf,
    /// `ae-mlp` or `ae-conv`.
    pub autoencoder: String,
    /// Epochs of unsupervised autoencoder training.
    pub ae_epochs: usize,
    /// Labelled training images per experiment; `None`: the whole training split.
    pub labels: Vec<Option<usize>>,
    pub seeds: Vec<u64>,
    /// Optimiser steps of each classifier (epochs follow from the label count).
    pub steps: usize,
    pub batch_size: usize,
}

/// One table row: a label count and an initialisation, over the seeds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub labels: usize,
    pub init: &'static str,
    pub accuracies: Vec<f64>,
    pub mean: f64,
    pub std: f64,
}

/// What [`features`] measured; also `out/features.json` and `out/features.md`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FeaturesReport {
    pub benchmark: String,
    pub seeds: Vec<u64>,
    pub rows: Vec<Row>,
}

impl FeaturesReport {
    /// The table as Markdown.
    pub fn markdown(&self) -> String {
        let mut table = format!(
            "| labels | classifier init | test accuracy (mean ± std over seeds {:?}) |\n|---:|---|---|\n",
            self.seeds
        );
        for r in &self.rows {
            table += &format!(
                "| {} | {} | {:.2}% ± {:.2} |\n",
                r.labels,
                r.init,
                r.mean * 100.0,
                r.std * 100.0
            );
        }
        table
    }
}

/// Runs the experiment. `log` receives a line per phase; `progress` the training bars. An
/// autoencoder already trained in `out/autoencoder` is reused.
pub fn features(
    request: &FeaturesRequest,
    data_dir: &Path,
    progress: &mut dyn Progress,
    log: &mut dyn FnMut(&str),
) -> Result<FeaturesReport> {
    let a = request;
    let ae_dir = a.out.join("autoencoder");
    let ae_config = match ModelConfig::from_name(&a.autoencoder)? {
        ModelConfig::Autoencoder(c) => c,
        _ => {
            return Err(Error::Invalid(
                "--autoencoder must be ae-mlp or ae-conv".into(),
            ));
        }
    };
    if train::checkpoint::locate(&ae_dir, Which::Best)?.is_none() {
        let config = RunConfig {
            data: DataConfig {
                dataset: a.data.clone(),
            },
            image: None,
            model: ModelConfig::Autoencoder(ae_config.clone()),
            optim: OptimConfig::default(),
            train: TrainConfig {
                epochs: a.ae_epochs,
                batch_size: 128,
                final_samples: 0,
                ..TrainConfig::default()
            },
        };
        log(&format!(
            "1/2 training the autoencoder without labels -> {}",
            ae_dir.display()
        ));
        // A directory left by an interrupted first attempt is continued, not refused.
        let ae = match Run::open(&ae_dir, data_dir) {
            Ok(run) => run,
            Err(_) => Run::create(config, &ae_dir, data_dir)?,
        };
        ae.train(progress)?;
    } else {
        log(&format!(
            "1/2 reusing the autoencoder in {}",
            ae_dir.display()
        ));
    }
    let train_len = data::load(&a.data, Split::Train, data_dir)?.len();
    let clf = ClassifierConfig {
        architecture: ae_config.architecture,
        hidden: ae_config.hidden.clone(),
        feature_dim: ae_config.latent_dim,
        activation: ae_config.activation,
        classes: 10,
        dropout: 0.0,
    };
    let mut rows = Vec::new();
    let mut benchmark = String::new();
    for count in &a.labels {
        let n = count.unwrap_or(train_len).min(train_len);
        for init in ["autoencoder", "random"] {
            let mut accuracies = Vec::new();
            for &seed in &a.seeds {
                let dir = a.out.join(format!("clf-{n}-{init}-seed{seed}"));
                if dir.exists() {
                    std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
                }
                let steps_per_epoch = n.div_ceil(a.batch_size.max(1));
                let config = RunConfig {
                    data: DataConfig {
                        dataset: a.data.clone(),
                    },
                    image: None,
                    model: ModelConfig::Classifier(clf.clone()),
                    optim: OptimConfig {
                        schedule: Schedule::Constant,
                        ..OptimConfig::default()
                    },
                    train: TrainConfig {
                        epochs: a.steps.div_ceil(steps_per_epoch).max(1),
                        batch_size: a.batch_size,
                        seed,
                        train_limit: Some(n),
                        valid_limit: Some(2000),
                        final_samples: 0,
                        ..TrainConfig::default()
                    },
                };
                let run = Run::create(config, &dir, data_dir)?;
                let ad = run.device().clone().autodiff();
                let model = if init == "autoencoder" {
                    let ae = load_trained(&ae_dir, Which::Best, &ad)?;
                    let AnyModel::Autoencoder(ae) = ae.model else {
                        return Err(Error::Invalid(format!(
                            "{} is not an autoencoder run",
                            ae_dir.display()
                        )));
                    };
                    crate::seeded::build(&ad, seed, || {
                        AnyModel::Classifier(clf.with_encoder(ae.encoder, &ad))
                    })
                } else {
                    train::init_model(run.config(), &run.image()?, &ad)
                };
                log(&format!(
                    "2/2 {n} labels, {init} init, seed {seed}: {} epochs",
                    run.config().train.epochs
                ));
                run.train_from(model, progress)?;
                let evaluation = run.evaluate(
                    &EvalRequest {
                        batch_size: 500,
                        ..Default::default()
                    },
                    &mut Silent,
                )?;
                let report = evaluation.report();
                let Some(acc) = report.accuracy else {
                    return Err(Error::Invalid(format!(
                        "{} did not evaluate as a classifier",
                        dir.display()
                    )));
                };
                benchmark = report.benchmark.clone();
                log(&format!("   test accuracy {:.2}%", acc * 100.0));
                accuracies.push(acc);
            }
            let (mean, std) = super::mean_std(&accuracies);
            rows.push(Row {
                labels: n,
                init,
                accuracies,
                mean,
                std,
            });
        }
    }
    let report = FeaturesReport {
        benchmark,
        seeds: a.seeds.clone(),
        rows,
    };
    let table = a.out.join(crate::layout::FEATURES_TABLE);
    crate::atomic::write_atomic(&table, report.markdown().as_bytes())?;
    crate::atomic::write_json(&a.out.join(crate::layout::FEATURES_JSON), &report)?;
    Ok(report)
}
