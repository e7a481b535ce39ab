//! The command line: clap-derive arguments per subcommand, resolved into a [`RunConfig`] and
//! handed to train / eval / sample. The only place that prints.

mod discriminate;
mod features;
mod progress;
mod zoo;

use crate::config::{self, DataConfig, OptimConfig, RunConfig, Schedule, TrainConfig};
use crate::data::catalog::{self, Dataset, FileState};
use crate::data::{self, Split};
use crate::eval;
use crate::layout;
use crate::models::{ModelConfig, ModelFlags};
use crate::run::{Evaluation, Run};
use crate::train::{self, checkpoint::Which};
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
    /// Semi-supervised learning (Kingma et al.'s M1 and M1+M2): a VAE's q(z|x) means under
    /// k-NN, linear, MLP, label-spreading and M2 classifiers with 100-3000 labels, against the
    /// same classifiers on pixels.
    SemiSupervised(features::SemiArgs),
    /// The playground: a page on 127.0.0.1 to draw digits and see them scored, completed and
    /// sampled by the given runs (default: the zoo's trained models), and the JSON API behind it.
    Serve {
        runs: Vec<PathBuf>,
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Address to bind; loopback by default (use 0.0.0.0 only on a trusted network).
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// A background model (trained with `--perturb-rate`, Ren et al. 2019): the verdicts
        /// of the models of its image shape rest on the likelihood ratio against it.
        #[arg(long)]
        background: Option<PathBuf>,
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
    /// Model to train (see the list below). Not needed with --resume or --config.
    #[arg(long_help = model_help())]
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
    /// Passes over the training set (with --resume: the new total).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Time budget in seconds instead of (or as well as) --epochs.
    #[arg(long)]
    pub max_seconds: Option<u64>,
    /// Images per optimiser step.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Peak learning rate of the optimiser (Adam by default).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Learning-rate schedule over the run.
    #[arg(long, value_enum)]
    pub schedule: Option<Schedule>,
    /// Seed of the initial weights and of the order of the batches.
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
    /// Replace each training pixel with a random value with this probability: the background
    /// model for `genmodels ood --background` (Ren et al. 2019 use 0.1-0.3).
    #[arg(long)]
    pub perturb_rate: Option<f64>,
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
            let request = crate::run::EvalRequest {
                split,
                limit,
                batch_size,
                iwae_k,
                which: checkpoint,
            };
            eval_command(&open(&run, &data_dir)?, &request).map(|_| ())
        }
        Command::Features(a) => features::run(a, &data_dir),
        Command::SemiSupervised(a) => features::run_semi(a, &data_dir),
        Command::Serve {
            runs,
            port,
            host,
            background,
        } => {
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
            let mut playground = crate::serve::Playground::load(&runs, &data_dir, device())?;
            if let Some(background) = background {
                playground = playground.with_background(&resolve(&background)?)?;
            }
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
                [one] => one.join(layout::REPORT),
                _ => PathBuf::from(layout::REPORT),
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
            let run = open(&run, &data_dir)?;
            let out = out.unwrap_or_else(|| run.path().to_path_buf());
            let written = run.latent_pictures(&out, manifold, checkpoint)?;
            println!("wrote {} in {}", written.join(", "), out.display());
            Ok(())
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
            let run = open(&run, &data_dir)?;
            let request = crate::run::SampleRequest {
                n,
                seed,
                class,
                per_class,
                naive,
                which: checkpoint,
            };
            sample_command(&run, &request, out)
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
            let run = open(&run, &data_dir)?;
            let request = crate::run::CompleteRequest {
                split,
                n,
                k,
                seed,
                which: checkpoint,
            };
            complete_command(&run, &request, out)
        }
    }
}

fn device() -> Device {
    Device::flex()
}

/// `genmodels train --help`'s list of models.
fn model_help() -> String {
    let mut help = String::from("Model to train. Not needed with --resume or --config.\n\nModels:");
    for preset in ModelConfig::presets() {
        help.push_str(&format!("\n  {:16} {}", preset.name, preset.about));
    }
    help
}

/// The run at a directory or `zoo:NAME`.
fn open(path: &Path, data_dir: &Path) -> Result<Run> {
    Ok(Run::open(&resolve(path)?, data_dir)?)
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
    tc.perturb_rate = t.perturb_rate.or(tc.perturb_rate);
    if let Some(lr) = t.lr {
        config.optim.lr = lr;
    }
    if let Some(s) = t.schedule {
        config.optim.schedule = s;
    }
    // A zero batch size or epoch count is refused by `Run::create`.
    config.model.apply(t.model_flags())?;
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
        ("--train-limit", t.train_limit.is_some()),
        ("--valid-limit", t.valid_limit.is_some()),
        ("--perturb-rate", t.perturb_rate.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, given)| given.then_some(name))
    .chain(t.model_flags().given())
    .collect()
}

impl TrainArgs {
    /// The model's own flags, for [`ModelConfig::apply`].
    fn model_flags(&self) -> ModelFlags {
        ModelFlags {
            hidden_channels: self.hidden_channels,
            residual_blocks: self.residual_blocks,
            layers: self.layers,
            conditional: self.conditional,
            latent_dim: self.latent_dim,
            iwae_k: self.iwae_k,
        }
    }
}

