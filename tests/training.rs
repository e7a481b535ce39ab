//! The trainer: reproducible under a seed, resumable to the same result, checkpoints that load
//! back to the same NLL, a clear stop on a non-finite loss, clear errors on corrupt files.

mod common;

use burn::tensor::Device;
use genmodels::config::{self, RunConfig};
use genmodels::data::{self, Split};
use genmodels::eval::exact_nll;
use genmodels::progress::Silent;
use genmodels::run::Run;
use genmodels::train::{self, checkpoint::Which};
use std::path::{Path, PathBuf};

/// Trains `config` in `dir` through the library's run API; `resume` continues the run there
/// (with `config`'s epochs as the new total), as `train --resume --epochs N` does.
fn run_training(
    config: &RunConfig,
    dir: &Path,
    resume: bool,
) -> genmodels::Result<train::TrainSummary> {
    let run = if resume {
        let mut run = Run::open(dir, Path::new("."))?;
        run.set_budget(Some(config.train.epochs), None)?;
        run
    } else {
        Run::create(config.clone(), dir, Path::new("."))?
    };
    run.train(&mut Silent)
}

fn metrics(dir: &Path) -> Vec<(f64, f64)> {
    train::read_metrics(dir)
        .unwrap()
        .iter()
        .map(|m| (m.train_nll, m.valid_nll))
        .collect()
}

#[test]
fn same_seed_gives_identical_losses() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let config = common::tiny_run(2);
    run_training(&config, a.path(), false).unwrap();
    run_training(&config, b.path(), false).unwrap();
    let (ma, mb) = (metrics(a.path()), metrics(b.path()));
    assert_eq!(ma.len(), 2);
    assert_eq!(ma, mb, "two runs with one seed diverged");
    // And the model learned something: validation NLL fell.
    assert!(ma[1].1 < ma[0].1, "{ma:?}");
}

#[test]
fn resumed_run_matches_an_uninterrupted_one() {
    let (whole, split) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run_training(&common::tiny_run(3), whole.path(), false).unwrap();
    // "Killed" after one epoch, then resumed for the remaining two.
    run_training(&common::tiny_run(1), split.path(), false).unwrap();
    run_training(&common::tiny_run(3), split.path(), true).unwrap();
    let (a, b) = (metrics(whole.path()), metrics(split.path()));
    assert_eq!(a.len(), 3);
    assert_eq!(
        a, b,
        "resuming changed the trajectory (optimiser state or data order lost?)"
    );
}

fn with_ema(mut config: RunConfig, decay: f64) -> RunConfig {
    config.train.ema_decay = Some(decay);
    config
}

#[test]
fn the_weights_average_is_validated_and_resumes_exactly() {
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    run_training(&common::tiny_run(2), dirs[0].path(), false).unwrap();
    // Decay 0: the average is the weights themselves, so everything matches a plain run.
    run_training(&with_ema(common::tiny_run(2), 0.0), dirs[1].path(), false).unwrap();
    let (plain, zero) = (metrics(dirs[0].path()), metrics(dirs[1].path()));
    assert_eq!(plain, zero);
    // A real average: the same training losses, another validation NLL (of the average).
    run_training(&with_ema(common::tiny_run(2), 0.9), dirs[2].path(), false).unwrap();
    let avg = metrics(dirs[2].path());
    assert_eq!(
        avg.iter().map(|m| m.0).collect::<Vec<_>>(),
        plain.iter().map(|m| m.0).collect::<Vec<_>>()
    );
    assert_ne!(
        avg[1].1, plain[1].1,
        "the average was not what was validated"
    );
    // Stopped after one epoch and resumed: the average comes back with the checkpoint.
    run_training(&with_ema(common::tiny_run(1), 0.9), dirs[3].path(), false).unwrap();
    run_training(&with_ema(common::tiny_run(2), 0.9), dirs[3].path(), true).unwrap();
    assert_eq!(
        metrics(dirs[3].path()),
        avg,
        "resuming lost the weights' average"
    );
}

#[test]
fn a_run_whose_validation_is_flat_for_patience_epochs_stops_as_converged() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::tiny_run(10);
    config.optim.lr = 0.0; // the weights never move: no epoch after the first is a new best
    config.train.patience = Some(2);
    let summary = run_training(&config, dir.path(), false).unwrap();
    assert!(summary.converged);
    assert_eq!(summary.epochs_completed, 3);
    assert_eq!(metrics(dir.path()).len(), 3);
    // Resuming a converged run trains nothing more, even once its last checkpoint is slimmed
    // to its state (what the zoo ships of a finished run).
    let again = run_training(&config, dir.path(), true).unwrap();
    assert_eq!(again.epochs_completed, 3);
    let last = train::checkpoint::locate(dir.path(), Which::Last)
        .unwrap()
        .unwrap();
    train::checkpoint::slim(&last).unwrap();
    assert!(!last.join("model.safetensors").exists() && last.join("state.json").is_file());
    let again = run_training(&config, dir.path(), true).unwrap();
    assert!(again.converged);
    assert_eq!(metrics(dir.path()).len(), 3);
    assert!(genmodels::run::load_trained(dir.path(), Which::Best, &Device::flex()).is_ok());
}

fn trained_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run");
    run_training(&common::tiny_run(1), &path, false).unwrap();
    (dir, path)
}

