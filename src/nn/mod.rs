//! Layers no single paper owns: masked convolutions and the per-pixel output heads.

pub mod coders;
pub mod conv_lstm;
pub mod dist;
pub mod fused;
pub mod host;
pub mod masked_conv;
pub mod padded_conv;

pub use dist::{DiagGaussian, PixelHead, PixelLikelihood};
pub use masked_conv::{MaskType, MaskedConv2d};
