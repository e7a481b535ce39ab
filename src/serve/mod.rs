//! The playground: a small HTTP server on loopback with one page (draw or upload a digit, see
//! its likelihood under each loaded model, a per-pixel surprise map, the class posterior of a
//! class-conditional model, an out-of-distribution verdict, completions of the lower half) and
//! the JSON API behind it:
//!
//! - `POST /api/score` — body: a PNG of the models' image size; answer: JSON scores per model.
//! - `POST /api/complete?model=NAME&k=4` — body: a PNG; answer: a PNG grid of completions.
//! - `GET /api/sample?model=NAME&n=16` — a PNG grid of fresh samples.
//! - `GET /api/models` — the loaded models.
//!
//! Bad requests get a 4xx with a message (a count out of range included); the server never
//! panics on input. HEAD is answered as GET without the body. Bodies are read off the workers
//! (at most [`MAX_BODY_READERS`] at once) and time out after [`READ_TIMEOUT`] of silence, so
//! clients that hold back their bodies cannot stall the others; requests are served by a few
//! threads; model calls take turns behind a lock.

use crate::data::{ImageSet, ImageShape, Levels, Split};
use crate::error::{Error, Result};
use crate::eval::ood::Stir;
use crate::models::{AnyModel, ImageSpec};
use crate::progress::Silent;
use crate::sample::{self, SampleSpec};
use crate::train::checkpoint::Which;
use burn::tensor::{Device, Int, Tensor, TensorData};
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 1 << 20;
const PAGE: &str = include_str!("page.html");

/// A loaded model with what the page shows about it.
struct Served {
    name: String,
    model: AnyModel,
    image: ImageSpec,
    /// The validation images' NLL: what a score is compared with.
    reference: Option<Reference>,
    log_prior: Option<Vec<f64>>,
    /// The validation images the reference was computed on, and their NLL in that order
    /// (what a background model's ratios pair with).
    validation: Option<(ImageSet, Vec<f64>)>,
    /// For an unconditional exact-likelihood model: the combined score its verdict rests on.
    combined: Option<Combined>,
}

impl Served {
    /// Each image's NLL by the estimator the page shows: exact `-log p(x)`, for a
    /// class-conditional model the marginal `-log Σ_y p(y) p(x|y)`, for a latent-variable
    /// model the IWAE-100 bound. Empty for a model with no likelihood.
    fn validation_nll(&self, set: &ImageSet, device: &Device) -> Result<Vec<f64>> {
        if let Some(ar) = self.model.as_autoregressive() {
            return Ok(match &self.log_prior {
                None => crate::eval::per_image_log_prob(ar, set, 100, device, &mut Silent)?
                    .iter()
                    .map(|l| -l)
                    .collect(),
                Some(prior) => {
                    crate::eval::bayes::class_log_likelihoods(ar, set, 100, device, &mut Silent)?
                        .iter()
                        .map(|l| {
                            let joint: Vec<f64> = l.iter().zip(prior).map(|(a, b)| a + b).collect();
                            -crate::eval::bayes::log_sum_exp(&joint)
                        })
                        .collect()
                }
            });
        }
        if let Some(latent) = self.model.as_latent() {
            let (_, iwae) =
                crate::eval::latent::per_image_bounds(latent, set, IWAE_K, 1, device, &mut Silent)?;
            return Ok(iwae.iter().map(|l| -l).collect());
        }
        Ok(Vec::new())
    }
}

/// A background model (Ren et al. 2019: the same architecture trained on perturbed inputs,
/// `genmodels train ... --perturb-rate 0.2`, or a local PixelCNN), whose likelihood ratio joins
/// the served models' combined scores (named there).
struct Background {
    model: AnyModel,
}

/// The NLL of validation images: mean, the 1st and 99th percentiles, and their histogram, the
/// distribution the page draws with a marker for the scored image.
#[derive(Debug, Clone)]
struct Reference {
    mean: f64,
    low: f64,
    high: f64,
    /// `HISTOGRAM_BINS` equal bins from the smallest to the largest validation NLL.
    histogram: Histogram,
    /// Every validation NLL, ascending.
    sorted: Vec<f64>,
}

/// Counts of values in equal bins over `[from, to]`.
#[derive(Debug, Clone, serde::Serialize)]
struct Histogram {
    from: f64,
    to: f64,
    counts: Vec<usize>,
}

const HISTOGRAM_BINS: usize = 24;

impl Histogram {
    fn of(sorted: &[f64], bins: usize) -> Self {
        let (from, to) = (sorted[0], sorted[sorted.len() - 1]);
        let width = (to - from).max(f64::MIN_POSITIVE);
        let mut counts = vec![0; bins];
        for &v in sorted {
            let bin = (((v - from) / width) * bins as f64) as usize;
            counts[bin.min(bins - 1)] += 1;
        }
        Self { from, to, counts }
    }
}

/// The importance samples of a latent-variable model's score.
const IWAE_K: usize = 100;

/// What a verdict says of an image that no test flags.
const IN_DISTRIBUTION: &str = "in distribution";

