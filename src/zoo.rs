//! The model zoo: the lecture's benchmark models, trained and shipped in the repository's
//! `zoo/` folder, one run directory per model.
//!
//! ```text
//! zoo/
//!   zoo.toml        the catalogue (written by hand): each model's figure, target and paper anchor,
//!                   in the order the long runs are trained
//!   train.sh        resumes every unfinished run in the background, one thread each
//!   NAME/           a run directory (see `crate::config`), so `zoo:NAME` works wherever a run does:
//!     config.toml   the resolved recipe
//!     metrics.jsonl the learning curve over every session
//!     checkpoints/  the best weights, and the last checkpoint with its optimiser state, so that
//!                   `genmodels train --resume --out zoo:NAME` continues the run exactly
//!     card.json     written by `genmodels zoo update NAME`: test figure, check figure, epochs,
//!                   wall time, machine, date (card.md: the same for people)
//!     eval-test.json, samples.png
//! ```
//!
//! The *check figure* of a card is the model's score of a fixed set of images that our own code
//! draws ([`check_set`]); a test recomputes it from the shipped weights, so a change of kernels
//! or of the checkpoint format that alters a shipped model fails on any machine, with no data
//! files.

use crate::data::{self, ImageSet, Levels, Split};
use crate::error::{Error, Result};
use crate::models::ImageSpec;
use crate::progress::Silent;
use crate::run::TrainedRun;
use crate::train::{self, checkpoint::Which};
use burn::module::Module;
use std::path::{Path, PathBuf};

/// The prefix that names a zoo model in place of a run directory: `zoo:NAME`.
pub const PREFIX: &str = "zoo:";
/// The catalogue's file name inside the zoo folder.
pub const CATALOGUE_FILE: &str = "zoo.toml";
/// The machine-written card inside a zoo model's folder.
pub const CARD_FILE: &str = "card.json";
/// The card for people.
pub const CARD_MD_FILE: &str = "card.md";

/// The zoo folder: `$GENMODELS_ZOO`, else `./zoo` when it holds a catalogue, else the `zoo/` of
/// the source tree this binary was built from.
pub fn dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("GENMODELS_ZOO") {
        return PathBuf::from(dir);
    }
    let local = PathBuf::from("zoo");
    if local.join(CATALOGUE_FILE).is_file() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("zoo")
}

/// What a zoo model's headline figure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Figure {
    /// Exact test NLL, nats per image.
    ExactNll,
    /// Exact test NLL in bits per dimension.
    BitsPerDim,
    /// The negative IWAE-k bound on the test NLL, nats per image (k from the entry).
    Iwae,
    /// Test accuracy of a discriminative classifier, percent.
    Accuracy,
    /// Test accuracy of the Bayes classifier argmax_y p(x|y) p(y), percent.
    BayesAccuracy,
}

impl Figure {
    pub fn unit(self) -> &'static str {
        match self {
            Figure::ExactNll | Figure::Iwae => "nats",
            Figure::BitsPerDim => "bits/dim",
            Figure::Accuracy | Figure::BayesAccuracy => "%",
        }
    }

    /// True for likelihood figures, false for accuracies.
    pub fn lower_is_better(self) -> bool {
        !matches!(self, Figure::Accuracy | Figure::BayesAccuracy)
    }

    /// Whether `value` meets `target`.
    pub fn meets(self, value: f64, target: f64) -> bool {
        if self.lower_is_better() {
            value <= target
        } else {
            value >= target
        }
    }
}

/// One model of the catalogue (`zoo/zoo.toml`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Folder name under `zoo/`, and the `NAME` of `zoo:NAME`.
    pub name: String,
    /// What the model is, in a few words.
    pub title: String,
    pub figure: Figure,
    /// Importance samples of the IWAE figure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iwae_k: Option<usize>,
    /// What the shipped weights must reach, in the figure's unit. Absent for a model that
    /// serves another (the background of a likelihood ratio), judged by what it serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
    /// The paper's (or a routine model's) figure on the same benchmark.
    pub anchor: f64,
    /// Where the anchor comes from.
    pub anchor_source: String,
    /// Order of the long runs that `zoo/train.sh` resumes (lowest first).
    #[serde(default)]
    pub priority: u32,
    /// For a Bayes classifier: the zoo classifier it is compared with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
}

impl Entry {
    /// The target as `≤ 83` or `≥ 97` (`<=`, `>=` with `ascii`), or `-` when there is none.
    pub fn target_text(&self, ascii: bool) -> String {
        let rel = match (self.figure.lower_is_better(), ascii) {
            (true, false) => "≤ ",
            (false, false) => "≥ ",
            (true, true) => "<=",
            (false, true) => ">=",
        };
        self.target
            .map_or_else(|| "-".into(), |t| format!("{rel}{t}"))
    }

