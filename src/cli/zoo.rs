//! `genmodels zoo`: the table of shipped models, `update` (evaluate a zoo model on its test
//! split, draw its samples, write its card) and `pending` (the runs `zoo/train.sh` resumes).

use super::{discriminate, eval_command, sample_command};
use crate::data::Split;
use crate::run::Run;
use crate::train::{self, checkpoint::Which};
use crate::zoo::{self, Card, Entry, Figure, Zoo};
use anyhow::{Result, bail};
use std::path::Path;

#[derive(clap::Subcommand, Debug)]
pub enum ZooAction {
    /// The table: name, model, data set, size, test figure with its estimator, target, paper
    /// anchor, gap, training state (the default).
    List {
        /// A Markdown table (for docs/RESULTS.md) instead of the terminal one.
        #[arg(long)]
        markdown: bool,
    },
    /// Evaluate a zoo model's best checkpoint on the test split (its benchmark's estimator),
    /// draw samples.png, compute the check figure and write card.json and card.md.
    Update {
        names: Vec<String>,
        /// Keep the test figure of the current card (recompute the check figure, the samples
        /// and the training state only): for a run still training.
        #[arg(long, conflicts_with = "limit")]
        keep_figure: bool,
        /// Score only the first N test images (the card says how many): for a quick look at a
        /// run still training; the shipped figure uses the whole split.
        #[arg(long)]
        limit: Option<usize>,
        /// Samples drawn into samples.png (0 = keep the current picture; a PixelRNN's naive
        /// sampler needs one forward pass per pixel).
        #[arg(long, default_value_t = 64)]
        samples: usize,
    },
    /// The names of the runs that are not finished, in the catalogue's order.
    Pending,
    /// Stop a run that has not finished for good: keep its best weights and where it stopped,
    /// drop the weights and optimiser state of its last checkpoint (the zoo's size limit), so
    /// that `pending` skips it. Then `zoo update NAME --keep-figure` rewrites its card.
    Stop { name: String },
}

pub fn run(action: ZooAction, data_dir: &Path) -> Result<()> {
    let zoo = Zoo::open()?;
    match action {
        ZooAction::List { markdown: false } => list(&zoo),
        ZooAction::List { markdown: true } => markdown(&zoo),
        ZooAction::Pending => {
            for entry in zoo.pending()? {
                println!("{}", entry.name);
            }
            Ok(())
        }
        ZooAction::Stop { name } => stop(&zoo, zoo.entry(&name)?),
        ZooAction::Update {
            names,
            keep_figure,
            limit,
            samples,
        } => {
            let names: Vec<String> = if names.is_empty() {
                zoo.trained().iter().map(|(e, _)| e.name.clone()).collect()
            } else {
                names
            };
            for name in names {
                update(
                    &zoo,
                    zoo.entry(&name)?,
                    keep_figure,
                    limit,
                    samples,
                    data_dir,
                )?;
            }
            Ok(())
        }
    }
}

fn stop(zoo: &Zoo, entry: &Entry) -> Result<()> {
    let dir = zoo.dir.join(&entry.name);
    let progress = zoo::run_progress(&dir)?;
    if progress.finished || progress.stopped {
        bail!(
            "{}: {}; nothing to stop",
            entry.name,
            zoo::status_line(&progress)
        );
    }
    let (Some(best), Some(last)) = (
        train::checkpoint::locate(&dir, Which::Best)?,
        train::checkpoint::locate(&dir, Which::Last)?,
    ) else {
        bail!(
            "{} has no best checkpoint to ship yet: train it for an epoch before stopping it",
            dir.display()
        );
    };
    let freed = train::checkpoint::slim(&last)?;
    println!(
        "{}: stopped at epoch {} (step {}); {:.1} MB of training state dropped, {} kept; \
         now `genmodels zoo update {} --keep-figure`",
        entry.name,
        progress.epochs_completed,
        progress.steps,
        freed as f64 / 1e6,
        best.display(),
        entry.name
    );
    Ok(())
}

