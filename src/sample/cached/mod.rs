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
//!   a row at a time once a row is complete: their output is shifted down a row);
//! - [`pixelcnn_pp`]: PixelCNN++ (its forward as a graph of nodes, each position computed once
//!   when the pixels it depends on are drawn).
//!
//! The arithmetic is the model's own equations on host copies of its weights, laid out for
//! speed: weights as one row per input ([`Taps`]), and the images of a group stepped together,
//! their activations laid out `[position][image][features]`, so that one tap of a layer is one
//! matrix product `[images, in] · [in, out]` for the whole group: each weight is loaded once
//! per group, not once per image, and images/s grows with the batch. The batch is split into
//! one group per thread, run in parallel.
//! Random numbers are drawn exactly as in the naive sampler ([`super::complete`]: pixel by
//! pixel, channel by channel, image by image, one stream), so under one seed both give the same
//! images (tests/cached_sampler.rs).

pub mod gated;
pub mod pixelcnn;
pub mod pixelcnn_pp;
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
/// (dy, dx, input channel) to match activations whose features are contiguous.
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

    /// `acc [images][out] += x [images][in] · W[dy, dx]`: one tap for a group of images, a
    /// matrix product (a matrix-vector product for one image).
    pub(crate) fn accumulate_rows(&self, acc: &mut [f32], dy: usize, dx: usize, x: &[f32]) {
        let (ins, outs) = (self.in_channels, self.outputs());
        let images = acc.len() / outs;
        debug_assert_eq!(x.len(), images * ins);
        let first = (dy * self.width + dx) * ins * outs;
        let wt = &self.wt[first..first + ins * outs];
        // The matrix product is the gemm crate's, which comes with `fast-ops`.
        #[cfg(feature = "fast-ops")]
        if images >= GEMM_FROM {
            crate::nn::fused::linalg::matmul(
                (images, outs, ins),
                acc,
                true,
                (x, ins, 1),
                (wt, outs, 1),
            );
            return;
        }
        for (acc, x) in acc.chunks_exact_mut(outs).zip(x.chunks_exact(ins)) {
            kernels::matvec_accumulate(acc, x, wt);
        }
    }

    /// Every row of `out [images][out]` set to the bias.
    pub(crate) fn bias_rows(&self, out: &mut [f32]) {
        for row in out.chunks_exact_mut(self.outputs()) {
            row.copy_from_slice(&self.bias);
        }
    }

    /// `out = b + W · x` for a 1x1 convolution, for a group: `x [images][in]`.
    pub(crate) fn pointwise_rows(&self, out: &mut [f32], x: &[f32]) {
        self.bias_rows(out);
        self.accumulate_rows(out, 0, 0, x);
    }

    /// A `k x k` masked convolution at (r, c) for a group: `out [images][out] = b + Σ W[dy, dx]
    /// · map[r + dy - k/2, c + dx - k/2]` over the causal taps (rows above, and the current row
    /// up to the centre; the mask, applied to the weights, does the rest). `map` is
    /// `[rows][W][images][in]`, a ring of the last `rows` image rows (row `rr` at `rr % rows`;
    /// `usize::MAX` for a whole map).
    pub(crate) fn masked_rows_at(
        &self,
        out: &mut [f32],
        (map, rows): (&[f32], usize),
        width: usize,
        r: usize,
        c: usize,
    ) {
        let (k, half) = (self.height, self.height / 2);
        let block = out.len() / self.outputs() * self.in_channels;
        self.bias_rows(out);
        for dy in 0..=half {
            let Some(rr) = (r + dy).checked_sub(half) else {
                continue;
            };
            let last = if dy == half { half } else { k - 1 };
            for dx in 0..=last {
                let Some(cc) = (c + dx).checked_sub(half).filter(|&cc| cc < width) else {
                    continue;
                };
                let at = ((rr % rows) * width + cc) * block;
                self.accumulate_rows(out, dy, dx, &map[at..at + block]);
            }
        }
    }
}

/// Groups of at least this many images take the matrix product; smaller ones, one
/// matrix-vector product per image (the product's setup costs more than it saves).
#[cfg(feature = "fast-ops")]
const GEMM_FROM: usize = 4;

