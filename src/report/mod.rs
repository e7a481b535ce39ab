//! `report.html`: a self-contained page (images inlined, no network) built from run
//! directories: the config, learning curves, the metrics with their benchmark named, the
//! pictures the run has, model size and training time; several runs side by side.

use crate::error::{Error, Result};
use crate::train::{EpochMetrics, read_metrics};
use base64::Engine;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Pictures a run directory may hold, in display order, with captions.
const PICTURES: [(&str, &str); 8] = [
    (crate::layout::SAMPLES, "Samples"),
    (
        crate::layout::COMPLETIONS,
        "Completions: given top half, k completions, original",
    ),
    (
        crate::layout::RECONSTRUCTIONS,
        "Reconstructions: inputs above, outputs below",
    ),
    (
        crate::layout::PRIOR_SAMPLES,
        "Decoded samples from the prior",
    ),
    (
        crate::layout::INTERPOLATION,
        "Interpolation between two encoded test images",
    ),
    (crate::layout::MANIFOLD, "Decoded 2-D latent manifold"),
    (
        crate::layout::LATENT_SCATTER,
        "Posterior means of test images by label",
    ),
    (crate::layout::LOSS_CURVE, "Learning curve"),
];

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn inline_picture(path: &Path) -> Result<Option<String>> {
    let Ok(bytes) = std::fs::read(path) else {
        return Ok(None);
    };
    Ok(Some(match path.extension().and_then(|e| e.to_str()) {
        Some("svg") => {
            String::from_utf8(bytes).map_err(|_| Error::bad_file(path, "SVG is not UTF-8"))?
        }
        _ => format!(
            "<img alt=\"{}\" src=\"data:image/png;base64,{}\">",
            escape(&path.display().to_string()),
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ),
    }))
}

/// One run's numbers for tables.
struct RunSummary {
    dir: PathBuf,
    model: String,
    dataset: String,
    parameters: Option<u64>,
    metrics: Vec<EpochMetrics>,
    seconds: Option<f64>,
    evaluations: Vec<serde_json::Value>,
}

fn summarise(dir: &Path) -> Result<RunSummary> {
    let config = crate::config::load_run_config(dir)?;
    let summary = std::fs::read(dir.join(crate::layout::TRAIN_SUMMARY))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    let seconds = summary.as_ref().and_then(|v| v["seconds"].as_f64());
    let parameters = summary.as_ref().and_then(|v| v["parameters"].as_u64());
    let mut evaluations = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut names: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        names.sort();
        for path in names {
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            if crate::layout::is_eval_file(&name)
                && let Some(v) = std::fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
            {
                evaluations.push(v);
            }
        }
    }
    Ok(RunSummary {
        dir: dir.to_path_buf(),
        model: config.model.name().to_string(),
        dataset: config.data.dataset.clone(),
        parameters,
        metrics: read_metrics(dir)?,
        seconds,
        evaluations,
    })
}

