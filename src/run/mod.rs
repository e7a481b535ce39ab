//! A run: one model, its config and its directory. Create or open one, then train, evaluate,
//! sample and complete on it. The CLI, `serve`, `report`, the zoo and the tests share this API;
//! the CLI only parses and prints.
//!
//! ```no_run
//! use genmodels::run::{Run, EvalRequest};
//! # fn main() -> genmodels::Result<()> {
//! let config = genmodels::config::RunConfig::load("configs/pixelcnn-bmnist.toml".as_ref())?;
//! let run = Run::create(config, "runs/pcnn".as_ref(), "data".as_ref())?;
//! run.train(&mut genmodels::progress::Silent)?;
//! let evaluation = run.evaluate(&EvalRequest::default(), &mut genmodels::progress::Silent)?;
//! println!("{:.2} nats", evaluation.report().nll_nats_per_image);
//! # Ok(()) }
//! ```

use crate::config::RunConfig;
use crate::data::{self, ImageSet, ImageShape, Levels, Split};
use crate::error::{Error, Result};
use crate::eval::{self, EvalReport};
use crate::layout::{self, RunDir};
use crate::models::{AnyModel, ImageSpec};
use crate::progress::{Progress, Silent};
use crate::sample;
use crate::train::checkpoint::{self, TrainState, Which};
use crate::train::{self, Splits, TrainSummary};
use crate::viz;
use burn::tensor::Device;
use std::path::{Path, PathBuf};

/// A run directory with its config, and the data folder its data set is read from.
#[derive(Debug, Clone)]
pub struct Run {
    dir: RunDir,
    config: RunConfig,
    data_dir: PathBuf,
    device: Device,
}

/// A trained model, rebuilt from its run directory: the config, the model with the `which`
/// checkpoint's weights (falling back to the last one when no best exists), and its state.
pub struct TrainedRun {
    pub config: RunConfig,
    pub image: ImageSpec,
    pub model: AnyModel,
    pub state: TrainState,
    pub checkpoint: PathBuf,
}

/// Loads a run's model for evaluation or sampling, on `device` (no autodiff needed).
pub fn load_trained(run_dir: &Path, which: Which, device: &Device) -> Result<TrainedRun> {
    let config = crate::config::load_run_config(run_dir)?;
    let image = config.image_spec(run_dir)?;
    let dir = match checkpoint::locate(run_dir, which)? {
        Some(dir) => dir,
        None => checkpoint::locate(run_dir, Which::Last)?.ok_or_else(|| {
            Error::Invalid(format!(
                "{} has no checkpoint yet: training has not finished an epoch or a checkpoint interval",
                run_dir.display()
            ))
        })?,
    };
    let model = crate::models::build(&config.model, &image, device);
    let loaded = checkpoint::load(&dir, model)?;
    Ok(TrainedRun {
        config,
        image,
        model: loaded.model,
        state: loaded.state,
        checkpoint: dir,
    })
}

impl Run {
    /// A new run of `config` in `dir`. Refuses a directory that already holds a run, and data
    /// the model cannot take, before anything is written; then writes `config.toml` with the
    /// data's `[image]` table.
    pub fn create(config: RunConfig, dir: &Path, data_dir: &Path) -> Result<Self> {
        let run_dir = RunDir::new(dir);
        if run_dir.holds_a_run() {
            return Err(Error::Invalid(format!(
                "{run_dir} already holds a run; continue it with `genmodels train --resume --out {run_dir}` or choose another --out"
            )));
        }
        if config.train.batch_size == 0 || config.train.epochs == 0 {
            return Err(Error::Invalid(
                "--batch-size and --epochs must be at least 1".into(),
            ));
        }
        if let Some(rate) = config.train.perturb_rate {
            if !(rate > 0.0 && rate < 1.0) {
                return Err(Error::Invalid(format!(
                    "--perturb-rate {rate}: the share of pixels replaced must lie strictly between 0 and 1 (Ren et al. use 0.1-0.3)"
                )));
            }
            if config.train.augment_shift.is_some_and(|s| s > 0) {
                return Err(Error::Invalid(
                    "perturb_rate and augment_shift cannot be combined".into(),
                ));
            }
        }
        let image = image_of_data(&config, data_dir)?;
        let mut config = config;
        config.image = Some(image);
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        crate::config::save_config(dir, &config)?;
        Ok(Self {
            dir: run_dir,
            config,
            data_dir: data_dir.to_path_buf(),
            device: Device::flex(),
        })
    }