/// The out-of-distribution score of an unconditional exact-likelihood model: Fisher's
/// combination (`crate::eval::ood::fisher_combined`) of typicality, input complexity (PNG),
/// the stirred score (the image upside down) and, with a background model, the likelihood
/// ratio, each made a p-value against the validation images. No one of them is safe alone
/// (docs/RESULTS.md, OOD rounds four and five): the NLL passes images simpler than the data,
/// and a likelihood ratio or stirred score cancels what both of its terms find unpredictable,
/// so passes noise; the combination flags an image extreme on any of them, and ranked
/// Fashion-MNIST against MNIST better than each one (round five).
struct Combined {
    /// Mean validation NLL, the centre of typicality.
    entropy: f64,
    names: Vec<String>,
    /// Each component's validation scores, what a new image's is read against.
    references: Vec<Vec<f64>>,
    /// The validation images' combined scores: above their 99th percentile is out of
    /// distribution.
    reference: Reference,
    /// The validation images' PNG bits and NLL upside down (what a background's ratio is
    /// added to, with their NLL kept in `Served::validation`).
    parts: ValidationParts,
}

#[derive(Clone)]
struct ValidationParts {
    png_bits: Vec<f64>,
    turned_nll: Vec<f64>,
}

/// The components every combination has; a background model's ratio comes after them.
const COMPONENTS: [&str; 3] = [
    "typicality |NLL - validation mean|",
    "input complexity (NLL in bits - PNG bits)",
    "stirred (NLL - NLL upside down)",
];

/// The combination's components for a set of images, each higher for images believed out of
/// distribution.
fn components(
    nll: &[f64],
    png_bits: &[f64],
    turned_nll: &[f64],
    background_nll: Option<&[f64]>,
    entropy: f64,
) -> Vec<Vec<f64>> {
    use crate::eval::ood;
    let mut out = vec![
        ood::typicality(nll, entropy),
        ood::input_complexity(nll, png_bits),
        ood::log_ratio(nll, turned_nll),
    ];
    out.extend(background_nll.map(|bg| ood::log_ratio(nll, bg)));
    out
}

impl Combined {
    /// From the validation images' NLL, their other parts and, with a background model, its
    /// name and its NLL of them.
    fn of(
        nll: &[f64],
        parts: ValidationParts,
        background: Option<(&str, Vec<f64>)>,
    ) -> Option<Self> {
        let entropy = nll.iter().sum::<f64>() / nll.len().max(1) as f64;
        let references = components(
            nll,
            &parts.png_bits,
            &parts.turned_nll,
            background.as_ref().map(|(_, bg)| bg.as_slice()),
            entropy,
        );
        let mut names: Vec<String> = COMPONENTS.iter().map(|&n| n.into()).collect();
        names.extend(
            background
                .as_ref()
                .map(|(name, _)| format!("likelihood ratio against {name}")),
        );
        // The validation images are scored against references that include them, which
        // puts their p-values at least 2/(n+1): the threshold errs on the side of passing.
        let reference = Reference::of(crate::eval::ood::fisher_combined(&references, &references))?;
        Some(Self {
            entropy,
            names,
            references,
            reference,
            parts,
        })
    }

    /// Whether the likelihood ratio against the background model is one of the components.
    fn has_background(&self) -> bool {
        self.names.len() > COMPONENTS.len()
    }

    /// The verdict on one image from its NLL, PNG bits, NLL upside down and, with a background
    /// model, the background's NLL.
    fn verdict(
        &self,
        nll: f64,
        png_bits: f64,
        turned_nll: f64,
        background_nll: Option<f64>,
    ) -> serde_json::Value {
        let bg = background_nll.map(|b| [b]);
        let parts = components(
            &[nll],
            &[png_bits],
            &[turned_nll],
            bg.as_ref().map(|b| b.as_slice()),
            self.entropy,
        );
        let p: Vec<f64> = (self.references.iter().zip(&parts))
            .map(|(reference, score)| crate::eval::ood::p_values(reference, score)[0])
            .collect();
        let value = crate::eval::ood::fisher(p.iter().copied());
        let r = &self.reference;
        let verdict = if value > r.high {
            "out of distribution (a higher combined score than 99% of validation images)"
        } else {
            IN_DISTRIBUTION
        };
        let components: Vec<serde_json::Value> = (self.names.iter().zip(&parts))
            .zip(&p)
            .map(|((name, score), p)| {
                serde_json::json!({ "score": name, "value": score[0], "p_value": p })
            })
            .collect();
        serde_json::json!({
            "verdict": verdict,
            "score": "Fisher's combination -2 Σ ln p of the scores below, each p its share of validation images scoring at least as high",
            "unit": "",
            "value": value,
            "components": components,
            "rule": "out of distribution when the combined score is above the validation images' 99th percentile",
            "valid_share_lower": r.sorted.partition_point(|&v| v < value) as f64 / r.sorted.len() as f64,
            "typical_range": [r.low, r.high],
            "valid_mean": r.mean,
            "valid_images": r.sorted.len(),
            "valid_histogram": r.histogram,
        })
    }
}

