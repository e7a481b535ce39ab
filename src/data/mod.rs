//! Files to images and labels. Knows nothing about models.
//!
//! A data set is named on the command line (`binarized-mnist`, `mnist`, `mnist-dyn`,
//! `fashion-mnist`, `cifar10`, `folder:PATH`, `synth-digits`) and read from the data directory:
//! `--data-dir`, else `$GENMODELS_DATA`, else `./data`. Every loader validates its files
//! completely and returns a typed error naming the file and the fault; nothing loads partially.

pub mod amat;
pub mod batch;
pub mod catalog;
pub mod cifar;
pub mod download;
pub mod folder;
pub mod idx;
pub mod shapes;
pub mod synth;

use crate::error::{Error, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Images are `channels x height x width`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageShape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl ImageShape {
    /// Number of pixel values per image (c*h*w): the "dims" of bits/dim.
    pub fn dims(&self) -> usize {
        self.channels * self.height * self.width
    }
}

/// How many values a pixel takes: 2 (binary) or 256 (8-bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Levels {
    Binary,
    Bits8,
}

impl Levels {
    /// The number of distinct values.
    pub fn count(self) -> usize {
        match self {
            Levels::Binary => 2,
            Levels::Bits8 => 256,
        }
    }
}

/// How binary images were made, which decides which benchmark a number belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Binarization {
    /// Not binarized: the images are 8-bit.
    None,
    /// One fixed sample (Larochelle-Murray, "S" in the literature), or drawn by our generator.
    Static,
    /// Resampled from the grey levels every epoch ("D"); validation and test are drawn once
    /// with a fixed seed so that numbers are repeatable.
    Dynamic,
}

/// Which part of a data set.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Split {
    Train,
    Valid,
    Test,
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Split::Train => "train",
            Split::Valid => "valid",
            Split::Test => "test",
        })
    }
}

/// A loaded split: `len()` images, each `shape.dims()` bytes, row-major `[n, c, h, w]`.
#[derive(Debug, Clone)]
pub struct ImageSet {
    /// Data set name, as given on the command line.
    pub dataset: String,
    pub split: Split,
    pub shape: ImageShape,
    pub levels: Levels,
    pub binarization: Binarization,
    /// Pixel values: in {0,1} for binary sets, 0..=255 for 8-bit ones; for a dynamically
    /// binarized training split these are grey levels, binarized per epoch by [`Self::epoch_pixels`].
    pub pixels: Vec<u8>,
    pub labels: Option<Vec<u8>>,
    /// Seed of dynamic binarization (training split only).
    pub dynamic_seed: Option<u64>,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.pixels.len() / self.shape.dims()
    }

    /// True when the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.pixels.is_empty()
    }

    /// Pixels as the model sees them in `epoch`: resampled for dynamic binarization, else as stored.
    pub fn epoch_pixels(&self, epoch: usize) -> std::borrow::Cow<'_, [u8]> {
        match self.dynamic_seed {
            Some(seed) => std::borrow::Cow::Owned(binarize_stochastic(
                &self.pixels,
                seed.wrapping_add(epoch as u64 * 0x9E37_79B9),
            )),
            None => std::borrow::Cow::Borrowed(&self.pixels),
        }
    }

    /// The first `n` images (all when `n` is larger).
    pub fn truncate(mut self, n: usize) -> Self {
        let n = n.min(self.len());
        self.pixels.truncate(n * self.shape.dims());
        if let Some(labels) = &mut self.labels {
            labels.truncate(n);
        }
        self
    }

    /// One line naming the benchmark a number on this set belongs to.
    pub fn benchmark(&self) -> String {
        let bin = match self.binarization {
            Binarization::None => "8-bit".to_string(),
            Binarization::Static => "static binarization (S)".to_string(),
            Binarization::Dynamic => "dynamic binarization (D)".to_string(),
        };
        format!("{} [{bin}], split {}", self.dataset, self.split)
    }
}

/// Draws x ~ Bernoulli(grey/255) per pixel with a seeded generator.
pub fn binarize_stochastic(grey: &[u8], seed: u64) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    grey.iter()
        .map(|&g| (rng.random::<f32>() * 255.0 < g as f32) as u8)
        .collect()
}

/// The data directory: the flag, else `$GENMODELS_DATA`, else `./data`.
pub fn resolve_data_dir(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| std::env::var_os("GENMODELS_DATA").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("data"))
}

/// Reads a whole file, gunzipping when its name ends in `.gz`. I/O errors name the file.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::bad_file(path, format!("corrupt or truncated gzip: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Loads `split` of the data set named `name` from `data_dir`.
pub fn load(name: &str, split: Split, data_dir: &Path) -> Result<ImageSet> {
    catalog::Dataset::parse(name)?.load(split, data_dir)
}
