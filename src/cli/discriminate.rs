//! `genmodels classify` (a Bayes classifier from p(x|y), against a discriminative baseline)
//! and `genmodels ood` (out-of-distribution scores: classifier confidence, likelihood,
//! typicality, likelihood ratio).

use super::{device, progress::TerminalProgress};
use crate::data::{self, ImageSet, Split};
use crate::eval::{self, bayes, ood};
use crate::models::{AnyModel, Autoregressive, LatentModel};
use crate::train::{self, TrainedRun, checkpoint::Which};
use crate::{run, viz};
use anyhow::{Result, bail};
use burn::tensor::Device;
use burn::tensor::activation::softmax;
use std::path::{Path, PathBuf};

/// `genmodels classify` arguments.
#[derive(clap::Args, Debug)]
pub struct ClassifyArgs {
    /// A class-conditional density run (gated-pixelcnn --conditional).
    #[arg(long)]
    pub model: PathBuf,
    /// A discriminative classifier run to compare with (classifier-conv / classifier-mlp).
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Split::Test)]
    pub split: Split,
    #[arg(long)]
    pub limit: Option<usize>,
    #[arg(long, default_value_t = 100)]
    pub batch_size: usize,
}

/// Softmax posteriors of a discriminative classifier run on `set`.
fn classifier_posteriors(run_dir: &Path, set: &ImageSet, device: &Device) -> Result<Vec<Vec<f64>>> {
    let trained = train::load_trained(run_dir, Which::Best, device)?;
    let AnyModel::Classifier(classifier) = &trained.model else {
        bail!(
            "{} holds a {}, not a classifier",
            run_dir.display(),
            trained.config.model.name()
        );
    };
    check_shape(&trained.image, set, run_dir)?;
    let pixels = set.epoch_pixels(0);
    let shape = [set.shape.channels, set.shape.height, set.shape.width];
    let indices: Vec<usize> = (0..set.len()).collect();
    let mut out = Vec::new();
    for chunk in indices.chunks(500) {
        let images = data::batch::to_tensor(&pixels, chunk, shape, set.levels, device);
        let p = eval::read_back(softmax(classifier.logits(images), 1))?;
        let classes = p.len() / chunk.len();
        out.extend(
            p.chunks(classes)
                .map(|row| row.iter().map(|&v| v as f64).collect::<Vec<_>>()),
        );
    }
    Ok(out)
}

fn check_shape(image: &crate::models::ImageSpec, set: &ImageSet, run_dir: &Path) -> Result<()> {
    if image.shape != set.shape || image.levels != set.levels {
        bail!(
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
        );
    }
    Ok(())
}

/// What `classify` measured of the Bayes classifier.
pub struct BayesReport {
    pub benchmark: String,
    pub images: usize,
    pub accuracy: f64,
}

pub fn classify(a: ClassifyArgs, data_dir: &Path) -> Result<BayesReport> {
    let device = device();
    let trained = train::load_trained(&a.model, Which::Best, &device)?;
    let Some(model) = trained
        .model
        .as_autoregressive()
        .filter(|m| m.classes() > 0)
    else {
        bail!(
            "{} holds a {} without class conditioning: the Bayes classifier needs p(x|y) (train gated-pixelcnn --conditional)",
            a.model.display(),
            trained.config.model.name()
        );
    };
    let dataset = &trained.config.data.dataset;
    let mut set = data::load(dataset, a.split, data_dir)?;
    if let Some(limit) = a.limit {
        set = set.truncate(limit);
    }
    check_shape(&trained.image, &set, &a.model)?;
    let Some(labels) = set.labels.clone() else {
        bail!("{} has no labels to score", set.benchmark())
    };
    let Some(train_labels) = data::load(dataset, Split::Train, data_dir)?.labels else {
        bail!("{dataset}'s training split has no labels for the class prior p(y)")
    };
    let prior = bayes::log_prior(&train_labels, model.classes());
    let log_lik = bayes::class_log_likelihoods(
        model,
        &set,
        a.batch_size,
        &device,
        &mut TerminalProgress::new(),
    )?;
    let posteriors: Vec<Vec<f64>> = log_lik
        .iter()
        .map(|l| bayes::posterior(l, &prior))
        .collect();
    let (accuracy, ece) = bayes::accuracy_and_ece(&posteriors, &labels, 15);
    println!("benchmark: {} ({} images)", set.benchmark(), set.len());
    println!(
        "Bayes classifier p(y|x) ∝ p(x|y) p(y): accuracy {:.2}%, ECE {:.4}",
        accuracy * 100.0,
        ece
    );
    let mut report = serde_json::json!({
        "benchmark": set.benchmark(), "images": set.len(),
        "bayes": { "accuracy": accuracy, "ece": ece },
    });
    if let Some(baseline) = &a.baseline {
        let p = classifier_posteriors(baseline, &set, &device)?;
        let (acc, ece) = bayes::accuracy_and_ece(&p, &labels, 15);
        println!(
            "discriminative baseline p(y|x): accuracy {:.2}%, ECE {:.4}",
            acc * 100.0,
            ece
        );
        report["discriminative"] =
            serde_json::json!({ "accuracy": acc, "ece": ece, "run": baseline });
    }
    run::write_atomic(
        &a.model.join(format!("classify-{}.json", a.split)),
        &serde_json::to_vec_pretty(&report)?,
    )?;
    Ok(BayesReport {
        benchmark: set.benchmark(),
        images: set.len(),
        accuracy,
    })
}

