//! `genmodels classify` and `genmodels ood`: arguments and the printed tables (the analyses
//! are [`crate::analysis::classify`] and [`crate::analysis::ood`]).

use super::{device, progress::TerminalProgress};
use crate::analysis::classify::{BayesReport, ClassifyRequest, Scores, classify as bayes_classify};
use crate::analysis::ood::{OodRequest, Stir, ood};
use crate::analysis::verdicts::RejectRequest;
use crate::data::Split;
use anyhow::Result;
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
    /// Inputs unlike the data, shown to both classifiers: data sets whose test images are
    /// judged, or `noise`, comma-separated (e.g. `fashion-mnist,noise`). Needs --baseline; draws
    /// MODEL/verdicts-<split>.svg.
    #[arg(long, value_delimiter = ',')]
    pub reject: Vec<String>,
    /// Images judged per --reject set, and validation images behind the rejection threshold.
    #[arg(long, default_value_t = 500)]
    pub reject_pool: usize,
    /// Images drawn per set: the ones the discriminative classifier labels most confidently.
    #[arg(long, default_value_t = 8)]
    pub reject_show: usize,
}

pub fn classify(a: ClassifyArgs, data_dir: &Path) -> Result<BayesReport> {
    let request = ClassifyRequest {
        model: a.model,
        baseline: a.baseline,
        split: a.split,
        limit: a.limit,
        batch_size: a.batch_size,
        reject: (!a.reject.is_empty()).then_some(RejectRequest {
            sets: a.reject,
            pool: a.reject_pool,
            show: a.reject_show,
        }),
    };
    let report = bayes_classify(&request, data_dir, &device(), &mut TerminalProgress::new())?;
    println!("benchmark: {} ({} images)", report.benchmark, report.images);
    println!(
        "Bayes classifier p(y|x) ∝ p(x|y) p(y): accuracy {:.2}%, ECE {:.4}",
        report.bayes.accuracy * 100.0,
        report.bayes.ece
    );
    print_mistakes(&report.bayes);
    if let Some(d) = &report.discriminative {
        println!(
            "discriminative baseline p(y|x): accuracy {:.2}%, ECE {:.4}",
            d.accuracy * 100.0,
            d.ece
        );
        print_mistakes(d);
    }
    println!("confusion matrices: {}", report.confusion_picture.display());
    if let Some(v) = &report.verdicts {
        println!(
            "\nreject when -log p(x) > {:.2} nats ({:.0}th percentile on {} validation images)",
            v.threshold_nll,
            v.threshold_quantile * 100.0,
            v.threshold_images
        );
        println!(
            "| inputs | images | labelled with >= {:.0}% confidence | rejected by p(x) | confident ones rejected | mean -log p(x) |\n|---|---:|---:|---:|---:|---:|",
            crate::analysis::verdicts::CONFIDENT * 100.0
        );
        for s in std::iter::once(&v.in_distribution).chain(&v.sets) {
            println!(
                "| {} | {} | {:.1}% | {:.1}% | {:.1}% | {:.1} |",
                s.benchmark,
                s.images,
                s.confident_share * 100.0,
                s.rejected_share * 100.0,
                s.confident_rejected_share * 100.0,
                s.mean_nll
            );
        }
        println!("verdicts: {}", v.picture.display());
    }
    Ok(report)
}

/// "most confused: 4 as 9 (12), ..." for a classifier's scores.
fn print_mistakes(scores: &Scores) {
    let top: Vec<String> = scores
        .top_confusions(5)
        .iter()
        .map(|(t, p, n)| format!("{t} as {p} ({n})"))
        .collect();
    if !top.is_empty() {
        println!(
            "  most frequent mistakes (true as predicted): {}",
            top.join(", ")
        );
    }
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
    /// Adds the ratio of log p(x) to the same model's log p(T(x)) for each transformation T
    /// of the image (comma-separated): what the model knows of the data's layout, with the
    /// local statistics that make simple images likely cancelled (Umapathi et al. 2022).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "vflip")]
    pub stir: Vec<Stir>,
}

pub fn ood_command(a: OodArgs, data_dir: &Path) -> Result<()> {
    eprintln!(
        "scoring {} against {} with {}",
        a.in_data,
        a.out_data,
        a.model.display()
    );
    let request = OodRequest {
        model: a.model,
        in_data: a.in_data,
        out_data: a.out_data,
        classifier: a.classifier,
        background: a.background,
        limit: a.limit,
        plot: a.plot,
        batch_size: a.batch_size,
        iwae_k: a.iwae_k,
        stir: a.stir,
    };
    let r = ood(&request, data_dir, &device())?;
    let bits = |nats: f64| nats / r.dims as f64 / std::f64::consts::LN_2;
    println!(
        "in: {} ({} images, mean {:.2} nats = {:.4} bits/dim)\nout: {} ({} images, mean {:.2} nats = {:.4} bits/dim)",
        r.in_benchmark,
        r.in_images,
        r.in_mean_nll,
        bits(r.in_mean_nll),
        r.out_benchmark,
        r.out_images,
        r.out_mean_nll,
        bits(r.out_mean_nll),
    );
    println!("| score | AUROC | AUPR (OOD positive) | FPR at 95% TPR |\n|---|---:|---:|---:|");
    for row in &r.scores {
        println!(
            "| {} | {:.4} | {:.4} | {:.4} |",
            row.score, row.auroc, row.aupr, row.fpr_at_95_tpr
        );
    }
    println!("histogram: {}", r.plot.display());
    Ok(())
}
