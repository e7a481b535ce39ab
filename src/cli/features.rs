//! `genmodels features`: arguments and the table (the experiment is
//! [`crate::analysis::features`]).

use super::progress::TerminalProgress;
use crate::analysis::features::{FeaturesRequest, features};
use crate::analysis::m2::M2Recipe;
use crate::analysis::semi::{Method, SemiRequest, semi_supervised};
use anyhow::{Context, Result};
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

pub fn run(a: FeaturesArgs, data_dir: &Path) -> Result<()> {
    let labels = a
        .labels
        .iter()
        .map(|t| match t.as_str() {
            "all" => Ok(None),
            t => t
                .parse::<usize>()
                .map(Some)
                .with_context(|| format!("--labels: {t:?} is not a count or \"all\"")),
        })
        .collect::<Result<Vec<_>>>()?;
    let request = FeaturesRequest {
        data: a.data,
        out: a.out,
        autoencoder: a.autoencoder,
        ae_epochs: a.ae_epochs,
        labels,
        seeds: a.seeds,
        steps: a.steps,
        batch_size: a.batch_size,
    };
    let report = features(
        &request,
        data_dir,
        &mut TerminalProgress::new(),
        &mut |line| eprintln!("{line}"),
    )?;
    println!("{}\n{}", report.benchmark, report.markdown());
    Ok(())
}

/// `genmodels semi-supervised` arguments.
#[derive(clap::Args, Debug)]
pub struct SemiArgs {
    /// A trained VAE run: its q(z|x) means are the features (e.g. zoo/vae-bmnist).
    #[arg(long, default_value = "zoo/vae-bmnist")]
    pub encoder: PathBuf,
    /// A labelled data set of the VAE's image size.
    #[arg(long, default_value = "mnist")]
    pub data: String,
    /// Labelled training images per experiment, balanced across the 10 classes.
    #[arg(long, value_delimiter = ',', default_value = "100,600,1000,3000")]
    pub labels: Vec<usize>,
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    pub seeds: Vec<u64>,
    /// Optimiser steps of each linear model and MLP.
    #[arg(long, default_value_t = 2000)]
    pub steps: usize,
    /// The classifiers to fit (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub methods: Vec<Method>,
    /// M1+M2: optimiser steps (each a labelled and an unlabelled minibatch).
    #[arg(long, default_value_t = M2Recipe::default().steps)]
    pub m2_steps: usize,
    /// M1+M2: weight α of the labelled cross-entropy against one image's bound.
    #[arg(long, default_value_t = M2Recipe::default().alpha)]
    pub m2_alpha: f32,
    /// M1+M2: weight of the labelled images' bound against the unlabelled images' (default:
    /// the labelled share of the training images, as in the paper).
    #[arg(long)]
    pub m2_labelled_weight: Option<f32>,
    /// M1+M2: hidden units of each of its three networks.
    #[arg(long, default_value_t = M2Recipe::default().hidden)]
    pub m2_hidden: usize,
    /// M1+M2: dimension of its latent z2.
    #[arg(long, default_value_t = M2Recipe::default().z2)]
    pub m2_z2: usize,
    /// M1+M2: Adam's learning rate.
    #[arg(long, default_value_t = M2Recipe::default().lr)]
    pub m2_lr: f64,
    /// M1+M2: train on the means of q(z1|x) instead of a fresh draw from it at every step.
    #[arg(long)]
    pub m2_means_only: bool,
    /// Skip the t-SNE map of the features (about a minute).
    #[arg(long)]
    pub no_map: bool,
    #[arg(long, default_value = "runs/semi")]
    pub out: PathBuf,
}

pub fn run_semi(a: SemiArgs, data_dir: &Path) -> Result<()> {
    if let Some(n) = a.labels.iter().find(|&&n| n < 10 || n % 10 != 0) {
        anyhow::bail!(
            "--labels: {n} is not a positive multiple of 10 (the subsets are balanced over 10 classes)"
        );
    }
    let request = SemiRequest {
        encoder: a.encoder,
        data: a.data,
        labels: a.labels,
        seeds: a.seeds,
        steps: a.steps,
        methods: if a.methods.is_empty() {
            Method::ALL.to_vec()
        } else {
            a.methods
        },
        m2: M2Recipe {
            hidden: a.m2_hidden,
            z2: a.m2_z2,
            alpha: a.m2_alpha,
            labelled_weight: a.m2_labelled_weight,
            steps: a.m2_steps,
            lr: a.m2_lr,
            sample_z1: !a.m2_means_only,
            ..M2Recipe::default()
        },
        map: !a.no_map,
        out: a.out,
    };
    let mut progress = TerminalProgress::new();
    let report = semi_supervised(
        &request,
        data_dir,
        &mut |line| eprintln!("{line}"),
        &mut progress,
    )?;
    println!("{}\n{}", report.benchmark, report.markdown());
    Ok(())
}
