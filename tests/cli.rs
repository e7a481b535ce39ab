//! The real binary, end to end, in fresh temp directories.

mod common;
#[path = "common/http.rs"]
mod http;

use std::path::Path;
use std::process::{Command, Output};

fn genmodels(args: &[&str], data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_genmodels"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("GENMODELS_DATA")
        .output()
        .expect("binary runs")
}

/// `genmodels train MODEL` for one epoch on the first `limits` (train, valid) synth-digits
/// images into `run`, with `extra` flags ([`common::train_args`]).
fn train_one_epoch(
    model: &str,
    run: &Path,
    limits: (&str, &str),
    extra: &[&str],
    data_dir: &Path,
) -> Output {
    genmodels(&common::train_args(model, run, limits, extra), data_dir)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn datasets_lists_missing_files_and_the_embedded_set() {
    let dir = tempfile::tempdir().unwrap();
    let out = genmodels(&["datasets"], dir.path());
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("binarized-mnist") && t.contains("missing"),
        "{t}"
    );
    assert!(t.contains("synth-digits") && t.contains("embedded"), "{t}");
}

#[test]
fn verify_reports_a_checksum_mismatch_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("mnist")).unwrap();
    std::fs::write(
        dir.path().join("mnist/t10k-labels-idx1-ubyte.gz"),
        b"not mnist",
    )
    .unwrap();
    let out = genmodels(&["datasets", "verify", "mnist"], dir.path());
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains("CHECKSUM MISMATCH") && t.contains("t10k-labels-idx1-ubyte.gz"),
        "{t}"
    );
}

#[test]
fn download_from_a_corrupt_mirror_fails_cleanly() {
    let files = [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]
    .map(|n| (n.to_string(), b"corrupt".to_vec()));
    let url = http::serve(files.into_iter().collect(), 8);
    let dir = tempfile::tempdir().unwrap();
    let out = genmodels(
        &["datasets", "download", "mnist", "--mirror", &url],
        dir.path(),
    );
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains("checksum mismatch") && t.contains("nothing was saved"),
        "{t}"
    );
    let left = std::fs::read_dir(dir.path().join("mnist")).unwrap().count();
    assert_eq!(left, 0, "a corrupt download left files");
}

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

#[test]
fn vae_train_eval_pictures_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("vae");
    let run_s = run.to_str().unwrap();
    let out = train_one_epoch(
        "vae-mlp",
        &run,
        ("64", "32"),
        &["--latent-dim", "2"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = genmodels(
        &["eval", run_s, "--limit", "10", "--iwae-k", "20"],
        dir.path(),
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("ELBO: ") && t.contains("IWAE-20 bound: ") && t.contains(" nats"),
        "{t}"
    );
    let out = genmodels(
        &["eval", run_s, "--limit", "10", "--iwae-k", "0"],
        dir.path(),
    );
    assert!(
        !out.status.success() && text(&out).contains("at least 1"),
        "{}",
        text(&out)
    );
    let out = genmodels(&["pictures", run_s, "--manifold"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    for file in [
        "reconstructions.png",
        "prior_samples.png",
        "interpolation.png",
        "manifold.png",
        "latent_scatter.svg",
    ] {
        assert!(run.join(file).is_file(), "{file} missing");
    }
    let png = dir.path().join("s.png");
    let out = genmodels(
        &["sample", run_s, "--n", "9", "--out", png.to_str().unwrap()],
        dir.path(),
    );
    assert!(out.status.success() && png.is_file(), "{}", text(&out));
    let out = genmodels(&["complete", run_s, "--n", "2"], dir.path());
    assert!(
        !out.status.success() && text(&out).contains("autoregressive"),
        "{}",
        text(&out)
    );
}

#[test]
fn features_compares_encoder_and_random_initialisation() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("f");
    let out = genmodels(
        &[
            "features",
            "--data",
            "synth-digits",
            "--out",
            out_dir.to_str().unwrap(),
            "--ae-epochs",
            "1",
            "--labels",
            "50",
            "--seeds",
            "1",
            "--steps",
            "20",
        ],
        dir.path(),
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let rows: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("features.json")).unwrap()).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["init"], "autoencoder");
    assert_eq!(rows[1]["init"], "random");
    for row in rows {
        let acc = row["mean"].as_f64().unwrap();
        assert!(
            acc > 0.1 && acc <= 1.0,
            "accuracy {acc} is not better than chance on 10 classes"
        );
    }
}

