//! The command line: clap-derive arguments per subcommand, resolved into a [`RunConfig`] and
//! handed to train / eval / sample. The only place that prints.

mod discriminate;
mod features;
mod progress;
mod zoo;

use crate::data::catalog::{self, Dataset, FileState};
use crate::data::{self, ImageSet, Levels, Split};
use crate::models::{AnyModel, ModelConfig};
use crate::run::{self, DataConfig, OptimConfig, RunConfig, Schedule, TrainConfig};
use crate::sample;
use crate::train::{self, Splits, checkpoint::Which};
use crate::{eval, viz};
use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use clap::{Parser, Subcommand};
use progress::TerminalProgress;
use std::path::{Path, PathBuf};

/// Train, evaluate and sample deep generative models of images.
#[derive(Parser, Debug)]
#[command(name = "genmodels", version, about)]
pub struct Args {
    /// Folder holding the data sets (else $GENMODELS_DATA, else ./data).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

// Built a handful of times per process: boxing the large variant buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a small class-conditional Gated PixelCNN on the embedded synth-digits for a fixed
    /// time, then evaluate, sample (one row per class) and complete; everything lands in one run
    /// directory. Needs no download.
    Demo {
        #[arg(long, default_value = "runs/demo")]
        out: PathBuf,
        /// Training budget in seconds.
        #[arg(long, default_value_t = 210)]
        seconds: u64,
    },
    /// List the known data sets and whether their files are present (`verify`, `download`).
    Datasets {
        #[command(subcommand)]
        action: Option<DatasetsAction>,
    },
    /// Train a model (or resume a run with --resume).
    Train(TrainArgs),
    /// Exact negative log-likelihood of a trained run on a split.
    Eval {
        run: PathBuf,
        #[arg(long, value_enum, default_value_t = Split::Test)]
        split: Split,
        /// Evaluate the first N images only.
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long, default_value_t = 100)]
        batch_size: usize,
        /// Importance samples per image of the IWAE bound (latent models; default 5000). An
        /// exact-likelihood model has no bound to estimate: the flag is refused there.
        #[arg(long)]
        iwae_k: Option<usize>,
        #[arg(long, value_enum, default_value_t = Which::Best)]
        checkpoint: Which,
    },
    /// Feature learning: an autoencoder without labels, then classifiers on its encoder with
    /// 100 / 1000 / all labels against randomly initialised ones (test accuracy over seeds).
    Features(features::FeaturesArgs),
    /// The playground: a page on 127.0.0.1 to draw digits and see them scored, completed and
    /// sampled by the given runs (default: the zoo's trained models), and the JSON API behind it.
    Serve {
        runs: Vec<PathBuf>,
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Address to bind; loopback by default (use 0.0.0.0 only on a trusted network).
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
    },
    /// A self-contained HTML page (images inlined) for one run, or several side by side.
    Report {
        runs: Vec<PathBuf>,
        /// Output file (default: RUN/report.html for one run, report.html for several).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Bayes classifier from a class-conditional density p(x|y): accuracy and calibration,
    /// against a discriminative baseline.
    Classify(discriminate::ClassifyArgs),
    /// Out-of-distribution detection: likelihood, typicality, likelihood ratio and classifier
    /// confidence scores, with AUROC, AUPR and FPR at 95% TPR.
    Ood(discriminate::OodArgs),
    /// VAE pictures: reconstructions, prior samples, an interpolation; for a 2-D latent also
    /// the decoded manifold and a scatter of test-set means by label.
    Pictures {
        run: PathBuf,
        /// Folder for the pictures (default: the run directory).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Require the 2-D manifold and scatter (an error for other latent sizes).
        #[arg(long)]
        manifold: bool,
        #[arg(long, value_enum, default_value_t = Which::Best)]
        checkpoint: Which,
    },
    /// The model zoo: trained benchmark models shipped with the tool (`zoo:NAME` works wherever
    /// a run directory does). Without an action: the table of models and their figures.
    Zoo {
        #[command(subcommand)]
        action: Option<zoo::ZooAction>,
    },
    /// Draw samples from a trained run into a PNG grid.
    Sample {
        run: PathBuf,
        #[arg(long, default_value_t = 64)]
        n: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output PNG (default: RUN/samples.png, where `report` finds it).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Draw every image from class C (class-conditional models).
        #[arg(long, conflicts_with = "per_class")]
        class: Option<u8>,
        /// A grid with one row per class and K samples in each (class-conditional models).
        #[arg(long)]
        per_class: Option<usize>,
        /// Use the naive sampler (one full forward pass per pixel) even where a cached one exists.
        #[arg(long)]
        naive: bool,
        #[arg(long, value_enum, default_value_t = Which::Best)]
        checkpoint: Which,
    },
    /// Occlude the bottom half of test images and sample it back, k completions each.
    Complete {
        run: PathBuf,
        #[arg(long, value_enum, default_value_t = Split::Test)]
        split: Split,
        /// Number of images.
        #[arg(long, default_value_t = 16)]
        n: usize,
        /// Completions per image.
        #[arg(long, default_value_t = 4)]
        k: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output PNG (default: RUN/completions.png, where `report` finds it).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Which::Best)]
        checkpoint: Which,
    },
}