/// Images `[n][c][H][W]` as the caches' layout `[H][W][n][c]`.
pub(crate) fn position_major(x: &[f32], n: usize, channels: usize) -> Vec<f32> {
    let dims = x.len() / n.max(1);
    let plane = dims / channels.max(1);
    let mut out = vec![0f32; x.len()];
    for i in 0..n {
        for channel in 0..channels {
            for p in 0..plane {
                out[(p * n + i) * channels + channel] = x[i * dims + channel * plane + p];
            }
        }
    }
    out
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

    /// The logits of a group at one position, `[images][out]`, from the last layer's features
    /// there, `top` `[images][in]`.
    pub(crate) fn forward_rows(&self, top: &[f32], logits: &mut [f32]) {
        let mut top = top.to_vec();
        relu(&mut top);
        let images = logits.len() / self.logits.outputs();
        let mut hidden = vec![0f32; images * self.hidden.outputs()];
        self.hidden.pointwise_rows(&mut hidden, &top);
        relu(&mut hidden);
        self.logits.pointwise_rows(logits, &hidden);
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

/// A model whose layers can be computed one pixel at a time, for a group of images at once.
/// `Group` holds the group's inputs and every activation later pixels read.
pub(crate) trait Incremental: Sync {
    type Group: Send;

    /// Image channels (values per pixel).
    fn channels(&self) -> usize;
    /// Outputs per position: `channels` times the logits per channel (1 for a Bernoulli,
    /// the number of levels for a softmax), or a mixture's parameters.
    fn outputs(&self) -> usize;
    /// A fresh group: `x` the model inputs `[n][c][H][W]` (`2 v / top - 1`; unknown values
    /// are never read through a non-zero weight), `classes` one per image.
    fn group(
        &self,
        height: usize,
        width: usize,
        classes: &[Option<usize>],
        x: Vec<f32>,
    ) -> Self::Group;
    /// Sets the model input of one value of image `image` of the group.
    fn set(
        &self,
        group: &mut Self::Group,
        image: usize,
        channel: usize,
        r: usize,
        c: usize,
        x: f32,
    );
    /// Computes every layer at (r, c) from the images so far (values before (r, c), and the
    /// channels of (r, c) before the one to draw); when `want_logits`, also the output layers.
    fn step(&self, group: &mut Self::Group, r: usize, c: usize, want_logits: bool);
    /// Row `r` of the images is complete.
    fn end_row(&self, _group: &mut Self::Group, _r: usize) {}
    /// Image `image`'s outputs of the last step, `[outputs]`.
    fn logits<'a>(&self, group: &'a Self::Group, image: usize) -> &'a [f32];
    /// The probabilities of every value of `channel` at the last step's pixel for image
    /// `image`, the pixel's earlier channels set: by default a softmax (or sigmoid) of that
    /// channel's logits, as the naive sampler's head computes it.
    fn distribution(&self, group: &Self::Group, image: usize, channel: usize) -> Vec<f32> {
        let per_channel = self.outputs() / self.channels();
        probabilities(&self.logits(group, image)[channel * per_channel..][..per_channel])
    }
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

/// The batch's groups (one per thread, in image order) built from `images` (`[n, c, H, W]`
/// values in `spec.levels`), and the group size.
fn groups_of<M: Incremental>(
    model: &M,
    spec: &SampleSpec,
    images: &[u8],
) -> (Vec<M::Group>, usize) {
    let shape = spec.shape;
    let dims = shape.dims();
    let n = images.len() / dims;
    let per = crate::nn::fused::items_per_thread(n);
    // The model's input, computed as the naive path does: v * (1 / top), then 2x - 1.
    let scale = 1.0 / (spec.levels.count() - 1) as f32;
    let groups = (0..n)
        .step_by(per)
        .map(|first| {
            let last = (first + per).min(n);
            let classes: Vec<Option<usize>> = (first..last)
                .map(|i| spec.classes.as_ref().map(|c| c[i] as usize))
                .collect();
            let x = (images[first * dims..last * dims].iter())
                .map(|&v| (v as f32 * scale) * 2.0 - 1.0)
                .collect();
            model.group(shape.height, shape.width, &classes, x)
        })
        .collect();
    (groups, per)
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
    let scale = 1.0 / (spec.levels.count() - 1) as f32;
    let (mut groups, per) = groups_of(model, spec, images);
    let n = images.len() / dims;
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
                    (groups.par_iter_mut()).for_each(|group| model.step(group, r, c, unknown));
                }
                if !unknown {
                    continue;
                }
                for i in 0..n {
                    let group = &mut groups[i / per];
                    let p = model.distribution(group, i % per, channel);
                    let value = draw(&p, rng.random::<f32>());
                    values[i * dims + position] = value as u8;
                    model.set(
                        group,
                        i % per,
                        channel,
                        r,
                        c,
                        (value as f32 * scale) * 2.0 - 1.0,
                    );
                }
                done += 1;
                progress.update(done, &format!("pixel {done}/{todo}"));
            }
        }
        (groups.par_iter_mut()).for_each(|group| model.end_row(group, r));
    }
    progress.finish(&format!("{n} images, {todo} pixel values each"));
    values
}

/// The logits the cache computes at every position of complete `images` (teacher forcing),
/// `[n][H][W][outputs]`: for checking a cache against the model's
/// parallel forward pass.
pub(crate) fn teacher_forced<M: Incremental>(
    model: &M,
    spec: &SampleSpec,
    images: &[u8],
) -> Vec<f32> {
    let shape = spec.shape;
    let (h, w) = (shape.height, shape.width);
    let (mut groups, per) = groups_of(model, spec, images);
    let n = images.len() / shape.dims();
    let outputs = model.outputs();
    let mut out = vec![0f32; n * h * w * outputs];
    for r in 0..h {
        for c in 0..w {
            (groups.par_iter_mut()).for_each(|group| model.step(group, r, c, true));
            for b in 0..n {
                out[((b * h + r) * w + c) * outputs..][..outputs]
                    .copy_from_slice(model.logits(&groups[b / per], b % per));
            }
        }
        (groups.par_iter_mut()).for_each(|group| model.end_row(group, r));
    }
    out
}
