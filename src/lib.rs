//! # genmodels
//!
//! Train, evaluate and sample deep generative models of images on burn (flex CPU backend by
//! default; model code is backend-agnostic).
//!
//! Dependencies point only downward:
//!
//! ```text
//! cli -> zoo / serve -> run -> report -> train / eval / sample -> config -> models -> nn -> burn
//!        data, viz, layout, units, error, progress, atomic, seeded, allocator are leaves
//! ```

pub mod allocator;
pub mod analysis;
pub mod atomic;
pub mod cli;
pub mod config;
pub mod data;
pub mod error;
pub mod eval;
pub mod layout;
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