impl Reference {
    /// The verdict on an image of this NLL, with what it is based on. Two-sided: an image far
    /// more likely than any validation image (a blank canvas) is as atypical as one far less
    /// likely (Nalisnick et al. 2019, typicality).
    fn verdict(&self, nll: f64) -> serde_json::Value {
        let verdict = if nll > self.high {
            "out of distribution (less likely than 99% of validation images)"
        } else if nll < self.low {
            "out of distribution (more likely than 99% of validation images: atypical)"
        } else {
            IN_DISTRIBUTION
        };
        // Where the image falls among the validation images: the share that the model finds
        // less likely than it (a higher NLL).
        let above = self.sorted.len() - self.sorted.partition_point(|&v| v <= nll);
        serde_json::json!({
            "score": "NLL, two-sided (typicality)",
            "value": nll,
            "valid_share_less_likely": above as f64 / self.sorted.len() as f64,
            "verdict": verdict,
            "threshold_nats": self.high,
            "typical_range_nats": [self.low, self.high],
            "valid_mean_nats": self.mean,
            "valid_images": self.sorted.len(),
            "valid_histogram_nats": self.histogram,
        })
    }

    fn of(mut nll: Vec<f64>) -> Option<Self> {
        if nll.is_empty() {
            return None;
        }
        nll.sort_by(f64::total_cmp);
        let at = |q: usize| nll[(nll.len() * q / 100).min(nll.len() - 1)];
        Some(Self {
            mean: nll.iter().sum::<f64>() / nll.len() as f64,
            low: at(1),
            high: at(99),
            histogram: Histogram::of(&nll, HISTOGRAM_BINS),
            sorted: nll,
        })
    }
}

/// The server state.
pub struct Playground {
    models: Mutex<Vec<Served>>,
    background: Option<Background>,
    device: Device,
}

/// An HTTP answer: status, content type, body, and for a picture a line saying what it shows
/// (header `X-Genmodels-Note`).
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub note: Option<String>,
}

impl Reply {
    fn json(status: u16, value: serde_json::Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            // A `Value` always serialises; the fallback only keeps the type honest.
            body: serde_json::to_vec(&value).unwrap_or_else(|_| b"{}".to_vec()),
            note: None,
        }
    }
    fn error(status: u16, message: impl Into<String>) -> Self {
        Self::json(status, serde_json::json!({ "error": message.into() }))
    }
    fn png(body: Vec<u8>) -> Self {
        Self {
            status: 200,
            content_type: "image/png",
            body,
            note: None,
        }
    }

    fn with_note(mut self, note: String) -> Self {
        if self.status == 200 {
            self.note = Some(note);
        }
        self
    }
}

impl Playground {
    /// Loads every run; `data_dir` supplies validation images for the OOD threshold.
    pub fn load(runs: &[PathBuf], data_dir: &std::path::Path, device: Device) -> Result<Self> {
        let mut models = Vec::new();
        for run in runs {
            let trained = crate::run::load_trained(run, Which::Best, &device)?;
            let name = run
                .file_name()
                .map_or("model".into(), |n| n.to_string_lossy().to_string());
            let valid =
                crate::data::load(&trained.config.data.dataset, Split::Valid, data_dir).ok();
            let log_prior = match trained.model.as_autoregressive() {
                Some(ar) if ar.classes() > 0 => {
                    let dataset = &trained.config.data.dataset;
                    let Some(labels) = crate::data::load(dataset, Split::Train, data_dir)?.labels
                    else {
                        return Err(Error::Invalid(format!(
                            "{}: {dataset}'s training split has no labels for the class prior p(y)",
                            run.display()
                        )));
                    };
                    Some(crate::eval::bayes::log_prior(&labels, ar.classes()))
                }
                _ => None,
            };
            let mut served = Served {
                name,
                model: trained.model,
                image: trained.image,
                reference: None,
                log_prior,
                validation: None,
                combined: None,
            };
            // The validation images' NLL, by the estimator the page shows: the reference
            // every score is read against.
            if let Some(valid) = valid {
                let valid = valid.truncate(500);
                let nll = served.validation_nll(&valid, &device)?;
                served.reference = Reference::of(nll.clone());
                if let Some(ar) = served.model.as_autoregressive()
                    && ar.classes() == 0
                    && !nll.is_empty()
                {
                    let turned = Stir::Vflip.apply(&valid)?;
                    let parts = ValidationParts {
                        png_bits: crate::eval::ood::png_bits(&valid)?,
                        turned_nll: served.validation_nll(&turned, &device)?,
                    };
                    served.combined = Combined::of(&nll, parts, None);
                }
                served.validation = Some((valid, nll));
            }
            models.push(served);
        }
        if models.is_empty() {
            return Err(Error::Invalid(
                "serve needs at least one run directory".into(),
            ));
        }
        Ok(Self {
            models: Mutex::new(models),
            background: None,
            device,
        })
    }