#[derive(Subcommand, Debug)]
pub enum DatasetsAction {
    /// List data sets, where each is looked for, and whether it was found (the default).
    List,
    /// Check every present file against its built-in SHA-256.
    Verify { names: Vec<String> },
    /// Download a data set from its canonical URLs, checking SHA-256s.
    Download {
        name: String,
        /// Base URL to fetch the files from instead of the canonical one.
        #[arg(long)]
        mirror: Option<String>,
    },
}

/// `genmodels train`.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// Model to train: pixelcnn, gated-pixelcnn, row-lstm, diagonal-bilstm, vae-mlp, vae-conv, iwae-mlp (the VAE trained on IWAE-50),
    /// ae-mlp, ae-conv. Not needed with --resume or --config.
    pub model: Option<String>,
    /// Data set name (see `genmodels datasets`).
    #[arg(long)]
    pub data: Option<String>,
    /// Run directory.
    #[arg(long)]
    pub out: PathBuf,
    /// A run config TOML to start from (flags override its keys).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Time budget in seconds instead of (or as well as) --epochs.
    #[arg(long)]
    pub max_seconds: Option<u64>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long, value_enum)]
    pub schedule: Option<Schedule>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// PixelCNN h (feature maps 2h).
    #[arg(long)]
    pub hidden_channels: Option<usize>,
    #[arg(long)]
    pub residual_blocks: Option<usize>,
    /// Train on the first N images only.
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Validate on the first N images only.
    #[arg(long)]
    pub valid_limit: Option<usize>,
    /// Write samples.png every N epochs.
    #[arg(long)]
    pub sample_every: Option<usize>,
    /// Write samples.png every N optimiser steps (a live view of training).
    #[arg(long)]
    pub sample_every_steps: Option<u64>,
    /// Also score the test split after every epoch (learning curve; selection uses valid).
    #[arg(long)]
    pub test_each_epoch: bool,
    /// Gated PixelCNN / PixelRNN: number of gated or LSTM layers.
    #[arg(long)]
    pub layers: Option<usize>,
    /// Gated PixelCNN: learn p(x|y) with a class embedding in every gate (needs labels).
    #[arg(long)]
    pub conditional: bool,
    /// VAE / autoencoder latent size.
    #[arg(long)]
    pub latent_dim: Option<usize>,
    /// Train the VAE on the IWAE-k bound (k samples per image); 1 = ELBO.
    #[arg(long)]
    pub iwae_k: Option<usize>,
}

