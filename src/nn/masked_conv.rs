//! Masked convolutions (van den Oord et al. 2016, "Pixel Recurrent Neural Networks", §3.4).
//!
//! The kernel is multiplied by a fixed 0/1 mask so that the output at pixel i depends only on
//! pixels before i in raster order. For a 5x5 kernel (1 = tap kept, centre marked):
//!
//! ```text
//!   type A (first layer)     type B (later layers)
//!   1 1 1 1 1                1 1 1 1 1
//!   1 1 1 1 1                1 1 1 1 1
//!   1 1 A 0 0                1 1 B 0 0
//!   0 0 0 0 0                0 0 0 0 0
//!   0 0 0 0 0                0 0 0 0 0
//! ```
//!
//! At the centre tap the channels follow the colour order R -> G -> B: feature channels are split
//! into `image_channels` contiguous groups, and output group g sees input groups < g (type A)
//! or <= g (type B). With one image channel, A drops the centre and B keeps it.
//!
//! The kept taps are, in raster order, the first `live_taps` of the window, so `forward` hands
//! only those to a convolution that never computes the others
//! ([`crate::nn::fused::causal_conv2d`]: 5 of 9 taps for a 3 x 3 mask B, 24 of 49 for a 7 x 7
//! mask A). The mask is still applied to the weight, for the centre tap's colour groups, so
//! masked weights get zero gradient.

use crate::nn::fused::causal_conv2d;
use burn::module::{Initializer, Module, Param};
use burn::tensor::{Device, Tensor, TensorData};

/// Which mask: A excludes the current pixel's own channel (group), B includes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MaskType {
    A,
    B,
}

/// A square convolution with a causal mask, stride 1 and "same" padding.
#[derive(Module, Debug)]
pub struct MaskedConv2d {
    /// `[out_channels, in_channels, kernel, kernel]`
    pub weight: Param<Tensor<4>>,
    /// `[out_channels]`
    pub bias: Param<Tensor<1>>,
    /// Fixed 0/1 mask, same shape as `weight`; not a parameter.
    pub mask: Tensor<4>,
    pub kernel_size: usize,
    /// How many taps, in raster order, the mask keeps for some channel pair.
    pub live_taps: usize,
}

impl MaskedConv2d {
    /// A new layer with Kaiming-uniform weights (fan-in counted over the live taps only, so
    /// that a sparse mask does not shrink the initial activations).
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel_size: usize,
        mask_type: MaskType,
        image_channels: usize,
        device: &Device,
    ) -> Self {
        assert!(
            kernel_size % 2 == 1,
            "masked convolutions need an odd kernel"
        );
        let shape = [out_channels, in_channels, kernel_size, kernel_size];
        let mask_values = causal_mask(shape, mask_type, image_channels);
        let taps = kernel_size * kernel_size;
        let live_taps = (0..taps)
            .rev()
            .find(|&t| mask_values.chunks(taps).any(|window| window[t] > 0.0))
            .map_or(0, |last| last + 1);
        let live_per_output = mask_values.iter().filter(|&&m| m > 0.0).count() / out_channels;
        let fan_in = live_per_output.max(1);
        let init = Initializer::KaimingUniform {
            gain: 1.0 / 3f64.sqrt(),
            fan_out_only: false,
        };
        Self {
            weight: init.init_with(shape, Some(fan_in), None, device),
            bias: init.init_with([out_channels], Some(fan_in), None, device),
            mask: Tensor::from_data(TensorData::new(mask_values, shape), device),
            kernel_size,
            live_taps,
        }
    }

    /// # Shapes
    /// - `input`: `[batch, in_channels, height, width]`
    /// - output: `[batch, out_channels, height, width]`
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let [out_channels, in_channels, k, _] = self.weight.dims();
        let live = (self.weight.val() * self.mask.clone())
            .reshape([out_channels, in_channels, k * k])
            .narrow(2, 0, self.live_taps); // [out, in, live taps]
        causal_conv2d(input, live, self.bias.val(), k)
    }
}

/// The colour group (0 = R, 1 = G, 2 = B) of feature `channel` of `total`, when the features
/// come in `chunks` equal parts each split into `image_channels` contiguous groups alike: the
/// two gate halves of a Gated PixelCNN layer (chunks = 2) or an LSTM's four gates (chunks = 4),
/// so that a unit and every gate that feeds it share one group. Logits laid out channel-major
/// (`[c][L]`) are one chunk.
pub fn colour_group(channel: usize, total: usize, chunks: usize, image_channels: usize) -> usize {
    let part = total / chunks;
    (channel % part) * image_channels / part
}

/// The colour mask of a convolution's tap at the current pixel (PixelRNN paper §3.4), for
/// layers without a square kernel: the Gated PixelCNN's horizontal stack and 1x1s, the Row
/// LSTM's and Diagonal BiLSTM's input-to-state convolutions, the PixelRNN's 1x1s and output
/// layers. Output group g sees input groups < g (type A) or <= g (type B); other taps, all in
/// the past, are not masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColourMask {
    pub mask_type: MaskType,
    pub image_channels: usize,
    /// Equal parts of the input's and of the output's channels (see [`colour_group`]).
    pub in_chunks: usize,
    pub out_chunks: usize,
}

impl ColourMask {
    /// The mask for `image_channels` colours, or none for a single channel (nothing to mask).
    pub fn of(mask_type: MaskType, image_channels: usize) -> Option<Self> {
        (image_channels > 1).then_some(Self {
            mask_type,
            image_channels,
            in_chunks: 1,
            out_chunks: 1,
        })
    }

    /// The same mask with the output in `chunks` gate blocks.
    pub fn gates(self, chunks: usize) -> Self {
        Self {
            out_chunks: chunks,
            ..self
        }
    }