    /// Loads `run` as the background model of every served unconditional exact-likelihood
    /// model of the same image shape and levels: the likelihood ratio joins their combined
    /// score, read against the same validation images' ratios.
    pub fn with_background(mut self, run: &std::path::Path) -> Result<Self> {
        let trained = crate::run::load_trained(run, Which::Best, &self.device)?;
        let Some(bg) = trained.model.as_autoregressive() else {
            return Err(Error::Invalid(format!(
                "{}: a background model must be an exact-likelihood (autoregressive) model",
                run.display()
            )));
        };
        if bg.classes() > 0 {
            return Err(Error::Invalid(format!(
                "{}: a background model must be unconditional, p(x)",
                run.display()
            )));
        }
        let name = run
            .file_name()
            .map_or("background".into(), |n| n.to_string_lossy().to_string());
        let models = self.models.get_mut().unwrap_or_else(|p| p.into_inner());
        let mut matched = 0;
        for m in models.iter_mut() {
            if m.image != trained.image {
                continue;
            }
            let (Some((valid, nll)), Some(combined)) = (&m.validation, &m.combined) else {
                continue;
            };
            let bg_nll: Vec<f64> =
                crate::eval::per_image_log_prob(bg, valid, 100, &self.device, &mut Silent)?
                    .iter()
                    .map(|l| -l)
                    .collect();
            m.combined = Combined::of(nll, combined.parts.clone(), Some((name.as_str(), bg_nll)));
            matched += 1;
        }
        if matched == 0 {
            return Err(Error::Invalid(format!(
                "{}: no served unconditional exact-likelihood model takes its images ({}x{}x{}, {} levels)",
                run.display(),
                trained.image.shape.channels,
                trained.image.shape.height,
                trained.image.shape.width,
                trained.image.levels.count()
            )));
        }
        self.background = Some(Background {
            model: trained.model,
        });
        Ok(self)
    }

    /// Answers one request. Never panics on user input.
    pub fn handle(&self, method: &str, url: &str, body: &[u8]) -> Reply {
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        let param = |key: &str| {
            query.split('&').find_map(|kv| {
                kv.split_once('=')
                    .filter(|(k, _)| *k == key)
                    .map(|(_, v)| v.to_string())
            })
        };
        let models = match self.models.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let pick = |name: Option<String>| -> std::result::Result<&Served, Reply> {
            match name {
                None => Ok(&models[0]),
                Some(n) => models
                    .iter()
                    .find(|m| m.name == n)
                    .ok_or_else(|| Reply::error(404, format!("unknown model {n:?}"))),
            }
        };
        // HEAD is GET without the body (tiny_http drops it).
        let method = if method == "HEAD" { "GET" } else { method };
        match (method, path) {
            ("GET", "/") => Reply { status: 200, content_type: "text/html; charset=utf-8", body: PAGE.as_bytes().to_vec(), note: None },
            ("GET", "/api/models") => Reply::json(
                200,
                serde_json::json!(models.iter().map(|m| serde_json::json!({
                    "name": m.name, "shape": [m.image.shape.channels, m.image.shape.height, m.image.shape.width],
                    "levels": m.image.levels.count(),
                })).collect::<Vec<_>>()),
            ),
            ("POST", "/api/score") => match decode(body, &models[0].image) {
                Err(reply) => reply,
                Ok(_) => {
                    let scores: std::result::Result<Vec<_>, Reply> =
                        models.iter().map(|m| decode(body, &m.image).and_then(|px| self.score(m, &px).map_err(|e| Reply::error(500, e.to_string())))).collect();
                    match scores {
                        Ok(s) => Reply::json(200, serde_json::json!({ "models": s })),
                        Err(reply) => reply,
                    }
                }
            },
            ("POST", "/api/complete") => {
                let served = match pick(param("model")) { Ok(s) => s, Err(r) => return r };
                let k = match count(param("k"), "k", 4, 1..=8) { Ok(k) => k, Err(r) => return r };
                match decode(body, &served.image) {
                    Err(reply) => reply,
                    Ok(pixels) => self.complete(served, &pixels, k),
                }
            }
            ("GET", "/api/sample") => {
                let served = match pick(param("model")) { Ok(s) => s, Err(r) => return r };
                let n = match count(param("n"), "n", 16, 1..=64) { Ok(n) => n, Err(r) => return r };
                let seed = match param("seed").map(|s| s.parse::<u64>()) {
                    None => rand::random::<u64>(),
                    Some(Ok(seed)) => seed,
                    Some(Err(_)) => return Reply::error(400, "seed must be a whole number"),
                };
                self.sample(served, n, seed)
            }
            (_, "/" | "/api/score" | "/api/complete" | "/api/sample" | "/api/models") => {
                Reply::error(405, format!("{method} is not allowed on {path}"))
            }
            _ => Reply::error(404, format!("no such page: {path}")),
        }
    }

