//! The real binary, end to end, in fresh temp directories. One test binary, one module per
//! topic.

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/http.rs"]
mod http;

mod analysis;
mod data;
mod models;
mod runs;

use std::path::Path;
use std::process::{Command, Output};

pub fn genmodels(args: &[&str], data_dir: &Path) -> Output {
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
pub fn train_one_epoch(
    model: &str,
    run: &Path,
    limits: (&str, &str),
    extra: &[&str],
    data_dir: &Path,
) -> Output {
    genmodels(&common::train_args(model, run, limits, extra), data_dir)
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
