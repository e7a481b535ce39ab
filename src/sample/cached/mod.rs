//! Cached ancestral sampling, in the manner of Ramachandran et al. 2017 ("Fast Generation for
//! Convolutional Autoregressive Models"): each layer keeps the activations that later pixels
//! need, so generating one pixel value costs one small step per layer instead of a full forward
//! pass over the image. One file per model family:
//!
//! - [`gated`]: the Gated PixelCNN (vertical stacks a row at a time, horizontal stacks a pixel
//!   at a time);
//! - [`pixelcnn`]: the plain PixelCNN (every layer at the new pixel only, colour included);
//! - [`pixelrnn`]: the Row LSTM (every layer at the new pixel, the row above's states kept) and
//!   the Diagonal BiLSTM (the left-to-right states a pixel at a time, the right-to-left ones
//!   a row at a time once a row is complete: their output is shifted down a row).
//!
//! The arithmetic is the model's own equations on host copies of its weights, laid out for
//! speed: activations channel-last (one position's features are contiguous), weights as one row
//! per input ([`Taps`]), so every product is a run of vectorised `acc += x_k · row_k`.
//! Images are independent: each step runs them in parallel. Random numbers are drawn exactly as
//! in the naive sampler ([`super::complete`]: pixel by pixel, channel by channel, image by
//! image, one stream), so under one seed both give the same images (tests/cached_sampler.rs).

pub mod gated;
pub mod pixelcnn;
pub mod pixelrnn;

use super::SampleSpec;
use crate::nn::dist::draw;
use crate::nn::fused::kernels;
use crate::nn::host::HostConv;
use crate::progress::Progress;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// A convolution's weights as one row per input tap: `wt` `[kh * kw * in, out]`, rows ordered
/// (dy, dx, input channel) to match channel-last activations.
pub(crate) struct Taps {
    wt: Vec<f32>,
    bias: Vec<f32>,
    in_channels: usize,
    height: usize,
    width: usize,
}

impl Taps {
    pub(crate) fn of(conv: &HostConv) -> Self {
        let d = &conv.weight.dims;
        let (out, in_channels, height, width) = (d[0], d[1], d[2], d[3]);
        let mut wt = vec![0f32; height * width * in_channels * out];
        for o in 0..out {
            for i in 0..in_channels {
                for dy in 0..height {
                    for dx in 0..width {
                        let row = (dy * width + dx) * in_channels + i;
                        wt[row * out + o] =
                            conv.weight.values[((o * in_channels + i) * height + dy) * width + dx];
                    }
                }
            }
        }
        Self {
            wt,
            bias: conv.bias.clone(),
            in_channels,
            height,
            width,
        }
    }

    pub(crate) fn outputs(&self) -> usize {
        self.bias.len()
    }

    /// `acc += W[dy, dx] · x`, for the `in_channels` inputs `x` of tap (dy, dx).
    pub(crate) fn accumulate(&self, acc: &mut [f32], dy: usize, dx: usize, x: &[f32]) {
        let rows = self.in_channels * self.outputs();
        let first = (dy * self.width + dx) * rows;
        kernels::matvec_accumulate(acc, x, &self.wt[first..first + rows]);
    }

    /// `out = b + W · x` for a 1x1 convolution.
    pub(crate) fn pointwise(&self, out: &mut [f32], x: &[f32]) {
        out.copy_from_slice(&self.bias);
        self.accumulate(out, 0, 0, x);
    }

    /// A `k x k` masked convolution at (r, c) of a channel-last `[H][W][in]` map: `out = b +
    /// Σ W[dy, dx] · map[r + dy - k/2, c + dx - k/2]` over the causal taps (rows above, and the
    /// current row up to the centre; the mask, applied to the weights, does the rest).
    pub(crate) fn masked_at(&self, out: &mut [f32], map: &[f32], width: usize, r: usize, c: usize) {
        let (k, half, n) = (self.height, self.height / 2, self.in_channels);
        out.copy_from_slice(&self.bias);
        for dy in 0..=half {
            let Some(rr) = (r + dy).checked_sub(half) else {
                continue;
            };
            let last = if dy == half { half } else { k - 1 };
            for dx in 0..=last {
                let Some(cc) = (c + dx).checked_sub(half).filter(|&cc| cc < width) else {
                    continue;
                };
                let at = (rr * width + cc) * n;
                self.accumulate(out, dy, dx, &map[at..at + n]);
            }
        }
    }
}