#[test]
fn conditional_gated_pixelcnn_samples_by_class_and_refuses_bad_classes() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("g");
    let run_s = run.to_str().unwrap();
    let tiny = ["--hidden-channels", "4", "--layers", "2"];
    let conditional = [&tiny[..], &["--conditional"]].concat();
    let out = train_one_epoch(
        "gated-pixelcnn",
        &run,
        ("32", "16"),
        &conditional,
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let png = dir.path().join("c.png");
    let png_s = png.to_str().unwrap();
    let out = genmodels(
        &["sample", run_s, "--class", "3", "--n", "4", "--out", png_s],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    // Cached (default) and naive samplers give the same picture.
    let cached = std::fs::read(&png).unwrap();
    let out = genmodels(
        &[
            "sample", run_s, "--class", "3", "--n", "4", "--naive", "--out", png_s,
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(std::fs::read(&png).unwrap(), cached);
    let out = genmodels(
        &["sample", run_s, "--per-class", "2", "--out", png_s],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = genmodels(
        &["sample", run_s, "--class", "12", "--out", png_s],
        dir.path(),
    );
    assert!(
        !out.status.success() && text(&out).contains("outside the 10 classes"),
        "{}",
        text(&out)
    );
    // An unconditional model refuses --class.
    let plain = dir.path().join("p");
    let out = train_one_epoch("gated-pixelcnn", &plain, ("32", "16"), &tiny, dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let out = genmodels(
        &[
            "sample",
            plain.to_str().unwrap(),
            "--class",
            "1",
            "--out",
            png_s,
        ],
        dir.path(),
    );
    assert!(
        !out.status.success() && text(&out).contains("unconditional"),
        "{}",
        text(&out)
    );
    // Conditional training needs labels: binarized MNIST has none.
    std::fs::create_dir_all(dir.path().join("binarized-mnist")).unwrap();
    for split in ["train", "valid"] {
        std::fs::write(
            dir.path()
                .join(format!("binarized-mnist/binarized_mnist_{split}.amat")),
            "0 ".repeat(783) + "1\n",
        )
        .unwrap();
    }
    let out = genmodels(
        &[
            "train",
            "gated-pixelcnn",
            "--conditional",
            "--data",
            "binarized-mnist",
            "--epochs",
            "1",
            "--out",
            dir.path().join("b").to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(
        !out.status.success() && text(&out).contains("needs labels"),
        "{}",
        text(&out)
    );
}

#[test]
fn pixelrnn_models_train_evaluate_sample_and_complete() {
    for model in ["row-lstm", "diagonal-bilstm"] {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join(model);
        let run_s = run.to_str().unwrap();
        let tiny = ["--hidden-channels", "4", "--layers", "1"];
        let out = train_one_epoch(model, &run, ("32", "16"), &tiny, dir.path());
        assert!(out.status.success(), "{model}: {}", text(&out));
        let out = genmodels(&["eval", run_s, "--limit", "8"], dir.path());
        assert!(
            out.status.success() && text(&out).contains("nats"),
            "{model}: {}",
            text(&out)
        );
        let png = dir.path().join("s.png");
        let out = genmodels(
            &["sample", run_s, "--n", "2", "--out", png.to_str().unwrap()],
            dir.path(),
        );
        assert!(
            out.status.success() && png.is_file(),
            "{model}: {}",
            text(&out)
        );
        // Clear errors, not an empty picture, an abort, or a flag silently ignored.
        let bad = dir.path().join("bad.png");
        let bad_s = bad.to_str().unwrap();
        for (n, says) in [("0", "at least 1"), ("100000000000", "more than one grid")] {
            let out = genmodels(&["sample", run_s, "--n", n, "--out", bad_s], dir.path());
            let t = text(&out);
            assert!(
                !out.status.success() && t.contains(says),
                "{model} --n {n}: {t}"
            );
            assert!(!bad.exists());
        }
        let out = genmodels(
            &["eval", run_s, "--limit", "8", "--iwae-k", "10"],
            dir.path(),
        );
        let t = text(&out);
        assert!(
            !out.status.success() && t.contains("--iwae-k"),
            "{model}: {t}"
        );
        let out = genmodels(
            &[
                "complete",
                run_s,
                "--n",
                "1",
                "--k",
                "1",
                "--out",
                png.to_str().unwrap(),
            ],
            dir.path(),
        );
        assert!(out.status.success(), "{model}: {}", text(&out));
    }
}

#[test]
fn classify_and_ood_commands() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |name: &str, extra: &[&str]| {
        let path = d.join(name);
        let mut args = vec![
            "train",
            "--data",
            "synth-digits",
            "--epochs",
            "1",
            "--train-limit",
            "256",
            "--valid-limit",
            "32",
            "--out",
            path.to_str().unwrap(),
        ];
        args.extend(extra);
        let out = genmodels(&args, d);
        assert!(out.status.success(), "{name}: {}", text(&out));
        path
    };
    let density = run(
        "pcnn",
        &[
            "pixelcnn",
            "--hidden-channels",
            "8",
            "--residual-blocks",
            "2",
        ],
    );
    let conditional = run(
        "cond",
        &[
            "gated-pixelcnn",
            "--conditional",
            "--hidden-channels",
            "4",
            "--layers",
            "2",
        ],
    );
    let classifier = run("clf", &["classifier-mlp"]);
    let out = genmodels(
        &[
            "classify",
            "--model",
            conditional.to_str().unwrap(),
            "--baseline",
            classifier.to_str().unwrap(),
            "--limit",
            "20",
        ],
        d,
    );
    let t = text(&out);
    assert!(
        out.status.success()
            && t.contains("Bayes classifier")
            && t.contains("ECE")
            && t.contains("discriminative baseline"),
        "{t}"
    );
    let out = genmodels(
        &[
            "classify",
            "--model",
            density.to_str().unwrap(),
            "--limit",
            "5",
        ],
        d,
    );
    assert!(
        !out.status.success() && text(&out).contains("without class conditioning"),
        "{}",
        text(&out)
    );
    let out = genmodels(
        &[
            "ood",
            "--model",
            density.to_str().unwrap(),
            "--in",
            "synth-digits",
            "--out",
            "noise",
            "--classifier",
            classifier.to_str().unwrap(),
            "--limit",
            "100",
        ],
        d,
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(density.join("ood-synth-digits-noise.json")).unwrap(),
    )
    .unwrap();
    let likelihood_auroc = report["scores"][0]["auroc"].as_f64().unwrap();
    // Uniform binary noise has half its pixels on; digits a tenth: any model that learned the
    // digits' sparsity puts noise far below them.
    assert!(
        likelihood_auroc > 0.9,
        "noise vs digits AUROC {likelihood_auroc}\n{t}"
    );
    assert!(density.join("ood-synth-digits-noise.svg").is_file());
    // A VAE scores by its IWAE bound, and can be the likelihood ratio's background.
    let vae = run("vae", &["vae-mlp", "--latent-dim", "4"]);
    let out = genmodels(
        &[
            "ood",
            "--model",
            vae.to_str().unwrap(),
            "--in",
            "synth-digits",
            "--out",
            "noise",
            "--background",
            density.to_str().unwrap(),
            "--iwae-k",
            "8",
            "--limit",
            "100",
        ],
        d,
    );
    let t = text(&out);
    assert!(
        out.status.success() && t.contains("IWAE-8 bound") && t.contains("likelihood ratio"),
        "{t}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(vae.join("ood-synth-digits-noise.json")).unwrap())
            .unwrap();
    let vae_auroc = report["scores"][0]["auroc"].as_f64().unwrap();
    assert!(
        vae_auroc > 0.9,
        "noise vs digits AUROC under the VAE {vae_auroc}\n{t}"
    );
    let out = genmodels(
        &[
            "ood",
            "--model",
            conditional.to_str().unwrap(),
            "--in",
            "synth-digits",
            "--out",
            "noise",
        ],
        d,
    );
    assert!(
        !out.status.success() && text(&out).contains("class-conditional"),
        "{}",
        text(&out)
    );
    // A model of another image size is refused with both shapes named.
    let folder = d.join("imgs");
    std::fs::create_dir_all(&folder).unwrap();
    for i in 0..3u8 {
        image::GrayImage::from_pixel(8, 8, image::Luma([i]))
            .save(folder.join(format!("{i}.png")))
            .unwrap();
    }
    let out = genmodels(
        &[
            "ood",
            "--model",
            density.to_str().unwrap(),
            "--in",
            "synth-digits",
            "--out",
            &format!("folder:{}", folder.display()),
        ],
        d,
    );
    assert!(
        !out.status.success() && text(&out).contains("1x8x8"),
        "{}",
        text(&out)
    );
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
fn models_without_colour_refuse_colour_data_before_writing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let folder = d.join("rgb");
    std::fs::create_dir_all(&folder).unwrap();
    for i in 0..20u8 {
        image::RgbImage::from_pixel(8, 8, image::Rgb([i, 255 - i, 7 * i]))
            .save(folder.join(format!("{i:02}.png")))
            .unwrap();
    }
    let data = format!("folder:{}", folder.display());
    for model in ["gated-pixelcnn", "row-lstm", "diagonal-bilstm"] {
        let run = d.join(model);
        let out = genmodels(
            &[
                "train",
                model,
                "--data",
                &data,
                "--out",
                run.to_str().unwrap(),
            ],
            d,
        );
        let t = text(&out);
        assert!(
            !out.status.success() && t.contains("3 channels") && t.contains(model),
            "{model}: {t}"
        );
        assert!(
            !run.exists(),
            "{model}: a refused run left {}",
            run.display()
        );
    }
}