/// Writes `out` (an HTML file) for one or more runs.
pub fn write(run_dirs: &[PathBuf], out: &Path) -> Result<()> {
    let runs: Vec<RunSummary> = run_dirs
        .iter()
        .map(|d| summarise(d))
        .collect::<Result<_>>()?;
    let mut html = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>genmodels report</title><style>\
         body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}\
         table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}\
         th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}\
         pre{background:#f7f7f7;padding:1em;overflow:auto}figure{display:inline-block;margin:1em;vertical-align:top}\
         img{image-rendering:pixelated;max-width:100%}</style></head><body>",
    );
    let _ = write!(html, "<h1>genmodels report</h1>");
    // Comparison table.
    let _ = write!(
        html,
        "<h2>Runs</h2><table><tr><th>run</th><th>model</th><th>parameters</th><th>data</th><th>epochs</th><th>training time</th>\
         <th>best valid NLL (nats)</th><th>evaluations</th></tr>"
    );
    for r in &runs {
        let best = r
            .metrics
            .iter()
            .map(|m| m.valid_nll)
            .fold(f64::INFINITY, f64::min);
        let evals: Vec<String> = r
            .evaluations
            .iter()
            .map(|e| {
                format!(
                    "{}: {:.3} nats ({}; {})",
                    e["estimator"].as_str().unwrap_or("?"),
                    e["nll_nats_per_image"].as_f64().unwrap_or(f64::NAN),
                    e["benchmark"].as_str().unwrap_or("?"),
                    e["images"]
                )
            })
            .collect();
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&r.dir.display().to_string()),
            r.model,
            r.parameters.map_or("-".into(), |p| p.to_string()),
            escape(&r.dataset),
            r.metrics.iter().filter(|m| !m.partial).count(),
            r.seconds.map_or("-".into(), |s| format!("{:.0} s", s)),
            if best.is_finite() {
                format!("{best:.3}")
            } else {
                "-".into()
            },
            escape(&evals.join("<br>")).replace("&lt;br&gt;", "<br>")
        );
    }
    html.push_str("</table>");
    if runs.len() > 1 {
        let series = |f: fn(&EpochMetrics) -> f64| -> Vec<(String, Vec<f64>)> {
            runs.iter()
                .map(|r| {
                    (
                        r.dir.display().to_string(),
                        r.metrics.iter().map(f).collect(),
                    )
                })
                .collect()
        };
        for (title, f) in [
            (
                "validation NLL per epoch",
                (|m: &EpochMetrics| m.valid_nll) as fn(&EpochMetrics) -> f64,
            ),
            ("validation bits/dim per epoch", |m: &EpochMetrics| {
                m.valid_bits_per_dim
            }),
        ] {
            html.push_str(&crate::viz::overlay_curves_svg(
                title,
                if title.contains("bits") {
                    "bits/dim"
                } else {
                    "nats per image"
                },
                &series(f),
            )?);
        }
    }
    for r in &runs {
        let _ = write!(html, "<h2>{}</h2>", escape(&r.dir.display().to_string()));
        if let Ok(config) = std::fs::read_to_string(r.dir.join(crate::config::CONFIG_FILE)) {
            let _ = write!(
                html,
                "<details><summary>config.toml</summary><pre>{}</pre></details>",
                escape(&config)
            );
        }
        if !r.metrics.is_empty() {
            // The objective's terms (a VAE's reconstruction NLL and KL), when it has several.
            let with_terms = r.metrics.iter().any(|m| m.terms.len() > 1);
            let _ = write!(
                html,
                "<table><tr><th>epoch</th><th>train NLL</th>{}<th>valid NLL</th><th>valid bits/dim</th><th>test NLL</th><th>images/s</th><th>time (s)</th></tr>",
                if with_terms {
                    "<th>train loss terms (nats)</th>"
                } else {
                    ""
                }
            );
            for m in &r.metrics {
                let terms = if with_terms {
                    let parts: Vec<String> =
                        m.terms.iter().map(|(k, v)| format!("{k} {v:.3}")).collect();
                    format!("<td>{}</td>", escape(&parts.join(", ")))
                } else {
                    String::new()
                };
                let _ = write!(
                    html,
                    "<tr><td>{}{}</td><td>{:.3}</td>{terms}<td>{:.3}</td><td>{:.5}</td><td>{}</td><td>{:.1}</td><td>{:.0}</td></tr>",
                    m.epoch,
                    if m.partial { " (partial)" } else { "" },
                    m.train_nll,
                    m.valid_nll,
                    m.valid_bits_per_dim,
                    m.test_nll.map_or("-".into(), |t| format!("{t:.3}")),
                    m.images_per_second,
                    m.seconds
                );
            }
            html.push_str("</table>");
            let bits = vec![
                (
                    "train".to_string(),
                    r.metrics.iter().map(|m| m.train_bits_per_dim).collect(),
                ),
                (
                    "validation".to_string(),
                    r.metrics.iter().map(|m| m.valid_bits_per_dim).collect(),
                ),
            ];
            html.push_str(&crate::viz::overlay_curves_svg(
                "bits/dim per epoch",
                "bits/dim",
                &bits,
            )?);
        }
        for (file, caption) in PICTURES {
            if let Some(picture) = inline_picture(&r.dir.join(file))? {
                let _ = write!(
                    html,
                    "<figure>{picture}<figcaption>{caption}</figcaption></figure>"
                );
            }
        }
    }
    html.push_str("</body></html>");
    crate::atomic::write_atomic(out, html.as_bytes())
}
