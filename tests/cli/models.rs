//! Model families end to end: the VAE's pictures, the class-conditional Gated PixelCNN, the PixelRNNs.

use super::{genmodels, text, train_one_epoch};

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
    // The report shows the negative ELBO's two terms beside it.
    let page = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(
        page.contains("train loss terms") && page.contains("kl ") && page.contains("recon "),
        "the report lacks the ELBO's terms"
    );
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
