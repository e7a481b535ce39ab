//! A convolution with explicit, asymmetric zero padding: the building block of the Gated
//! PixelCNN's vertical stack (kernel `(k/2+1) x k`, padded only above) and horizontal stack
//! (kernel `1 x (k/2+1)`, padded only on the left), which are causal by construction, without
//! masks and without computing taps that would be masked away.

use burn::module::{Initializer, Module, Param};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor};

/// Zero padding `(top, bottom, left, right)`.
pub type Padding = [usize; 4];

/// Stride-1 convolution with explicit padding.
#[derive(Module, Debug)]
pub struct PaddedConv2d {
    /// `[out_channels, in_channels, kernel_height, kernel_width]`
    pub weight: Param<Tensor<4>>,
    /// `[out_channels]`
    pub bias: Param<Tensor<1>>,
    pub padding: [usize; 4],
}

impl PaddedConv2d {
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: [usize; 2],
        padding: Padding,
        device: &Device,
    ) -> Self {
        let fan_in = in_channels * kernel[0] * kernel[1];
        let init = Initializer::KaimingUniform {
            gain: 1.0 / 3f64.sqrt(),
            fan_out_only: false,
        };
        Self {
            weight: init.init_with(
                [out_channels, in_channels, kernel[0], kernel[1]],
                Some(fan_in),
                None,
                device,
            ),
            bias: init.init_with([out_channels], Some(fan_in), None, device),
            padding,
        }
    }

    /// `[b, in, H, W] -> [b, out, H', W']` (H' = H, W' = W when the padding adds up to the kernel minus one).
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let [top, bottom, left, right] = self.padding;
        conv2d(
            input,
            self.weight.val(),
            Some(self.bias.val()),
            ConvOptions::new_with_padding([1, 1], [(top, bottom), (left, right)], [1, 1], 1),
        )
    }
}

/// Shifts `[b, c, H, W]` down by one row (zeros enter at the top, the last row falls off).
pub fn shift_down(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let zeros = Tensor::zeros([b, c, 1, w], &x.device());
    Tensor::cat(vec![zeros, x.slice([0..b, 0..c, 0..h - 1, 0..w])], 2)
}

/// Shifts `[b, c, H, W]` right by one column (zeros enter on the left).
pub fn shift_right(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let zeros = Tensor::zeros([b, c, h, 1], &x.device());
    Tensor::cat(vec![zeros, x.slice([0..b, 0..c, 0..h, 0..w - 1])], 3)
}

/// The output layers shared by the Gated PixelCNN and the PixelRNN:
/// `ReLU -> 1x1 conv (hidden) -> ReLU -> 1x1 conv (logits)`.
#[derive(Module, Debug)]
pub struct OutputHead {
    pub hidden: PaddedConv2d,
    pub logits: PaddedConv2d,
}

impl OutputHead {
    pub fn new(in_channels: usize, hidden: usize, out_channels: usize, device: &Device) -> Self {
        Self {
            hidden: PaddedConv2d::new(in_channels, hidden, [1, 1], [0; 4], device),
            logits: PaddedConv2d::new(hidden, out_channels, [1, 1], [0; 4], device),
        }
    }

    /// `[b, in, H, W] -> [b, out, H, W]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        use burn::tensor::activation::relu;
        self.logits.forward(relu(self.hidden.forward(relu(x))))
    }
}