    /// An existing run (a run directory with a `config.toml`). A config that has never
    /// trained (a recipe written by hand, as the zoo's are) gets its `[image]` table from the
    /// data here, after the same checks as [`Run::create`]; it is saved when training starts.
    pub fn open(dir: &Path, data_dir: &Path) -> Result<Self> {
        let mut config = crate::config::load_run_config(dir)?;
        if config.image.is_none() {
            config.image = Some(image_of_data(&config, data_dir)?);
        }
        Ok(Self {
            dir: RunDir::new(dir),
            config,
            data_dir: data_dir.to_path_buf(),
            device: Device::flex(),
        })
    }

    /// The same run on another device (model code is backend-agnostic).
    pub fn with_device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    pub fn dir(&self) -> &RunDir {
        &self.dir
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config(&self) -> &RunConfig {
        &self.config
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The image spec; exists once the run was created.
    pub fn image(&self) -> Result<ImageSpec> {
        self.config.image_spec(self.path())
    }

    /// The data set's `split`.
    pub fn data(&self, split: Split) -> Result<ImageSet> {
        data::load(&self.config.data.dataset, split, &self.data_dir)
    }

    /// Changes the training budget (epochs and/or seconds) before training on; saved.
    pub fn set_budget(&mut self, epochs: Option<usize>, max_seconds: Option<u64>) -> Result<()> {
        if epochs == Some(0) {
            return Err(Error::Invalid("--epochs must be at least 1".into()));
        }
        if let Some(e) = epochs {
            self.config.train.epochs = e;
        }
        if let Some(s) = max_seconds {
            self.config.train.max_seconds = Some(s);
        }
        crate::config::save_config(self.path(), &self.config)
    }

    /// Whether training has left a checkpoint to continue from.
    pub fn has_checkpoint(&self) -> Result<bool> {
        Ok(checkpoint::locate(self.path(), Which::Last)?.is_some())
    }

    /// Parameters of the model the config describes.
    pub fn parameters(&self) -> Result<usize> {
        let image = self.image()?;
        Ok(burn::module::Module::num_params(&crate::models::build(
            &self.config.model,
            &image,
            &self.device,
        )))
    }

    /// Trains from the last checkpoint (from scratch when there is none) until the config's
    /// epochs, time budget or patience end it; writes samples at the configured milestones,
    /// `train-summary.json`, the final samples and `report.html`.
    pub fn train(&self, progress: &mut dyn Progress) -> Result<TrainSummary> {
        let image = self.image()?;
        let model = train::init_model(&self.config, &image, &self.device.clone().autodiff());
        self.train_from(model, progress)
    }

    /// [`Run::train`] starting from `model` (built on `self.device().autodiff()`) instead of
    /// the config's seeded initialisation, e.g. a classifier whose encoder comes from an
    /// autoencoder. A checkpoint in the run, when there is one, still takes precedence.
    pub fn train_from(&self, model: AnyModel, progress: &mut dyn Progress) -> Result<TrainSummary> {
        let config = &self.config;
        let image = self.image()?;
        // The config as trained (with its [image] table), before the first step.
        crate::config::save_config(self.path(), config)?;
        let train_set = self.data(Split::Train)?;
        let valid_set = self.data(Split::Valid)?;
        let test_set = match config.train.test_each_epoch {
            true => Some(self.data(Split::Test)?),
            false => None,
        };
        let resume_from = checkpoint::locate(self.path(), Which::Last)?;
        let sample_every = config.train.sample_every_epochs;
        let samples_path = self.dir.file(layout::SAMPLES);
        let mut on_milestone = |model: &AnyModel, at: train::Milestone| -> Result<()> {
            let due = match at {
                train::Milestone::Epoch(epoch) => {
                    sample_every > 0 && epoch.is_multiple_of(sample_every)
                }
                train::Milestone::Step(_) => true,
            };
            if due {
                let grid = sample_grid(model, &image, 16, 1, false, &self.device, &mut Silent)?;
                grid.save(&samples_path)?;
            }
            Ok(())
        };
        let summary = train::train(
            model,
            config,
            self.path(),
            Splits {
                train: &train_set,
                valid: &valid_set,
                test: test_set.as_ref(),
            },
            resume_from,
            progress,
            &mut on_milestone,
        )?;
        crate::atomic::write_json(&self.dir.file(layout::TRAIN_SUMMARY), &summary)?;
        if config.train.final_samples > 0 {
            // Pictures for the report: samples from the best model (fast sampler where there is
            // one). Autoencoders and classifiers have nothing to sample.
            let best = self.load(Which::Best)?;
            let n = config.train.final_samples;
            let naive_seconds = match best.model.as_autoregressive() {
                Some(ar) if best.model.fast_sampler()?.is_none() => {
                    naive_sampling_seconds(ar, &image, n, &self.device)?
                }
                _ => 0.0,
            };
            if naive_seconds > FINAL_SAMPLES_SECONDS {
                // A model without a cached sampler pays one forward pass per pixel value:
                // PixelCNN++'s 16 final samples once took 19 minutes after a 5-minute run.
                progress.start("final samples", 0);
                progress.finish(&format!(
                    "skipped: the naive sampler would take about {:.0} min \
                     (one forward pass per pixel value); draw them with `genmodels sample {} --n {n}`",
                    naive_seconds / 60.0,
                    self.dir
                ));
            } else if best.model.as_autoregressive().is_some() || best.model.as_latent().is_some() {
                sample_grid(&best.model, &image, n, 1, false, &self.device, progress)?
                    .save(&samples_path)?;
            }
        }
        Ok(summary)
    }

    /// The model with the `which` checkpoint's weights.
    pub fn load(&self, which: Which) -> Result<TrainedRun> {
        load_trained(self.path(), which, &self.device)
    }

    /// Scores the trained model on a split by the estimator its kind has (exact NLL, ELBO and
    /// IWAE-k, accuracy, or reconstruction loss) and writes `eval-<split>[-first<N>].json`.
    pub fn evaluate(
        &self,
        request: &EvalRequest,
        progress: &mut dyn Progress,
    ) -> Result<Evaluation> {
        let trained = self.load(request.which)?;
        if request.iwae_k.is_some() && trained.model.as_latent().is_none() {
            return Err(Error::Invalid(format!(
                "--iwae-k estimates a bound for latent-variable models (VAEs); {} holds a {}, which is scored exactly (or by accuracy) without it",
                self.dir,
                trained.config.model.name()
            )));
        }
        let mut set = self.data(request.split)?;
        if let Some(limit) = request.limit {
            set = set.truncate(limit);
        }
        let batch_size = request.batch_size.max(1);
        let device = &self.device;
        let evaluation = if let Some(ar) = trained.model.as_autoregressive() {
            let mut report = eval::exact_nll(ar, &set, batch_size, device, progress)?;
            if ar.classes() > 0 {
                report.estimator = "exact NLL of p(x|y), given each image's label".into();
            }
            Evaluation::Exact(report)
        } else if let Some(latent) = trained.model.as_latent() {
            let k = request.iwae_k.unwrap_or(DEFAULT_IWAE_K);
            let (elbo, iwae) = eval::latent::elbo_and_iwae(latent, &set, k, 1, device, progress)?;
            Evaluation::Bounds { elbo, iwae, k }
        } else if let Some(classifier) = trained.model.as_classifier() {
            let acc = eval::accuracy(classifier, &set, batch_size, device)?;
            Evaluation::Accuracy(EvalReport {
                benchmark: set.benchmark(),
                dataset: set.dataset.clone(),
                split: request.split.to_string(),
                estimator: "classification accuracy (not a likelihood)".into(),
                images: set.len(),
                nll_nats_per_image: f64::NAN,
                bits_per_dim: f64::NAN,
                accuracy: Some(acc),
            })
        } else {
            let loss = train::mean_objective(&trained.model, &set, batch_size, device, progress)?;
            Evaluation::Reconstruction(EvalReport {
                benchmark: set.benchmark(),
                dataset: set.dataset.clone(),
                split: request.split.to_string(),
                estimator: "autoencoder reconstruction loss (not a likelihood)".into(),
                images: set.len(),
                nll_nats_per_image: loss,
                bits_per_dim: f64::NAN,
                accuracy: None,
            })
        };
        let split = request.split.to_string();
        if let Evaluation::Bounds { elbo, .. } = &evaluation {
            let name = layout::eval_file(&split, request.limit, Some("elbo"));
            crate::atomic::write_json(&self.dir.file(&name), elbo)?;
        }
        let name = layout::eval_file(&split, request.limit, None);
        crate::atomic::write_json(&self.dir.file(&name), evaluation.report())?;
        Ok(evaluation)
    }

    /// Draws a grid of samples (see [`SampleRequest`]).
    pub fn sample(&self, request: &SampleRequest, progress: &mut dyn Progress) -> Result<Grid> {
        let trained = self.load(request.which)?;
        let model_classes = trained.model.as_autoregressive().map_or(0, |m| m.classes());
        // A class-conditional model with no class named draws one row per class.
        let per_class = request
            .per_class
            .or((request.class.is_none() && model_classes > 0).then_some(8));
        let (classes, n, columns): (Option<Vec<u8>>, usize, usize) =
            match (request.class, per_class) {
                (Some(c), _) => (
                    Some(vec![c; request.n]),
                    request.n,
                    square_columns(request.n),
                ),
                (None, Some(k)) => {
                    if model_classes == 0 {
                        return Err(Error::Invalid(
                        "--per-class needs a class-conditional model (train with --conditional)"
                            .into(),
                    ));
                    }
                    let classes: Vec<u8> =
                        (0..model_classes).flat_map(|c| vec![c as u8; k]).collect();
                    (Some(classes), model_classes * k, k)
                }
                (None, None) => (None, request.n, square_columns(request.n)),
            };
        check_grid_size(n, trained.image.shape)?;
        let draw = sample::Draw {
            n,
            seed: request.seed,
            classes: classes.as_deref(),
            naive: request.naive,
        };
        let (images, levels) = sample::draw_any(
            &trained.model,
            &trained.image,
            &draw,
            &self.device,
            progress,
        )?;
        Ok(Grid {
            images,
            shape: trained.image.shape,
            levels,
            columns,
        })
    }

    /// Occludes the bottom half of the first `n` images of a split and samples it back, `k`
    /// times each. One row per image: the occluded input (bottom half black), the `k`
    /// completions, the original. A class-conditional model completes given the true class.
    pub fn complete(&self, request: &CompleteRequest, progress: &mut dyn Progress) -> Result<Grid> {
        let trained = self.load(request.which)?;
        let Some(model) = trained.model.as_autoregressive() else {
            return Err(Error::Invalid(format!(
                "completion needs an autoregressive model (pixelcnn, gated-pixelcnn, row-lstm, diagonal-bilstm); {} holds a {}",
                self.dir,
                trained.config.model.name()
            )));
        };
        let k = request.k.max(1);
        let set = self.data(request.split)?.truncate(request.n);
        check_grid_size(set.len() * (k + 2), set.shape)?;
        let shape = set.shape;
        let dims = shape.dims();
        let originals = set.epoch_pixels(0);
        let known = sample::top_half_known(shape);
        let repeated: Vec<u8> = originals
            .chunks(dims)
            .flat_map(|img| img.repeat(k))
            .collect();
        let classes: Option<Vec<u8>> = match (model.classes(), &set.labels) {
            (0, _) => None,
            (_, Some(labels)) => Some(labels.iter().flat_map(|&l| vec![l; k]).collect()),
            (_, None) => {
                return Err(Error::Invalid(
                    "a class-conditional model needs labelled images to complete".into(),
                ));
            }
        };
        let spec = sample::SampleSpec {
            shape,
            levels: set.levels,
            seed: request.seed,
            classes: classes.as_deref(),
        };
        let completed = match trained.model.fast_sampler()? {
            Some(fast) => fast.complete(&spec, &repeated, &known, progress),
            None => sample::complete(model, &spec, &repeated, &known, &self.device, progress)?,
        };
        let mut images = Vec::with_capacity(set.len() * (k + 2) * dims);
        for (i, original) in originals.chunks(dims).enumerate() {
            images.extend(
                original
                    .iter()
                    .zip(&known)
                    .map(|(&v, &keep)| if keep { v } else { 0 }),
            );
            images.extend_from_slice(&completed[i * k * dims..(i + 1) * k * dims]);
            images.extend_from_slice(original);
        }
        Ok(Grid {
            images,
            shape,
            levels: set.levels,
            columns: k + 2,
        })
    }

    /// A latent model's pictures into `out`: reconstructions, prior samples, an interpolation
    /// and, for a 2-D latent, the decoded manifold and a scatter of test-set posterior means
    /// by label. `manifold` requires the 2-D pictures. Returns the files written.
    pub fn latent_pictures(
        &self,
        out: &Path,
        manifold: bool,
        which: Which,
    ) -> Result<Vec<&'static str>> {
        use sample::latent;
        let trained = self.load(which)?;
        let Some(model) = trained.model.as_latent() else {
            return Err(Error::Invalid(format!(
                "latent pictures need a VAE; {} holds a {}",
                self.dir,
                trained.config.model.name()
            )));
        };
        let device = &self.device;
        let shape = trained.image.shape;
        if manifold && model.latent_dim() != 2 {
            return Err(Error::Invalid(format!(
                "--manifold needs a 2-D latent space; this model has {} dimensions (train with --latent-dim 2)",
                model.latent_dim()
            )));
        }
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        let test = self.data(Split::Test)?;
        let n = 10.min(test.len());
        // Reconstructions: inputs on the first row, outputs on the second.
        let top = test.levels.count() - 1;
        let mut rows: Vec<u8> = test.epoch_pixels(0)[..n * shape.dims()]
            .iter()
            .map(|&v| (v as usize * 255 / top) as u8)
            .collect();
        rows.extend(latent::reconstructions(model, &test, n, device)?);
        let save = |name: &str, pixels: &[u8], columns: usize| {
            viz::save_grid(
                &out.join(name),
                &viz::cells(pixels, shape),
                shape,
                Levels::Bits8,
                columns,
            )
        };
        save(layout::RECONSTRUCTIONS, &rows, n)?;
        save(
            layout::PRIOR_SAMPLES,
            &latent::prior_samples(model, 64, 1, device)?,
            8,
        )?;
        let line = latent::interpolation(model, &test, 0, 1.min(test.len() - 1), 10, device)?;
        save(layout::INTERPOLATION, &line, 10)?;
        let mut written = vec![
            layout::RECONSTRUCTIONS,
            layout::PRIOR_SAMPLES,
            layout::INTERPOLATION,
        ];
        if model.latent_dim() == 2 {
            save(
                layout::MANIFOLD,
                &latent::manifold(model, 20, 3.0, device)?,
                20,
            )?;
            let points = latent::posterior_means(model, &test, 5000, device)?;
            let labels = test.labels.clone().unwrap_or_else(|| vec![0; points.len()]);
            let title = format!(
                "posterior means of {} test images ({})",
                points.len(),
                test.dataset
            );
            viz::latent_scatter(
                &out.join(layout::LATENT_SCATTER),
                &points,
                &labels[..points.len()],
                &title,
            )?;
            written.extend([layout::MANIFOLD, layout::LATENT_SCATTER]);
        }
        Ok(written)
    }

    /// Writes `report.html` for this run; returns its path.
    pub fn write_report(&self) -> Result<PathBuf> {
        let out = self.dir.file(layout::REPORT);
        crate::report::write(&[self.path().to_path_buf()], &out)?;
        Ok(out)
    }
}

/// The image spec of the config's data set (its training split), after checking that the
/// model takes such images and that a config made for other images is not reused on them.
fn image_of_data(config: &RunConfig, data_dir: &Path) -> Result<ImageSpec> {
    let train_set = data::load(&config.data.dataset, Split::Train, data_dir)?;
    let image = ImageSpec {
        shape: train_set.shape,
        levels: train_set.levels,
    };
    config
        .model
        .accepts(&image)
        .map_err(|e| Error::Invalid(format!("{}: {e}", train_set.benchmark())))?;
    if let Some(saved) = config.image
        && saved != image
    {
        return Err(Error::Invalid(format!(
            "the config was made for {saved:?} images; {} gives {image:?}",
            train_set.benchmark()
        )));
    }
    Ok(image)
}

/// Importance samples per image of the IWAE bound when none are asked for (Burda et al.).
pub const DEFAULT_IWAE_K: usize = 5000;

/// What [`Run::evaluate`] scores.
#[derive(Debug, Clone)]
pub struct EvalRequest {
    pub split: Split,
    /// The first N images only.
    pub limit: Option<usize>,
    pub batch_size: usize,
    /// Importance samples of the IWAE bound (latent models only; default [`DEFAULT_IWAE_K`]).
    pub iwae_k: Option<usize>,
    pub which: Which,
}

impl Default for EvalRequest {
    fn default() -> Self {
        Self {
            split: Split::Test,
            limit: None,
            batch_size: 100,
            iwae_k: None,
            which: Which::Best,
        }
    }
}

/// What [`Run::evaluate`] found, by the estimator the model's kind has.
#[derive(Debug, Clone)]
pub enum Evaluation {
    /// Exact NLL of an autoregressive model.
    Exact(EvalReport),
    /// A latent model's negative ELBO and negative IWAE-k bound (the headline figure).
    Bounds {
        elbo: EvalReport,
        iwae: EvalReport,
        k: usize,
    },
    /// A classifier's accuracy.
    Accuracy(EvalReport),
    /// An autoencoder's reconstruction loss.
    Reconstruction(EvalReport),
}

impl Evaluation {
    /// The headline report (the one `eval-<split>.json` holds).
    pub fn report(&self) -> &EvalReport {
        match self {
            Evaluation::Exact(r) | Evaluation::Accuracy(r) | Evaluation::Reconstruction(r) => r,
            Evaluation::Bounds { iwae, .. } => iwae,
        }
    }
}

/// What [`Run::sample`] draws.
#[derive(Debug, Clone)]
pub struct SampleRequest {
    pub n: usize,
    pub seed: u64,
    /// Every image from this class (class-conditional models).
    pub class: Option<u8>,
    /// One row per class with this many samples each (class-conditional models; the default
    /// for them is 8).
    pub per_class: Option<usize>,
    /// The naive sampler even where a fast one exists.
    pub naive: bool,
    pub which: Which,
}

impl Default for SampleRequest {
    fn default() -> Self {
        Self {
            n: 64,
            seed: 1,
            class: None,
            per_class: None,
            naive: false,
            which: Which::Best,
        }
    }
}

/// What [`Run::complete`] completes.
#[derive(Debug, Clone)]
pub struct CompleteRequest {
    pub split: Split,
    /// Images.
    pub n: usize,
    /// Completions per image.
    pub k: usize,
    pub seed: u64,
    pub which: Which,
}

impl Default for CompleteRequest {
    fn default() -> Self {
        Self {
            split: Split::Test,
            n: 16,
            k: 4,
            seed: 1,
            which: Which::Best,
        }
    }
}

/// Images for a picture: row-major `[n, c, h, w]` values in `levels`, laid out `columns` wide.
#[derive(Debug, Clone)]
pub struct Grid {
    pub images: Vec<u8>,
    pub shape: ImageShape,
    pub levels: Levels,
    pub columns: usize,
}

impl Grid {
    /// Images in the grid.
    pub fn len(&self) -> usize {
        self.images.len() / self.shape.dims().max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the grid as a PNG (atomically).
    pub fn save(&self, path: &Path) -> Result<()> {
        viz::save_grid(
            path,
            &viz::cells(&self.images, self.shape),
            self.shape,
            self.levels,
            self.columns,
        )
    }
}

/// The largest sample grid: 100x100 images.
pub const MAX_GRID_IMAGES: usize = 10_000;
/// Float pixels of the largest batch drawn at once.
const MAX_GRID_BYTES: usize = 2_000_000_000;

/// Refuses an empty grid and one too large to draw in one batch.
fn check_grid_size(n: usize, shape: ImageShape) -> Result<()> {
    if n == 0 {
        return Err(Error::Invalid(
            "--n (or --per-class) must be at least 1: an empty grid is not a picture".into(),
        ));
    }
    let bytes = n.saturating_mul(shape.dims()).saturating_mul(4);
    if n > MAX_GRID_IMAGES || bytes > MAX_GRID_BYTES {
        return Err(Error::Invalid(format!(
            "{n} images are more than one grid holds ({MAX_GRID_IMAGES} images at most, {} MB of pixels); draw several grids with different --seed",
            MAX_GRID_BYTES / 1_000_000
        )));
    }
    Ok(())
}

fn square_columns(n: usize) -> usize {
    ((n as f64).sqrt().ceil() as usize).max(1)
}

/// The most time the samples drawn when training ends may take; beyond it they are skipped
/// (with the command that draws them).
const FINAL_SAMPLES_SECONDS: f64 = 120.0;

/// About how long the naive sampler takes for `n` images: one forward pass of the batch per
/// pixel value, the second of two passes timed.
fn naive_sampling_seconds(
    model: &dyn crate::models::Autoregressive,
    image: &ImageSpec,
    n: usize,
    device: &Device,
) -> Result<f64> {
    use burn::tensor::{Int, Tensor};
    let shape = image.shape;
    let images = Tensor::<4>::zeros([n, shape.channels, shape.height, shape.width], device);
    let labels = (model.classes() > 0).then(|| Tensor::<1, Int>::zeros([n], device));
    // One step of the naive sampler: the forward pass, then the first pixel's distribution.
    let pass = || {
        model
            .conditionals(images.clone(), labels.as_ref())
            .probabilities_at(0, 0, 0)
    };
    pass()?; // the first pass also allocates and warms the caches
    let start = std::time::Instant::now();
    pass()?;
    let values = (shape.channels * shape.height * shape.width) as f64;
    Ok(start.elapsed().as_secs_f64() * values)
}

/// `n` samples of any model for a picture (one class per image, cycling, for a
/// class-conditional model).
fn sample_grid(
    model: &AnyModel,
    image: &ImageSpec,
    n: usize,
    seed: u64,
    naive: bool,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<Grid> {
    let classes: Option<Vec<u8>> = model
        .as_autoregressive()
        .filter(|m| m.classes() > 0)
        .map(|m| (0..n).map(|i| (i * m.classes() / n) as u8).collect());
    let draw = sample::Draw {
        n,
        seed,
        classes: classes.as_deref(),
        naive,
    };
    let (images, levels) = sample::draw_any(model, image, &draw, device, progress)?;
    Ok(Grid {
        images,
        shape: image.shape,
        levels,
        columns: square_columns(n),
    })
}
