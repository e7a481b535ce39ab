//! Helpers shared by the integration tests: a tiny model config and small data sets.
#![allow(dead_code)]

use genmodels::config::{DataConfig, OptimConfig, RunConfig, Schedule, TrainConfig};
use genmodels::data::{Binarization, ImageSet, ImageShape, Levels, Split};
use genmodels::models::{ImageSpec, ModelConfig, PixelCnnConfig};
use std::path::{Path, PathBuf};

pub mod causality;

pub fn tiny_pixelcnn() -> PixelCnnConfig {
    PixelCnnConfig {
        hidden_channels: 4,
        residual_blocks: 2,
        first_kernel: 5,
        block_kernel: 3,
        output_hidden: 8,
    }
}

pub fn spec(channels: usize, side: usize, levels: Levels) -> ImageSpec {
    ImageSpec {
        shape: ImageShape {
            channels,
            height: side,
            width: side,
        },
        levels,
    }
}

/// A run config training the tiny PixelCNN on the first images of synth-digits.
pub fn tiny_run(epochs: usize) -> RunConfig {
    RunConfig {
        data: DataConfig {
            dataset: "synth-digits".into(),
        },
        image: None,
        model: ModelConfig::Pixelcnn(tiny_pixelcnn()),
        optim: OptimConfig {
            lr: 3e-3,
            schedule: Schedule::Constant,
            ..Default::default()
        },
        train: TrainConfig {
            epochs,
            batch_size: 16,
            seed: 7,
            train_limit: Some(64),
            valid_limit: Some(32),
            final_samples: 0,
            ..Default::default()
        },
    }
}

/// Random images of a given spec (deterministic).
pub fn random_images(spec: &ImageSpec, n: usize, seed: u64) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n * spec.shape.dims())
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) % spec.levels.count() as u64) as u8
        })
        .collect()
}

pub fn image_set(spec: &ImageSpec, pixels: Vec<u8>, split: Split) -> ImageSet {
    ImageSet {
        dataset: "test".into(),
        split,
        shape: spec.shape,
        levels: spec.levels,
        binarization: if spec.levels == Levels::Binary {
            Binarization::Static
        } else {
            Binarization::None
        },
        pixels,
        labels: None,
        dynamic_seed: None,
    }
}

/// The arguments of `genmodels train MODEL` for one epoch on the first `train` / `valid`
/// synth-digits images into `run`, then `extra` flags.
pub fn train_args<'a>(
    model: &'a str,
    run: &'a Path,
    (train, valid): (&'a str, &'a str),
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "train",
        model,
        "--data",
        "synth-digits",
        "--epochs",
        "1",
        "--train-limit",
        train,
        "--valid-limit",
        valid,
        "--out",
        run.to_str().unwrap(),
    ];
    args.extend(extra);
    args
}

/// Trains `model` through the `genmodels` command on 64 synth-digits images for one epoch
/// (32 validation images) into `dir/name`, with `extra` flags; panics with its stderr on failure.
pub fn train_cli(dir: &Path, name: &str, model: &str, extra: &[&str]) -> PathBuf {
    let run = dir.join(name);
    genmodels_ok(&train_args(model, &run, ("64", "32"), extra));
    run
}

/// Runs the `genmodels` command with `args`; panics with its stderr on failure.
pub fn genmodels_ok(args: &[&str]) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_genmodels"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// log p(x) of each image of `set` under the best checkpoint of the autoregressive run `run`,
/// computed by the library (what the command-line and HTTP front ends must agree with).
pub fn library_log_prob(run: &Path, set: &ImageSet) -> Vec<f64> {
    let device = burn::tensor::Device::flex();
    let trained =
        genmodels::run::load_trained(run, genmodels::train::checkpoint::Which::Best, &device)
            .unwrap();
    genmodels::eval::per_image_log_prob(
        trained.model.as_autoregressive().unwrap(),
        set,
        1,
        &device,
        &mut genmodels::progress::Silent,
    )
    .unwrap()
}

/// Serves `playground` on a free loopback port from a thread of its own, with `threads`
/// workers and `read_timeout` (`genmodels::serve::READ_TIMEOUT` as `genmodels serve` uses);
/// returns the address once it listens.
pub fn start_playground(
    playground: genmodels::serve::Playground,
    threads: usize,
    read_timeout: std::time::Duration,
) -> std::net::SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    let playground = std::sync::Arc::new(playground);
    std::thread::spawn(move || {
        genmodels::serve::serve_with_timeout(
            playground,
            "127.0.0.1:0",
            threads,
            read_timeout,
            |a| tx.send(a).unwrap(),
        )
    });
    rx.recv().unwrap()
}
