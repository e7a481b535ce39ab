//! The files of a run directory, named once. Everything that reads or writes a run (the
//! trainer, checkpoints, the evaluator, reports, the zoo, the CLI) takes its file names here.
//!
//! ```text
//! RUN/
//!   config.toml          the resolved RunConfig: `train --config` of it re-creates the run
//!   metrics.jsonl        one JSON object per epoch (train and valid NLL, bits/dim, lr, time)
//!   loss_curve.svg       train and validation NLL per epoch
//!   train-summary.json   how the last training session ended
//!   checkpoints/         step-NNNNNNNN/ {model.safetensors, optimizer.bpk, state.json}, best/
//!   last.json, best.json pointers to the latest and the best checkpoint (rewritten atomically)
//!   eval-<split>.json    an evaluation (eval-<split>-first<N>.json on the first N images)
//!   samples.png, completions.png, reconstructions.png, ... pictures, report.html
//! ```

use std::path::{Path, PathBuf};

pub const CONFIG: &str = "config.toml";
pub const METRICS: &str = "metrics.jsonl";
pub const LOSS_CURVE: &str = "loss_curve.svg";
pub const TRAIN_SUMMARY: &str = "train-summary.json";
pub const CHECKPOINTS: &str = "checkpoints";
pub const LAST_POINTER: &str = "last.json";
pub const BEST_POINTER: &str = "best.json";
pub const SAMPLES: &str = "samples.png";
pub const COMPLETIONS: &str = "completions.png";
pub const REPORT: &str = "report.html";
pub const RECONSTRUCTIONS: &str = "reconstructions.png";
pub const PRIOR_SAMPLES: &str = "prior_samples.png";
pub const INTERPOLATION: &str = "interpolation.png";
pub const MANIFOLD: &str = "manifold.png";
pub const LATENT_SCATTER: &str = "latent_scatter.svg";

/// Inside each checkpoint folder.
pub const MODEL_WEIGHTS: &str = "model.safetensors";
pub const EMA_WEIGHTS: &str = "ema.safetensors";
pub const OPTIMIZER_STATE: &str = "optimizer.bpk";
pub const CHECKPOINT_STATE: &str = "state.json";

/// The evaluation file of `split` (`limit`: on the first N images only; `bound`: a second
/// estimate beside the headline one, e.g. "elbo").
pub fn eval_file(split: &str, limit: Option<usize>, bound: Option<&str>) -> String {
    let first = limit.map_or(String::new(), |l| format!("-first{l}"));
    let bound = bound.map_or(String::new(), |b| format!("-{b}"));
    format!("eval-{split}{first}{bound}.json")
}

/// The Bayes classifier's report on `split` (`genmodels classify`), in the density run.
pub fn classify_file(split: &str) -> String {
    format!("classify-{split}.json")
}

/// The Bayes classifier's confusion matrices on `split`, beside the report (SVG).
pub fn confusion_file(split: &str) -> String {
    format!("confusion-{split}.svg")
}

/// Out-of-distribution inputs with both classifiers' verdicts (`classify --reject`), SVG.
pub fn verdicts_file(split: &str) -> String {
    format!("verdicts-{split}.svg")
}

/// The stem of the OOD report and histogram (`genmodels ood`) of `in_data` against
/// `out_data`, in the density run: `<stem>.json`, `<stem>.svg`.
pub fn ood_stem(in_data: &str, out_data: &str) -> String {
    format!(
        "ood-{}-{}",
        in_data.replace(['/', ':'], "_"),
        out_data.replace(['/', ':'], "_")
    )
}

/// The feature-learning experiment's table and data, in its output folder.
pub const FEATURES_TABLE: &str = "features.md";
pub const FEATURES_JSON: &str = "features.json";
/// The semi-supervised (M1) experiment's table and data, in its output folder.
pub const SEMI_TABLE: &str = "semi.md";
pub const SEMI_JSON: &str = "semi.json";
pub const SEMI_MAP: &str = "semi-map.svg";

/// Whether `name` is an evaluation file of [`eval_file`].
pub fn is_eval_file(name: &str) -> bool {
    name.starts_with("eval-") && name.ends_with(".json")
}

/// A run directory and the paths of its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir(PathBuf);

impl RunDir {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self(path.into())
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `RUN/name`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn config(&self) -> PathBuf {
        self.file(CONFIG)
    }

    /// Whether a run lives here (its config exists).
    pub fn holds_a_run(&self) -> bool {
        self.config().is_file()
    }

    pub fn checkpoints(&self) -> PathBuf {
        self.file(CHECKPOINTS)
    }
}

impl std::fmt::Display for RunDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.display().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_files_name_split_limit_and_bound() {
        assert_eq!(eval_file("test", None, None), "eval-test.json");
        assert_eq!(
            eval_file("valid", Some(100), Some("elbo")),
            "eval-valid-first100-elbo.json"
        );
        assert!(is_eval_file(&eval_file("test", Some(3), None)));
        assert!(!is_eval_file(CONFIG));
    }
}
