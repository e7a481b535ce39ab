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
//! ([`crate::models::gated_pixelcnn::HostGatedPixelCnn`]); random numbers are drawn exactly as in
//! the naive sampler, so under one seed both give the same images (the test checks it).

use super::SampleSpec;
use crate::models::gated_pixelcnn::{HostConv, HostGatedPixelCnn};
use crate::nn::dist::draw;
use crate::nn::fused::gate_value;
use crate::progress::Progress;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Per-batch state: the image so far and every layer's kept activations.
struct Cache<'m> {
    model: &'m HostGatedPixelCnn,
    n: usize,
    height: usize,
    width: usize,
    p: usize,
    /// Model input (2v - 1) per image, `[n][H][W]`; unknown pixels stay 0 and are never read.
    x: Vec<f32>,
    /// Per layer: vertical pre-activations `[n][2p][H][W]` and gated outputs `[n][p][H][W]`.
    v_pre: Vec<Vec<f32>>,
    v_out: Vec<Vec<f32>>,
    /// Per layer: horizontal outputs of the current row, `[n][p][W]`.
    h_row: Vec<Vec<f32>>,
    classes: Option<Vec<usize>>,
}

impl<'m> Cache<'m> {
    fn new(
        model: &'m HostGatedPixelCnn,
        n: usize,
        height: usize,
        width: usize,
        classes: Option<Vec<usize>>,
    ) -> Self {
        let p = model.layers[0].horizontal_out.bias.len();
        let layers = model.layers.len();
        Self {
            model,
            n,
            height,
            width,
            p,
            x: vec![0.0; n * height * width],
            v_pre: vec![vec![0.0; n * 2 * p * height * width]; layers],
            v_out: vec![vec![0.0; n * p * height * width]; layers],
            h_row: vec![vec![0.0; n * p * width]; layers],
            classes,
        }
    }

    fn class_bias(
        &self,
        table: &Option<crate::models::gated_pixelcnn::HostTensor>,
        image: usize,
        o: usize,
    ) -> f32 {
        match (table, &self.classes) {
            (Some(t), Some(classes)) => t.values[classes[image] * t.dims[1] + o],
            _ => 0.0,
        }
    }

    /// Computes row `r` of every vertical stack (row r of the image is complete).
    fn vertical_row(&mut self, r: usize) {
        let (h, w, p) = (self.height, self.width, self.p);
        let mut acc = vec![0f32; w];
        for layer in 0..self.model.layers.len() {
            let spec = &self.model.layers[layer];
            let conv = &spec.vertical;
            let [_, in_ch, kh, kw] = dims4(conv);
            let half = kw / 2;
            for b in 0..self.n {
                for o in 0..2 * p {
                    acc.fill(conv.bias[o]);
                    for i in 0..in_ch {
                        for dy in 0..kh {
                            let Some(rr) = (r + dy).checked_sub(half) else {
                                continue;
                            };
                            let input = if layer == 0 {
                                &self.x[b * h * w + rr * w..][..w]
                            } else {
                                &self.v_out[layer - 1][((b * p + i) * h + rr) * w..][..w]
                            };
                            let weights =
                                &conv.weight.values[((o * in_ch + i) * kh + dy) * kw..][..kw];
                            // Column loop innermost and contiguous: acc[col] += wt * input[col + dx - half].
                            for (dx, &wt) in weights.iter().enumerate() {
                                let (from, to) = (half.saturating_sub(dx), (w + half - dx).min(w));
                                let shifted = &input[from + dx - half..to + dx - half];
                                for (a, &x) in acc[from..to].iter_mut().zip(shifted) {
                                    *a += wt * x;
                                }
                            }
                        }
                    }
                    self.v_pre[layer][((b * 2 * p + o) * h + r) * w..][..w].copy_from_slice(&acc);
                }
                // The class enters the gate only; the link to the horizontal stack reads v_pre.
                for j in 0..p {
                    let (class_f, class_g) = (
                        self.class_bias(&spec.class_vertical, b, j),
                        self.class_bias(&spec.class_vertical, b, p + j),
                    );
                    for col in 0..w {
                        let f = self.v_pre[layer][((b * 2 * p + j) * h + r) * w + col] + class_f;
                        let g =
                            self.v_pre[layer][((b * 2 * p + p + j) * h + r) * w + col] + class_g;
                        self.v_out[layer][((b * p + j) * h + r) * w + col] = gate_value(f, g);
                    }
                }
            }
        }
    }