fn list(zoo: &Zoo) -> Result<()> {
    println!("model zoo: {}", zoo.dir.display());
    println!(
        "{:<30} {:<16} {:<34} {:>8} {:>24} {:>8} {:>8} {:>7}  training",
        "name", "model", "data set", "params", "test figure", "target", "anchor", "gap"
    );
    for entry in &zoo.entries {
        let dir = zoo.dir.join(&entry.name);
        let card = Card::read(&dir)?;
        let progress = zoo::run_progress(&dir).ok();
        let training = match &progress {
            Some(p) if p.steps == 0 => "not started".to_string(),
            Some(p) => format!(
                "{} epochs, {:.1} h; {}",
                p.epochs_completed,
                p.train_seconds / 3600.0,
                zoo::status_line(p)
            ),
            None => "no run".into(),
        };
        let (model, data, params, figure, gap) = match &card {
            Some(c) => (
                c.model.clone(),
                short_benchmark(&c.benchmark),
                human_count(c.parameters),
                format!("{:.2} {} {}", c.figure, c.unit, short_estimator(entry)),
                format!("{:+.2}", c.gap(entry)),
            ),
            None => (
                "-".into(),
                "-".into(),
                "-".into(),
                "not evaluated".into(),
                "-".into(),
            ),
        };
        println!(
            "{:<30} {:<16} {:<34} {:>8} {:>24} {:>8} {:>8} {:>7}  {training}",
            entry.name,
            model,
            data,
            params,
            figure,
            entry.target_text(true),
            entry.anchor,
            gap
        );
    }
    println!(
        "gap: test figure minus the paper's anchor (positive: short of the paper). \
         `genmodels eval zoo:NAME --split test` reproduces a figure; each zoo/NAME/card.md says how it was trained."
    );
    Ok(())
}

fn markdown(zoo: &Zoo) -> Result<()> {
    println!(
        "| name | model | benchmark | params | test figure | estimator | target | anchor | gap | training | measured on | command |"
    );
    println!("|---|---|---|---:|---:|---|---:|---:|---:|---|---|---|");
    for entry in &zoo.entries {
        let dir = zoo.dir.join(&entry.name);
        let target = entry.target_text(false);
        match Card::read(&dir)? {
            Some(c) => {
                let p = &c.progress;
                println!(
                    "| [{name}](../zoo/{name}/card.md) | {} | {} | {} | **{:.4} {}** | {}, {} images | {target} | {} | {:+.2} | {} epochs, {:.1} h; {} | {}, {} | `{}` |",
                    c.model,
                    short_benchmark(&c.benchmark),
                    c.parameters,
                    c.figure,
                    c.unit,
                    c.estimator.replace('|', "\\|"),
                    c.test_images,
                    entry.anchor,
                    c.gap(entry),
                    p.epochs_completed,
                    p.train_seconds / 3600.0,
                    zoo::status_line(p),
                    c.machine.describe(),
                    c.date,
                    c.eval_command,
                    name = entry.name,
                );
            }
            None => {
                let training = zoo::run_progress(&dir)
                    .map(|p| match p.steps {
                        0 => "not started".to_string(),
                        _ => format!("{} epochs so far, not evaluated yet", p.epochs_completed),
                    })
                    .unwrap_or_else(|e| e.to_string());
                println!(
                    "| {} | | | | – | {} | {target} | {} | | {training} | | |",
                    entry.name,
                    entry.estimator().replace('|', "\\|"),
                    entry.anchor
                );
            }
        }
    }
    Ok(())
}

/// 839018 -> "839k", 1234567 -> "1.23M".
fn human_count(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{}k", n / 1000),
        _ => format!("{:.2}M", n as f64 / 1e6),
    }
}

/// "binarized-mnist [static binarization (S)], split test" -> "binarized-mnist (S), test".
fn short_benchmark(benchmark: &str) -> String {
    benchmark
        .replace(" [static binarization (S)]", " (S)")
        .replace(" [dynamic binarization (D)]", " (D)")
        .replace(" [8-bit]", " (8-bit)")
        .replace(", split ", ", ")
}

fn short_estimator(entry: &Entry) -> String {
    match entry.figure {
        Figure::ExactNll | Figure::BitsPerDim => "exact".into(),
        Figure::Iwae => format!("IWAE-{}", entry.iwae_samples()),
        Figure::Accuracy => "acc".into(),
        Figure::BayesAccuracy => "Bayes acc".into(),
    }
}