    fn score(&self, m: &Served, pixels: &[u8]) -> Result<serde_json::Value> {
        let dims = m.image.shape.dims();
        let set = one_image_set(m, pixels.to_vec());
        let images = self.image_tensor(m, pixels);
        let mut out = serde_json::json!({ "name": m.name });
        if let Some(ar) = m.model.as_autoregressive() {
            let heads = self.pixel_log_probs(ar, images)?;
            let log_p: Vec<f64> = heads
                .iter()
                .map(|(_, px)| px.iter().map(|&v| v as f64).sum())
                .collect();
            let (nll, pixel_nll) = match &m.log_prior {
                Some(prior) => {
                    let posterior = crate::eval::bayes::posterior(&log_p, prior);
                    let joint: Vec<f64> = log_p.iter().zip(prior).map(|(a, b)| a + b).collect();
                    let best = most_probable(&posterior);
                    out["class_posterior"] = serde_json::json!(posterior);
                    // The map is of p(x|y) for the most probable class: say which, and its sum.
                    out["pixel_nll_class"] = serde_json::json!(best);
                    (-crate::eval::bayes::log_sum_exp(&joint), &heads[best].1)
                }
                None => (-log_p[0], &heads[0].1),
            };
            out["nll_nats"] = serde_json::json!(nll);
            out["bits_per_dim"] = serde_json::json!(crate::units::bits_per_dim(nll, dims));
            out["pixel_nll"] = serde_json::json!(pixel_nll.iter().map(|v| -v).collect::<Vec<_>>());
            out["nll_estimator"] = serde_json::json!(if m.log_prior.is_some() {
                "-log Σ_y p(y) p(x|y), the marginal over classes"
            } else {
                "-log p(x), exact"
            });
            if let Some(r) = &m.reference {
                out["ood"] = r.verdict(nll);
            }
            // An unconditional model's verdict is the combined score's; the NLL's own
            // two-sided reading is kept beside it.
            if let Some(combined) = &m.combined {
                let turned = Stir::Vflip.apply(&set)?;
                let turned_nll =
                    -crate::eval::per_image_log_prob(ar, &turned, 1, &self.device, &mut Silent)?[0];
                let background_nll = match &self.background {
                    Some(bg) if combined.has_background() => {
                        let bg_ar = bg.model.as_autoregressive().ok_or_else(|| {
                            Error::Invalid("the background model lost its likelihood".into())
                        })?;
                        Some(
                            -crate::eval::per_image_log_prob(
                                bg_ar,
                                &set,
                                1,
                                &self.device,
                                &mut Silent,
                            )?[0],
                        )
                    }
                    _ => None,
                };
                let png_bits = crate::eval::ood::png_bits(&set)?[0];
                out["typicality"] = out["ood"].take();
                out["ood"] = combined.verdict(nll, png_bits, turned_nll, background_nll);
            }
        } else if let Some(latent) = m.model.as_latent() {
            let (elbo, iwae) = crate::eval::latent::elbo_and_iwae(
                latent,
                &set,
                IWAE_K,
                1,
                &self.device,
                &mut Silent,
            )?;
            out["elbo_nll_nats"] = serde_json::json!(elbo.nll_nats_per_image);
            out["iwae100_nll_nats"] = serde_json::json!(iwae.nll_nats_per_image);
            out["bits_per_dim"] = serde_json::json!(iwae.bits_per_dim);
            out["nll_estimator"] =
                serde_json::json!(format!("IWAE-{IWAE_K} bound on -log p(x) (an upper bound)"));
            if let Some(r) = &m.reference {
                out["ood"] = r.verdict(iwae.nll_nats_per_image);
            }
        }
        Ok(out)
    }

    /// One image's level values as the model's input tensor `[1, c, h, w]`.
    fn image_tensor(&self, m: &Served, pixels: &[u8]) -> Tensor<4> {
        crate::data::batch::to_tensor(
            pixels,
            &[0],
            shape3(m.image.shape),
            m.image.levels,
            &self.device,
        )
    }

    /// `log p(x_i | x_<i)` of every value of one image `[1, c, h, w]`, `[c * h * w]`: once, or
    /// for a class-conditional model once per class y (`log p(x_i | x_<i, y)`).
    fn pixel_log_probs(
        &self,
        ar: &dyn crate::models::Autoregressive,
        images: Tensor<4>,
    ) -> Result<Vec<(Option<usize>, Vec<f32>)>> {
        let classes = ar.classes();
        if classes == 0 {
            let head = ar.conditionals(images.clone(), None);
            return Ok(vec![(
                None,
                crate::error::host(head.log_prob_pixels(images))?,
            )]);
        }
        (0..classes)
            .map(|y| {
                let label =
                    Tensor::<1, Int>::from_data(TensorData::new(vec![y as i64], [1]), &self.device);
                let head = ar.conditionals(images.clone(), Some(&label));
                Ok((
                    Some(y),
                    crate::error::host(head.log_prob_pixels(images.clone()))?,
                ))
            })
            .collect()
    }