    /// Runs every horizontal stack at (r, c) and, when `want_logits`, the output layers:
    /// returns the logits of each image, `[n][outputs]`.
    fn step(&mut self, r: usize, c: usize, want_logits: bool) -> Vec<Vec<f32>> {
        let (h, w, p) = (self.height, self.width, self.p);
        let mut logits = Vec::new();
        let mut pre = vec![0f32; 2 * p];
        let mut gated = vec![0f32; p];
        let mut link_input = vec![0f32; 2 * p];
        for b in 0..self.n {
            for layer in 0..self.model.layers.len() {
                let spec = &self.model.layers[layer];
                let conv = &spec.horizontal;
                let [_, in_ch, _, kw] = dims4(conv);
                let half = kw - 1;
                // The vertical pre-activations of the row above, at this column (zero at row 0).
                for (i, v) in link_input.iter_mut().enumerate() {
                    *v = if r > 0 {
                        self.v_pre[layer][((b * 2 * p + i) * h + r - 1) * w + c]
                    } else {
                        0.0
                    };
                }
                for (o, pre_o) in pre.iter_mut().enumerate() {
                    let mut acc = conv.bias[o] + self.class_bias(&spec.class_horizontal, b, o);
                    for i in 0..in_ch {
                        let weights = &conv.weight.values[(o * in_ch + i) * kw..][..kw];
                        for (dx, &wt) in weights.iter().enumerate() {
                            let Some(cc) = (c + dx).checked_sub(half) else {
                                continue;
                            };
                            let value = if spec.first {
                                // Mask A: the input shifted right by one column.
                                match cc.checked_sub(1) {
                                    Some(src) => self.x[(b * h + r) * w + src],
                                    None => 0.0,
                                }
                            } else {
                                self.h_row[layer - 1][(b * p + i) * w + cc]
                            };
                            acc += wt * value;
                        }
                    }
                    // Vertical -> horizontal link on the row above (zero above the image).
                    let link = &spec.vertical_to_horizontal;
                    acc += link.bias[o];
                    if r > 0 {
                        for i in 0..2 * p {
                            acc += link.weight.values[o * 2 * p + i]
                                * self.v_pre[layer][((b * 2 * p + i) * h + r - 1) * w + c];
                        }
                    }
                    *pre_o = acc;
                }
                for j in 0..p {
                    gated[j] = gate_value(pre[j], pre[p + j]);
                }
                let out = &spec.horizontal_out;
                for o in 0..p {
                    let mut acc = out.bias[o] + dot(&out.weight.values[o * p..(o + 1) * p], &gated);
                    if !spec.first {
                        acc += self.h_row[layer - 1][(b * p + o) * w + c];
                    }
                    self.h_row[layer][(b * p + o) * w + c] = acc;
                }
            }
            if want_logits {
                let last = self.model.layers.len() - 1;
                let top: Vec<f32> = (0..p)
                    .map(|o| self.h_row[last][(b * p + o) * w + c].max(0.0))
                    .collect();
                let hidden: Vec<f32> = dense(&self.model.output_hidden, &top)
                    .into_iter()
                    .map(|v| v.max(0.0))
                    .collect();
                logits.push(dense(&self.model.output, &hidden));
            }
        }
        logits
    }
}

fn dims4(conv: &HostConv) -> [usize; 4] {
    let d = &conv.weight.dims;
    [d[0], d[1], d[2], d[3]]
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A 1x1 convolution at one position: `bias + W x`.
fn dense(conv: &HostConv, input: &[f32]) -> Vec<f32> {
    let inputs = input.len();
    conv.bias
        .iter()
        .enumerate()
        .map(|(o, &bias)| bias + dot(&conv.weight.values[o * inputs..(o + 1) * inputs], input))
        .collect()
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
    let n = images.len() / dims;
    // The model's input, computed as the naive path does: v * (1 / top), then 2x - 1.
    let scale = 1.0 / (spec.levels.count() - 1) as f32;
    let classes = spec
        .classes
        .map(|c| c.iter().map(|&v| v as usize).collect());
    let mut cache = Cache::new(model, n, h, w, classes);
    let mut values = images.to_vec();
    for (slot, &v) in cache.x.iter_mut().zip(&values) {
        *slot = (v as f32 * scale) * 2.0 - 1.0;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let todo = known.iter().filter(|k| !**k).count() as u64;
    progress.start("sampling (cached)", todo);
    let mut done = 0;
    for r in 0..h {
        for c in 0..w {
            let position = r * w + c;
            let unknown = !known[position];
            let logits = cache.step(r, c, unknown);
            if unknown {
                for (image, l) in logits.iter().enumerate() {
                    let value = draw(&probabilities(l), rng.random::<f32>());
                    values[image * dims + position] = value as u8;
                    cache.x[image * dims + position] = (value as f32 * scale) * 2.0 - 1.0;
                }
                done += 1;
                progress.update(done, &format!("pixel {done}/{todo}"));
            }
        }
        cache.vertical_row(r);
    }
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
    let n = images.len() / shape.dims();
    let scale = 1.0 / (spec.levels.count() - 1) as f32;
    let classes = spec
        .classes
        .map(|c| c.iter().map(|&v| v as usize).collect());
    let mut cache = Cache::new(model, n, h, w, classes);
    for (slot, &v) in cache.x.iter_mut().zip(images) {
        *slot = (v as f32 * scale) * 2.0 - 1.0;
    }
    let outputs = model.output.bias.len();
    let mut out = vec![0f32; n * h * w * outputs];
    for r in 0..h {
        for c in 0..w {
            for (b, logits) in cache.step(r, c, true).iter().enumerate() {
                out[((b * h + r) * w + c) * outputs..][..outputs].copy_from_slice(logits);
            }
        }
        cache.vertical_row(r);
    }
    out
}
