//! Layers no single paper owns: masked convolutions and the per-pixel output heads (the
//! discretised logistic mixture of PixelCNN++ among them).

pub mod coders;
pub mod conv_lstm;
pub mod dist;
pub mod dropout;
pub mod fused;
pub mod host;
pub mod logistic_mixture;
pub mod masked_conv;
pub mod padded_conv;

pub use dist::{DiagGaussian, PixelHead, PixelLikelihood};
pub use logistic_mixture::DiscretizedLogisticMixture;
pub use masked_conv::{MaskType, MaskedConv2d};
