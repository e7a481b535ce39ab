//! The analyses: features without labels, the Bayes classifier, out-of-distribution scores.

use super::{genmodels, text};

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
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("features.json")).unwrap()).unwrap();
    assert!(
        report["benchmark"]
            .as_str()
            .unwrap()
            .contains("synth-digits")
    );
    let rows = report["rows"].as_array().unwrap();
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
fn semi_supervised_fits_m1_and_m1_plus_m2_on_a_vaes_features() {
    let dir = tempfile::tempdir().unwrap();
    let vae = dir.path().join("vae");
    let trained = super::train_one_epoch(
        "vae-mlp",
        &vae,
        ("4000", "100"),
        &["--latent-dim", "8", "--lr", "3e-3", "--batch-size", "32"],
        dir.path(),
    );
    assert!(trained.status.success(), "{}", text(&trained));
    let out_dir = dir.path().join("semi");
    let out = genmodels(
        &[
            "semi-supervised",
            "--encoder",
            vae.to_str().unwrap(),
            "--data",
            "synth-digits",
            "--labels",
            "100",
            "--seeds",
            "1",
            "--methods",
            "knn,m2",
            "--m2-steps",
            "200",
            "--m2-hidden",
            "32",
            "--m2-z2",
            "2",
            "--no-map",
            "--out",
            out_dir.to_str().unwrap(),
        ],
        dir.path(),
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("validation accuracy"),
        "M2 reports its progress: {t}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("semi.json")).unwrap()).unwrap();
    assert_eq!(report["m2"]["steps"], 200, "the recipe is recorded");
    let rows = report["rows"].as_array().unwrap();
    let cells: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["input"].as_str().unwrap(),
                r["classifier"].as_str().unwrap(),
            )
        })
        .collect();
    // k-NN on both inputs; M2 models the features only.
    assert_eq!(cells.len(), 3, "{cells:?}");
    assert!(cells.contains(&("vae", "5-NN")) && cells.contains(&("pixels", "5-NN")));
    assert!(
        cells
            .iter()
            .any(|&(i, c)| i == "vae" && c.starts_with("M1+M2"))
    );
    // Well above chance (10%) on every row: a binary set's images reach the VAE as they are
    // (binarising them again as 8-bit grey levels once made every feature noise).
    for row in rows {
        let acc = row["mean"].as_f64().unwrap();
        assert!(
            acc > 0.5 && acc <= 1.0,
            "{} on {}: accuracy {acc}",
            row["classifier"],
            row["input"]
        );
    }
    let table = std::fs::read_to_string(out_dir.join("semi.md")).unwrap();
    let m2_line = table.lines().find(|l| l.contains("M1+M2")).unwrap();
    assert!(
        m2_line.trim_end().ends_with("| - |"),
        "no pixels cell for M2: {m2_line}"
    );
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
    assert!(
        t.contains("most frequent mistakes") || t.contains("100.00%"),
        "{t}"
    );
    assert!(conditional.join("confusion-test.svg").is_file());
    // Noise shown to both: the classifier labels it, p(x) ranks it below real test images.
    let out = genmodels(
        &[
            "classify",
            "--model",
            conditional.to_str().unwrap(),
            "--baseline",
            classifier.to_str().unwrap(),
            "--limit",
            "20",
            "--reject",
            "noise",
            "--reject-pool",
            "16",
            "--reject-show",
            "3",
        ],
        d,
    );
    let t = text(&out);
    assert!(
        out.status.success() && t.contains("reject when -log p(x) >"),
        "{t}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(conditional.join("classify-test.json")).unwrap())
            .unwrap();
    let v = &report["verdicts"];
    let (real, noise) = (&v["in_distribution"], &v["sets"][0]);
    assert_eq!(v["threshold_images"], 16);
    assert_eq!(
        (real["images"].as_u64(), noise["images"].as_u64()),
        (Some(20), Some(16))
    );
    assert!(
        noise["mean_nll"].as_f64() > real["mean_nll"].as_f64(),
        "{v}"
    );
    assert!(
        noise["rejected_share"].as_f64() >= real["rejected_share"].as_f64(),
        "{v}"
    );
    let shown = noise["shown"].as_array().unwrap();
    assert_eq!(shown.len(), 3);
    assert!(shown[0]["confidence"].as_f64() >= shown[2]["confidence"].as_f64());
    let svg = std::fs::read_to_string(conditional.join("verdicts-test.svg")).unwrap();
    assert_eq!(svg.matches("data:image/png;base64,").count(), 6);
    // Verdicts need both classifiers.
    let out = genmodels(
        &[
            "classify",
            "--model",
            conditional.to_str().unwrap(),
            "--limit",
            "5",
            "--reject",
            "noise",
        ],
        d,
    );
    assert!(
        !out.status.success() && text(&out).contains("--baseline"),
        "{}",
        text(&out)
    );
    // A baseline of another data set scores that set's own form of the same images (8-bit
    // MNIST for a p(x|y) of binarised MNIST), and is refused when its images are other ones.
    let path = d.join("clf-shapes");
    let out = genmodels(
        &[
            "train",
            "classifier-mlp",
            "--data",
            "synth-shapes",
            "--epochs",
            "1",
            "--train-limit",
            "64",
            "--valid-limit",
            "16",
            "--out",
            path.to_str().unwrap(),
        ],
        d,
    );
    assert!(out.status.success(), "clf-shapes: {}", text(&out));
    let out = genmodels(
        &[
            "classify",
            "--model",
            conditional.to_str().unwrap(),
            "--baseline",
            path.to_str().unwrap(),
            "--limit",
            "20",
        ],
        d,
    );
    let t = text(&out);
    assert!(
        !out.status.success() && t.contains("synth-shapes") && t.contains("other images"),
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
    // The stirred ratio is on by default (upside down).
    assert!(
        report["scores"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["score"]
                .as_str()
                .unwrap()
                .contains("stirred (upside down)")),
        "{t}"
    );
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
