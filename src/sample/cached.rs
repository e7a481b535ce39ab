//! Cached sampling for the Gated PixelCNN, in the manner of Ramachandran et al. 2017 ("Fast
//! Generation for Convolutional Autoregressive Models"): every layer keeps the activations that
//! later pixels need, so generating one pixel costs one small step per layer instead of a full
//! forward pass over the image.
//!
//! - Vertical stacks: row r of every layer is computed once, when row r of the image is
//!   complete (it sees all of row r), and kept: the horizontal stack of row r + 1 reads it.
//! - Horizontal stacks: at pixel (r, c) each layer computes its output at (r, c) only, from
//!   the previous layer's outputs at (r, c - k/2 .. c) (kept for the current row) and the
//!   vertical pre-activation at (r - 1, c).
//!
//! The arithmetic is the model's own equations on host copies of its weights
//! ([`crate::models::gated_pixelcnn::HostGatedPixelCnn`]), laid out for speed: activations
//! channel-last (one position's features are contiguous), weights transposed to one row per
//! input (`[inputs, outputs]`), so every product is a run of vectorised
//! `acc += x_k · row_k` ([`kernels::matvec_accumulate`]). Images are independent: each step
//! runs them in parallel. Random numbers are drawn exactly as in the naive sampler (pixel by
//! pixel, image by image, one stream), so under one seed both give the same images (the test
//! checks it).

use super::SampleSpec;
use crate::models::gated_pixelcnn::{HostConv, HostGatedPixelCnn, HostTensor};
use crate::nn::dist::draw;
use crate::nn::fused::{gate_value, kernels};
use crate::progress::Progress;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// A convolution's weights as one row per input tap: `wt` `[kh * kw * in, out]`, rows ordered
/// (dy, dx, input channel) to match channel-last activations.
struct Taps {
    wt: Vec<f32>,
    bias: Vec<f32>,
    in_channels: usize,
    height: usize,
    width: usize,
}

impl Taps {
    fn of(conv: &HostConv) -> Self {
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

    fn outputs(&self) -> usize {
        self.bias.len()
    }

    /// `acc += W[dy, dx] · x`, for the `in_channels` inputs `x` of tap (dy, dx).
    fn accumulate(&self, acc: &mut [f32], dy: usize, dx: usize, x: &[f32]) {
        let rows = self.in_channels * self.outputs();
        let first = (dy * self.width + dx) * rows;
        kernels::matvec_accumulate(acc, x, &self.wt[first..first + rows]);
    }
}

/// One gated layer in the cache's layout, plus its class embeddings.
struct Layer {
    vertical: Taps,
    horizontal: Taps,
    link: Taps,
    out: Taps,
    class_vertical: Option<HostTensor>,
    class_horizontal: Option<HostTensor>,
    first: bool,
}

/// The whole model in the cache's layout.
struct Model {
    layers: Vec<Layer>,
    hidden: Taps,
    output: Taps,
    p: usize,
}

impl Model {
    fn of(model: &HostGatedPixelCnn) -> Self {
        let layers: Vec<Layer> = model
            .layers
            .iter()
            .map(|l| Layer {
                vertical: Taps::of(&l.vertical),
                horizontal: Taps::of(&l.horizontal),
                link: Taps::of(&l.vertical_to_horizontal),
                out: Taps::of(&l.horizontal_out),
                class_vertical: l.class_vertical.clone(),
                class_horizontal: l.class_horizontal.clone(),
                first: l.first,
            })
            .collect();
        let p = layers[0].out.outputs();
        Self {
            layers,
            hidden: Taps::of(&model.output_hidden),
            output: Taps::of(&model.output),
            p,
        }
    }
}

/// Row `class` of an embedding table, or zeros.
fn class_row(table: &Option<HostTensor>, class: Option<usize>, len: usize) -> Vec<f32> {
    match (table, class) {
        (Some(t), Some(class)) => t.values[class * t.dims[1]..][..t.dims[1]].to_vec(),
        _ => vec![0.0; len],
    }
}

/// One image's state: the image so far and every layer's kept activations, channel-last.
struct ImageCache {
    width: usize,
    /// Model input (2v - 1), `[H][W]`; unknown pixels stay 0 and are never read.
    x: Vec<f32>,
    /// Per layer: vertical pre-activations `[H][W][2p]` and gated outputs `[H][W][p]`.
    v_pre: Vec<Vec<f32>>,
    v_out: Vec<Vec<f32>>,
    /// Per layer: horizontal outputs of the current row, `[W][p]`.
    h_row: Vec<Vec<f32>>,
    /// Per layer: this image's class embedding in the vertical and horizontal gates, `[2p]`.
    class_vertical: Vec<Vec<f32>>,
    class_horizontal: Vec<Vec<f32>>,
    /// The logits of the last step.
    logits: Vec<f32>,
}

impl ImageCache {
    fn new(model: &Model, height: usize, width: usize, class: Option<usize>) -> Self {
        let (p, layers) = (model.p, model.layers.len());
        Self {
            width,
            x: vec![0.0; height * width],
            v_pre: vec![vec![0.0; height * width * 2 * p]; layers],
            v_out: vec![vec![0.0; height * width * p]; layers],
            h_row: vec![vec![0.0; width * p]; layers],
            class_vertical: (model.layers.iter())
                .map(|l| class_row(&l.class_vertical, class, 2 * p))
                .collect(),
            class_horizontal: (model.layers.iter())
                .map(|l| class_row(&l.class_horizontal, class, 2 * p))
                .collect(),
            logits: Vec::new(),
        }
    }