    fn complete(&self, m: &Served, pixels: &[u8], k: usize) -> Reply {
        let Some(ar) = m.model.as_autoregressive() else {
            return Reply::error(
                400,
                format!(
                    "{} is not autoregressive: it cannot complete images",
                    m.name
                ),
            );
        };
        let shape = m.image.shape;
        let known = sample::top_half_known(shape);
        let images = pixels.repeat(k);
        let mut note = format!(
            "first image: the input with its hidden lower half blanked; then {k} completions"
        );
        let classes: Option<Vec<u8>> = match &m.log_prior {
            None => None,
            Some(prior) => {
                // Complete as the class the *visible* half most likely shows: p(y | x_top) from
                // the conditionals of the known values only (in raster order they depend on
                // nothing below the cut).
                let heads = match self.pixel_log_probs(ar, self.image_tensor(m, pixels)) {
                    Ok(h) => h,
                    Err(e) => return Reply::error(500, e.to_string()),
                };
                let log_p_top: Vec<f64> = (heads.iter())
                    .map(|(_, px)| {
                        (px.iter().zip(&known))
                            .filter(|(_, k)| **k)
                            .map(|(&v, _)| v as f64)
                            .sum()
                    })
                    .collect();
                let posterior = crate::eval::bayes::posterior(&log_p_top, prior);
                let best = most_probable(&posterior);
                note += &format!(
                    ", as class {best}, the most probable given the visible half (p = {:.2})",
                    posterior[best]
                );
                Some(vec![best as u8; k])
            }
        };
        let spec = SampleSpec {
            shape,
            levels: m.image.levels,
            seed: rand::random(),
            classes: classes.as_deref(),
        };
        let done = match m.model.fast_sampler() {
            Ok(Some(fast)) => fast.complete(&spec, &images, &known, &mut Silent),
            Ok(None) => {
                match sample::complete(ar, &spec, &images, &known, &self.device, &mut Silent) {
                    Ok(done) => done,
                    Err(e) => return Reply::error(500, e.to_string()),
                }
            }
            Err(e) => return Reply::error(500, e.to_string()),
        };
        // The first cell is the input as the model sees it: the hidden half blanked.
        let mut grid: Vec<u8> = (pixels.iter().zip(&known))
            .map(|(&v, &k)| if k { v } else { 0 })
            .collect();
        grid.extend(done);
        png_grid(&grid, shape, m.image.levels, k + 1).with_note(note)
    }

    /// `n` samples in a square grid; for a class-conditional model one row per class (0 at
    /// the top), `n / classes` (at least one) per row.
    fn sample(&self, m: &Served, n: usize, seed: u64) -> Reply {
        let classes = m.model.as_autoregressive().map_or(0, |a| a.classes());
        let (n, columns, labels, note) = if let Some(per_class) = n.checked_div(classes) {
            let per_class = per_class.max(1);
            let labels: Vec<u8> = (0..classes * per_class)
                .map(|i| (i / per_class) as u8)
                .collect();
            let note = format!(
                "one row per class: row y shows {per_class} samples of p(x | y), y = 0 to {}",
                classes - 1
            );
            (labels.len(), per_class, Some(labels), note)
        } else {
            let note = format!("{n} samples of p(x)");
            (n, (n as f64).sqrt().ceil() as usize, None, note)
        };
        let draw = sample::Draw {
            n,
            seed,
            classes: labels.as_deref(),
            naive: false,
        };
        match sample::draw_any(&m.model, &m.image, &draw, &self.device, &mut Silent) {
            Ok((images, levels)) => {
                png_grid(&images, m.image.shape, levels, columns).with_note(note)
            }
            Err(e) => Reply::error(400, e.to_string()),
        }
    }
}

/// The index of the largest probability (the first of equals).
fn most_probable(p: &[f64]) -> usize {
    (0..p.len()).fold(0, |b, i| if p[i] > p[b] { i } else { b })
}

fn shape3(s: ImageShape) -> [usize; 3] {
    [s.channels, s.height, s.width]
}

fn one_image_set(m: &Served, pixels: Vec<u8>) -> ImageSet {
    ImageSet {
        dataset: "playground".into(),
        split: Split::Test,
        shape: m.image.shape,
        levels: m.image.levels,
        binarization: crate::data::Binarization::None,
        pixels,
        labels: None,
        dynamic_seed: None,
    }
}

/// A query count: `default` when absent, a 400 naming the range when not a whole number in it.
fn count(
    value: Option<String>,
    name: &str,
    default: usize,
    range: std::ops::RangeInclusive<usize>,
) -> std::result::Result<usize, Reply> {
    let Some(text) = value else {
        return Ok(default);
    };
    match text.parse::<usize>() {
        Ok(v) if range.contains(&v) => Ok(v),
        _ => Err(Reply::error(
            400,
            format!(
                "{name}={text:?}: {name} must be a whole number from {} to {}",
                range.start(),
                range.end()
            ),
        )),
    }
}

