//! PixelCNN (van den Oord et al. 2016, "Pixel Recurrent Neural Networks", §3.4, Table 1;
//! and "Conditional Image Generation with PixelCNN Decoders", §2).
//!
//! An autoregressive density over pixels in raster order, channels R -> G -> B within a pixel:
//!
//! ```text
//! p(x) = Π_i p(x_i | x_<i)
//! ```
//!
//! Every conditional comes from one parallel pass of masked convolutions ([`crate::nn::masked_conv`]):
//! a 7x7 type-A convolution (2h features), residual blocks
//! `x + conv1x1_{h->2h}(ReLU(conv3x3_B(ReLU(conv1x1_{2h->h}(ReLU(x))))))` (PixelRNN Fig. 5),
//! then ReLU, a 1x1 type-B convolution, ReLU and a 1x1 type-B convolution to the output logits:
//! one per channel (Bernoulli) or 256 per channel (softmax).
//!
//! Departures: the stack of 3x3 type-B convolutions has the known "blind spot" (pixels to the
//! upper right fall out of the receptive field); the Gated PixelCNN removes it. Inputs are
//! rescaled from [0, 1] to [-1, 1].

use super::{Autoregressive, FastSampler, ImageSpec, Model, ModelFlags, ModelSpec, Preset};
use crate::nn::fused::relu;
use crate::nn::host::HostConv;
use crate::nn::{MaskType, MaskedConv2d, PixelHead};
use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};

/// One residual block (PixelRNN paper, Fig. 5): 2h -> h -> h -> 2h features.
#[derive(Module, Debug)]
pub struct ResidualBlock {
    reduce: MaskedConv2d,
    masked: MaskedConv2d,
    expand: MaskedConv2d,
}

impl ResidualBlock {
    fn new(hidden: usize, kernel: usize, image_channels: usize, device: &Device) -> Self {
        let b = MaskType::B;
        Self {
            reduce: MaskedConv2d::new(2 * hidden, hidden, 1, b, image_channels, device),
            masked: MaskedConv2d::new(hidden, hidden, kernel, b, image_channels, device),
            expand: MaskedConv2d::new(hidden, 2 * hidden, 1, b, image_channels, device),
        }
    }

    /// `[b, 2h, H, W] -> [b, 2h, H, W]`
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.reduce.forward(relu(x.clone()));
        let y = self.masked.forward(relu(y));
        x + self.expand.forward(relu(y))
    }
}

/// Hyperparameters of a PixelCNN. Image size and pixel levels come from the data.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PixelCnnConfig {
    /// h: the residual blocks carry 2h feature maps and compute their 3x3 conv on h.
    pub hidden_channels: usize,
    /// Number of residual blocks.
    pub residual_blocks: usize,
    /// Kernel of the first (type-A) layer; 7 in the paper.
    pub first_kernel: usize,
    /// Kernel of the masked conv inside each block; 3 in the paper.
    pub block_kernel: usize,
    /// Width of the 1x1 output layer before the logits.
    pub output_hidden: usize,
}

impl Default for PixelCnnConfig {
    fn default() -> Self {
        Self {
            hidden_channels: 32,
            residual_blocks: 8,
            first_kernel: 7,
            block_kernel: 3,
            output_hidden: 64,
        }
    }
}

/// The PixelCNN.
#[derive(Module, Debug)]
pub struct PixelCnn {
    input: MaskedConv2d,
    blocks: Vec<ResidualBlock>,
    output_hidden: MaskedConv2d,
    output: MaskedConv2d,
    image_channels: usize,
    /// Logits per channel: 1 (Bernoulli) or 256 (softmax).
    logits_per_channel: usize,
}