    /// Whether `value` meets the target, in words.
    pub fn verdict(&self, value: f64) -> &'static str {
        match self.target {
            Some(t) if self.figure.meets(value, t) => "met",
            Some(_) => "not met yet",
            None => "no target of its own",
        }
    }

    /// Importance samples of an IWAE figure (5000 unless the entry says).
    pub fn iwae_samples(&self) -> usize {
        self.iwae_k.unwrap_or(5000)
    }

    /// The estimator named beside the figure.
    pub fn estimator(&self) -> String {
        match self.figure {
            Figure::ExactNll => "exact NLL".into(),
            Figure::BitsPerDim => "exact NLL, bits/dim".into(),
            Figure::Iwae => format!("IWAE-{} bound", self.iwae_samples()),
            Figure::Accuracy => "test accuracy".into(),
            Figure::BayesAccuracy => "Bayes classifier accuracy, p(x|y) exact".into(),
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    model: Vec<Entry>,
}

/// The zoo: its folder and its catalogue.
#[derive(Debug, Clone)]
pub struct Zoo {
    pub dir: PathBuf,
    pub entries: Vec<Entry>,
}

impl Zoo {
    /// Reads the catalogue of the zoo in [`dir`].
    pub fn open() -> Result<Self> {
        Self::open_at(&dir())
    }

    /// Reads the catalogue of the zoo in `dir`.
    pub fn open_at(dir: &Path) -> Result<Self> {
        let path = dir.join(CATALOGUE_FILE);
        if !path.is_file() {
            return Err(Error::Invalid(format!(
                "no model zoo at {} (no {CATALOGUE_FILE}); set GENMODELS_ZOO to the zoo/ folder of a genmodels checkout",
                dir.display()
            )));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let file: CatalogueFile = toml::from_str(&text)
            .map_err(|e| Error::bad_file(&path, format!("invalid zoo catalogue: {e}")))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            entries: file.model,
        })
    }

    /// The entry called `name`, or an error that lists the zoo.
    pub fn entry(&self, name: &str) -> Result<&Entry> {
        self.entries.iter().find(|e| e.name == name).ok_or_else(|| {
            Error::Invalid(format!(
                "no model {name:?} in the zoo ({}); the zoo has: {}",
                self.dir.display(),
                self.names().join(", ")
            ))
        })
    }

    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.name.as_str()).collect()
    }

    /// The run directory of `name`.
    pub fn run_dir(&self, name: &str) -> Result<PathBuf> {
        Ok(self.dir.join(&self.entry(name)?.name))
    }

    /// Entries that ship weights (a best checkpoint: at least one epoch validated), with their
    /// run directories. A run still in its first epoch has only a last checkpoint, kept so
    /// that it resumes, and ships nothing yet.
    pub fn trained(&self) -> Vec<(&Entry, PathBuf)> {
        self.entries
            .iter()
            .map(|e| (e, self.dir.join(&e.name)))
            .filter(|(_, dir)| matches!(train::checkpoint::locate(dir, Which::Best), Ok(Some(_))))
            .collect()
    }

    /// Entries whose run is not finished (planned epochs not trained and not converged) and
    /// not stopped, in priority order: what `zoo/train.sh` resumes.
    pub fn pending(&self) -> Result<Vec<&Entry>> {
        let mut out = Vec::new();
        for entry in &self.entries {
            let p = run_progress(&self.dir.join(&entry.name))?;
            if !p.finished && !p.stopped {
                out.push(entry);
            }
        }
        out.sort_by_key(|e| e.priority);
        Ok(out)
    }
}

/// `zoo:NAME` to the model's run directory; any other path is returned as it is.
pub fn resolve(path: &Path) -> Result<PathBuf> {
    match path.to_str().and_then(|p| p.strip_prefix(PREFIX)) {
        Some(name) => Zoo::open()?.run_dir(name),
        None => Ok(path.to_path_buf()),
    }
}

/// Where a run stands, read from its config and last checkpoint.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunProgress {
    pub epochs_completed: usize,
    pub planned_epochs: usize,
    pub steps: u64,
    /// Seconds of training over every session.
    pub train_seconds: f64,
    pub best_epoch: Option<usize>,
    pub best_valid_nll: Option<f64>,
    /// No new best validation NLL for `patience` epochs.
    pub converged: bool,
    pub finished: bool,
    /// Stopped by hand before it finished: its last checkpoint keeps the training state but
    /// not the weights and optimiser state (dropped to keep the zoo within its size), so it
    /// cannot resume and `pending` skips it.
    #[serde(default)]
    pub stopped: bool,
}