/// Runs a parsed command line.
pub fn run(args: Args) -> Result<()> {
    let data_dir = data::resolve_data_dir(args.data_dir.as_deref());
    match args.command {
        Command::Demo { out, seconds } => demo(&out, seconds),
        Command::Datasets { action } => datasets(action.unwrap_or(DatasetsAction::List), &data_dir),
        Command::Train(mut t) => {
            t.out = resolve(&t.out)?;
            train_command(t, &data_dir).map(|_| ())
        }
        Command::Zoo { action } => zoo::run(
            action.unwrap_or(zoo::ZooAction::List { markdown: false }),
            &data_dir,
        ),
        Command::Eval {
            run,
            split,
            limit,
            batch_size,
            iwae_k,
            checkpoint,
        } => {
            let run = resolve(&run)?;
            if iwae_k.is_some() {
                let config = run::load_run_config(&run)?;
                if !matches!(config.model, ModelConfig::Vae(_)) {
                    bail!(
                        "--iwae-k estimates a bound for latent-variable models (VAEs); {} holds a {}, which is scored exactly (or by accuracy) without it",
                        run.display(),
                        config.model.name()
                    );
                }
            }
            eval_command(
                &run,
                split,
                limit,
                batch_size,
                iwae_k.unwrap_or(5000),
                checkpoint,
                &data_dir,
            )
            .map(|_| ())
        }
        Command::Features(a) => features::run(a, &data_dir),
        Command::Serve { runs, port, host } => {
            let runs = if runs.is_empty() {
                let zoo = crate::zoo::Zoo::open()?;
                // The density models: the playground scores, completes and samples images.
                let trained: Vec<PathBuf> = zoo
                    .trained()
                    .into_iter()
                    .filter(|(e, _)| e.figure != crate::zoo::Figure::Accuracy)
                    .map(|(_, d)| d)
                    .collect();
                if trained.is_empty() {
                    bail!(
                        "name the runs to serve; the zoo at {} has no trained model yet",
                        zoo.dir.display()
                    );
                }
                eprintln!("serving the zoo's {} trained density models", trained.len());
                trained
            } else {
                resolve_all(&runs)?
            };
            let playground = crate::serve::Playground::load(&runs, &data_dir, device())?;
            crate::serve::serve(
                std::sync::Arc::new(playground),
                &format!("{host}:{port}"),
                4,
                |addr| {
                    println!("playground on http://{addr}/ (Ctrl-C to stop)");
                },
            )?;
            Ok(())
        }
        Command::Report { runs, out } => {
            if runs.is_empty() {
                bail!("name at least one run directory");
            }
            let runs = resolve_all(&runs)?;
            let out = out.unwrap_or_else(|| match runs.as_slice() {
                [one] => one.join("report.html"),
                _ => PathBuf::from("report.html"),
            });
            crate::report::write(&runs, &out)?;
            println!("wrote {}", out.display());
            Ok(())
        }
        Command::Classify(mut a) => {
            a.model = resolve(&a.model)?;
            a.baseline = a.baseline.as_deref().map(resolve).transpose()?;
            discriminate::classify(a, &data_dir).map(|_| ())
        }
        Command::Ood(mut a) => {
            a.model = resolve(&a.model)?;
            a.classifier = a.classifier.as_deref().map(resolve).transpose()?;
            a.background = a.background.as_deref().map(resolve).transpose()?;
            discriminate::ood_command(a, &data_dir)
        }
        Command::Pictures {
            run,
            out,
            manifold,
            checkpoint,
        } => {
            let run = resolve(&run)?;
            pictures_command(
                &run,
                out.as_deref().unwrap_or(&run),
                manifold,
                checkpoint,
                &data_dir,
            )
        }
        Command::Sample {
            run,
            n,
            seed,
            out,
            class,
            per_class,
            naive,
            checkpoint,
        } => {
            let run = resolve(&run)?;
            let out = out.unwrap_or_else(|| run.join("samples.png"));
            sample_command(&run, n, seed, &out, (class, per_class), naive, checkpoint)
        }
        Command::Complete {
            run,
            split,
            n,
            k,
            seed,
            out,
            checkpoint,
        } => {
            let run = resolve(&run)?;
            let out = out.unwrap_or_else(|| run.join("completions.png"));
            complete_command(&run, split, n, k, seed, &out, checkpoint, &data_dir)
        }
    }
}

fn device() -> Device {
    Device::flex()
}

/// A run directory as given, or the folder of `zoo:NAME`.
fn resolve(path: &Path) -> Result<PathBuf> {
    Ok(crate::zoo::resolve(path)?)
}

fn resolve_all(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    paths.iter().map(|p| resolve(p)).collect()
}

/// Resolves the flags of `train` into a run config (the ripgrep habit: args -> config -> work).
fn resolve_config(t: &TrainArgs) -> Result<RunConfig> {
    let mut config = match (&t.config, &t.model) {
        (Some(path), _) => RunConfig::load(path)?,
        (None, Some(model)) => RunConfig {
            data: DataConfig {
                dataset: t.data.clone().unwrap_or_else(|| "binarized-mnist".into()),
            },
            image: None,
            model: ModelConfig::from_name(model)?,
            optim: OptimConfig::default(),
            train: TrainConfig::default(),
        },
        (None, None) => bail!(
            "name a model to train (e.g. `genmodels train pixelcnn --data binarized-mnist --out runs/pcnn`), or pass --config FILE or --resume"
        ),
    };
    if let Some(d) = &t.data {
        config.data.dataset = d.clone();
    }
    let tc = &mut config.train;
    if let Some(e) = t.epochs {
        tc.epochs = e;
        if t.max_seconds.is_none() {
            tc.max_seconds = None;
        }
    } else if t.max_seconds.is_some() {
        tc.epochs = usize::MAX / 2; // the time budget decides
    }
    tc.max_seconds = t.max_seconds.or(tc.max_seconds);
    tc.batch_size = t.batch_size.unwrap_or(tc.batch_size);
    tc.seed = t.seed.unwrap_or(tc.seed);
    tc.train_limit = t.train_limit.or(tc.train_limit);
    tc.valid_limit = t.valid_limit.or(tc.valid_limit);
    tc.sample_every_epochs = t.sample_every.unwrap_or(tc.sample_every_epochs);
    tc.sample_every_steps = t.sample_every_steps.unwrap_or(tc.sample_every_steps);
    tc.test_each_epoch |= t.test_each_epoch;
    if let Some(lr) = t.lr {
        config.optim.lr = lr;
    }
    if let Some(s) = t.schedule {
        config.optim.schedule = s;
    }
    match &mut config.model {
        ModelConfig::Pixelcnn(m) => {
            m.hidden_channels = t.hidden_channels.unwrap_or(m.hidden_channels);
            m.residual_blocks = t.residual_blocks.unwrap_or(m.residual_blocks);
        }
        ModelConfig::Vae(m) => {
            m.latent_dim = t.latent_dim.unwrap_or(m.latent_dim);
            m.iwae_k = t.iwae_k.unwrap_or(m.iwae_k);
            if m.iwae_k == 0 {
                bail!("--iwae-k must be at least 1 (1 trains the plain VAE)");
            }
        }
        ModelConfig::GatedPixelcnn(m) => {
            m.hidden_channels = t.hidden_channels.unwrap_or(m.hidden_channels);
            m.layers = t.layers.unwrap_or(m.layers);
            if t.conditional {
                m.classes = Some(10);
            }
        }
        ModelConfig::Pixelrnn(m) => {
            m.hidden_channels = t.hidden_channels.unwrap_or(m.hidden_channels);
            m.layers = t.layers.unwrap_or(m.layers);
        }
        ModelConfig::Autoencoder(m) => m.latent_dim = t.latent_dim.unwrap_or(m.latent_dim),
        ModelConfig::Classifier(m) => m.feature_dim = t.latent_dim.unwrap_or(m.feature_dim),
    }
    if config.train.batch_size == 0 || config.train.epochs == 0 {
        bail!("--batch-size and --epochs must be at least 1");
    }
    Ok(config)
}

