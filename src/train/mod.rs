//! The one trainer, for every model that implements [`Trainable`]: shuffled mini-batches, Adam or
//! RMSProp with a learning-rate schedule and gradient clipping, validation each epoch, the best
//! checkpoint kept, metrics appended to `metrics.jsonl`, resumable checkpoints, and a stop with
//! the step number on a non-finite loss. The loop is written out in full below.

pub mod adam;
pub mod checkpoint;
pub mod ema;
pub mod stop;

use crate::config::{OptimConfig, OptimizerKind, RunConfig, TrainConfig};
use crate::data::{ImageSet, batch};
use crate::error::{Error, Result};
use crate::models::{AnyModel, ImageSpec, Trainable, build};
use crate::progress::Progress;
use crate::units::bits_per_dim;
use burn::grad_clipping::GradientClippingConfig;
use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer, RmsPropConfig};
use burn::tensor::Device;
use checkpoint::{TrainState, Which};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Builds a fresh model from a run config with the run's seed (same seed, same weights).
pub fn init_model(config: &RunConfig, image: &ImageSpec, device: &Device) -> AnyModel {
    crate::seeded::build(device, config.train.seed, || {
        build(&config.model, image, device)
    })
}

/// The optimiser a config asks for.
pub fn optimizer(config: &OptimConfig) -> ModuleOptimizer {
    // TOML has no null: a norm of 0 (or less) also means no clipping.
    let clip = config
        .grad_clip_norm
        .filter(|n| *n > 0.0)
        .map(GradientClippingConfig::Norm);
    match config.kind {
        OptimizerKind::Adam => adam::FusedAdam::new(config.epsilon).init(clip),
        OptimizerKind::Rmsprop => RmsPropConfig::new()
            .with_epsilon(config.epsilon)
            .with_grad_clipping(clip)
            .init(),
    }
}

/// How a training run ended.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrainSummary {
    /// Trainable parameters of the model.
    pub parameters: u64,
    pub epochs_completed: usize,
    pub steps: u64,
    pub seconds: f64,
    pub best_valid_nll: Option<f64>,
    pub last_valid_nll: Option<f64>,
    pub stopped_by_time_budget: bool,
    /// Stopped by the patience rule: no new best validation NLL for `train.patience` epochs.
    pub converged: bool,
}

impl TrainSummary {
    fn of(
        model: &impl Module,
        config: &TrainConfig,
        state: &TrainState,
        last_valid_nll: Option<f64>,
        stopped_by_time_budget: bool,
    ) -> Self {
        Self {
            parameters: model.num_params() as u64,
            epochs_completed: state.epoch,
            steps: state.step,
            seconds: state.seconds,
            best_valid_nll: state.best_valid_nll,
            last_valid_nll,
            stopped_by_time_budget,
            converged: converged(config, state),
        }
    }
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EpochMetrics {
    /// Epochs completed (1-based); fractional stops are marked by `partial`.
    pub epoch: usize,
    pub partial: bool,
    pub step: u64,
    pub seconds: f64,
    pub lr: f64,
    /// Mean training objective over the epoch's batches (nats per image).
    pub train_nll: f64,
    pub train_bits_per_dim: f64,
    /// Validation objective (nats per image) on the validation split.
    pub valid_nll: f64,
    pub valid_bits_per_dim: f64,
    /// Test NLL (nats per image), when the run evaluates the test split every epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_nll: Option<f64>,
    /// Images per second of training in this epoch.
    pub images_per_second: f64,
    /// Mean of each named part of the objective over the epoch's batches (a VAE's `recon` and
    /// `kl`, nats per image); absent for a plain NLL.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub terms: std::collections::BTreeMap<String, f64>,
}

/// When the trainer calls back: after each epoch's validation, or every
/// `train.sample_every_steps` steps (for a live view of samples).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Milestone {
    Epoch(usize),
    Step(u64),
}