/// Reads where the run in `run_dir` stands (a run that has not started: epoch 0).
pub fn run_progress(run_dir: &Path) -> Result<RunProgress> {
    let config = crate::config::load_run_config(run_dir)?;
    let last = train::checkpoint::locate(run_dir, Which::Last)?;
    let state = match &last {
        Some(dir) => train::checkpoint::read_state(dir)?,
        None => Default::default(),
    };
    let finished = train::finished(&config.train, &state);
    let stopped =
        !finished && last.is_some_and(|dir| !dir.join(train::checkpoint::MODEL_FILE).is_file());
    Ok(RunProgress {
        epochs_completed: state.epoch,
        planned_epochs: config.train.epochs,
        steps: state.step,
        train_seconds: state.seconds,
        best_epoch: state.best_epoch,
        best_valid_nll: state.best_valid_nll,
        converged: train::converged(&config.train, &state),
        finished,
        stopped,
    })
}

/// Images in the fixed check set.
pub const CHECK_IMAGES: usize = 100;

/// The fixed images a card's check figure is computed on: the first [`CHECK_IMAGES`] images
/// of the embedded synth-digits test split (our own generator, so no data files), at the
/// model's pixel levels (ink = 255 for 8-bit models).
pub fn check_set(image: &ImageSpec) -> Result<ImageSet> {
    let mut set = data::load("synth-digits", Split::Test, Path::new("."))?.truncate(CHECK_IMAGES);
    if set.shape != image.shape {
        return Err(Error::Invalid(format!(
            "the zoo's check images are {}x{}x{}; this model takes {}x{}x{} images",
            set.shape.channels,
            set.shape.height,
            set.shape.width,
            image.shape.channels,
            image.shape.height,
            image.shape.width
        )));
    }
    if image.levels == Levels::Bits8 {
        set.pixels.iter_mut().for_each(|v| *v *= 255);
        set.levels = Levels::Bits8;
        set.binarization = data::Binarization::None;
    }
    Ok(set)
}

/// A figure computed on the check set, with what it measures.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Check {
    /// What was scored, e.g. "first 100 synth-digits test images".
    pub images: String,
    /// What the value is, e.g. "mean exact NLL, nats".
    pub quantity: String,
    pub value: f64,
}

/// The seed of the check figure's IWAE samples.
const CHECK_SEED: u64 = 1;
/// Importance samples of a latent model's check figure.
const CHECK_IWAE_K: usize = 16;

/// Scores the check set with a trained model: the mean exact NLL of p(x) (or of p(x|y) with
/// the images' labels), a VAE's seeded IWAE-16 bound, a classifier's mean cross-entropy, or an
/// autoencoder's mean reconstruction loss.
pub fn check_figure(trained: &TrainedRun) -> Result<Check> {
    let device = trained
        .model
        .devices()
        .first()
        .cloned()
        .unwrap_or_else(burn::tensor::Device::flex);
    let set = check_set(&trained.image)?;
    let images = format!("first {} synth-digits test images", set.len());
    let (quantity, value) = if let Some(ar) = trained.model.as_autoregressive() {
        let log_p = crate::eval::per_image_log_prob(ar, &set, 50, &device, &mut Silent)?;
        let what = if ar.classes() > 0 {
            "mean exact NLL of p(x|y), nats"
        } else {
            "mean exact NLL, nats"
        };
        (
            what.to_string(),
            -log_p.iter().sum::<f64>() / set.len() as f64,
        )
    } else if let Some(latent) = trained.model.as_latent() {
        let (_, iwae) = crate::eval::latent::elbo_and_iwae(
            latent,
            &set,
            CHECK_IWAE_K,
            CHECK_SEED,
            &device,
            &mut Silent,
        )?;
        (
            format!("negative IWAE-{CHECK_IWAE_K} bound (seed {CHECK_SEED}), nats"),
            iwae.nll_nats_per_image,
        )
    } else if let Some(classifier) = trained.model.as_classifier() {
        let log_p = crate::eval::log_likelihood_of_labels(classifier, &set, 50, &device)?;
        (
            "mean cross-entropy -log p(y|x) of the images' labels, nats".to_string(),
            -log_p.iter().sum::<f64>() / set.len() as f64,
        )
    } else {
        let loss = train::mean_objective(&trained.model, &set, 50, &device, &mut Silent)?;
        ("mean reconstruction loss".to_string(), loss)
    };
    Ok(Check {
        images,
        quantity,
        value,
    })
}