/// The flags given with `--resume` that it would otherwise have to ignore.
fn resume_conflicts(t: &TrainArgs) -> Vec<&'static str> {
    [
        ("a model name", t.model.is_some()),
        ("--data", t.data.is_some()),
        ("--config", t.config.is_some()),
        ("--batch-size", t.batch_size.is_some()),
        ("--lr", t.lr.is_some()),
        ("--schedule", t.schedule.is_some()),
        ("--seed", t.seed.is_some()),
        ("--hidden-channels", t.hidden_channels.is_some()),
        ("--residual-blocks", t.residual_blocks.is_some()),
        ("--train-limit", t.train_limit.is_some()),
        ("--valid-limit", t.valid_limit.is_some()),
        ("--layers", t.layers.is_some()),
        ("--conditional", t.conditional),
        ("--latent-dim", t.latent_dim.is_some()),
        ("--iwae-k", t.iwae_k.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, given)| given.then_some(name))
    .collect()
}

/// `genmodels train`: returns the run directory.
pub fn train_command(t: TrainArgs, data_dir: &Path) -> Result<PathBuf> {
    // First thing, so that a signal never finds the run without its handler.
    train::stop::install_handler()?;
    let out = t.out.clone();
    let existing = out.join(run::CONFIG_FILE).is_file();
    let (config, resume_from) = if t.resume {
        let ignored = resume_conflicts(&t);
        if !ignored.is_empty() {
            bail!(
                "--resume continues {} exactly as its config.toml says; it takes only --epochs and --max-seconds, not {}. \
                 Edit {} to change the recipe, or start a new run with another --out",
                out.display(),
                ignored.join(", "),
                out.join(run::CONFIG_FILE).display()
            );
        }
        let mut config = run::load_run_config(&out)?;
        if let Some(e) = t.epochs {
            config.train.epochs = e;
        }
        if let Some(s) = t.max_seconds {
            config.train.max_seconds = Some(s);
        }
        let last = train::checkpoint::locate(&out, Which::Last)?;
        if last.is_none() {
            eprintln!(
                "{}: no checkpoint yet, starting from scratch",
                out.display()
            );
        }
        (config, last)
    } else {
        if existing {
            bail!(
                "{} already holds a run; continue it with `genmodels train --resume --out {}` or choose another --out",
                out.display(),
                out.display()
            );
        }
        (resolve_config(&t)?, None)
    };
    train_run(config, &out, resume_from, data_dir)
}