fn update(
    zoo: &Zoo,
    entry: &Entry,
    keep_figure: bool,
    limit: Option<usize>,
    samples: usize,
    data_dir: &Path,
) -> Result<()> {
    let dir = zoo.dir.join(&entry.name);
    let device = super::device();
    let trained = crate::run::load_trained(&dir, Which::Best, &device)?;
    let zoo_name = format!("{}{}", zoo::PREFIX, entry.name);
    let previous = Card::read(&dir)?;
    let (figure, benchmark, test_images, eval_cmd) = match (keep_figure, &previous) {
        (true, Some(card)) => (
            card.figure,
            card.benchmark.clone(),
            card.test_images,
            card.eval_command.clone(),
        ),
        (true, None) => bail!(
            "{} has no card yet: run `genmodels zoo update {}` without --keep-figure",
            dir.display(),
            entry.name
        ),
        (false, _) => test_figure(zoo, entry, limit, data_dir)?,
    };
    if samples > 0 && !matches!(entry.figure, Figure::Accuracy) {
        let classes = trained.model.as_autoregressive().map_or(0, |m| m.classes());
        let per_class = (classes > 0).then_some(samples.div_ceil(classes.max(1)));
        let request = crate::run::SampleRequest {
            n: samples,
            per_class,
            ..Default::default()
        };
        sample_command(&Run::open(&dir, data_dir)?, &request, None)?;
    }
    let check = zoo::check_figure(&trained)?;
    let progress = zoo::run_progress(&dir)?;
    if progress.finished
        && let Some(last) = train::checkpoint::locate(&dir, Which::Last)?
        && last != trained.checkpoint
    {
        // Nothing will resume a finished run: ship its best weights and where it stopped only.
        train::checkpoint::slim(&last)?;
    }
    let card = Card {
        name: entry.name.clone(),
        model: trained.config.model.name().to_string(),
        parameters: burn::module::Module::num_params(&trained.model) as u64,
        weights_bytes: zoo::weights_bytes(&trained.checkpoint),
        benchmark,
        estimator: entry.estimator(),
        figure,
        unit: entry.figure.unit().into(),
        test_images,
        check,
        progress: progress.clone(),
        checkpoint: trained
            .checkpoint
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().to_string()),
        machine: zoo::Machine::this(),
        date: zoo::today(),
        eval_command: eval_cmd,
        train_command: if progress.finished || progress.stopped {
            // A finished run's last checkpoint is slimmed: re-running the recipe is what is left.
            format!(
                "genmodels train --config zoo/{}/config.toml --out runs/{}",
                entry.name, entry.name
            )
        } else {
            format!("RAYON_NUM_THREADS=1 genmodels train --resume --out {zoo_name}")
        },
    };
    card.write(&dir, entry)?;
    let target = match entry.target {
        Some(_) => format!(
            "target {} -> {}",
            entry.target_text(true),
            entry.verdict(card.figure)
        ),
        None => entry.verdict(card.figure).to_string(),
    };
    println!(
        "{}: {:.4} {} ({}), {target}; check figure {:.6}",
        entry.name, card.figure, card.unit, card.estimator, card.check.value
    );
    Ok(())
}

/// Scores a zoo model on its benchmark's test split: (figure, benchmark, images, command).
fn test_figure(
    zoo: &Zoo,
    entry: &Entry,
    limit: Option<usize>,
    data_dir: &Path,
) -> Result<(f64, String, usize, String)> {
    let dir = &zoo.run_dir(&entry.name)?;
    let zoo_name = format!("{}{}", zoo::PREFIX, entry.name);
    let iwae_k = entry.iwae_samples();
    let limit_flag = limit.map_or(String::new(), |n| format!(" --limit {n}"));
    let eval_cmd = format!("genmodels eval {zoo_name} --split test{limit_flag}");
    Ok(match entry.figure {
        Figure::ExactNll | Figure::BitsPerDim | Figure::Iwae | Figure::Accuracy => {
            let request = crate::run::EvalRequest {
                limit,
                iwae_k: (entry.figure == Figure::Iwae).then_some(iwae_k),
                ..Default::default()
            };
            let report = eval_command(&Run::open(dir, data_dir)?, &request)?;
            let figure = match entry.figure {
                Figure::ExactNll | Figure::Iwae => report.nll_nats_per_image,
                Figure::BitsPerDim => report.bits_per_dim,
                _ => match report.accuracy {
                    Some(a) => a * 100.0,
                    None => bail!("{} is not a classifier run", dir.display()),
                },
            };
            let cmd = match entry.figure {
                Figure::Iwae => format!("{eval_cmd} --iwae-k {iwae_k}"),
                _ => eval_cmd,
            };
            (figure, report.benchmark, report.images, cmd)
        }
        Figure::BayesAccuracy => {
            let baseline = entry
                .baseline
                .as_deref()
                .map(|b| zoo.run_dir(b))
                .transpose()?;
            let report = discriminate::classify(
                discriminate::ClassifyArgs {
                    model: dir.to_path_buf(),
                    baseline,
                    split: Split::Test,
                    limit,
                    batch_size: 100,
                    reject: Vec::new(),
                    reject_pool: 0,
                    reject_show: 0,
                },
                data_dir,
            )?;
            let cmd = match &entry.baseline {
                Some(b) => {
                    format!("genmodels classify --model {zoo_name} --baseline zoo:{b}{limit_flag}")
                }
                None => format!("genmodels classify --model {zoo_name}{limit_flag}"),
            };
            (
                report.bayes.accuracy * 100.0,
                report.benchmark,
                report.images,
                cmd,
            )
        }
    })
}