    /// Computes row `r` of every vertical stack (row r of the image is complete). The kernel
    /// `(k/2 + 1) x k` covers rows r - k/2 ..= r and columns c - k/2 ..= c + k/2.
    fn vertical_row(&mut self, model: &Model, r: usize) {
        let (w, p) = (self.width, model.p);
        let mut acc = vec![0f32; 2 * p];
        for (l, layer) in model.layers.iter().enumerate() {
            let conv = &layer.vertical;
            let (above, half) = (conv.height - 1, conv.width / 2);
            for c in 0..w {
                acc.copy_from_slice(&conv.bias);
                for dy in 0..conv.height {
                    let Some(rr) = (r + dy).checked_sub(above) else {
                        continue;
                    };
                    for dx in 0..conv.width {
                        let Some(cc) = (c + dx).checked_sub(half).filter(|&cc| cc < w) else {
                            continue;
                        };
                        let at = rr * w + cc;
                        let input = if l == 0 {
                            &self.x[at..at + 1]
                        } else {
                            &self.v_out[l - 1][at * p..(at + 1) * p]
                        };
                        conv.accumulate(&mut acc, dy, dx, input);
                    }
                }
                let at = r * w + c;
                self.v_pre[l][at * 2 * p..(at + 1) * 2 * p].copy_from_slice(&acc);
                // The class enters the gate only; the link to the horizontal stack reads v_pre.
                let class = &self.class_vertical[l];
                for (j, out) in self.v_out[l][at * p..(at + 1) * p].iter_mut().enumerate() {
                    *out = gate_value(acc[j] + class[j], acc[p + j] + class[p + j]);
                }
            }
        }
    }

    /// Runs every horizontal stack at (r, c) and, when `want_logits`, the output layers into
    /// `self.logits`.
    fn step(&mut self, model: &Model, r: usize, c: usize, want_logits: bool) {
        let (w, p) = (self.width, model.p);
        let mut pre = vec![0f32; 2 * p];
        let mut gated = vec![0f32; p];
        let mut out = vec![0f32; p];
        for (l, layer) in model.layers.iter().enumerate() {
            let conv = &layer.horizontal;
            let reach = conv.width - 1; // columns c - reach ..= c
            for ((pre, &bias), (&link, &class)) in pre
                .iter_mut()
                .zip(&conv.bias)
                .zip(layer.link.bias.iter().zip(&self.class_horizontal[l]))
            {
                *pre = bias + link + class;
            }
            for dx in 0..conv.width {
                let Some(cc) = (c + dx).checked_sub(reach) else {
                    continue;
                };
                if layer.first {
                    // Mask A: the input shifted right by one column.
                    if let Some(source) = cc.checked_sub(1) {
                        let at = r * w + source;
                        conv.accumulate(&mut pre, 0, dx, &self.x[at..at + 1]);
                    }
                } else {
                    conv.accumulate(&mut pre, 0, dx, &self.h_row[l - 1][cc * p..(cc + 1) * p]);
                }
            }
            // Vertical -> horizontal link on the row above (zero above the image).
            if r > 0 {
                let at = (r - 1) * w + c;
                let link_input = &self.v_pre[l][at * 2 * p..(at + 1) * 2 * p];
                layer.link.accumulate(&mut pre, 0, 0, link_input);
            }
            for (j, g) in gated.iter_mut().enumerate() {
                *g = gate_value(pre[j], pre[p + j]);
            }
            out.copy_from_slice(&layer.out.bias);
            layer.out.accumulate(&mut out, 0, 0, &gated);
            if !layer.first {
                for (o, &residual) in out.iter_mut().zip(&self.h_row[l - 1][c * p..(c + 1) * p]) {
                    *o += residual;
                }
            }
            self.h_row[l][c * p..(c + 1) * p].copy_from_slice(&out);
        }
        if want_logits {
            let last = model.layers.len() - 1;
            let top: Vec<f32> = (self.h_row[last][c * p..(c + 1) * p].iter())
                .map(|v| v.max(0.0))
                .collect();
            let mut hidden = model.hidden.bias.clone();
            model.hidden.accumulate(&mut hidden, 0, 0, &top);
            hidden.iter_mut().for_each(|v| *v = v.max(0.0));
            self.logits.clone_from(&model.output.bias);
            model.output.accumulate(&mut self.logits, 0, 0, &hidden);
        }
    }
}

/// Every image's cache; steps run the images in parallel.
struct Cache {
    model: Model,
    images: Vec<ImageCache>,
}

impl Cache {
    fn new(model: &HostGatedPixelCnn, spec: &SampleSpec, images: &[u8]) -> Self {
        let shape = spec.shape;
        let (h, w) = (shape.height, shape.width);
        let n = images.len() / shape.dims();
        let model = Model::of(model);
        // The model's input, computed as the naive path does: v * (1 / top), then 2x - 1.
        let scale = 1.0 / (spec.levels.count() - 1) as f32;
        let caches = (0..n)
            .map(|i| {
                let class = spec.classes.as_ref().map(|c| c[i] as usize);
                let mut cache = ImageCache::new(&model, h, w, class);
                for (slot, &v) in cache.x.iter_mut().zip(&images[i * h * w..(i + 1) * h * w]) {
                    *slot = (v as f32 * scale) * 2.0 - 1.0;
                }
                cache
            })
            .collect();
        Self {
            model,
            images: caches,
        }
    }

