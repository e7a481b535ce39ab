//! Layers no single paper owns: masked convolutions and the per-pixel output heads.

pub mod dist;
pub mod masked_conv;

pub use dist::PixelHead;
pub use masked_conv::{MaskType, MaskedConv2d};
