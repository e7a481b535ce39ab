//! Encoder and decoder networks shared by the autoencoder and the VAE (one definition each,
//! so that `features` can move a trained encoder into a classifier).
//!
//! - MLP: `x (c*h*w) -> hidden... -> out` with tanh or ReLU between layers.
//! - Conv (for 28x28-like images): two stride-2 4x4 convolutions (32, 64 channels: H -> H/2 ->
//!   H/4), then a linear layer; the decoder mirrors it with transposed convolutions.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::{relu, tanh};
use burn::tensor::{Device, Tensor};

/// Non-linearity between layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    Tanh,
    Relu,
}

fn activate(x: Tensor<2>, tanh_not_relu: bool) -> Tensor<2> {
    if tanh_not_relu { tanh(x) } else { relu(x) }
}

/// A multi-layer perceptron `[batch, in] -> [batch, out]`, activation after every hidden layer.
#[derive(Module, Debug)]
pub struct Mlp {
    layers: Vec<Linear>,
    tanh: bool,
}

impl Mlp {
    /// `sizes` = input, hidden..., output.
    pub fn new(sizes: &[usize], activation: Activation, device: &Device) -> Self {
        Self {
            layers: sizes
                .windows(2)
                .map(|w| LinearConfig::new(w[0], w[1]).init(device))
                .collect(),
            tanh: activation == Activation::Tanh,
        }
    }

    pub fn forward(&self, mut x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x);
            if i < last {
                x = activate(x, self.tanh);
            }
        }
        x
    }
}

/// Convolutional encoder: `[b, c, H, W] -> [b, out]` (H, W divisible by 4).
#[derive(Module, Debug)]
pub struct ConvEncoder {
    conv1: Conv2d,
    conv2: Conv2d,
    linear: Linear,
}

const CONV1: usize = 32;
const CONV2: usize = 64;

impl ConvEncoder {
    pub fn new(channels: usize, height: usize, width: usize, out: usize, device: &Device) -> Self {
        let conv = |i, o| {
            Conv2dConfig::new([i, o], [4, 4])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        Self {
            conv1: conv(channels, CONV1),
            conv2: conv(CONV1, CONV2),
            linear: LinearConfig::new(CONV2 * (height / 4) * (width / 4), out).init(device),
        }
    }

    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let x = relu(self.conv1.forward(images.mul_scalar(2.0).sub_scalar(1.0)));
        let x = relu(self.conv2.forward(x)); // [b, 64, H/4, W/4]
        let [b, ..] = x.dims();
        self.linear.forward(x.reshape([b as i64, -1]))
    }
}

/// Convolutional decoder: `[b, latent] -> [b, c, H, W]` logits (or means).
#[derive(Module, Debug)]
pub struct ConvDecoder {
    linear: Linear,
    deconv1: ConvTranspose2d,
    deconv2: ConvTranspose2d,
    height: usize,
    width: usize,
}

impl ConvDecoder {
    pub fn new(
        latent: usize,
        channels: usize,
        height: usize,
        width: usize,
        device: &Device,
    ) -> Self {
        let deconv = |i, o| {
            ConvTranspose2dConfig::new([i, o], [4, 4])
                .with_stride([2, 2])
                .with_padding([1, 1])
                .init(device)
        };
        Self {
            linear: LinearConfig::new(latent, CONV2 * (height / 4) * (width / 4)).init(device),
            deconv1: deconv(CONV2, CONV1),
            deconv2: deconv(CONV1, channels),
            height,
            width,
        }
    }

    pub fn forward(&self, z: Tensor<2>) -> Tensor<4> {
        let [b, _] = z.dims();
        let x = relu(self.linear.forward(z)).reshape([b, CONV2, self.height / 4, self.width / 4]);
        let x = relu(self.deconv1.forward(x)); // [b, 32, H/2, W/2]
        self.deconv2.forward(x) // [b, c, H, W]
    }
}

/// Which encoder/decoder family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Architecture {
    Mlp,
    Conv,
}

/// An encoder of either family: images `[b, c, H, W]` -> features `[b, out]`.
// Built a handful of times per process: boxing the large variant buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Encoder {
    Mlp(Mlp),
    Conv(ConvEncoder),
}

impl Encoder {
    /// `hidden` sizes apply to the MLP only.
    pub fn new(
        architecture: Architecture,
        shape: [usize; 3],
        hidden: &[usize],
        out: usize,
        activation: Activation,
        device: &Device,
    ) -> Self {
        let [c, h, w] = shape;
        match architecture {
            Architecture::Mlp => {
                let sizes: Vec<usize> = std::iter::once(c * h * w)
                    .chain(hidden.iter().copied())
                    .chain(std::iter::once(out))
                    .collect();
                Encoder::Mlp(Mlp::new(&sizes, activation, device))
            }
            Architecture::Conv => Encoder::Conv(ConvEncoder::new(c, h, w, out, device)),
        }
    }

    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        match self {
            Encoder::Mlp(mlp) => {
                let [b, ..] = images.dims();
                mlp.forward(images.reshape([b as i64, -1]))
            }
            Encoder::Conv(conv) => conv.forward(images),
        }
    }
}

/// A decoder of either family: `[b, latent]` -> `[b, c, H, W]`.
// Built a handful of times per process: boxing the large variant buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Decoder {
    Mlp(Mlp),
    Conv(ConvDecoder),
}

impl Decoder {
    pub fn new(
        architecture: Architecture,
        latent: usize,
        hidden: &[usize],
        shape: [usize; 3],
        activation: Activation,
        device: &Device,
    ) -> Self {
        let [c, h, w] = shape;
        match architecture {
            Architecture::Mlp => {
                let sizes: Vec<usize> = std::iter::once(latent)
                    .chain(hidden.iter().rev().copied())
                    .chain(std::iter::once(c * h * w))
                    .collect();
                Decoder::Mlp(Mlp::new(&sizes, activation, device))
            }
            Architecture::Conv => Decoder::Conv(ConvDecoder::new(latent, c, h, w, device)),
        }
    }

    /// `shape` is the image shape `[c, H, W]` the MLP output is folded into.
    pub fn forward(&self, z: Tensor<2>, shape: [usize; 3]) -> Tensor<4> {
        let [b, _] = z.dims();
        let [c, h, w] = shape;
        match self {
            Decoder::Mlp(mlp) => mlp.forward(z).reshape([b, c, h, w]),
            Decoder::Conv(conv) => conv.forward(z),
        }
    }
}