    fn step(&mut self, r: usize, c: usize, want_logits: bool) {
        let model = &self.model;
        (self.images.par_iter_mut()).for_each(|image| image.step(model, r, c, want_logits));
    }

    fn vertical_row(&mut self, r: usize) {
        let model = &self.model;
        (self.images.par_iter_mut()).for_each(|image| image.vertical_row(model, r));
    }
}

/// Probabilities of every value from one position's logits (as the naive sampler's head does).
fn probabilities(logits: &[f32]) -> Vec<f32> {
    if logits.len() == 1 {
        let p = sigmoid(logits[0]);
        return vec![1.0 - p, p];
    }
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|&l| (l - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}

/// Samples the pixels where `known` is false, like [`super::complete`], with the cache.
/// Single-channel images (the Gated PixelCNN's domain).
pub fn complete_gated(
    model: &HostGatedPixelCnn,
    spec: &SampleSpec,
    images: &[u8],
    known: &[bool],
    progress: &mut dyn Progress,
) -> Vec<u8> {
    let shape = spec.shape;
    let (h, w) = (shape.height, shape.width);
    let dims = shape.dims();
    assert_eq!(shape.channels, 1, "the Gated PixelCNN is single-channel");
    assert_eq!(known.len(), dims, "known mask must cover one image");
    let scale = 1.0 / (spec.levels.count() - 1) as f32;
    let mut cache = Cache::new(model, spec, images);
    let mut values = images.to_vec();
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let todo = known.iter().filter(|k| !**k).count() as u64;
    progress.start("sampling (cached)", todo);
    let mut done = 0;
    for r in 0..h {
        for c in 0..w {
            let position = r * w + c;
            let unknown = !known[position];
            cache.step(r, c, unknown);
            if unknown {
                for (i, image) in cache.images.iter_mut().enumerate() {
                    let value = draw(&probabilities(&image.logits), rng.random::<f32>());
                    values[i * dims + position] = value as u8;
                    image.x[position] = (value as f32 * scale) * 2.0 - 1.0;
                }
                done += 1;
                progress.update(done, &format!("pixel {done}/{todo}"));
            }
        }
        cache.vertical_row(r);
    }
    let n = cache.images.len();
    progress.finish(&format!("{n} images, {todo} pixels each"));
    values
}

/// The logits the cache computes at every position of complete `images` (teacher forcing),
/// `[n][H][W][outputs]`: for checking the cache against the model's parallel forward pass.
pub fn teacher_forced_logits(
    model: &HostGatedPixelCnn,
    spec: &SampleSpec,
    images: &[u8],
) -> Vec<f32> {
    let shape = spec.shape;
    let (h, w) = (shape.height, shape.width);
    let mut cache = Cache::new(model, spec, images);
    let n = cache.images.len();
    let outputs = model.output.bias.len();
    let mut out = vec![0f32; n * h * w * outputs];
    for r in 0..h {
        for c in 0..w {
            cache.step(r, c, true);
            for (b, image) in cache.images.iter().enumerate() {
                out[((b * h + r) * w + c) * outputs..][..outputs].copy_from_slice(&image.logits);
            }
        }
        cache.vertical_row(r);
    }
    out
}

impl crate::models::FastSampler for HostGatedPixelCnn {
    fn complete(
        &self,
        spec: &SampleSpec,
        images: &[u8],
        known: &[bool],
        progress: &mut dyn Progress,
    ) -> Vec<u8> {
        complete_gated(self, spec, images, known, progress)
    }
}
