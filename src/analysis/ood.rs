//! Out-of-distribution detection with a density run: the likelihood itself, typicality
//! (Nalisnick et al. 2019b), input complexity (Serrà et al. 2020), the likelihood ratio
//! against a background model (Ren et al. 2019), the ratio against the same model on the
//! image turned round ([`Stir`], after Umapathi et al. 2022's "stirring"), Fisher's combination
//! of these corrections (each made a p-value against validation images) and a classifier's
//! maximum softmax probability (Hendrycks & Gimpel 2017), each with AUROC,
//! AUPR (OOD positive) and FPR at 95% TPR. Writes `MODEL/ood-<in>-<out>.json` and a histogram
//! of the likelihood score.

use super::{check_shape, classifier_posteriors};
use crate::data::{self, ImageSet, Split};
use crate::error::{Error, Result};
pub use crate::eval::ood::Stir;
use crate::eval::{self, ood};
use crate::models::{Autoregressive, LatentModel};
use crate::progress::Silent;
use crate::run::{TrainedRun, load_trained};
use crate::train::checkpoint::Which;
use burn::tensor::Device;
use std::path::{Path, PathBuf};

/// What to score.
#[derive(Debug, Clone)]
pub struct OodRequest {
    /// The density run: autoregressive (exact log p(x)) or a VAE (IWAE bound).
    pub model: PathBuf,
    /// In-distribution data set (its test split is scored; its validation split gives the
    /// typical NLL).
    pub in_data: String,
    /// Out-of-distribution data set, or `noise` (uniform random images of the same shape).
    pub out_data: String,
    /// Adds the maximum-softmax-probability score.
    pub classifier: Option<PathBuf>,
    /// Adds the likelihood ratio.
    pub background: Option<PathBuf>,
    /// Images per set.
    pub limit: usize,
    /// Histogram of the likelihood score (default: MODEL/ood-<in>-<out>.svg).
    pub plot: Option<PathBuf>,
    pub batch_size: usize,
    /// Importance samples of the IWAE bound standing for log p(x) of a VAE.
    pub iwae_k: usize,
    /// Each adds the score `-log p(x) + log p(T(x))` for its transformation T.
    pub stir: Vec<Stir>,
}

/// A correction of the likelihood, scored on in-distribution validation images as well as on
/// the two test sets.
struct Correction {
    name: String,
    valid: Vec<f64>,
    s_in: Vec<f64>,
    s_out: Vec<f64>,
}

/// One score's detection metrics.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScoreRow {
    pub score: String,
    pub auroc: f64,
    pub aupr: f64,
    pub fpr_at_95_tpr: f64,
}

/// What [`ood`] measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OodReport {
    #[serde(rename = "in")]
    pub in_benchmark: String,
    #[serde(rename = "out")]
    pub out_benchmark: String,
    pub in_images: usize,
    pub out_images: usize,
    /// Mean -log p(x) in nats of each set, and the pixels per image (for bits/dim).
    pub in_mean_nll: f64,
    pub out_mean_nll: f64,
    pub dims: usize,
    pub scores: Vec<ScoreRow>,
    /// The histogram written.
    pub plot: PathBuf,
}

/// Uniform random images of `set`'s shape and levels (seeded).
pub fn noise_like(set: &ImageSet, seed: u64) -> ImageSet {
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
                return Err(Error::Invalid(format!(
                    "{} holds a class-conditional model; out-of-distribution scores need an unconditional p(x)",
                    run_dir.display()
                )));
            }
            return Ok(Density::Exact(model));
        }
        if let Some(model) = trained.model.as_latent() {
            // k = 0 is refused by `per_image_bounds` at the first score.
            return Ok(Density::Latent(model, iwae_k));
        }
        Err(Error::Invalid(format!(
            "{} holds a {}, not a density model (pixelcnn, gated-pixelcnn, row-lstm, diagonal-bilstm, or a VAE)",
            run_dir.display(),
            trained.config.model.name()
        )))
    }

    fn name(&self) -> String {
        match self {
            Density::Exact(_) => "-log p(x)".into(),
            Density::Latent(_, k) => format!("-log p(x) (IWAE-{k} bound)"),
        }
    }

    /// -log p(x) per image, nats, in `set` order.
    fn nll(&self, set: &ImageSet, batch: usize, device: &Device) -> Result<Vec<f64>> {
        let log_p = match self {
            Density::Exact(model) => {
                eval::per_image_log_prob(*model, set, batch, device, &mut Silent)?
            }
            Density::Latent(model, k) => {
                eval::latent::per_image_bounds(*model, set, *k, 1, device, &mut Silent)?.1
            }
        };
        Ok(log_p.iter().map(|l| -l).collect())
    }
}

fn mean(values: &[f64]) -> f64 {
    super::mean_std(values).0
}