/// A channel-major image `[c][H][W]` as channel-last `[H][W][c]`, the caches' layout.
pub(crate) fn channel_last(x: &[f32], channels: usize) -> Vec<f32> {
    let plane = x.len() / channels;
    let mut last = vec![0f32; x.len()];
    for (channel, values) in x.chunks_exact(plane).enumerate() {
        for (p, &v) in values.iter().enumerate() {
            last[p * channels + channel] = v;
        }
    }
    last
}

/// `max(v, 0)` of every element.
pub(crate) fn relu(values: &mut [f32]) {
    values.iter_mut().for_each(|v| *v = v.max(0.0));
}

/// The output layers every family shares: `logits = W_2 ReLU(W_1 ReLU(top) + b_1) + b_2`, two
/// 1x1 convolutions at one position.
pub(crate) struct Head {
    hidden: Taps,
    logits: Taps,
}

impl Head {
    pub(crate) fn of(hidden: &HostConv, logits: &HostConv) -> Self {
        Self {
            hidden: Taps::of(hidden),
            logits: Taps::of(logits),
        }
    }

    pub(crate) fn outputs(&self) -> usize {
        self.logits.outputs()
    }

    /// The logits at one position from the last layer's features `top` there.
    pub(crate) fn forward(&self, top: &[f32], logits: &mut [f32]) {
        let mut top = top.to_vec();
        relu(&mut top);
        let mut hidden = vec![0f32; self.hidden.outputs()];
        self.hidden.pointwise(&mut hidden, &top);
        relu(&mut hidden);
        self.logits.pointwise(logits, &hidden);
    }
}

/// A model's host weights that lay themselves out for [`complete`]; every such model is a
/// [`crate::models::FastSampler`].
pub(crate) trait Cached {
    type Layout: Incremental;
    fn layout(&self) -> Self::Layout;
}

impl<T: Cached> crate::models::FastSampler for T {
    fn complete(
        &self,
        spec: &SampleSpec,
        images: &[u8],
        known: &[bool],
        progress: &mut dyn Progress,
    ) -> Vec<u8> {
        complete(&self.layout(), spec, images, known, progress)
    }
}

/// A model whose layers can be computed one pixel at a time. `Image` holds one image's input
/// and every activation later pixels read.
pub(crate) trait Incremental: Sync {
    type Image: Send;

    /// Image channels (values per pixel).
    fn channels(&self) -> usize;
    /// Logits per channel: 1 (Bernoulli) or the number of levels (softmax).
    fn logits_per_channel(&self) -> usize;
    /// A fresh image, `x` its model input `[c][H][W]` (`2 v / top - 1`; unknown values are
    /// never read through a non-zero weight).
    fn image(&self, height: usize, width: usize, class: Option<usize>, x: Vec<f32>) -> Self::Image;
    /// Sets the model input of one value.
    fn set(&self, image: &mut Self::Image, channel: usize, r: usize, c: usize, x: f32);
    /// Computes every layer at (r, c) from the image so far (values before (r, c), and the
    /// channels of (r, c) before the one to draw); when `want_logits`, also the output layers.
    fn step(&self, image: &mut Self::Image, r: usize, c: usize, want_logits: bool);
    /// Row `r` of the image is complete.
    fn end_row(&self, _image: &mut Self::Image, _r: usize) {}
    /// The logits of the last step, `[channels * logits_per_channel]`.
    fn logits<'a>(&self, image: &'a Self::Image) -> &'a [f32];
}