    /// Whether output `o` of `outputs` reads input `i` of `inputs` at the current pixel.
    pub fn keeps(&self, o: usize, outputs: usize, i: usize, inputs: usize) -> bool {
        let go = colour_group(o, outputs, self.out_chunks, self.image_channels);
        let gi = colour_group(i, inputs, self.in_chunks, self.image_channels);
        match self.mask_type {
            MaskType::A => gi < go,
            MaskType::B => gi <= go,
        }
    }

    /// The 0/1 mask of a `[out, in, kh, kw]` kernel whose last tap, `(kh - 1, kw - 1)`, is the
    /// current pixel (kernels padded only above and on the left); row-major.
    pub fn kernel_mask(&self, [out, inputs, kh, kw]: [usize; 4]) -> Vec<f32> {
        let taps = kh * kw;
        let mut mask = vec![1f32; out * inputs * taps];
        for o in 0..out {
            for i in 0..inputs {
                mask[(o * inputs + i) * taps + taps - 1] =
                    self.keeps(o, out, i, inputs) as u8 as f32;
            }
        }
        mask
    }
}

/// The 0/1 mask, row-major `[out, in, k, k]`.
pub fn causal_mask(shape: [usize; 4], mask_type: MaskType, image_channels: usize) -> Vec<f32> {
    let [out_channels, in_channels, k, _] = shape;
    let centre = k / 2;
    let group = |channel: usize, total: usize| colour_group(channel, total, 1, image_channels);
    let mut mask = vec![0f32; out_channels * in_channels * k * k];
    for o in 0..out_channels {
        for i in 0..in_channels {
            for r in 0..k {
                for c in 0..k {
                    let keep = if r < centre || (r == centre && c < centre) {
                        true
                    } else if r == centre && c == centre {
                        let (gi, go) = (group(i, in_channels), group(o, out_channels));
                        match mask_type {
                            MaskType::A => gi < go,
                            MaskType::B => gi <= go,
                        }
                    } else {
                        false
                    };
                    mask[((o * in_channels + i) * k + r) * k + c] = keep as u8 as f32;
                }
            }
        }
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(mask: &[f32], k: usize) -> String {
        mask.chunks(k)
            .map(|row| {
                row.iter()
                    .map(|&v| if v > 0.0 { '1' } else { '0' })
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn single_channel_masks_match_the_paper() {
        let a = causal_mask([1, 1, 3, 3], MaskType::A, 1);
        let b = causal_mask([1, 1, 3, 3], MaskType::B, 1);
        assert_eq!(grid(&a, 3), "111\n100\n000");
        assert_eq!(grid(&b, 3), "111\n110\n000");
    }

    #[test]
    fn colour_centre_tap_follows_rgb_order() {
        // First layer: 3 image channels in, 6 features out (2 per colour group).
        let k = 1;
        let a = causal_mask([6, 3, k, k], MaskType::A, 3);
        let b = causal_mask([6, 3, k, k], MaskType::B, 3);
        let at = |m: &[f32], o: usize, i: usize| m[o * 3 + i] > 0.0;
        for o in 0..6 {
            for i in 0..3 {
                assert_eq!(at(&a, o, i), i < o / 2, "A o={o} i={i}");
                assert_eq!(at(&b, o, i), i <= o / 2, "B o={o} i={i}");
            }
        }
    }

    #[test]
    fn gate_chunks_share_their_units_colour_group() {
        // An LSTM's 4 gates x 6 units over 3 colours: unit u is in group u / 2 in every gate.
        let m = ColourMask::of(MaskType::B, 3).unwrap().gates(4);
        for o in 0..24 {
            let unit_group = (o % 6) / 2;
            for i in 0..6 {
                assert_eq!(m.keeps(o, 24, i, 6), i / 2 <= unit_group, "o={o} i={i}");
            }
        }
        assert!(ColourMask::of(MaskType::A, 1).is_none());
        // Only the last tap of a 1 x 2 kernel is masked.
        let a = ColourMask::of(MaskType::A, 3).unwrap();
        let mask = a.kernel_mask([3, 3, 1, 2]);
        for o in 0..3 {
            for i in 0..3 {
                assert_eq!(mask[(o * 3 + i) * 2], 1.0);
                assert_eq!(mask[(o * 3 + i) * 2 + 1] > 0.0, i < o);
            }
        }
    }

    #[test]
    fn the_layer_computes_only_the_kept_taps_and_equals_the_dense_masked_conv() {
        use burn::tensor::module::conv2d;
        use burn::tensor::ops::ConvOptions;
        use burn::tensor::{Device, Distribution};
        let device = Device::flex();
        // (in, out, kernel, mask, image channels, expected live taps)
        let cases = [
            (1, 8, 7, MaskType::A, 1, 24),
            (8, 8, 3, MaskType::B, 1, 5),
            (3, 6, 5, MaskType::A, 3, 13), // colour groups keep part of the centre
            (6, 6, 3, MaskType::B, 3, 5),
        ];
        for (i, o, k, mask_type, groups, live) in cases {
            let layer = MaskedConv2d::new(i, o, k, mask_type, groups, &device);
            assert_eq!(
                layer.live_taps, live,
                "{k}x{k} {mask_type:?} with {groups} groups"
            );
            let x = Tensor::<4>::random([2, i, 9, 8], Distribution::Normal(0.0, 1.0), &device);
            let dense = conv2d(
                x.clone(),
                layer.weight.val() * layer.mask.clone(),
                Some(layer.bias.val()),
                ConvOptions::new([1, 1], [k / 2, k / 2], [1, 1], 1),
            );
            let diff = (layer.forward(x) - dense).abs().max().into_scalar::<f32>();
            assert!(diff < 1e-5, "{k}x{k} {mask_type:?}: {diff}");
        }
    }
}