/// The machine a figure was measured on.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Machine {
    /// `model name` of /proc/cpuinfo.
    pub cpu: String,
    pub avx512: bool,
    pub cores: usize,
}

impl Machine {
    /// This machine.
    pub fn this() -> Self {
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |key: &str| {
            info.lines()
                .find(|l| l.split(':').next().is_some_and(|k| k.trim() == key))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        };
        // A VM may name only the vendor ("AMD EPYC"): family and model tell the generation.
        let cpu = match (field("model name"), field("cpu family"), field("model")) {
            (Some(name), Some(family), Some(model)) => {
                format!("{name}, family {family} model {model}")
            }
            (Some(name), ..) => name,
            _ => std::env::consts::ARCH.to_string(),
        };
        #[cfg(target_arch = "x86_64")]
        let avx512 = std::arch::is_x86_feature_detected!("avx512f");
        #[cfg(not(target_arch = "x86_64"))]
        let avx512 = false;
        Self {
            cpu,
            avx512,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "{} ({} cores, {})",
            self.cpu,
            self.cores,
            if self.avx512 { "AVX-512" } else { "no AVX-512" }
        )
    }
}

/// A zoo model's card (`card.json`), written by `genmodels zoo update`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Card {
    pub name: String,
    /// The model's command-line name (pixelcnn, gated-pixelcnn, ...).
    pub model: String,
    pub parameters: u64,
    /// Size of the shipped weights file, bytes.
    pub weights_bytes: u64,
    /// Data set, binarization and split of the figure.
    pub benchmark: String,
    pub estimator: String,
    /// The test figure in the entry's unit.
    pub figure: f64,
    pub unit: String,
    pub test_images: usize,
    pub check: Check,
    pub progress: RunProgress,
    /// The checkpoint folder the figures were computed from (under `checkpoints/`).
    pub checkpoint: String,
    /// Machine and date of this card's figures (the training may have spanned several).
    pub machine: Machine,
    pub date: String,
    /// The command that reproduces the figure.
    pub eval_command: String,
    /// The command that continues (or re-runs) the training.
    pub train_command: String,
}

impl Card {
    /// Reads the card of a zoo model's run directory, if it has one.
    pub fn read(run_dir: &Path) -> Result<Option<Card>> {
        let path = run_dir.join(CARD_FILE);
        if !path.is_file() {
            return Ok(None);
        }
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::bad_file(&path, format!("corrupt zoo card: {e}")))
    }

    /// Writes `card.json` and `card.md` (atomically).
    pub fn write(&self, run_dir: &Path, entry: &Entry) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).expect("card serialises");
        crate::atomic::write_atomic(&run_dir.join(CARD_FILE), &json)?;
        let mut text = self.markdown(entry);
        if run_dir.join(crate::layout::SAMPLES).is_file() {
            text.push_str("\n![samples from the shipped weights](samples.png)\n");
        }
        text.push_str(&learning_curve(&train::read_metrics(run_dir)?));
        crate::atomic::write_atomic(&run_dir.join(CARD_MD_FILE), text.as_bytes())
    }

    /// The gap to the paper's anchor, in the figure's unit (positive: worse than the paper).
    pub fn gap(&self, entry: &Entry) -> f64 {
        if entry.figure.lower_is_better() {
            self.figure - entry.anchor
        } else {
            entry.anchor - self.figure
        }
    }

    fn markdown(&self, entry: &Entry) -> String {
        let p = &self.progress;
        let status = status_line(p);
        format!(
            "# {name}: {title}\n\n\
             | | |\n|---|---|\n\
             | benchmark | {benchmark} |\n\
             | figure | **{figure:.4} {unit}** ({estimator}, {images} test images) |\n\
             | target | {target} |\n\
             | paper anchor | {anchor} {unit} ({source}); gap {gap:+.2} |\n\
             | model | {model}, {params} parameters, weights {kb:.0} kB |\n\
             | training | {epochs} epochs of {planned}, {steps} steps, {hours:.2} h of training; {status} |\n\
             | check figure | {check:.6} ({quantity}, {check_images}) |\n\
             | measured on | {machine}, {date} |\n\n\
             Reproduce the figure: `{eval}`\n\n\
             {train_label}: `{train}`\n",
            name = self.name,
            title = entry.title,
            benchmark = self.benchmark,
            figure = self.figure,
            unit = self.unit,
            estimator = self.estimator,
            images = self.test_images,
            target = match entry.target {
                Some(_) => format!(
                    "{} {}: {}",
                    entry.target_text(false),
                    self.unit,
                    entry.verdict(self.figure)
                ),
                None => entry.verdict(self.figure).to_string(),
            },
            anchor = entry.anchor,
            source = entry.anchor_source,
            gap = self.gap(entry),
            model = self.model,
            params = self.parameters,
            kb = self.weights_bytes as f64 / 1e3,
            epochs = p.epochs_completed,
            planned = p.planned_epochs,
            steps = p.steps,
            hours = p.train_seconds / 3600.0,
            check = self.check.value,
            quantity = self.check.quantity,
            check_images = self.check.images,
            machine = self.machine.describe(),
            date = self.date,
            eval = self.eval_command,
            train = self.train_command,
            train_label = if p.finished || p.stopped {
                "Train it again from its recipe"
            } else {
                "Continue the training"
            },
        )
    }
}