/// The training split and the validation split.
pub struct Splits<'a> {
    pub train: &'a ImageSet,
    pub valid: &'a ImageSet,
    /// Also scored after every epoch when given (a learning curve on the test split; model
    /// selection still uses only the validation split).
    pub test: Option<&'a ImageSet>,
}

/// Trains `model` (built on an autodiff device) and returns how it went. With `resume_from`,
/// weights, optimiser and position are restored from that checkpoint first. `on_milestone` is
/// called with the inference model at each [`Milestone`] (e.g. to write samples).
pub fn train<M>(
    model: M,
    config: &RunConfig,
    run_dir: &Path,
    splits: Splits,
    resume_from: Option<PathBuf>,
    progress: &mut dyn Progress,
    on_milestone: &mut dyn FnMut(&M, Milestone) -> Result<()>,
) -> Result<TrainSummary>
where
    M: Module + Trainable,
{
    let tc = &config.train;
    let device = model
        .devices()
        .first()
        .cloned()
        .ok_or_else(|| Error::Invalid("model has no device".into()))?;
    let eval_device = device.clone().without_autodiff();
    if let Some(dir) = &resume_from {
        // A finished run has nothing to train (and its last checkpoint may have been slimmed).
        let state = checkpoint::read_state(dir)?;
        if finished(tc, &state) {
            return Ok(TrainSummary::of(&model, tc, &state, None, false));
        }
    }
    let mut optim = optimizer(&config.optim);
    let ema_decay = match tc.ema_decay {
        Some(d) if !(0.0..1.0).contains(&d) => {
            return Err(Error::Invalid(format!(
                "train.ema_decay must be in [0, 1); got {d}"
            )));
        }
        other => other,
    };
    let (mut model, mut state, mut ema) = match resume_from {
        Some(dir) => {
            let loaded = checkpoint::load(&dir, model)?;
            optim = checkpoint::load_optimizer(&dir, optim)?;
            // A run that turns averaging on midway starts its average at the current weights.
            let ema = match ema_decay {
                Some(_) => Some(match checkpoint::load_ema(&dir, loaded.model.valid())? {
                    Some(ema) => ema,
                    None => loaded.model.valid(),
                }),
                None => None,
            };
            (loaded.model, loaded.state, ema)
        }
        None => {
            let ema = ema_decay.map(|_| model.valid());
            (model, TrainState::default(), ema)
        }
    };
    let train = splits.train;
    for set in [train, splits.valid] {
        if model.needs_labels() && set.labels.is_none() {
            return Err(Error::Invalid(format!(
                "{} needs labels, and {} has none",
                config.model.name(),
                set.benchmark()
            )));
        }
    }
    let n_train = tc.train_limit.map_or(train.len(), |l| l.min(train.len()));
    let batch_size = tc.batch_size.max(1);
    let steps_per_epoch = n_train.div_ceil(batch_size) as u64;
    let total_steps = steps_per_epoch * tc.epochs as u64;
    let valid = splits
        .valid
        .clone()
        .truncate(tc.valid_limit.unwrap_or(usize::MAX));

    let started = Instant::now();
    let seconds_before = state.seconds;
    let elapsed = |start: &Instant| seconds_before + start.elapsed().as_secs_f64();
    let mut last_checkpoint = Instant::now();
    let mut stopped_by_budget = false;
    let mut last_valid = None;

    while !finished(tc, &state) && !stopped_by_budget {
        let epoch = state.epoch;
        let pixels = train.epoch_pixels(epoch);
        let mut order: Vec<usize> = (0..n_train).collect();
        order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(
            tc.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64),
        ));
        let label = match tc.max_seconds {
            Some(_) => format!("epoch {}", epoch + 1),
            None => format!("epoch {}/{}", epoch + 1, tc.epochs),
        };
        progress.start(&label, steps_per_epoch);
        let (mut loss_sum, mut loss_count) = (0.0f64, 0usize);
        let mut term_sums: std::collections::BTreeMap<String, f64> = Default::default();
        let epoch_start = Instant::now();
        let mut lr = 0.0;
        let batches: Vec<&[usize]> = order.chunks(batch_size).collect();
        for (index, chunk) in batches.iter().enumerate().skip(state.batch_in_epoch) {
            // One seed per (run seed, step): a resumed run draws the same shifts and noise.
            let seed = tc.seed ^ state.step.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let batch = match (tc.augment_shift, tc.perturb_rate) {
                (_, Some(rate)) => {
                    batch::make_perturbed(train, &pixels, chunk, rate, seed, &device)
                }
                (Some(shift), None) if shift > 0 => {
                    batch::make_shifted(train, &pixels, chunk, shift, seed, &device)
                }
                _ => batch::make(train, &pixels, chunk, &device),
            };
            let loss = model.loss(batch);
            let value = loss.objective.clone().into_scalar::<f32>() as f64;
            if !value.is_finite() {
                return Err(Error::NonFiniteLoss {
                    step: state.step,
                    epoch: epoch + 1,
                    value,
                    run_dir: run_dir.to_path_buf(),
                });
            }
            // The objective's parts (a VAE's reconstruction and KL), for the epoch's metrics.
            for (name, term) in &loss.terms {
                if *name != "nll" {
                    *term_sums.entry(name.to_string()).or_default() +=
                        term.clone().into_scalar::<f32>() as f64;
                }
            }
            let grads = GradientsParams::from_grads(loss.objective.backward(), &model);
            lr = config
                .optim
                .learning_rate(state.step, steps_per_epoch, total_steps);
            model = optim.step(lr, model, grads);
            if let (Some(average), Some(decay)) = (ema.take(), ema_decay) {
                ema = Some(ema::update(
                    average,
                    &model,
                    ema::decay_at(decay, state.step),
                ));
            }
            state.step += 1;
            state.batch_in_epoch = index + 1;
            loss_sum += value;
            loss_count += 1;
            let mean = loss_sum / loss_count as f64;
            progress.update(
                (index + 1) as u64,
                &format!(
                    "loss {mean:.2} nats | {:.4} bits/dim | lr {lr:.2e}",
                    bits_per_dim(mean, train.shape.dims())
                ),
            );
            state.seconds = elapsed(&started);
            if tc
                .max_seconds
                .is_some_and(|budget| state.seconds >= budget as f64)
            {
                stopped_by_budget = true;
                break;
            }
            if tc.sample_every_steps > 0 && state.step.is_multiple_of(tc.sample_every_steps) {
                let inference = ema.clone().unwrap_or_else(|| model.valid());
                on_milestone(&inference, Milestone::Step(state.step))?;
            }
            let stopping = stop::requested();
            if stopping || last_checkpoint.elapsed().as_secs() >= tc.checkpoint_seconds {
                checkpoint::save(
                    run_dir,
                    Which::Last,
                    &model,
                    Some(&optim),
                    ema.as_ref(),
                    &state,
                )?;
                last_checkpoint = Instant::now();
            }
            if stopping {
                progress.finish("stopping");
                return Err(interrupted(&state, run_dir));
            }
        }
        let epoch_seconds = epoch_start.elapsed().as_secs_f64();
        let partial = state.batch_in_epoch < batches.len();
        // The phase's label already names the epoch.
        progress.finish(&format!(
            "trained in {epoch_seconds:.0}s, train loss {:.2}",
            loss_sum / loss_count.max(1) as f64
        ));
        if !partial {
            state.epoch += 1;
            state.batch_in_epoch = 0;
        }

        // Validation with the inference model (the weights' average, when the run keeps one):
        // the same objective, no autodiff graph.
        let inference = ema.clone().unwrap_or_else(|| model.valid());
        let valid_nll = mean_objective(&inference, &valid, batch_size, &eval_device, progress)?;
        last_valid = Some(valid_nll);
        let test_nll = match splits.test {
            Some(test) => Some(mean_objective(
                &inference,
                test,
                batch_size,
                &eval_device,
                progress,
            )?),
            None => None,
        };
        state.seconds = elapsed(&started);
        let train_nll = loss_sum / loss_count.max(1) as f64;
        let metrics = EpochMetrics {
            epoch: epoch + 1,
            partial,
            step: state.step,
            seconds: state.seconds,
            lr,
            train_nll,
            train_bits_per_dim: bits_per_dim(train_nll, train.shape.dims()),
            valid_nll,
            valid_bits_per_dim: bits_per_dim(valid_nll, train.shape.dims()),
            test_nll,
            images_per_second: (loss_count * batch_size) as f64 / epoch_seconds.max(1e-9),
            terms: term_sums
                .into_iter()
                .map(|(name, sum)| (name, sum / loss_count.max(1) as f64))
                .collect(),
        };
        append_metrics(run_dir, &metrics)?;
        let curve: Vec<crate::viz::CurvePoint> = read_metrics(run_dir)?
            .iter()
            .map(|m| crate::viz::CurvePoint {
                train_nll: m.train_nll,
                valid_nll: m.valid_nll,
            })
            .collect();
        crate::viz::loss_curve(&run_dir.join(crate::layout::LOSS_CURVE), &curve)?;
        if state.best_valid_nll.is_none_or(|best| valid_nll < best) {
            state.best_valid_nll = Some(valid_nll);
            state.best_epoch = Some(state.epoch);
            checkpoint::save(run_dir, Which::Best, &inference, None, None, &state)?;
        }
        checkpoint::save(
            run_dir,
            Which::Last,
            &model,
            Some(&optim),
            ema.as_ref(),
            &state,
        )?;
        last_checkpoint = Instant::now();
        if stop::requested() {
            return Err(interrupted(&state, run_dir)); // asked during scoring: saved just above
        }
        on_milestone(&inference, Milestone::Epoch(epoch + 1))?;
    }
    Ok(TrainSummary::of(
        &model,
        tc,
        &state,
        last_valid,
        stopped_by_budget,
    ))
}