/// `genmodels train`: returns the run directory.
pub fn train_command(t: TrainArgs, data_dir: &Path) -> Result<PathBuf> {
    // First thing, so that a signal never finds the run without its handler.
    train::stop::install_handler()?;
    let out = t.out.clone();
    let run = if t.resume {
        let ignored = resume_conflicts(&t);
        if !ignored.is_empty() {
            bail!(
                "--resume continues {} exactly as its config.toml says; it takes only --epochs and --max-seconds, not {}. \
                 Edit {} to change the recipe, or start a new run with another --out",
                out.display(),
                ignored.join(", "),
                out.join(config::CONFIG_FILE).display()
            );
        }
        let mut run = Run::open(&out, data_dir)?;
        run.set_budget(t.epochs, t.max_seconds)?;
        if !run.has_checkpoint()? {
            eprintln!(
                "{}: no checkpoint yet, starting from scratch",
                out.display()
            );
        }
        run
    } else {
        Run::create(resolve_config(&t)?, &out, data_dir)?
    };
    train_run(&run)?;
    Ok(out)
}

/// Trains a created or opened run, printing what happens.
fn train_run(run: &Run) -> Result<()> {
    let config = run.config();
    eprintln!(
        "training {} on {} -> {}",
        config.model.name(),
        config.data.dataset,
        run.dir()
    );
    eprintln!("model: {} parameters", run.parameters()?);
    let summary = run.train(&mut TerminalProgress::new())?;
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
        config.data.dataset
    );
    run.write_report()?;
    Ok(())
}

/// `genmodels eval`: scores the run and prints the figure with its estimator.
fn eval_command(run: &Run, request: &crate::run::EvalRequest) -> Result<eval::EvalReport> {
    let evaluation = run.evaluate(request, &mut TerminalProgress::new())?;
    let report = evaluation.report();
    println!("benchmark: {}", report.benchmark);
    match &evaluation {
        Evaluation::Exact(r) => {
            println!("estimator: {} over {} images", r.estimator, r.images);
            println!("nll: {:.3} nats", r.nll_nats_per_image);
            println!("bits/dim: {:.5}", r.bits_per_dim);
        }
        Evaluation::Bounds { elbo, iwae, k } => {
            println!("images: {}", elbo.images);
            println!(
                "ELBO: {:.3} nats (negative ELBO, an upper bound on the NLL; {:.5} bits/dim)",
                elbo.nll_nats_per_image, elbo.bits_per_dim
            );
            println!(
                "IWAE-{k} bound: {:.3} nats (negative IWAE bound, an upper bound on the NLL; {:.5} bits/dim)",
                iwae.nll_nats_per_image, iwae.bits_per_dim
            );
        }
        Evaluation::Accuracy(r) => {
            println!(
                "accuracy: {:.2}% of {} images",
                r.accuracy.unwrap_or(f64::NAN) * 100.0,
                r.images
            );
        }
        Evaluation::Reconstruction(r) => println!(
            "reconstruction loss: {:.3} per image (BCE in nats for binary images, squared error for grey)",
            r.nll_nats_per_image
        ),
    }
    Ok(report.clone())
}

fn sample_command(
    run: &Run,
    request: &crate::run::SampleRequest,
    out: Option<PathBuf>,
) -> Result<()> {
    let out = out.unwrap_or_else(|| run.dir().file(layout::SAMPLES));
    let grid = run.sample(request, &mut TerminalProgress::new())?;
    grid.save(&out)?;
    println!("wrote {} samples to {}", grid.len(), out.display());
    Ok(())
}

fn complete_command(
    run: &Run,
    request: &crate::run::CompleteRequest,
    out: Option<PathBuf>,
) -> Result<()> {
    let out = out.unwrap_or_else(|| run.dir().file(layout::COMPLETIONS));
    let grid = run.complete(request, &mut TerminalProgress::new())?;
    grid.save(&out)?;
    println!(
        "wrote {} images x {} completions to {} (each row: the input with its bottom half hidden, the completions, the original)",
        grid.len() / grid.columns.max(1),
        grid.columns.saturating_sub(2),
        out.display()
    );
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
                    Dataset::SynthDigits | Dataset::SynthShapes => {
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
    if out.join(config::CONFIG_FILE).is_file() {
        eprintln!("{} exists: replacing the previous demo run", out.display());
        std::fs::remove_dir_all(out).with_context(|| format!("cannot clear {}", out.display()))?;
    }
    let mut demo: RunConfig = toml::from_str(DEMO_CONFIG).context("embedded demo config")?;
    demo.train.max_seconds = Some(seconds);
    let run = Run::create(demo, out, Path::new("."))?;
    train_run(&run)?;
    let report = eval_command(
        &run,
        &crate::run::EvalRequest {
            iwae_k: None,
            ..Default::default()
        },
    )?;
    let sample = crate::run::SampleRequest {
        n: 49,
        ..Default::default()
    };
    sample_command(&run, &sample, None)?;
    let complete = crate::run::CompleteRequest {
        n: 8,
        ..Default::default()
    };
    complete_command(&run, &complete, None)?;
    run.write_report()?;
    println!(
        "demo done: test NLL {:.2} nats ({:.4} bits/dim) on {}; see {}/report.html (samples.png, completions.png, loss_curve.svg)",
        report.nll_nats_per_image,
        report.bits_per_dim,
        report.benchmark,
        run.dir()
    );
    Ok(())
}

/// The demo's run config (also in configs/demo.toml).
const DEMO_CONFIG: &str = include_str!("../../configs/demo.toml");
