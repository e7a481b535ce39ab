//! A run's life through the command line: train, eval, sample, complete, resume, stop by a signal, report, and the errors on the way.

use super::{genmodels, text, train_one_epoch};
use std::process::Command;

#[test]
fn train_eval_sample_complete_on_embedded_data() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    let tiny = [
        "--hidden-channels",
        "4",
        "--residual-blocks",
        "1",
        "--batch-size",
        "16",
        "--sample-every-steps",
        "2",
    ];
    let out = train_one_epoch("pixelcnn", &run, ("64", "32"), &tiny, dir.path());
    assert!(out.status.success(), "{}", text(&out));
    for file in [
        "samples.png",
        "report.html",
        "config.toml",
        "metrics.jsonl",
        "loss_curve.svg",
        "last.json",
        "best.json",
    ] {
        assert!(run.join(file).is_file(), "{file} missing");
    }
    // Training again into the same directory must not clobber it.
    let out = train_one_epoch("pixelcnn", &run, ("64", "32"), &tiny, dir.path());
    assert!(
        !out.status.success() && text(&out).contains("--resume"),
        "{}",
        text(&out)
    );

    let out = genmodels(
        &["eval", run_s, "--split", "test", "--limit", "20"],
        dir.path(),
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("nats")
            && t.contains("bits/dim")
            && t.contains("split test")
            && t.contains("static binarization (S)"),
        "{t}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("eval-test-first20.json")).unwrap())
            .unwrap();
    assert_eq!(report["images"], 20);

    let png = dir.path().join("s.png");
    let out = genmodels(
        &[
            "sample",
            run_s,
            "--n",
            "4",
            "--seed",
            "1",
            "--out",
            png.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let first = std::fs::read(&png).unwrap();
    image::load_from_memory(&first).expect("valid PNG");
    // Same seed, same picture.
    genmodels(
        &[
            "sample",
            run_s,
            "--n",
            "4",
            "--seed",
            "1",
            "--out",
            png.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(std::fs::read(&png).unwrap(), first);

    let comp = dir.path().join("c.png");
    let out = genmodels(
        &[
            "complete",
            run_s,
            "--n",
            "2",
            "--k",
            "2",
            "--out",
            comp.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let img = image::open(&comp).unwrap();
    assert!(
        img.width() > img.height(),
        "one row per image, k + 2 columns"
    );
}

#[test]
fn clear_errors_for_a_missing_data_set_and_a_non_run() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("r");
    let out = genmodels(
        &[
            "train",
            "pixelcnn",
            "--data",
            "binarized-mnist",
            "--epochs",
            "1",
            "--out",
            run.to_str().unwrap(),
        ],
        dir.path(),
    );
    let t = text(&out);
    assert!(
        !out.status.success()
            && t.contains("binarized_mnist_train.amat")
            && t.contains("datasets download"),
        "{t}"
    );
    let out = genmodels(&["eval", dir.path().to_str().unwrap()], dir.path());
    let t = text(&out);
    assert!(
        !out.status.success() && t.contains("not a run directory"),
        "{t}"
    );
}

#[test]
fn resume_continues_a_run_to_more_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    let tiny = [
        "--hidden-channels",
        "4",
        "--residual-blocks",
        "1",
        "--batch-size",
        "16",
    ];
    let out = train_one_epoch("pixelcnn", &run, ("32", "16"), &tiny, dir.path());
    assert!(out.status.success(), "{}", text(&out));
    // Flags that would change the recipe are refused, not silently ignored, and nothing moves.
    let before = std::fs::read(run.join("config.toml")).unwrap();
    let out = genmodels(
        &[
            "train",
            "--resume",
            "--out",
            run_s,
            "--lr",
            "0.1",
            "--batch-size",
            "8",
        ],
        dir.path(),
    );
    let t = text(&out);
    assert!(
        !out.status.success() && t.contains("--lr") && t.contains("--batch-size"),
        "{t}"
    );
    assert_eq!(std::fs::read(run.join("config.toml")).unwrap(), before);
    let out = genmodels(
        &["train", "--resume", "--out", run_s, "--epochs", "2"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let lines = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 2, "{lines}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("train-summary.json")).unwrap()).unwrap();
    assert_eq!(summary["epochs_completed"], 2);
    assert_eq!(summary["steps"], 4);
}

/// Ctrl-C / SIGTERM: the run finishes its step, saves it, exits with 130 and says how to go on;
/// `--resume` then continues from exactly that step.
#[cfg(unix)]
#[test]
fn a_stop_signal_saves_the_exact_step_and_resume_goes_on_from_it() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_genmodels"))
        .args([
            "train",
            "pixelcnn",
            "--data",
            "synth-digits",
            "--out",
            run_s,
        ])
        .args([
            "--train-limit",
            "64",
            "--valid-limit",
            "16",
            "--batch-size",
            "16",
        ])
        .args(["--hidden-channels", "4", "--residual-blocks", "1"])
        .args(["--epochs", "1000000"]) // it never ends by itself
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("GENMODELS_DATA")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    // The handler is installed before anything is printed; wait until training has begun.
    while !log.contains("model:") {
        assert_ne!(stderr.read_line(&mut log).unwrap(), 0, "{log}");
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on our own child, which has not been waited for, so the pid is its own.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    std::io::Read::read_to_string(&mut stderr, &mut log).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{log}");
    assert!(log.contains(&format!("--resume --out {run_s}")), "{log}");
    let stopped_at: u64 = log
        .split("stopped by a signal at step ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|step| step.parse().ok())
        .unwrap_or_else(|| panic!("no step in: {log}"));
    assert!(stopped_at > 0, "{log}");
    // A zero time budget stops the resumed run after one step: the next one.
    let out = genmodels(
        &["train", "--resume", "--out", run_s, "--max-seconds", "0"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("train-summary.json")).unwrap()).unwrap();
    assert_eq!(summary["steps"], stopped_at + 1, "{}", text(&out));
}

#[test]
fn every_autoregressive_model_trains_on_colour_folders_and_samples_colour_pngs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let folder = d.join("rgb");
    std::fs::create_dir_all(&folder).unwrap();
    for i in 0..20u8 {
        image::RgbImage::from_pixel(6, 6, image::Rgb([i, 255 - i, 7 * i]))
            .save(folder.join(format!("{i:02}.png")))
            .unwrap();
    }
    let data = format!("folder:{}", folder.display());
    for model in ["gated-pixelcnn", "row-lstm", "diagonal-bilstm"] {
        let run = d.join(model);
        let run_s = run.to_str().unwrap();
        let out = genmodels(
            &[
                "train",
                model,
                "--data",
                &data,
                "--epochs",
                "1",
                "--hidden-channels",
                "3",
                "--layers",
                "1",
                "--out",
                run_s,
            ],
            d,
        );
        assert!(out.status.success(), "{model}: {}", text(&out));
        let png = d.join(format!("{model}.png"));
        let out = genmodels(
            &["sample", run_s, "--n", "2", "--out", png.to_str().unwrap()],
            d,
        );
        assert!(out.status.success(), "{model}: {}", text(&out));
        let grid = image::open(&png).unwrap();
        assert!(
            matches!(
                grid.color(),
                image::ColorType::Rgb8 | image::ColorType::Rgba8
            ),
            "{model}: samples of a colour model are a colour PNG, got {:?}",
            grid.color()
        );
    }
}

#[test]
fn report_is_self_contained_and_compares_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut runs = Vec::new();
    for name in ["a", "b"] {
        let run = d.join(name);
        let tiny = ["--hidden-channels", "4", "--residual-blocks", "1"];
        let out = train_one_epoch("pixelcnn", &run, ("32", "16"), &tiny, d);
        assert!(out.status.success(), "{}", text(&out));
        runs.push(run);
    }
    let page = std::fs::read_to_string(runs[0].join("report.html")).unwrap();
    assert!(
        page.contains("<svg") && page.contains("pixelcnn") && page.contains("valid NLL"),
        "report lacks the curve or metrics"
    );
    genmodels(
        &[
            "sample",
            runs[0].to_str().unwrap(),
            "--n",
            "4",
            "--out",
            runs[0].join("samples.png").to_str().unwrap(),
        ],
        d,
    );
    let out = genmodels(&["report", runs[0].to_str().unwrap()], d);
    assert!(out.status.success(), "{}", text(&out));
    let page = std::fs::read_to_string(runs[0].join("report.html")).unwrap();
    assert!(
        page.contains("data:image/png;base64,"),
        "samples are not inlined"
    );
    assert!(
        !page.contains("src=\"http") && !page.contains("src=\"/"),
        "the page must not load anything"
    );
    let both = d.join("both.html");
    let out = genmodels(
        &[
            "report",
            runs[0].to_str().unwrap(),
            runs[1].to_str().unwrap(),
            "--out",
            both.to_str().unwrap(),
        ],
        d,
    );
    assert!(out.status.success(), "{}", text(&out));
    let page = std::fs::read_to_string(&both).unwrap();
    assert!(page.contains(runs[1].to_str().unwrap()) && page.contains(runs[0].to_str().unwrap()));
    assert!(
        page.contains("validation NLL per epoch"),
        "no overlaid curves"
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(runs[0].join("train-summary.json")).unwrap())
            .unwrap();
    let parameters = summary["parameters"].as_u64().unwrap();
    assert!(
        parameters > 0 && page.contains(&format!("<td>{parameters}</td>")),
        "model size missing"
    );
}