/// Whether a run at `state` is done: its planned epochs trained, or converged.
pub fn finished(config: &TrainConfig, state: &TrainState) -> bool {
    state.epoch >= config.epochs || converged(config, state)
}

/// Whether the validation NLL has had no new best for `patience` epochs.
pub fn converged(config: &TrainConfig, state: &TrainState) -> bool {
    match (config.patience, state.best_epoch) {
        (Some(patience), Some(best)) => state.epoch >= best + patience,
        _ => false,
    }
}

fn interrupted(state: &TrainState, run_dir: &Path) -> Error {
    Error::Interrupted {
        step: state.step,
        epoch: state.epoch + 1,
        run_dir: run_dir.to_path_buf(),
    }
}

/// Mean training objective (nats per image) over a whole split, without gradients.
pub fn mean_objective(
    model: &impl Trainable,
    set: &ImageSet,
    batch_size: usize,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<f64> {
    let pixels = set.epoch_pixels(0);
    let indices: Vec<usize> = (0..set.len()).collect();
    let mut total = 0.0;
    progress.start(&format!("score {}", set.split), set.len() as u64);
    for chunk in indices.chunks(batch_size) {
        let mean = model
            .loss(batch::make(set, &pixels, chunk, device))
            .objective
            .into_scalar::<f32>() as f64;
        total += mean * chunk.len() as f64;
        progress.update((chunk[0] + chunk.len()) as u64, "");
    }
    let nll = total / set.len().max(1) as f64;
    progress.finish(&format!("{} {nll:.2} nats", set.split));
    Ok(nll)
}

fn append_metrics(run_dir: &Path, metrics: &EpochMetrics) -> Result<()> {
    let path = run_dir.join(crate::layout::METRICS);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    let line = serde_json::to_string(metrics).expect("metrics serialise");
    writeln!(file, "{line}").map_err(|e| Error::io(&path, e))
}

/// Reads `metrics.jsonl` of a run (empty when absent).
pub fn read_metrics(run_dir: &Path) -> Result<Vec<EpochMetrics>> {
    let path = run_dir.join(crate::layout::METRICS);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(vec![]);
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line)
                .map_err(|e| Error::bad_file(&path, format!("line {}: {e}", i + 1)))
        })
        .collect()
}