#[test]
fn saved_and_loaded_model_gives_identical_nll() {
    let (_keep, dir) = trained_dir();
    let device = Device::flex();
    let test = data::load("synth-digits", Split::Test, Path::new("."))
        .unwrap()
        .truncate(40);
    let first = genmodels::run::load_trained(&dir, Which::Best, &device).unwrap();
    let report = exact_nll(
        first.model.as_autoregressive().unwrap(),
        &test,
        16,
        &device,
        &mut Silent,
    )
    .unwrap();
    // The best checkpoint was validated on the same 32 validation images during training.
    let valid = data::load("synth-digits", Split::Valid, Path::new("."))
        .unwrap()
        .truncate(32);
    let valid_report = exact_nll(
        first.model.as_autoregressive().unwrap(),
        &valid,
        16,
        &device,
        &mut Silent,
    )
    .unwrap();
    let best = first.state.best_valid_nll.unwrap();
    assert!(
        (valid_report.nll_nats_per_image - best).abs() < 1e-3,
        "{} vs {best}",
        valid_report.nll_nats_per_image
    );
    // Save the loaded model again under another run and load it a second time.
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(dir.join("config.toml"), copy.path().join("config.toml")).unwrap();
    train::checkpoint::save(
        copy.path(),
        Which::Best,
        &first.model,
        None,
        None,
        &first.state,
    )
    .unwrap();
    let second = genmodels::run::load_trained(copy.path(), Which::Best, &device).unwrap();
    let again = exact_nll(
        second.model.as_autoregressive().unwrap(),
        &test,
        7,
        &device,
        &mut Silent,
    )
    .unwrap();
    assert_eq!(
        report.nll_nats_per_image.to_bits(),
        again.nll_nats_per_image.to_bits()
    );
    assert!(report.nll_nats_per_image > 0.0 && report.bits_per_dim < 1.0);
}

#[test]
fn corrupt_or_truncated_checkpoint_is_a_clear_error() {
    let (_keep, dir) = trained_dir();
    let ckpt = train::checkpoint::locate(&dir, Which::Best)
        .unwrap()
        .unwrap();
    let weights = ckpt.join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let err = genmodels::run::load_trained(&dir, Which::Best, &Device::flex())
        .err()
        .expect("must fail");
    let msg = err.to_string();
    assert!(msg.contains("model.safetensors"), "{msg}");
    std::fs::write(&weights, b"not a safetensors file at all").unwrap();
    let msg = genmodels::run::load_trained(&dir, Which::Best, &Device::flex())
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("model.safetensors"), "{msg}");
    // The last checkpoint is untouched and still loads.
    assert!(genmodels::run::load_trained(&dir, Which::Last, &Device::flex()).is_ok());
}

/// Flips one bit of a byte near the end of `path` (in the last tensor's data: the file still
/// parses, only a value changes).
fn flip_a_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes.len() - 3;
    bytes[at] ^= 0x10;
    std::fs::write(path, &bytes).unwrap();
}

#[test]
fn one_flipped_byte_in_a_checkpoint_is_caught_by_its_checksum() {
    let (_keep, dir) = trained_dir();
    for which in [Which::Best, Which::Last] {
        let ckpt = train::checkpoint::locate(&dir, which).unwrap().unwrap();
        flip_a_byte(&ckpt.join("model.safetensors"));
        let msg = genmodels::run::load_trained(&dir, which, &Device::flex())
            .err()
            .expect("a corrupted checkpoint must not load")
            .to_string();
        assert!(
            msg.contains("model.safetensors") && msg.contains("SHA-256"),
            "{msg}"
        );
    }
    // The optimiser state is checked too (a resumed run would otherwise go astray).
    let last = train::checkpoint::locate(&dir, Which::Last)
        .unwrap()
        .unwrap();
    flip_a_byte(&last.join("optimizer.bpk"));
    let msg = train::checkpoint::load_optimizer(&last, train::optimizer(&Default::default()))
        .err()
        .expect("a corrupted optimiser state must not load")
        .to_string();
    assert!(
        msg.contains("optimizer.bpk") && msg.contains("SHA-256"),
        "{msg}"
    );
}

#[test]
fn checkpoint_of_another_model_size_is_rejected() {
    let (_keep, dir) = trained_dir();
    let mut config = config::load_run_config(&dir).unwrap();
    if let genmodels::models::ModelConfig::Pixelcnn(m) = &mut config.model {
        m.hidden_channels += 2;
    }
    config::save_config(&dir, &config).unwrap();
    let msg = genmodels::run::load_trained(&dir, Which::Best, &Device::flex())
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("model.safetensors"), "{msg}");
}

#[test]
fn non_finite_loss_stops_with_the_step_and_keeps_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run");
    run_training(&common::tiny_run(1), &path, false).unwrap();
    let before = std::fs::read(path.join("last.json")).unwrap();
    // The recipe edited in the run's config.toml, then resumed.
    let mut config = config::load_run_config(&path).unwrap();
    config.train.epochs = 3;
    config.optim.lr = 1e30;
    config.optim.grad_clip_norm = None;
    config::save_config(&path, &config).unwrap();
    let err = run_training(&config, &path, true).expect_err("lr 1e30 must blow up");
    let msg = err.to_string();
    assert!(
        msg.contains("non-finite loss") && msg.contains("step"),
        "{msg}"
    );
    assert_eq!(std::fs::read(path.join("last.json")).unwrap(), before);
    assert!(genmodels::run::load_trained(&path, Which::Last, &Device::flex()).is_ok());
}
