//! The library's one error type. Every variant names the file or value at fault and, where
//! there is one, the next step for the user.

use std::path::PathBuf;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the library can report. The CLI prints the message chain once and exits non-zero.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A data file is absent; `looked_in` says where, `hint` how to get it.
    #[error("{dataset}: file {path} not found (looked in data dir {looked_in}); {hint}")]
    MissingFile {
        dataset: String,
        path: PathBuf,
        looked_in: PathBuf,
        hint: String,
    },
    /// A file exists but its content is not what its format requires.
    #[error("{path}: {problem}")]
    BadFile { path: PathBuf, problem: String },
    /// An I/O error while reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A user-supplied value (flag, config key, name) is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// Training produced a NaN or infinite loss.
    #[error(
        "non-finite loss ({value}) at step {step} (epoch {epoch}); the last good checkpoint in {run_dir} is kept. \
         Try a lower learning rate (--lr) or gradient clipping (optim.grad_clip_norm)."
    )]
    NonFiniteLoss {
        step: u64,
        epoch: usize,
        value: f64,
        run_dir: PathBuf,
    },
    /// Training was asked to stop (Ctrl-C, SIGTERM); the last checkpoint holds its progress.
    #[error(
        "training stopped by a signal at step {step} (in epoch {epoch}); its progress is saved in \
         {run_dir}: continue with `genmodels train --resume --out {run_dir}`"
    )]
    Interrupted {
        step: u64,
        epoch: usize,
        run_dir: PathBuf,
    },
    /// A download failed (network, HTTP status or checksum).
    #[error("download of {url} failed: {problem}")]
    Download { url: String, problem: String },
}

impl Error {
    /// Wraps an `std::io::Error` with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A tensor that could not be read back from the device: an error, never an empty vector
    /// that would turn into a wrong number.
    pub fn read_back(e: impl std::fmt::Display) -> Self {
        Error::Invalid(format!("cannot read a tensor back from the device: {e}"))
    }

    /// A malformed-file error.
    pub fn bad_file(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Error::BadFile {
            path: path.into(),
            problem: problem.into(),
        }
    }
}

/// A tensor's values on the host; a failed read-back is an error, never an empty vector that
/// would turn into a wrong number.
pub fn host<const D: usize>(tensor: burn::tensor::Tensor<D>) -> Result<Vec<f32>> {
    tensor.try_into_vec_as::<f32>().map_err(Error::read_back)
}

/// An integer tensor's values on the host (see [`host`]).
pub fn host_ints<const D: usize>(
    tensor: burn::tensor::Tensor<D, burn::tensor::Int>,
) -> Result<Vec<i64>> {
    tensor.try_into_vec_as::<i64>().map_err(Error::read_back)
}