/// The per-epoch table of a card: every epoch up to 40 rows, else every k-th and the last.
fn learning_curve(metrics: &[train::EpochMetrics]) -> String {
    if metrics.is_empty() {
        return String::new();
    }
    let every = metrics.len().div_ceil(40);
    let mut out = String::from(
        "\n## Learning curve (every session)\n\n\
         | epoch | train NLL | valid NLL | valid bits/dim | lr | hours | images/s |\n\
         |---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (i, m) in metrics.iter().enumerate() {
        if i % every != 0 && i + 1 != metrics.len() {
            continue;
        }
        out.push_str(&format!(
            "| {}{} | {:.3} | {:.3} | {:.5} | {:.2e} | {:.2} | {:.0} |\n",
            m.epoch,
            if m.partial { " (part)" } else { "" },
            m.train_nll,
            m.valid_nll,
            m.valid_bits_per_dim,
            m.lr,
            m.seconds / 3600.0,
            m.images_per_second
        ));
    }
    out.push_str("\nNLL columns are the training objective in nats per image (cross-entropy for a classifier, the negative ELBO for a VAE); the valid column is of the weights' average when the run keeps one.\n");
    out
}

/// "converged", "finished its N epochs", "stopped at epoch N" or "still training".
pub fn status_line(p: &RunProgress) -> String {
    if p.stopped {
        format!(
            "stopped at epoch {} of {} (its weights and optimiser state were dropped to keep the zoo small: it cannot resume)",
            p.epochs_completed, p.planned_epochs
        )
    } else if p.converged {
        format!(
            "converged (no new best validation NLL since epoch {})",
            p.best_epoch.unwrap_or(0)
        )
    } else if p.finished {
        format!("finished its {} planned epochs", p.planned_epochs)
    } else {
        "still training".into()
    }
}

/// Today's date (UTC), `YYYY-MM-DD`.
pub fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The size of the best (else last) checkpoint's weights file of a run.
pub fn weights_bytes(checkpoint: &Path) -> u64 {
    std::fs::metadata(checkpoint.join(train::checkpoint::MODEL_FILE)).map_or(0, |m| m.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_date_is_well_formed() {
        let d = today();
        assert_eq!(d.len(), 10, "{d}");
        assert!(d.starts_with("20"), "{d}");
    }

    #[test]
    fn figures_compare_in_their_direction() {
        assert!(Figure::ExactNll.meets(79.0, 80.0));
        assert!(!Figure::ExactNll.meets(81.0, 80.0));
        assert!(Figure::Accuracy.meets(99.3, 99.2));
        assert!(!Figure::Accuracy.meets(99.1, 99.2));
    }

    #[test]
    fn an_entry_without_a_target_says_so_and_one_with_a_target_judges_by_it() {
        let file: CatalogueFile = toml::from_str(
            "[[model]]\nname = \"a\"\ntitle = \"t\"\nfigure = \"bits-per-dim\"\n\
             target = 0.95\nanchor = 0.8\nanchor_source = \"s\"\n\
             [[model]]\nname = \"bg\"\ntitle = \"t\"\nfigure = \"bits-per-dim\"\n\
             anchor = 2.87\nanchor_source = \"s\"\n",
        )
        .unwrap();
        let [with, without] = &file.model[..] else {
            panic!("two entries expected")
        };
        assert_eq!(with.target_text(true), "<=0.95");
        assert_eq!(with.target_text(false), "≤ 0.95");
        assert_eq!(with.verdict(0.94), "met");
        assert_eq!(with.verdict(0.96), "not met yet");
        assert_eq!(without.target, None);
        assert_eq!(without.target_text(true), "-");
        assert_eq!(without.verdict(0.1), "no target of its own");
    }

    #[test]
    fn a_path_without_the_prefix_is_left_alone() {
        assert_eq!(
            resolve(Path::new("runs/x")).unwrap(),
            PathBuf::from("runs/x")
        );
    }
}
