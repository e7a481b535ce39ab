//! A convolution with explicit, asymmetric zero padding: the building block of the Gated
//! PixelCNN's vertical stack (kernel `(k/2+1) x k`, padded only above) and horizontal stack
//! (kernel `1 x (k/2+1)`, padded only on the left), which are causal by construction, without
//! masks and without computing taps that would be masked away. For colour images a
//! [`ColourMask`] on the tap at the current pixel keeps a pixel's channels in R -> G -> B order.

use crate::nn::fused::{Window, relu, window_conv2d};
use crate::nn::masked_conv::ColourMask;
use burn::module::{Initializer, Module, Param};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};

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
    /// The colour mask of the last tap (the current pixel), for colour models; fixed, not
    /// saved (a model's config rebuilds it).
    #[module(skip)]
    pub colour: Option<ColourMask>,
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
            colour: None,
        }
    }

    /// The same layer with a colour mask on its last tap, which must be the current pixel
    /// (padded `kh - 1` above and `kw - 1` on the left).
    pub fn with_colour(mut self, colour: Option<ColourMask>) -> Self {
        let [_, _, kh, kw] = self.weight.dims();
        let [top, _, left, _] = self.padding;
        assert!(
            colour.is_none() || (top == kh - 1 && left == kw - 1),
            "a colour mask needs the current pixel at the kernel's last tap"
        );
        self.colour = colour;
        self
    }

    /// The kernel with the colour mask applied: what the layer computes with.
    pub fn masked_weight(&self) -> Tensor<4> {
        let weight = self.weight.val();
        match self.colour {
            None => weight,
            Some(colour) => {
                let dims = weight.dims();
                let mask = Tensor::from_data(
                    TensorData::new(colour.kernel_mask(dims), dims),
                    &weight.device(),
                );
                weight * mask
            }
        }
    }

    /// `[b, in, H, W] -> [b, out, H', W']` (H' = H, W' = W when the padding adds up to the kernel minus one).
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let [_, _, kh, kw] = self.weight.dims();
        // Every use in the models keeps the size: that case runs as one GEMM per image.
        if let Some(window) = Window::padded([kh, kw], self.padding) {
            return self.over_window(input, window);
        }
        let [top, bottom, left, right] = self.padding;
        conv2d(
            input,
            self.masked_weight(),
            Some(self.bias.val()),
            ConvOptions::new_with_padding([1, 1], [(top, bottom), (left, right)], [1, 1], 1),
        )
    }

    /// `forward(shift(input))`, where the shift moves the image `down` rows and `right`
    /// columns (zeros enter): the kernel is read that far up and left instead, so no shifted
    /// copy is built, nor its gradient. Needs a "same" padding and, when shifting right, a
    /// kernel one row high (so the kernel's taps stay the first of the widened window).
    pub fn forward_shifted(&self, input: Tensor<4>, [down, right]: [usize; 2]) -> Tensor<4> {
        let [_, _, kh, kw] = self.weight.dims();
        let window = Window::padded([kh, kw], self.padding)
            .expect("forward_shifted: the padding must keep the size");
        assert!(
            right == 0 || kh == 1,
            "forward_shifted: right shift of a tall kernel"
        );
        let widened = Window {
            height: kh + down,
            width: kw + right,
            top: window.top + down,
            left: window.left + right,
        };
        self.over_window(input, widened)
    }

    /// The kernel's taps, in raster order, as the first taps of `window`.
    fn over_window(&self, input: Tensor<4>, window: Window) -> Tensor<4> {
        let [out_channels, in_channels, kh, kw] = self.weight.dims();
        let weight = self
            .masked_weight()
            .reshape([out_channels, in_channels, kh * kw]);
        window_conv2d(input, weight, self.bias.val(), window)
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
    /// `colour`: the type-B mask of both 1x1s for colour models (logits channel-major).
    pub fn new(
        in_channels: usize,
        hidden: usize,
        out_channels: usize,
        colour: Option<ColourMask>,
        device: &Device,
    ) -> Self {
        let conv = |i, o| PaddedConv2d::new(i, o, [1, 1], [0; 4], device).with_colour(colour);
        Self {
            hidden: conv(in_channels, hidden),
            logits: conv(hidden, out_channels),
        }
    }

    /// `[b, in, H, W] -> [b, out, H, W]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.logits.forward(relu(self.hidden.forward(relu(x))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::fused::tests::max_diff;
    use burn::tensor::Distribution;

    /// The Gated PixelCNN's two shifted convolutions, against shifting a copy first: the
    /// vertical-to-horizontal 1x1 on the row above, and the first layer's 1 x 4 horizontal
    /// kernel one column further left. Values and input gradients.
    #[test]
    fn a_shifted_forward_equals_the_forward_of_a_shifted_copy() {
        let device = Device::flex().autodiff();
        let cases = [
            (PaddedConv2d::new(6, 6, [1, 1], [0; 4], &device), [1, 0]),
            (
                PaddedConv2d::new(1, 6, [1, 4], [0, 0, 3, 0], &device),
                [0, 1],
            ),
            (
                PaddedConv2d::new(3, 4, [2, 3], [1, 0, 1, 1], &device),
                [1, 0],
            ),
        ];
        for (conv, shift) in cases {
            let c = conv.weight.dims()[1];
            let x = Tensor::<4>::random([2, c, 5, 7], Distribution::Normal(0.0, 1.0), &device);
            let probe = Tensor::<4>::random(
                [2, conv.weight.dims()[0], 5, 7],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            let leaf = || Tensor::<4>::from_data(x.to_data(), &device).require_grad();
            let (x1, x2) = (leaf(), leaf());
            let shifted = match shift {
                [1, 0] => shift_down(x2.clone()),
                _ => shift_right(x2.clone()),
            };
            let (y1, y2) = (
                conv.forward_shifted(x1.clone(), shift),
                conv.forward(shifted),
            );
            assert!(
                max_diff(y1.clone(), y2.clone()) < 1e-5,
                "forward, shift {shift:?}"
            );
            let g1 = (y1 * probe.clone()).sum().backward();
            let g2 = (y2 * probe).sum().backward();
            let d = max_diff(x1.grad(&g1).unwrap(), x2.grad(&g2).unwrap());
            assert!(d < 1e-5, "input gradient, shift {shift:?}: {d}");
        }
    }
}