/// A PNG body to pixel values in the model's levels, channel-major like the data sets: grey
/// (Rec. 709 luma) for one-channel models, R, G, B for colour models; binary models threshold
/// every value at half.
fn decode(body: &[u8], spec: &ImageSpec) -> std::result::Result<Vec<u8>, Reply> {
    if body.is_empty() {
        return Err(Reply::error(400, "empty body: send a PNG image"));
    }
    // The size from the header first: a huge image is refused before it is decoded.
    let unreadable = |e: image::ImageError| Reply::error(400, format!("not a readable image: {e}"));
    let reader = || {
        image::ImageReader::new(std::io::Cursor::new(body))
            .with_guessed_format()
            .map_err(|e| Reply::error(400, format!("not a readable image: {e}")))
    };
    let (w, h) = reader()?.into_dimensions().map_err(unreadable)?;
    let (w, h) = (w as usize, h as usize);
    let kind = match spec.shape.channels {
        1 => "grey",
        3 => "RGB",
        _ => "multi-channel",
    };
    if (spec.shape.height, spec.shape.width) != (h, w) || !matches!(spec.shape.channels, 1 | 3) {
        return Err(Reply::error(
            400,
            format!(
                "image is {w}x{h}; the models take {}x{} {kind} images",
                spec.shape.width, spec.shape.height
            ),
        ));
    }
    let image = reader()?.decode().map_err(unreadable)?;
    let values = if spec.shape.channels == 1 {
        image.to_luma8().into_raw()
    } else {
        let rgb = image.to_rgb8().into_raw(); // [H][W][3]
        let plane = h * w;
        let mut planes = vec![0u8; 3 * plane];
        for (p, px) in rgb.chunks_exact(3).enumerate() {
            for (c, &v) in px.iter().enumerate() {
                planes[c * plane + p] = v;
            }
        }
        planes
    };
    Ok(match spec.levels {
        Levels::Binary => values.iter().map(|&v| (v >= 128) as u8).collect(),
        Levels::Bits8 => values,
    })
}

fn png_grid(images: &[u8], shape: ImageShape, levels: Levels, columns: usize) -> Reply {
    let dir = std::env::temp_dir().join(format!(
        "genmodels-serve-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let path = dir.with_extension("png");
    let result = crate::viz::save_grid(
        &path,
        &crate::viz::cells(images, shape),
        shape,
        levels,
        columns,
    )
    .and_then(|_| std::fs::read(&path).map_err(|e| Error::io(&path, e)));
    let _ = std::fs::remove_file(&path);
    match result {
        Ok(bytes) => Reply::png(bytes),
        Err(e) => Reply::error(500, e.to_string()),
    }
}

/// Bodies being read at once. Each is read by a thread of its own, off the workers, so a client
/// that sends its headers and holds back its body occupies one of these, never a worker; past
/// the cap an upload is refused with a 503 at once.
pub const MAX_BODY_READERS: usize = 32;

/// How long a connection may go without sending a byte (headers or body) before its read
/// fails: a request whose body stalls is cut off and its reader freed.
pub const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves `playground` on `address` with `threads` workers, forever. Reports the bound address
/// through `on_ready` first (port 0 picks a free port).
pub fn serve(
    playground: Arc<Playground>,
    address: &str,
    threads: usize,
    on_ready: impl FnOnce(std::net::SocketAddr),
) -> Result<()> {
    serve_with_timeout(playground, address, threads, READ_TIMEOUT, on_ready)
}

/// [`serve`] with another read timeout (see [`READ_TIMEOUT`]).
pub fn serve_with_timeout(
    playground: Arc<Playground>,
    address: &str,
    threads: usize,
    read_timeout: std::time::Duration,
    on_ready: impl FnOnce(std::net::SocketAddr),
) -> Result<()> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind(address)
        .map_err(|e| Error::Invalid(format!("cannot listen on {address}: {e}")))?;
    set_timeouts(&listener, read_timeout)?;
    let server = tiny_http::Server::from_listener(listener, None)
        .map_err(|e| Error::Invalid(format!("cannot listen on {address}: {e}")))?;
    let bound = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| Error::Invalid("not an IP address".into()))?;
    on_ready(bound);
    // Requests whose bodies are in hand, for the workers; a body that could not be read comes
    // with the reply to send instead.
    let (ready, queue) =
        std::sync::mpsc::channel::<(tiny_http::Request, std::result::Result<Vec<u8>, Reply>)>();
    let queue = Arc::new(Mutex::new(queue));
    let workers: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let (queue, playground) = (queue.clone(), playground.clone());
            std::thread::spawn(move || {
                loop {
                    let next = match queue.lock() {
                        Ok(q) => q.recv(),
                        Err(poisoned) => poisoned.into_inner().recv(),
                    };
                    let Ok((request, body)) = next else { return };
                    let reply = match body {
                        Ok(body) => {
                            playground.handle(request.method().as_str(), request.url(), &body)
                        }
                        Err(reply) => reply,
                    };
                    respond(request, reply);
                }
            })
        })
        .collect();
    let readers = Arc::new(AtomicUsize::new(0));
    loop {
        let Ok(mut request) = server.recv() else {
            break;
        };
        let no_body = request.body_length() == Some(0)
            || (request.body_length().is_none()
                && matches!(
                    request.method(),
                    tiny_http::Method::Get | tiny_http::Method::Head
                ));
        if no_body {
            if ready.send((request, Ok(Vec::new()))).is_err() {
                break;
            }
            continue;
        }
        if let Some(n) = request.body_length().filter(|&n| n > MAX_BODY_BYTES) {
            respond(
                request,
                Reply::error(413, format!("body of {n} bytes exceeds {MAX_BODY_BYTES}")),
            );
            continue;
        }
        if readers.fetch_add(1, Ordering::SeqCst) >= MAX_BODY_READERS {
            readers.fetch_sub(1, Ordering::SeqCst);
            respond(
                request,
                Reply::error(503, "too many uploads in progress; try again"),
            );
            continue;
        }
        let (ready, readers) = (ready.clone(), readers.clone());
        std::thread::spawn(move || {
            let mut body = Vec::new();
            let read = request
                .as_reader()
                .take(MAX_BODY_BYTES as u64 + 1)
                .read_to_end(&mut body);
            readers.fetch_sub(1, Ordering::SeqCst);
            let body = match read {
                Ok(_) if body.len() > MAX_BODY_BYTES => Err(Reply::error(
                    413,
                    format!("body exceeds {MAX_BODY_BYTES} bytes"),
                )),
                Ok(_) => Ok(body),
                Err(e) => Err(Reply::error(400, format!("cannot read the body: {e}"))),
            };
            let _ = ready.send((request, body));
        });
    }
    drop(ready);
    for worker in workers {
        let _ = worker.join();
    }
    Ok(())
}

