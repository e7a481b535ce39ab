//! The model zoo: `zoo:NAME` resolution, and every shipped checkpoint still scoring the check
//! figure recorded in its card (so a change of kernels or of the checkpoint format that alters
//! a shipped model fails here, on any machine, with no data files).

mod common;

use genmodels::train::{self, checkpoint::Which};
use genmodels::zoo::{self, Card, Zoo};
use std::path::{Path, PathBuf};
use std::process::Command;

fn zoo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("zoo")
}

/// `genmodels ARGS` with `GENMODELS_ZOO` pointing at `zoo`.
fn genmodels_in(zoo: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_genmodels"))
        .args(args)
        .env("GENMODELS_ZOO", zoo)
        .output()
        .unwrap()
}

#[test]
fn zoo_names_resolve_to_their_folders_and_a_bad_name_lists_the_zoo() {
    let zoo = Zoo::open_at(&zoo_dir()).unwrap();
    assert!(zoo.entries.len() >= 9, "{:?}", zoo.names());
    for entry in &zoo.entries {
        let dir = zoo.run_dir(&entry.name).unwrap();
        assert_eq!(dir, zoo_dir().join(&entry.name));
        // Every entry's recipe parses.
        genmodels::config::load_run_config(&dir).unwrap_or_else(|e| panic!("{e}"));
    }
    let message = zoo.run_dir("no-such-model").unwrap_err().to_string();
    assert!(message.contains("no-such-model"), "{message}");
    for name in zoo.names() {
        assert!(message.contains(name), "{name} missing from: {message}");
    }
}

#[test]
fn the_command_line_takes_zoo_names_and_refuses_unknown_ones() {
    let out = genmodels_in(
        &zoo_dir(),
        &["eval", "zoo:no-such-model", "--split", "test"],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no-such-model") && stderr.contains("diagonal-bilstm-bmnist"),
        "{stderr}"
    );
    let out = genmodels_in(&zoo_dir(), &["zoo"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    for entry in &Zoo::open_at(&zoo_dir()).unwrap().entries {
        assert!(table.contains(&entry.name), "{table}");
    }
}

#[test]
fn every_shipped_checkpoint_scores_the_check_figure_of_its_card() {
    let zoo = Zoo::open_at(&zoo_dir()).unwrap();
    let device = burn::tensor::Device::flex();
    let mut checked = Vec::new();
    for (entry, dir) in zoo.trained() {
        let card = Card::read(&dir).unwrap().unwrap_or_else(|| {
            panic!(
                "{} has weights but no card: run `genmodels zoo update {}`",
                dir.display(),
                entry.name
            )
        });
        let trained = genmodels::run::load_trained(&dir, Which::Best, &device).unwrap();
        let best = trained.checkpoint.file_name().unwrap().to_string_lossy();
        assert_eq!(
            card.checkpoint, best,
            "{}: the card describes another checkpoint than the best one; run `genmodels zoo update {}`",
            entry.name, entry.name
        );
        let check = zoo::check_figure(&trained).unwrap();
        assert_eq!(check.quantity, card.check.quantity, "{}", entry.name);
        assert!(
            (check.value - card.check.value).abs() <= 1e-3,
            "{}: check figure {} here, {} in its card ({})",
            entry.name,
            check.value,
            card.check.value,
            card.check.quantity
        );
        checked.push(entry.name.clone());
    }
    assert!(!checked.is_empty(), "the zoo ships no trained model");
    eprintln!("checked: {checked:?}");
}

#[test]
fn a_zoo_entry_trains_resumes_and_gets_a_card_whose_figures_reproduce() {
    // A one-model zoo of our own: the tiny PixelCNN on the embedded synth-digits.
    let zoo = tempfile::tempdir().unwrap();
    std::fs::write(
        zoo.path().join("zoo.toml"),
        "[[model]]\nname = \"tiny\"\ntitle = \"tiny PixelCNN\"\nfigure = \"exact-nll\"\n\
         target = 500.0\nanchor = 100.0\nanchor_source = \"none\"\n",
    )
    .unwrap();
    let run = zoo.path().join("tiny");
    std::fs::create_dir_all(&run).unwrap();
    let mut config = common::tiny_run(2);
    config.train.final_samples = 0;
    config.train.ema_decay = Some(0.9);
    genmodels::config::save_config(&run, &config).unwrap();
    let genmodels = |args: &[&str]| {
        let out = genmodels_in(zoo.path(), args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert_eq!(genmodels(&["zoo", "pending"]).trim(), "tiny");
    // `--resume` starts a run that has no checkpoint from its config.
    genmodels(&["train", "--resume", "--out", "zoo:tiny"]);
    assert_eq!(genmodels(&["zoo", "pending"]).trim(), "");
    genmodels(&["zoo", "update", "tiny", "--limit", "200"]);
    let card = Card::read(&run).unwrap().unwrap();
    assert_eq!(card.test_images, 200);
    assert!(card.progress.finished && card.progress.epochs_completed == 2);
    assert!(run.join("samples.png").is_file() && run.join("card.md").is_file());
    // The figure is what `eval zoo:tiny` prints, and the check figure what the library computes.
    let eval = genmodels(&["eval", "zoo:tiny", "--split", "test", "--limit", "200"]);
    assert!(
        eval.contains(&format!("nll: {:.3} nats", card.figure)),
        "{eval} vs {}",
        card.figure
    );
    let trained =
        genmodels::run::load_trained(&run, Which::Best, &burn::tensor::Device::flex()).unwrap();
    let check = zoo::check_figure(&trained).unwrap();
    assert!((check.value - card.check.value).abs() <= 1e-6);
    // A finished run ships its best weights; its last checkpoint keeps only where it stopped.
    let last = train::checkpoint::locate(&run, Which::Last)
        .unwrap()
        .unwrap();
    assert!(!last.join("optimizer.bpk").exists() && last.join("state.json").is_file());
    let table = genmodels(&["zoo"]);
    assert!(
        table.contains("tiny") && table.contains(&format!("{:.2}", card.figure)),
        "{table}"
    );
    // Planned for longer, the run is pending again; `zoo stop` drops its last checkpoint's
    // payload, after which nothing resumes it and `--resume` says why.
    config.train.epochs = 3;
    genmodels::config::save_config(&run, &config).unwrap();
    let last = train::checkpoint::locate(&run, Which::Last)
        .unwrap()
        .unwrap();
    genmodels::train::checkpoint::save(
        &run,
        Which::Last,
        &trained.model,
        None,
        None,
        &train::checkpoint::read_state(&last).unwrap(),
    )
    .unwrap();
    assert_eq!(genmodels(&["zoo", "pending"]).trim(), "tiny");
    genmodels(&["zoo", "stop", "tiny"]);
    assert_eq!(genmodels(&["zoo", "pending"]).trim(), "");
    let progress = zoo::run_progress(&run).unwrap();
    assert!(progress.stopped && !progress.finished, "{progress:?}");
    let resumed = genmodels_in(zoo.path(), &["train", "--resume", "--out", "zoo:tiny"]);
    let err = String::from_utf8_lossy(&resumed.stderr);
    assert!(
        !resumed.status.success() && err.contains("keeps only its training state"),
        "{err}"
    );
    let again = genmodels_in(zoo.path(), &["zoo", "stop", "tiny"]);
    assert!(!again.status.success());
}