/// Trains (or resumes) the run `config` describes in `out`.
fn train_run(
    config: RunConfig,
    out: &Path,
    resume_from: Option<PathBuf>,
    data_dir: &Path,
) -> Result<PathBuf> {
    let train_set = data::load(&config.data.dataset, Split::Train, data_dir)?;
    let valid_set = data::load(&config.data.dataset, Split::Valid, data_dir)?;
    let test_set = match config.train.test_each_epoch {
        true => Some(data::load(&config.data.dataset, Split::Test, data_dir)?),
        false => None,
    };
    let image = crate::models::ImageSpec {
        shape: train_set.shape,
        levels: train_set.levels,
    };
    if let Some(saved) = config.image
        && saved != image
    {
        bail!(
            "{}: run was trained on {saved:?} images, data set gives {image:?}",
            out.display()
        );
    }
    // Before anything is written, so that a refused run leaves nothing to `--resume`.
    if image.shape.channels != 1
        && matches!(
            config.model,
            ModelConfig::GatedPixelcnn(_) | ModelConfig::Pixelrnn(_)
        )
    {
        bail!(
            "{} models grey or binary images only for now; {} has {} channels (pixelcnn models colour, R -> G -> B)",
            config.model.name(),
            train_set.benchmark(),
            image.shape.channels
        );
    }
    let mut config = config;
    config.image = Some(image);
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    run::save_config(out, &config)?;
    eprintln!(
        "training {} on {} ({} train / {} valid images) -> {}",
        config.model.name(),
        train_set.benchmark(),
        train_set.len(),
        valid_set.len(),
        out.display()
    );
    let device = device();
    let model = train::init_model(&config, &image, &device.clone().autodiff());
    eprintln!(
        "model: {} parameters",
        burn::module::Module::num_params(&model)
    );
    let sample_every = config.train.sample_every_epochs;
    let classes: Option<Vec<u8>> = match &config.model {
        ModelConfig::GatedPixelcnn(g) => {
            g.classes.map(|c| (0..16).map(|i| (i % c) as u8).collect())
        }
        _ => None,
    };
    let mut on_milestone =
        |model: &crate::models::AnyModel, at: train::Milestone| -> crate::Result<()> {
            let due = match at {
                train::Milestone::Epoch(epoch) => {
                    sample_every > 0 && epoch.is_multiple_of(sample_every)
                }
                train::Milestone::Step(_) => true,
            };
            if due {
                let draw = sample::Draw {
                    n: 16,
                    seed: 1,
                    classes: classes.as_deref(),
                    naive: false,
                };
                let (images, levels) =
                    sample::draw_any(model, &image, &draw, &device, &mut crate::progress::Silent)?;
                let cells = viz::cells(&images, image.shape);
                viz::save_grid(&out.join("samples.png"), &cells, image.shape, levels, 8)?;
            }
            Ok(())
        };
    let summary = train::train(
        model,
        &config,
        out,
        Splits {
            train: &train_set,
            valid: &valid_set,
            test: test_set.as_ref(),
        },
        resume_from,
        &mut TerminalProgress::new(),
        &mut on_milestone,
    )?;
    eprintln!(
        "done: {} epochs, {} steps, {:.0}s{}; best valid NLL {} nats ({})",
        summary.epochs_completed,
        summary.steps,
        summary.seconds,
        if summary.stopped_by_time_budget {
            " (time budget reached)"
        } else {
            ""
        },
        summary
            .best_valid_nll
            .map_or("-".into(), |v| format!("{v:.2}")),
        valid_set.benchmark()
    );
    let json = serde_json::to_vec_pretty(&summary)?;
    run::write_atomic(&out.join("train-summary.json"), &json)?;
    if config.train.final_samples > 0 {
        // Pictures for the report: samples from the best model (cached sampler where there is one).
        let best = train::load_trained(out, Which::Best, &device)?;
        let n = config.train.final_samples;
        let per_class: Option<Vec<u8>> = best
            .model
            .as_autoregressive()
            .filter(|m| m.classes() > 0)
            .map(|m| (0..n).map(|i| (i * m.classes() / n) as u8).collect());
        let draw = sample::Draw {
            n,
            seed: 1,
            classes: per_class.as_deref(),
            naive: false,
        };
        match sample::draw_any(
            &best.model,
            &image,
            &draw,
            &device,
            &mut TerminalProgress::new(),
        ) {
            Ok((images, levels)) => {
                let columns = (n as f64).sqrt().ceil() as usize;
                viz::save_grid(
                    &out.join("samples.png"),
                    &viz::cells(&images, image.shape),
                    image.shape,
                    levels,
                    columns,
                )?;
            }
            Err(crate::Error::Invalid(_)) => {} // an autoencoder has nothing to sample
            Err(e) => return Err(e.into()),
        }
    }
    crate::report::write(&[out.to_path_buf()], &out.join("report.html"))?;
    Ok(out.to_path_buf())
}

