//! # genmodels
//!
//! Train, evaluate and sample deep generative models of images on burn (flex CPU backend by
//! default; model code is backend-agnostic).
//!
//! Dependencies point only downward:
//!
//! ```text
//! cli -> serve / report / zoo -> train / eval / sample -> run -> models -> nn -> burn tensors
//!                          data, viz, units, error, progress, allocator are leaves
//! ```

pub mod allocator;
pub mod atomic;
pub mod cli;
pub mod data;
pub mod error;
pub mod eval;
pub mod models;
pub mod nn;
pub mod progress;
pub mod report;
pub mod run;
pub mod sample;
pub mod seeded;
pub mod serve;
pub mod train;
pub mod units;
pub mod viz;
pub mod zoo;

pub use error::{Error, Result};