/// `genmodels ood` arguments.
#[derive(clap::Args, Debug)]
pub struct OodArgs {
    /// The density model run (its data set should be `--in`): an autoregressive model (exact
    /// log p(x)) or a VAE (IWAE bound).
    #[arg(long)]
    pub model: PathBuf,
    /// In-distribution data set (its test split is scored).
    #[arg(long = "in")]
    pub in_data: String,
    /// Out-of-distribution data set, or `noise` (uniform random images of the same shape).
    #[arg(long = "out")]
    pub out_data: String,
    /// A classifier run: adds the maximum-softmax-probability score.
    #[arg(long)]
    pub classifier: Option<PathBuf>,
    /// A background density run: adds the likelihood ratio of Ren et al. 2019.
    #[arg(long)]
    pub background: Option<PathBuf>,
    /// Images per set.
    #[arg(long, default_value_t = 2000)]
    pub limit: usize,
    /// Histogram of the likelihood score (SVG); default: the model run's ood-<in>-<out>.svg.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    #[arg(long, default_value_t = 100)]
    pub batch_size: usize,
    /// Importance samples of the IWAE bound that stands for log p(x) when a run holds a VAE.
    #[arg(long, default_value_t = 100)]
    pub iwae_k: usize,
}

fn noise_like(set: &ImageSet, seed: u64) -> ImageSet {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let levels = set.levels.count() as u32;
    let mut noise = set.clone();
    noise.dataset = "noise".into();
    noise.pixels = (0..set.pixels.len())
        .map(|_| rng.random_range(0..levels) as u8)
        .collect();
    noise.dynamic_seed = None;
    noise
}