#[allow(clippy::too_many_arguments)]
fn eval_command(
    run_dir: &Path,
    split: Split,
    limit: Option<usize>,
    batch_size: usize,
    iwae_k: usize,
    which: Which,
    data_dir: &Path,
) -> Result<eval::EvalReport> {
    let device = device();
    let trained = train::load_trained(run_dir, which, &device)?;
    let mut set = data::load(&trained.config.data.dataset, split, data_dir)?;
    if let Some(limit) = limit {
        set = set.truncate(limit);
    }
    let progress = &mut TerminalProgress::new();
    println!("benchmark: {}", set.benchmark());
    println!("checkpoint: {}", trained.checkpoint.display());
    let suffix = limit.map_or(String::new(), |l| format!("-first{l}"));
    let report = if let Some(ar) = trained.model.as_autoregressive() {
        let mut report = eval::exact_nll(ar, &set, batch_size.max(1), &device, progress)?;
        if ar.classes() > 0 {
            report.estimator = "exact NLL of p(x|y), given each image's label".into();
        }
        println!(
            "estimator: {} over {} images",
            report.estimator, report.images
        );
        println!("nll: {:.3} nats", report.nll_nats_per_image);
        println!("bits/dim: {:.5}", report.bits_per_dim);
        report
    } else if let Some(latent) = trained.model.as_latent() {
        let (elbo, iwae) = eval::latent::elbo_and_iwae(latent, &set, iwae_k, 1, &device, progress)?;
        println!("images: {}", elbo.images);
        println!(
            "ELBO: {:.3} nats (negative ELBO, an upper bound on the NLL; {:.5} bits/dim)",
            elbo.nll_nats_per_image, elbo.bits_per_dim
        );
        println!(
            "IWAE-{iwae_k} bound: {:.3} nats (negative IWAE bound, an upper bound on the NLL; {:.5} bits/dim)",
            iwae.nll_nats_per_image, iwae.bits_per_dim
        );
        let elbo_json = serde_json::to_vec_pretty(&elbo)?;
        run::write_atomic(
            &run_dir.join(format!("eval-{split}{suffix}-elbo.json")),
            &elbo_json,
        )?;
        iwae
    } else if let AnyModel::Classifier(classifier) = &trained.model {
        let acc = eval::accuracy(classifier, &set, batch_size.max(1), &device)?;
        println!("accuracy: {:.2}% of {} images", acc * 100.0, set.len());
        eval::EvalReport {
            benchmark: set.benchmark(),
            dataset: set.dataset.clone(),
            split: split.to_string(),
            estimator: "classification accuracy (not a likelihood)".into(),
            images: set.len(),
            nll_nats_per_image: f64::NAN,
            bits_per_dim: f64::NAN,
            accuracy: Some(acc),
        }
    } else {
        let nll =
            train::mean_objective(&trained.model, &set, batch_size.max(1), &device, progress)?;
        println!(
            "reconstruction loss: {nll:.3} per image (BCE in nats for binary images, squared error for grey)"
        );
        eval::EvalReport {
            benchmark: set.benchmark(),
            dataset: set.dataset.clone(),
            split: split.to_string(),
            estimator: "autoencoder reconstruction loss (not a likelihood)".into(),
            images: set.len(),
            nll_nats_per_image: nll,
            bits_per_dim: f64::NAN,
            accuracy: None,
        }
    };
    let name = format!("eval-{split}{suffix}.json");
    run::write_atomic(&run_dir.join(&name), &serde_json::to_vec_pretty(&report)?)?;
    Ok(report)
}

fn sample_command(
    run_dir: &Path,
    n: usize,
    seed: u64,
    out: &Path,
    (class, per_class): (Option<u8>, Option<usize>),
    naive: bool,
    which: Which,
) -> Result<()> {
    let device = device();
    let trained = train::load_trained(run_dir, which, &device)?;
    let shape = trained.image.shape;
    let model_classes = trained.model.as_autoregressive().map_or(0, |m| m.classes());
    // A class-conditional model with no class named draws one row per class.
    let per_class = per_class.or((class.is_none() && model_classes > 0).then_some(8));
    let (classes, n, columns): (Option<Vec<u8>>, usize, usize) = match (class, per_class) {
        (Some(c), _) => (Some(vec![c; n]), n, (n as f64).sqrt().ceil() as usize),
        (None, Some(k)) => {
            if model_classes == 0 {
                bail!("--per-class needs a class-conditional model (train with --conditional)");
            }
            let classes: Vec<u8> = (0..model_classes).flat_map(|c| vec![c as u8; k]).collect();
            (Some(classes), model_classes * k, k)
        }
        (None, None) => (None, n, (n as f64).sqrt().ceil() as usize),
    };
    if n == 0 {
        bail!("--n (or --per-class) must be at least 1: an empty grid is not a picture");
    }
    // Every sample is drawn in one batch of float pixels: refuse what cannot fit.
    let bytes = n.saturating_mul(shape.dims()).saturating_mul(4);
    if n > MAX_SAMPLES || bytes > MAX_SAMPLE_BYTES {
        bail!(
            "--n {n} is more than one grid holds ({MAX_SAMPLES} images at most, {} MB of pixels); draw several grids with different --seed",
            MAX_SAMPLE_BYTES / 1_000_000
        );
    }
    let draw = sample::Draw {
        n,
        seed,
        classes: classes.as_deref(),
        naive,
    };
    let (images, levels) = sample::draw_any(
        &trained.model,
        &trained.image,
        &draw,
        &device,
        &mut TerminalProgress::new(),
    )?;
    viz::save_grid(out, &viz::cells(&images, shape), shape, levels, columns)?;
    println!("wrote {n} samples to {}", out.display());
    Ok(())
}

/// The largest sample grid: 100x100 images.
const MAX_SAMPLES: usize = 10_000;
/// Float pixels of the largest batch `sample` draws at once.
const MAX_SAMPLE_BYTES: usize = 2_000_000_000;

