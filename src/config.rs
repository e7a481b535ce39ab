//! A run's TOML configuration: data, model, optimiser and training recipe. The directory's
//! files are named in [`crate::layout`]; the run itself is [`crate::run::Run`].

use crate::error::{Error, Result};
use crate::models::{ImageSpec, ModelConfig};
use std::path::Path;

/// Everything needed to re-create a run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    pub data: DataConfig,
    /// Filled in from the data when training starts; models are rebuilt from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageSpec>,
    pub model: ModelConfig,
    #[serde(default)]
    pub optim: OptimConfig,
    #[serde(default)]
    pub train: TrainConfig,
}

/// The `[data]` table.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// A data set name (see `genmodels datasets`).
    pub dataset: String,
}

/// Optimiser.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    Adam,
    Rmsprop,
}

/// Learning-rate schedule, a pure function of the step (see [`OptimConfig::learning_rate`]).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// `lr` throughout (after warm-up).
    Constant,
    /// `lr * decay^epoch`, where epoch is fractional (step / steps_per_epoch).
    Exponential,
    /// Cosine from `lr` to 0 over the planned steps.
    Cosine,
}

/// The `[optim]` table.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    pub kind: OptimizerKind,
    pub lr: f64,
    pub schedule: Schedule,
    /// Per-epoch factor of the exponential schedule.
    pub decay: f64,
    /// Linear warm-up from 0 over this many steps.
    pub warmup_steps: u64,
    /// Clip each parameter's gradient to this L2 norm (burn's per-tensor clipping); 0 = none.
    pub grad_clip_norm: Option<f32>,
    /// Adam/RMSProp epsilon: 1e-8 as in the papers and PyTorch (burn's default is 1e-5).
    pub epsilon: f32,
    /// A faster decay for a run's last epochs (`[optim.anneal]`), added to a long run's
    /// recipe when its curve flattens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anneal: Option<Anneal>,
}

/// From epoch `from_epoch` of the run on (fractional: step / steps per epoch), the schedule's
/// rate is multiplied by a further `decay` per epoch: `lr(step) = schedule(step) *
/// decay^max(0, epoch - from_epoch)`, continuous where it starts. With the exponential
/// schedule's 0.95 and `decay = 0.5`, the rate then falls by 0.475 an epoch.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Anneal {
    pub from_epoch: f64,
    pub decay: f64,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            kind: OptimizerKind::Adam,
            lr: 1e-3,
            schedule: Schedule::Exponential,
            decay: 0.9,
            warmup_steps: 0,
            grad_clip_norm: Some(1.0),
            epsilon: 1e-8,
            anneal: None,
        }
    }
}

impl OptimConfig {
    /// The learning rate at `step`, given the steps per epoch and the planned total.
    pub fn learning_rate(&self, step: u64, steps_per_epoch: u64, total_steps: u64) -> f64 {
        let epoch = step as f64 / steps_per_epoch.max(1) as f64;
        let warm = if self.warmup_steps > 0 {
            ((step + 1) as f64 / self.warmup_steps as f64).min(1.0)
        } else {
            1.0
        };
        let base = match self.schedule {
            Schedule::Constant => self.lr,
            Schedule::Exponential => self.lr * self.decay.powf(epoch),
            Schedule::Cosine => {
                let t = (step as f64 / total_steps.max(1) as f64).min(1.0);
                self.lr * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
        };
        let anneal = self
            .anneal
            .map_or(1.0, |a| a.decay.powf((epoch - a.from_epoch).max(0.0)));
        base * warm * anneal
    }
}

/// The `[train]` table.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub epochs: usize,
    /// Stop after this many seconds of training (checkpointing first), whatever `epochs` says.
    pub max_seconds: Option<u64>,
    pub batch_size: usize,
    pub seed: u64,
    /// Validate on at most this many images each epoch (all when absent).
    pub valid_limit: Option<usize>,
    /// Train on at most this many images (all when absent).
    pub train_limit: Option<usize>,
    /// Also checkpoint mid-epoch every this many seconds, so a killed run loses little.
    pub checkpoint_seconds: u64,
    /// Write `samples.png` after every this many epochs (0 = never during training).
    pub sample_every_epochs: usize,
    /// Also write `samples.png` every this many optimiser steps (0 = never): a live view.
    pub sample_every_steps: u64,
    /// Also score the test split after every epoch (a learning curve; selection uses valid).
    pub test_each_epoch: bool,
    /// Samples drawn into `samples.png` when training ends (0 = none).
    pub final_samples: usize,
    /// Stop once the validation NLL has not improved for this many epochs (converged); absent:
    /// train for `epochs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patience: Option<usize>,
    /// Polyak averaging of the weights with this decay per step (e.g. 0.9995): the average is
    /// validated, kept as the best checkpoint and sampled. Absent: the raw weights.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ema_decay: Option<f64>,
    /// Translate each training image by up to this many pixels (random per image and epoch,
    /// resumable): augmentation for classifiers. A density model would learn the shifted
    /// images' distribution instead of the data's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub augment_shift: Option<usize>,
    /// Replace each training pixel, with this probability, by a uniformly random value (fresh
    /// per step, resumable): the background model of Ren et al. 2019's likelihood ratio,
    /// which learns the population's low-level statistics but not its semantics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub perturb_rate: Option<f64>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 10,
            max_seconds: None,
            batch_size: 32,
            seed: 1,
            valid_limit: None,
            train_limit: None,
            checkpoint_seconds: 300,
            sample_every_epochs: 0,
            sample_every_steps: 0,
            test_each_epoch: false,
            final_samples: 16,
            patience: None,
            ema_decay: None,
            augment_shift: None,
            perturb_rate: None,
        }
    }
}