/// What `ood` scores with: an autoregressive model's exact log p(x), or a VAE's IWAE-k bound
/// on it (a lower bound that tightens with k; Nalisnick et al. 2019 report the same failure
/// for both families).
enum Density<'a> {
    Exact(&'a dyn Autoregressive),
    Latent(&'a dyn LatentModel, usize),
}

impl<'a> Density<'a> {
    fn of(trained: &'a TrainedRun, run_dir: &Path, iwae_k: usize) -> Result<Self> {
        if let Some(model) = trained.model.as_autoregressive() {
            if model.classes() > 0 {
                bail!(
                    "{} holds a class-conditional model; out-of-distribution scores need an unconditional p(x)",
                    run_dir.display()
                );
            }
            return Ok(Density::Exact(model));
        }
        if let Some(model) = trained.model.as_latent() {
            // k = 0 is refused by `per_image_bounds` at the first score.
            return Ok(Density::Latent(model, iwae_k));
        }
        bail!(
            "{} holds a {}, not a density model (pixelcnn, gated-pixelcnn, row-lstm, diagonal-bilstm, or a VAE)",
            run_dir.display(),
            trained.config.model.name()
        )
    }

    fn name(&self) -> String {
        match self {
            Density::Exact(_) => "-log p(x)".into(),
            Density::Latent(_, k) => format!("-log p(x) (IWAE-{k} bound)"),
        }
    }

    /// -log p(x) per image, nats, in `set` order.
    fn nll(&self, set: &ImageSet, batch: usize, device: &Device) -> Result<Vec<f64>> {
        let mut quiet = crate::progress::Silent;
        let log_p = match self {
            Density::Exact(model) => {
                eval::per_image_log_prob(*model, set, batch, device, &mut quiet)?
            }
            Density::Latent(model, k) => {
                eval::latent::per_image_bounds(*model, set, *k, 1, device, &mut quiet)?.1
            }
        };
        Ok(log_p.iter().map(|l| -l).collect())
    }
}

pub fn ood_command(a: OodArgs, data_dir: &Path) -> Result<()> {
    let device = device();
    let trained = train::load_trained(&a.model, Which::Best, &device)?;
    let model = Density::of(&trained, &a.model, a.iwae_k)?;
    let in_set = data::load(&a.in_data, Split::Test, data_dir)?.truncate(a.limit);
    check_shape(&trained.image, &in_set, &a.model)?;
    let out_set = match a.out_data.as_str() {
        "noise" => noise_like(&in_set, 7),
        name => data::load(name, Split::Test, data_dir)?.truncate(a.limit),
    };
    check_shape(&trained.image, &out_set, &a.model)?;
    let dims = in_set.shape.dims() as f64;
    eprintln!(
        "scoring {} and {} with {}",
        in_set.benchmark(),
        out_set.benchmark(),
        a.model.display()
    );
    let (nll_in, nll_out) = (
        model.nll(&in_set, a.batch_size, &device)?,
        model.nll(&out_set, a.batch_size, &device)?,
    );
    let mut scores: Vec<(String, Vec<f64>, Vec<f64>)> = vec![(
        format!("likelihood: {}", model.name()),
        nll_in.clone(),
        nll_out.clone(),
    )];
    // Typicality (Nalisnick et al. 2019b, one image at a time): distance of -log p(x) from the
    // in-distribution validation mean.
    let valid = data::load(&a.in_data, Split::Valid, data_dir)?.truncate(a.limit);
    let entropy = model
        .nll(&valid, a.batch_size, &device)?
        .iter()
        .sum::<f64>()
        / valid.len().max(1) as f64;
    let typical = |s: &[f64]| s.iter().map(|v| (v - entropy).abs()).collect::<Vec<_>>();
    scores.push((
        "typicality: |-log p(x) - H_valid|".into(),
        typical(&nll_in),
        typical(&nll_out),
    ));
    if let Some(background) = &a.background {
        let bg = train::load_trained(background, Which::Best, &device)?;
        let bg_model = Density::of(&bg, background, a.iwae_k)?;
        check_shape(&bg.image, &in_set, background)?;
        let ratio = |nll: &[f64], set: &ImageSet| -> Result<Vec<f64>> {
            let bg_nll = bg_model.nll(set, a.batch_size, &device)?;
            Ok(nll.iter().zip(&bg_nll).map(|(m, b)| m - b).collect())
        };
        scores.push((
            "likelihood ratio: log p_bg(x) - log p(x)".into(),
            ratio(&nll_in, &in_set)?,
            ratio(&nll_out, &out_set)?,
        ));
    }
    if let Some(classifier) = &a.classifier {
        let msp = |set: &ImageSet| -> Result<Vec<f64>> {
            Ok(classifier_posteriors(classifier, set, &device)?
                .iter()
                .map(|p| -p.iter().copied().fold(0.0, f64::max))
                .collect())
        };
        scores.push((
            "classifier: -max softmax p(y|x)".into(),
            msp(&in_set)?,
            msp(&out_set)?,
        ));
    }
    println!(
        "in: {} ({} images, mean {:.2} nats = {:.4} bits/dim)\nout: {} ({} images, mean {:.2} nats = {:.4} bits/dim)",
        in_set.benchmark(),
        in_set.len(),
        nll_in.iter().sum::<f64>() / nll_in.len() as f64,
        nll_in.iter().sum::<f64>() / nll_in.len() as f64 / dims / std::f64::consts::LN_2,
        out_set.benchmark(),
        out_set.len(),
        nll_out.iter().sum::<f64>() / nll_out.len() as f64,
        nll_out.iter().sum::<f64>() / nll_out.len() as f64 / dims / std::f64::consts::LN_2,
    );
    println!("| score | AUROC | AUPR (OOD positive) | FPR at 95% TPR |\n|---|---:|---:|---:|");
    let mut rows = Vec::new();
    for (name, s_in, s_out) in &scores {
        let m = ood::metrics(s_in, s_out);
        println!(
            "| {name} | {:.4} | {:.4} | {:.4} |",
            m.auroc, m.aupr, m.fpr_at_95_tpr
        );
        rows.push(serde_json::json!({ "score": name, "auroc": m.auroc, "aupr": m.aupr, "fpr_at_95_tpr": m.fpr_at_95_tpr }));
    }
    let stem = format!(
        "ood-{}-{}",
        a.in_data.replace(['/', ':'], "_"),
        a.out_data.replace(['/', ':'], "_")
    );
    let plot = a
        .plot
        .clone()
        .unwrap_or_else(|| a.model.join(format!("{stem}.svg")));
    let title = format!(
        "-log p(x) under {}: {} vs {}",
        trained.config.model.name(),
        a.in_data,
        a.out_data
    );
    viz::score_histogram(&plot, &nll_in, &nll_out, [&a.in_data, &a.out_data], &title)?;
    let report =
        serde_json::json!({ "in": in_set.benchmark(), "out": out_set.benchmark(), "scores": rows });
    run::write_atomic(
        &a.model.join(format!("{stem}.json")),
        &serde_json::to_vec_pretty(&report)?,
    )?;
    println!("histogram: {}", plot.display());
    Ok(())
}