#[allow(clippy::too_many_arguments)]
fn complete_command(
    run_dir: &Path,
    split: Split,
    n: usize,
    k: usize,
    seed: u64,
    out: &Path,
    which: Which,
    data_dir: &Path,
) -> Result<()> {
    let device = device();
    let trained = train::load_trained(run_dir, which, &device)?;
    let Some(model) = trained.model.as_autoregressive() else {
        bail!(
            "completion needs an autoregressive model (pixelcnn); {} holds a {}",
            run_dir.display(),
            trained.config.model.name()
        );
    };
    let set = data::load(&trained.config.data.dataset, split, data_dir)?.truncate(n);
    let gated = match &trained.model {
        AnyModel::GatedPixelcnn(g) => Some(g),
        _ => None,
    };
    write_completions(model, gated, &set, k.max(1), seed, out, &device)?;
    println!(
        "wrote {} images x {k} completions to {}",
        set.len(),
        out.display()
    );
    Ok(())
}

/// `genmodels pictures`: reconstructions, prior samples, an interpolation and, for a 2-D
/// latent, the decoded manifold and a scatter of test-set posterior means by label.
fn pictures_command(
    run_dir: &Path,
    out: &Path,
    manifold: bool,
    which: Which,
    data_dir: &Path,
) -> Result<()> {
    use sample::latent;
    let device = device();
    let trained = train::load_trained(run_dir, which, &device)?;
    let Some(model) = trained.model.as_latent() else {
        bail!(
            "latent pictures need a VAE; {} holds a {}",
            run_dir.display(),
            trained.config.model.name()
        );
    };
    let shape = trained.image.shape;
    if manifold && model.latent_dim() != 2 {
        bail!(
            "--manifold needs a 2-D latent space; this model has {} dimensions (train with --latent-dim 2)",
            model.latent_dim()
        );
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let test = data::load(&trained.config.data.dataset, Split::Test, data_dir)?;
    let n = 10.min(test.len());
    // Reconstructions: inputs on the first row, outputs on the second.
    let inputs: Vec<u8> = test.epoch_pixels(0)[..n * shape.dims()]
        .iter()
        .map(|&v| (v as usize * 255 / (test.levels.count() - 1)) as u8)
        .collect();
    let recon = latent::reconstructions(model, &test, n, &device);
    let mut cells = viz::cells(&inputs, shape);
    cells.extend(viz::cells(&recon, shape));
    viz::save_grid(
        &out.join("reconstructions.png"),
        &cells,
        shape,
        Levels::Bits8,
        n,
    )?;
    let samples = latent::prior_samples(model, 64, 1, &device);
    viz::save_grid(
        &out.join("prior_samples.png"),
        &viz::cells(&samples, shape),
        shape,
        Levels::Bits8,
        8,
    )?;
    let line = latent::interpolation(model, &test, 0, 1.min(test.len() - 1), 10, &device);
    viz::save_grid(
        &out.join("interpolation.png"),
        &viz::cells(&line, shape),
        shape,
        Levels::Bits8,
        10,
    )?;
    let mut written = vec![
        "reconstructions.png",
        "prior_samples.png",
        "interpolation.png",
    ];
    if model.latent_dim() == 2 {
        let grid = latent::manifold(model, 20, 3.0, &device)?;
        viz::save_grid(
            &out.join("manifold.png"),
            &viz::cells(&grid, shape),
            shape,
            Levels::Bits8,
            20,
        )?;
        let points = latent::posterior_means(model, &test, 5000, &device);
        let labels = test.labels.clone().unwrap_or_else(|| vec![0; points.len()]);
        let title = format!(
            "posterior means of {} test images ({})",
            points.len(),
            test.dataset
        );
        viz::latent_scatter(
            &out.join("latent_scatter.svg"),
            &points,
            &labels[..points.len()],
            &title,
        )?;
        written.extend(["manifold.png", "latent_scatter.svg"]);
    }
    println!("wrote {} in {}", written.join(", "), out.display());
    Ok(())
}

/// One row per image: the occluded input (bottom half grey), k completions, the original.
fn write_completions(
    model: &dyn crate::models::Autoregressive,
    gated: Option<&crate::models::GatedPixelCnn>,
    set: &ImageSet,
    k: usize,
    seed: u64,
    out: &Path,
    device: &Device,
) -> Result<()> {
    let shape = set.shape;
    let dims = shape.dims();
    let originals = set.epoch_pixels(0);
    let known = sample::top_half_known(shape);
    let repeated: Vec<u8> = originals
        .chunks(dims)
        .flat_map(|img| img.repeat(k))
        .collect();
    // A class-conditional model completes each image given its true class.
    let classes: Option<Vec<u8>> = match (model.classes(), &set.labels) {
        (0, _) => None,
        (_, Some(labels)) => Some(labels.iter().flat_map(|&l| vec![l; k]).collect()),
        (_, None) => bail!("a class-conditional model needs labelled images to complete"),
    };
    let spec = sample::SampleSpec {
        shape,
        levels: set.levels,
        seed,
        classes: classes.as_deref(),
    };
    let progress = &mut TerminalProgress::new();
    let completed = match gated {
        Some(gated) => {
            sample::cached::complete_gated(&gated.to_host(), &spec, &repeated, &known, progress)
        }
        None => sample::complete(model, &spec, &repeated, &known, device, progress),
    };
    let mut cells: Vec<Option<&[u8]>> = Vec::new();
    let occluded: Vec<Vec<u8>> = originals
        .chunks(dims)
        .map(|img| {
            img.iter()
                .zip(&known)
                .map(|(&v, &keep)| if keep { v } else { 0 })
                .collect()
        })
        .collect();
    for (i, original) in originals.chunks(dims).enumerate() {
        cells.push(Some(&occluded[i]));
        for j in 0..k {
            cells.push(Some(&completed[(i * k + j) * dims..(i * k + j + 1) * dims]));
        }
        cells.push(Some(original));
    }
    viz::save_grid(out, &cells, shape, set.levels, k + 2)?;
    Ok(())
}

fn datasets(action: DatasetsAction, data_dir: &Path) -> Result<()> {
    match action {
        DatasetsAction::List | DatasetsAction::Verify { .. } => {
            let (check, names) = match &action {
                DatasetsAction::Verify { names } if !names.is_empty() => (true, names.clone()),
                DatasetsAction::Verify { .. } => (true, catalog::NAMES.map(String::from).to_vec()),
                _ => (false, catalog::NAMES.map(String::from).to_vec()),
            };
            println!(
                "data dir: {} (--data-dir, else $GENMODELS_DATA, else ./data)",
                data_dir.display()
            );
            let mut bad = 0;
            for name in names {
                let dataset = Dataset::parse(&name)?;
                match dataset {
                    Dataset::SynthDigits => {
                        println!("{name:16} embedded (generated by genmodels; always available)")
                    }
                    Dataset::Cifar10 => {
                        let dir = data_dir.join("cifar10/cifar-10-batches-bin");
                        let found = dir.join("test_batch.bin").is_file();
                        println!(
                            "{name:16} {} {}",
                            if found { "found  " } else { "missing" },
                            dir.display()
                        );
                    }
                    _ => {
                        for (file, path, state) in catalog::status(&dataset, data_dir, check) {
                            let state_text = match &state {
                                FileState::Missing => "missing".to_string(),
                                FileState::Present => "found".to_string(),
                                FileState::Verified => "ok (sha256)".to_string(),
                                FileState::Unverifiable => {
                                    "found (no reference checksum for this form)".to_string()
                                }
                                FileState::Mismatch { found } => {
                                    bad += 1;
                                    format!("CHECKSUM MISMATCH: {found}, expected {}", file.sha256)
                                }
                            };
                            println!("{name:16} {state_text:12} {}", path.display());
                        }
                    }
                }
            }
            if bad > 0 {
                bail!(
                    "{bad} file(s) failed verification; re-download them with `genmodels datasets download NAME`"
                );
            }
            Ok(())
        }
        DatasetsAction::Download { name, mirror } => {
            let dataset = Dataset::parse(&name)?;
            let written =
                data::download::download(&dataset, data_dir, mirror.as_deref(), |file, url| {
                    eprintln!("downloading {file} from {url}");
                })?;
            println!(
                "{name}: {} file(s) downloaded and verified into {}",
                written.len(),
                data_dir.display()
            );
            Ok(())
        }
    }
}

/// `genmodels demo`: a small class-conditional Gated PixelCNN on synth-digits, trained for
/// `seconds`, then evaluated, sampled (one row per class) and completed, all in `out`.
fn demo(out: &Path, seconds: u64) -> Result<()> {
    if out.join(run::CONFIG_FILE).is_file() {
        eprintln!("{} exists: replacing the previous demo run", out.display());
        std::fs::remove_dir_all(out).with_context(|| format!("cannot clear {}", out.display()))?;
    }
    let mut config: RunConfig = toml::from_str(DEMO_CONFIG).context("embedded demo config")?;
    config.train.max_seconds = Some(seconds);
    let data_dir = PathBuf::from(".");
    let run_dir = train_run(config, out, None, &data_dir)?;
    let report = eval_command(&run_dir, Split::Test, None, 100, 1, Which::Best, &data_dir)?;
    sample_command(
        &run_dir,
        49,
        1,
        &run_dir.join("samples.png"),
        (None, None),
        false,
        Which::Best,
    )?;
    complete_command(
        &run_dir,
        Split::Test,
        8,
        4,
        1,
        &run_dir.join("completions.png"),
        Which::Best,
        &data_dir,
    )?;
    crate::report::write(std::slice::from_ref(&run_dir), &run_dir.join("report.html"))?;
    println!(
        "demo done: test NLL {:.2} nats ({:.4} bits/dim) on {}; see {}/report.html (samples.png, completions.png, loss_curve.svg)",
        report.nll_nats_per_image,
        report.bits_per_dim,
        report.benchmark,
        run_dir.display()
    );
    Ok(())
}

/// The demo's run config (also in configs/demo.toml).
const DEMO_CONFIG: &str = include_str!("../../configs/demo.toml");