/// Sends `reply` (tiny_http leaves out the body of an answer to HEAD).
/// Read and write timeouts on the listening socket, which Linux copies to every connection it
/// accepts (tiny_http accepts them, out of our reach).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_timeouts(listener: &std::net::TcpListener, timeout: std::time::Duration) -> Result<()> {
    use std::os::fd::AsRawFd;
    let value = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    for option in [libc::SO_RCVTIMEO, libc::SO_SNDTIMEO] {
        // SAFETY: a valid socket, a valid pointer to a timeval and its size.
        let done = unsafe {
            libc::setsockopt(
                listener.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                (&value as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if done != 0 {
            return Err(Error::Invalid(format!(
                "cannot set the connections' timeout: {}",
                std::io::Error::last_os_error()
            )));
        }
    }
    Ok(())
}

/// Elsewhere no timeout: a stalled body still holds only one of [`MAX_BODY_READERS`].
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_timeouts(_listener: &std::net::TcpListener, _timeout: std::time::Duration) -> Result<()> {
    Ok(())
}

fn respond(request: tiny_http::Request, reply: Reply) {
    let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], reply.content_type.as_bytes())
        .expect("valid header");
    let mut response = tiny_http::Response::from_data(reply.body)
        .with_status_code(reply.status)
        .with_header(header);
    // Header values are ASCII: the note's Greek and arrows are spelt out.
    if let Some(note) = reply.note.filter(|n| n.is_ascii())
        && let Ok(h) = tiny_http::Header::from_bytes(&b"X-Genmodels-Note"[..], note.as_bytes())
    {
        response = response.with_header(h);
    }
    let _ = request.respond(response);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_combined_verdict_flags_an_image_extreme_on_any_component() {
        // Validation: NLL 100..200; input complexity (NLL in bits - PNG bits) 0..100 in an
        // order unrelated to the NLL's; NLL upside down 50 above the NLL.
        let ln2 = std::f64::consts::LN_2;
        let nll: Vec<f64> = (0..101).map(|i| 100.0 + i as f64).collect();
        let parts = ValidationParts {
            png_bits: (nll.iter().enumerate())
                .map(|(i, v)| v / ln2 - ((i * 37) % 101) as f64)
                .collect(),
            turned_nll: nll.iter().map(|v| v + 50.0).collect(),
        };
        let c = Combined::of(&nll, parts, None).unwrap();
        let png_bits = 150.0 / ln2 - 50.0;
        let typical = c.verdict(150.0, png_bits, 200.0, None);
        assert_eq!(typical["verdict"], IN_DISTRIBUTION, "{typical}");
        // As likely as the data, but as likely upside down: the stirred score flags it.
        let unstirred = c.verdict(150.0, png_bits, 150.0, None);
        assert_ne!(unstirred["verdict"], IN_DISTRIBUTION, "{unstirred}");
        assert_eq!(unstirred["components"][2]["p_value"], 1.0 / 102.0);
        // Noise: far less likely than any validation image.
        let noise = c.verdict(5000.0, 6000.0, 5000.0, None);
        assert_ne!(noise["verdict"], IN_DISTRIBUTION, "{noise}");
        // The rule as stated: above the threshold, and 1% of the validation images at most.
        for v in [&typical, &unstirred, &noise] {
            let over = v["value"].as_f64().unwrap() > v["typical_range"][1].as_f64().unwrap();
            assert_eq!(over, v["verdict"] != IN_DISTRIBUTION, "{v}");
        }
        let above = c
            .reference
            .sorted
            .iter()
            .filter(|&&v| v > c.reference.high)
            .count();
        assert!(above * 100 <= c.reference.sorted.len(), "{above}");
    }
}