impl RunConfig {
    /// Reads a config TOML, naming the file in any error.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        toml::from_str(&text).map_err(|e| Error::bad_file(path, format!("invalid run config: {e}")))
    }

    /// The image spec, which exists once training has started.
    pub fn image_spec(&self, run_dir: &Path) -> Result<ImageSpec> {
        self.image.ok_or_else(|| {
            Error::bad_file(
                run_dir.join(CONFIG_FILE),
                "config has no [image] table: this run never started training",
            )
        })
    }
}

/// Name of the config file in a run directory.
pub use crate::layout::CONFIG as CONFIG_FILE;

pub use crate::atomic::write_atomic;

/// Writes the run's config (atomically).
pub fn save_config(run_dir: &Path, config: &RunConfig) -> Result<()> {
    let text = toml::to_string_pretty(config)
        .map_err(|e| Error::Invalid(format!("cannot serialise the run config: {e}")))?;
    write_atomic(&run_dir.join(CONFIG_FILE), text.as_bytes())
}

/// Reads a run directory's config, with a helpful error when `run_dir` is not a run.
pub fn load_run_config(run_dir: &Path) -> Result<RunConfig> {
    let path = run_dir.join(CONFIG_FILE);
    if !path.is_file() {
        return Err(Error::Invalid(format!(
            "{} is not a run directory (no {CONFIG_FILE}); train one with `genmodels train pixelcnn --out {}`",
            run_dir.display(),
            run_dir.display()
        )));
    }
    RunConfig::load(&path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_a_pure_function_of_the_step() {
        let mut c = OptimConfig {
            lr: 1e-3,
            schedule: Schedule::Exponential,
            decay: 0.5,
            warmup_steps: 0,
            ..Default::default()
        };
        assert!((c.learning_rate(0, 100, 1000) - 1e-3).abs() < 1e-15);
        assert!((c.learning_rate(200, 100, 1000) - 2.5e-4).abs() < 1e-15);
        c.schedule = Schedule::Cosine;
        assert!((c.learning_rate(500, 100, 1000) - 5e-4).abs() < 1e-12);
        assert!(c.learning_rate(1000, 100, 1000).abs() < 1e-15);
        c.schedule = Schedule::Constant;
        c.warmup_steps = 10;
        assert!((c.learning_rate(4, 100, 1000) - 5e-4).abs() < 1e-15);
    }

    #[test]
    fn annealing_multiplies_the_schedule_from_its_epoch_on() {
        let plain = OptimConfig {
            lr: 1e-3,
            schedule: Schedule::Exponential,
            decay: 0.5,
            warmup_steps: 0,
            ..Default::default()
        };
        let annealed = OptimConfig {
            anneal: Some(Anneal {
                from_epoch: 2.0,
                decay: 0.1,
            }),
            ..plain.clone()
        };
        // Unchanged up to epoch 2 (step 200 of 100 a epoch), then 0.1 more per epoch.
        for step in [0, 150, 200] {
            let (a, b) = (
                plain.learning_rate(step, 100, 1000),
                annealed.learning_rate(step, 100, 1000),
            );
            assert!((a - b).abs() < 1e-18, "step {step}: {a} vs {b}");
        }
        let at_3 = annealed.learning_rate(300, 100, 1000);
        assert!((at_3 - 1e-3 * 0.125 * 0.1).abs() < 1e-15, "{at_3}");
        let at_2_5 = annealed.learning_rate(250, 100, 1000);
        let expect = 1e-3 * 0.5f64.powf(2.5) * 0.1f64.sqrt();
        assert!((at_2_5 - expect).abs() < 1e-15, "{at_2_5} vs {expect}");
        // A config with it round-trips through TOML; one without it writes no table.
        let text = toml::to_string(&annealed).unwrap();
        assert!(text.contains("[anneal]"), "{text}");
        assert_eq!(toml::from_str::<OptimConfig>(&text).unwrap(), annealed);
        assert!(!toml::to_string(&plain).unwrap().contains("anneal"));
    }

    #[test]
    fn config_round_trips_through_toml() {
        let config = RunConfig {
            data: DataConfig {
                dataset: "synth-digits".into(),
            },
            image: None,
            model: ModelConfig::from_name("pixelcnn").unwrap(),
            optim: OptimConfig::default(),
            train: TrainConfig::default(),
        };
        let text = toml::to_string_pretty(&config).unwrap();
        assert_eq!(toml::from_str::<RunConfig>(&text).unwrap(), config);
    }

    #[test]
    fn every_model_config_and_shipped_toml_parses() {
        for name in crate::models::model_names() {
            let config = RunConfig {
                data: DataConfig {
                    dataset: "synth-digits".into(),
                },
                image: None,
                model: ModelConfig::from_name(name).unwrap(),
                optim: OptimConfig::default(),
                train: TrainConfig::default(),
            };
            let text = toml::to_string_pretty(&config).unwrap();
            assert_eq!(
                toml::from_str::<RunConfig>(&text).unwrap(),
                config,
                "{name}"
            );
        }
        let configs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
        for entry in std::fs::read_dir(configs).unwrap() {
            let path = entry.unwrap().path();
            RunConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn unknown_keys_are_rejected_with_the_file_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[data]\ndataset='mnist'\n[model]\nkind='pixelcnn'\nhiden_channels=3\n",
        )
        .unwrap();
        let msg = RunConfig::load(&path).unwrap_err().to_string();
        assert!(
            msg.contains("c.toml") && msg.contains("hiden_channels"),
            "{msg}"
        );
    }
}