/// Probabilities of every value from one value's logits (as the naive sampler's head does).
fn probabilities(logits: &[f32]) -> Vec<f32> {
    if logits.len() == 1 {
        let p = 1.0 / (1.0 + (-logits[0]).exp());
        return vec![1.0 - p, p];
    }
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|&l| (l - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}

/// Every image's state, built from `images` (`[n, c, H, W]` values in `spec.levels`).
fn images_of<M: Incremental>(model: &M, spec: &SampleSpec, images: &[u8]) -> Vec<M::Image> {
    let shape = spec.shape;
    let dims = shape.dims();
    // The model's input, computed as the naive path does: v * (1 / top), then 2x - 1.
    let scale = 1.0 / (spec.levels.count() - 1) as f32;
    (0..images.len() / dims)
        .map(|i| {
            let class = spec.classes.as_ref().map(|c| c[i] as usize);
            let x = (images[i * dims..(i + 1) * dims].iter())
                .map(|&v| (v as f32 * scale) * 2.0 - 1.0)
                .collect();
            model.image(shape.height, shape.width, class, x)
        })
        .collect()
}

/// Samples the pixel values where `known` (per position `[c][H][W]`) is false, like
/// [`super::complete`], with the model's cache.
pub(crate) fn complete<M: Incremental>(
    model: &M,
    spec: &SampleSpec,
    images: &[u8],
    known: &[bool],
    progress: &mut dyn Progress,
) -> Vec<u8> {
    let shape = spec.shape;
    let (h, w, channels) = (shape.height, shape.width, shape.channels);
    let dims = shape.dims();
    assert_eq!(channels, model.channels(), "the model's channel count");
    assert_eq!(known.len(), dims, "known mask must cover one image");
    let per_channel = model.logits_per_channel();
    let scale = 1.0 / (spec.levels.count() - 1) as f32;
    let mut caches = images_of(model, spec, images);
    let mut values = images.to_vec();
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let todo = known.iter().filter(|k| !**k).count() as u64;
    progress.start("sampling (cached)", todo);
    let mut done = 0;
    for r in 0..h {
        for c in 0..w {
            for channel in 0..channels {
                let position = (channel * h + r) * w + c;
                let unknown = !known[position];
                // A channel's step sees the channels before it at this pixel; the last
                // channel's step leaves every layer's activations at (r, c) final.
                if unknown || channel == channels - 1 {
                    (caches.par_iter_mut()).for_each(|image| model.step(image, r, c, unknown));
                }
                if !unknown {
                    continue;
                }
                for (i, image) in caches.iter_mut().enumerate() {
                    let logits = &model.logits(image)[channel * per_channel..][..per_channel];
                    let value = draw(&probabilities(logits), rng.random::<f32>());
                    values[i * dims + position] = value as u8;
                    model.set(image, channel, r, c, (value as f32 * scale) * 2.0 - 1.0);
                }
                done += 1;
                progress.update(done, &format!("pixel {done}/{todo}"));
            }
        }
        (caches.par_iter_mut()).for_each(|image| model.end_row(image, r));
    }
    let n = caches.len();
    progress.finish(&format!("{n} images, {todo} pixel values each"));
    values
}

/// The logits the cache computes at every position of complete `images` (teacher forcing),
/// `[n][H][W][channels * logits_per_channel]`: for checking a cache against the model's
/// parallel forward pass.
pub(crate) fn teacher_forced<M: Incremental>(
    model: &M,
    spec: &SampleSpec,
    images: &[u8],
) -> Vec<f32> {
    let shape = spec.shape;
    let (h, w) = (shape.height, shape.width);
    let mut caches = images_of(model, spec, images);
    let outputs = model.channels() * model.logits_per_channel();
    let mut out = vec![0f32; caches.len() * h * w * outputs];
    for r in 0..h {
        for c in 0..w {
            (caches.par_iter_mut()).for_each(|image| model.step(image, r, c, true));
            for (b, image) in caches.iter().enumerate() {
                out[((b * h + r) * w + c) * outputs..][..outputs]
                    .copy_from_slice(model.logits(image));
            }
        }
        (caches.par_iter_mut()).for_each(|image| model.end_row(image, r));
    }
    out
}
