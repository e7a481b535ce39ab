//! `genmodels features`: the lecture's feature-learning recipe, measured. Train an autoencoder
//! without labels, drop its decoder, put a linear head on its encoder and fine-tune with few
//! labels; compare with the same classifier randomly initialised. Test accuracy per label
//! count and initialisation, mean and spread over seeds.

use super::{device, progress::TerminalProgress, train_run};
use crate::data::{self, Split};
use crate::models::{AnyModel, ClassifierConfig, ModelConfig};
use crate::run::{self, DataConfig, OptimConfig, RunConfig, Schedule, TrainConfig};
use crate::train::{self, Splits, checkpoint::Which};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// `genmodels features` arguments.
#[derive(clap::Args, Debug)]
pub struct FeaturesArgs {
    /// A labelled data set (mnist, fashion-mnist, synth-digits, ...).
    #[arg(long, default_value = "mnist")]
    pub data: String,
    #[arg(long, default_value = "runs/features")]
    pub out: PathBuf,
    /// Autoencoder: ae-mlp or ae-conv.
    #[arg(long, default_value = "ae-mlp")]
    pub autoencoder: String,
    /// Epochs of unsupervised autoencoder training.
    #[arg(long, default_value_t = 10)]
    pub ae_epochs: usize,
    /// Labelled training images per experiment ("all" for the whole training split).
    #[arg(long, value_delimiter = ',', default_value = "100,1000,all")]
    pub labels: Vec<String>,
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    pub seeds: Vec<u64>,
    /// Optimiser steps of each classifier (epochs are derived from the label count).
    #[arg(long, default_value_t = 2000)]
    pub steps: usize,
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
}

/// One table row.
#[derive(Debug, serde::Serialize)]
struct Row {
    labels: usize,
    init: &'static str,
    accuracies: Vec<f64>,
    mean: f64,
    std: f64,
}

pub fn run(a: FeaturesArgs, data_dir: &Path) -> Result<()> {
    let ae_dir = a.out.join("autoencoder");
    let ae_config = match ModelConfig::from_name(&a.autoencoder)? {
        ModelConfig::Autoencoder(c) => c,
        _ => bail!("--autoencoder must be ae-mlp or ae-conv"),
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
                ..TrainConfig::default()
            },
        };
        eprintln!(
            "1/2 training the autoencoder without labels -> {}",
            ae_dir.display()
        );
        train_run(config, &ae_dir, None, data_dir)?;
    } else {
        eprintln!("1/2 reusing the autoencoder in {}", ae_dir.display());
    }
    let train_set = data::load(&a.data, Split::Train, data_dir)?;
    let valid_set = data::load(&a.data, Split::Valid, data_dir)?.truncate(2000);
    let test_set = data::load(&a.data, Split::Test, data_dir)?;
    let clf = ClassifierConfig {
        architecture: ae_config.architecture,
        hidden: ae_config.hidden.clone(),
        feature_dim: ae_config.latent_dim,
        activation: ae_config.activation,
        classes: 10,
        dropout: 0.0,
    };
    let device = device();
    let mut rows = Vec::new();
    for label_text in &a.labels {
        let n = match label_text.as_str() {
            "all" => train_set.len(),
            t => t
                .parse::<usize>()
                .with_context(|| format!("--labels: {t:?} is not a count or \"all\""))?
                .min(train_set.len()),
        };
        for init in ["autoencoder", "random"] {
            let mut accuracies = Vec::new();
            for &seed in &a.seeds {
                let dir = a.out.join(format!("clf-{n}-{init}-seed{seed}"));
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir)?;
                let steps_per_epoch = n.div_ceil(a.batch_size);
                let mut config = RunConfig {
                    data: DataConfig {
                        dataset: a.data.clone(),
                    },
                    image: Some(crate::models::ImageSpec {
                        shape: train_set.shape,
                        levels: train_set.levels,
                    }),
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
                        ..TrainConfig::default()
                    },
                };
                let ad = device.clone().autodiff();
                let mut model = train::init_model(&config, &config.image.expect("set above"), &ad);
                if init == "autoencoder" {
                    let ae = train::load_trained(&ae_dir, Which::Best, &ad)?;
                    let AnyModel::Autoencoder(ae) = ae.model else {
                        bail!("{} is not an autoencoder run", ae_dir.display())
                    };
                    model = crate::seeded::build(&ad, seed, || {
                        AnyModel::Classifier(clf.with_encoder(ae.encoder, &ad))
                    });
                }
                config.train.sample_every_epochs = 0;
                run::save_config(&dir, &config)?;
                eprintln!(
                    "2/2 {n} labels, {init} init, seed {seed}: {} epochs",
                    config.train.epochs
                );
                let splits = Splits {
                    train: &train_set,
                    valid: &valid_set,
                    test: None,
                };
                train::train(
                    model,
                    &config,
                    &dir,
                    splits,
                    None,
                    &mut TerminalProgress::new(),
                    &mut |_, _| Ok(()),
                )?;
                let trained = train::load_trained(&dir, Which::Best, &device)?;
                let AnyModel::Classifier(classifier) = &trained.model else {
                    unreachable!("built as a classifier")
                };
                let acc = crate::eval::accuracy(classifier, &test_set, 500, &device)?;
                eprintln!("   test accuracy {:.2}%", acc * 100.0);
                accuracies.push(acc);
            }
            let mean = accuracies.iter().sum::<f64>() / accuracies.len().max(1) as f64;
            let var = accuracies.iter().map(|x| (x - mean).powi(2)).sum::<f64>()
                / accuracies.len().max(1) as f64;
            rows.push(Row {
                labels: n,
                init,
                accuracies,
                mean,
                std: var.sqrt(),
            });
        }
    }
    let mut table = format!(
        "| labels | classifier init | test accuracy (mean ± std over seeds {:?}) |\n|---:|---|---|\n",
        a.seeds
    );
    for r in &rows {
        table += &format!(
            "| {} | {} | {:.2}% ± {:.2} |\n",
            r.labels,
            r.init,
            r.mean * 100.0,
            r.std * 100.0
        );
    }
    println!("{}\n{table}", test_set.benchmark());
    run::write_atomic(&a.out.join("features.md"), table.as_bytes())?;
    run::write_atomic(
        &a.out.join("features.json"),
        &serde_json::to_vec_pretty(&rows)?,
    )?;
    Ok(())
}