impl PixelCnnConfig {
    /// Builds the model for images of `image`.
    pub fn init(&self, image: &ImageSpec, device: &Device) -> PixelCnn {
        let c = image.shape.channels;
        let two_h = 2 * self.hidden_channels;
        let logits_per_channel = image.logits_per_channel();
        PixelCnn {
            input: MaskedConv2d::new(c, two_h, self.first_kernel, MaskType::A, c, device),
            blocks: (0..self.residual_blocks)
                .map(|_| ResidualBlock::new(self.hidden_channels, self.block_kernel, c, device))
                .collect(),
            output_hidden: MaskedConv2d::new(two_h, self.output_hidden, 1, MaskType::B, c, device),
            output: MaskedConv2d::new(
                self.output_hidden,
                c * logits_per_channel,
                1,
                MaskType::B,
                c,
                device,
            ),
            image_channels: c,
            logits_per_channel,
        }
    }
}

impl PixelCnn {
    /// Logits of every pixel: `[b, c, H, W] -> [b, c * logits_per_channel, H, W]`.
    pub fn logits(&self, images: Tensor<4>) -> Tensor<4> {
        let x = images.mul_scalar(2.0).sub_scalar(1.0);
        let mut h = self.input.forward(x);
        for block in &self.blocks {
            h = block.forward(h);
        }
        let h = self.output_hidden.forward(relu(h));
        self.output.forward(relu(h))
    }
}

/// One residual block's weights on the host (masks applied).
#[derive(Debug, Clone)]
pub struct HostResidualBlock {
    pub reduce: HostConv,
    pub masked: HostConv,
    pub expand: HostConv,
}

/// Every weight of a PixelCNN on the host, masks applied, for the cached sampler
/// ([`crate::sample::cached::pixelcnn`]).
#[derive(Debug, Clone)]
pub struct HostPixelCnn {
    pub input: HostConv,
    pub blocks: Vec<HostResidualBlock>,
    pub output_hidden: HostConv,
    pub output: HostConv,
    pub image_channels: usize,
    pub logits_per_channel: usize,
}

impl PixelCnn {
    /// Copies the weights to the host.
    pub fn to_host(&self) -> crate::Result<HostPixelCnn> {
        let blocks = (self.blocks.iter())
            .map(|b| {
                Ok(HostResidualBlock {
                    reduce: HostConv::masked(&b.reduce)?,
                    masked: HostConv::masked(&b.masked)?,
                    expand: HostConv::masked(&b.expand)?,
                })
            })
            .collect::<crate::Result<_>>()?;
        Ok(HostPixelCnn {
            input: HostConv::masked(&self.input)?,
            blocks,
            output_hidden: HostConv::masked(&self.output_hidden)?,
            output: HostConv::masked(&self.output)?,
            image_channels: self.image_channels,
            logits_per_channel: self.logits_per_channel,
        })
    }
}

impl Autoregressive for PixelCnn {
    fn conditionals(&self, images: Tensor<4>, _labels: Option<&Tensor<1, Int>>) -> PixelHead {
        let [_, channels, _, _] = images.dims();
        assert_eq!(
            channels, self.image_channels,
            "PixelCNN built for {} channels",
            self.image_channels
        );
        PixelHead::from_logits(self.logits(images), self.logits_per_channel)
    }
}

impl ModelSpec for PixelCnnConfig {
    type Model = PixelCnn;

    fn presets() -> Vec<Preset<Self>> {
        vec![Preset {
            name: "pixelcnn",
            about: "PixelCNN with masked convolutions (binary, grey or RGB images)",
            config: Self::default(),
        }]
    }

    fn name(&self) -> &'static str {
        "pixelcnn"
    }

    fn build(&self, image: &ImageSpec, device: &Device) -> PixelCnn {
        self.init(image, device)
    }

    fn apply(&mut self, flags: &mut ModelFlags) -> crate::Result<()> {
        self.hidden_channels = flags.hidden_channels.take().unwrap_or(self.hidden_channels);
        self.residual_blocks = flags.residual_blocks.take().unwrap_or(self.residual_blocks);
        Ok(())
    }
}

impl Model for PixelCnn {
    fn as_autoregressive(&self) -> Option<&dyn Autoregressive> {
        Some(self)
    }

    /// The cached sampler of `crate::sample::cached::pixelcnn`, on host copies of the weights.
    fn fast_sampler(&self) -> crate::Result<Option<Box<dyn FastSampler>>> {
        Ok(Some(Box::new(self.to_host()?)))
    }
}