/// Scores the in- and out-of-distribution test images by every score the request allows.
pub fn ood(request: &OodRequest, data_dir: &Path, device: &Device) -> Result<OodReport> {
    let a = request;
    let trained = load_trained(&a.model, Which::Best, device)?;
    let model = Density::of(&trained, &a.model, a.iwae_k)?;
    let in_set = data::load(&a.in_data, Split::Test, data_dir)?.truncate(a.limit);
    check_shape(&trained.image, &in_set, &a.model)?;
    let out_set = match a.out_data.as_str() {
        "noise" => noise_like(&in_set, 7),
        name => data::load(name, Split::Test, data_dir)?.truncate(a.limit),
    };
    check_shape(&trained.image, &out_set, &a.model)?;
    let (nll_in, nll_out) = (
        model.nll(&in_set, a.batch_size, device)?,
        model.nll(&out_set, a.batch_size, device)?,
    );
    let mut scores: Vec<(String, Vec<f64>, Vec<f64>)> = vec![(
        format!("likelihood: {}", model.name()),
        nll_in.clone(),
        nll_out.clone(),
    )];
    // The corrections, each also computed on in-distribution validation images: the reference
    // that turns a score into a p-value for their combination below.
    let mut corrections: Vec<Correction> = Vec::new();
    // Typicality (one image at a time): distance of -log p(x) from the in-distribution
    // validation mean.
    let valid = data::load(&a.in_data, Split::Valid, data_dir)?.truncate(a.limit);
    let nll_valid = model.nll(&valid, a.batch_size, device)?;
    let entropy = mean(&nll_valid);
    let typical = |s: &[f64]| ood::typicality(s, entropy);
    corrections.push(Correction {
        name: "typicality: |-log p(x) - H_valid|".into(),
        valid: typical(&nll_valid),
        s_in: typical(&nll_in),
        s_out: typical(&nll_out),
    });
    // Input complexity (Serrà et al. 2020), against PNG at its best compression.
    let complexity = |nll: &[f64], set: &ImageSet| -> Result<Vec<f64>> {
        Ok(ood::input_complexity(nll, &ood::png_bits(set)?))
    };
    corrections.push(Correction {
        name: "input complexity: -log2 p(x) - PNG bits".into(),
        valid: complexity(&nll_valid, &valid)?,
        s_in: complexity(&nll_in, &in_set)?,
        s_out: complexity(&nll_out, &out_set)?,
    });
    if let Some(background) = &a.background {
        let bg = load_trained(background, Which::Best, device)?;
        let bg_model = Density::of(&bg, background, a.iwae_k)?;
        check_shape(&bg.image, &in_set, background)?;
        let ratio = |nll: &[f64], set: &ImageSet| -> Result<Vec<f64>> {
            Ok(ood::log_ratio(
                nll,
                &bg_model.nll(set, a.batch_size, device)?,
            ))
        };
        corrections.push(Correction {
            name: "likelihood ratio: log p_bg(x) - log p(x)".into(),
            valid: ratio(&nll_valid, &valid)?,
            s_in: ratio(&nll_in, &in_set)?,
            s_out: ratio(&nll_out, &out_set)?,
        });
    }
    for &stir in &a.stir {
        let ratio = |nll: &[f64], set: &ImageSet| -> Result<Vec<f64>> {
            let turned = model.nll(&stir.apply(set)?, a.batch_size, device)?;
            Ok(ood::log_ratio(nll, &turned))
        };
        corrections.push(Correction {
            name: format!("stirred ({}): log p(T(x)) - log p(x)", stir.name()),
            valid: ratio(&nll_valid, &valid)?,
            s_in: ratio(&nll_in, &in_set)?,
            s_out: ratio(&nll_out, &out_set)?,
        });
    }
    let references: Vec<Vec<f64>> = corrections.iter().map(|c| c.valid.clone()).collect();
    let fisher = |pick: fn(&Correction) -> &Vec<f64>| {
        let scores: Vec<Vec<f64>> = corrections.iter().map(|c| pick(c).clone()).collect();
        ood::fisher_combined(&references, &scores)
    };
    let combined = (
        format!(
            "combined (Fisher, p-values on {} validation images): {}",
            valid.len(),
            corrections
                .iter()
                .map(|c| c.name.split(':').next().unwrap_or_default())
                .collect::<Vec<_>>()
                .join(" + ")
        ),
        fisher(|c| &c.s_in),
        fisher(|c| &c.s_out),
    );
    scores.extend(corrections.into_iter().map(|c| (c.name, c.s_in, c.s_out)));
    scores.push(combined);
    if let Some(classifier) = &a.classifier {
        let msp = |set: &ImageSet| -> Result<Vec<f64>> {
            Ok(classifier_posteriors(classifier, set, device)?
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
    let rows: Vec<ScoreRow> = scores
        .iter()
        .map(|(name, s_in, s_out)| {
            let m = ood::metrics(s_in, s_out);
            ScoreRow {
                score: name.clone(),
                auroc: m.auroc,
                aupr: m.aupr,
                fpr_at_95_tpr: m.fpr_at_95_tpr,
            }
        })
        .collect();
    let stem = crate::layout::ood_stem(&a.in_data, &a.out_data);
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
    crate::viz::score_histogram(&plot, &nll_in, &nll_out, [&a.in_data, &a.out_data], &title)?;
    let report = OodReport {
        in_benchmark: in_set.benchmark(),
        out_benchmark: out_set.benchmark(),
        in_images: in_set.len(),
        out_images: out_set.len(),
        in_mean_nll: mean(&nll_in),
        out_mean_nll: mean(&nll_out),
        dims: in_set.shape.dims(),
        scores: rows,
        plot,
    };
    crate::atomic::write_json(&a.model.join(format!("{stem}.json")), &report)?;
    Ok(report)
}
