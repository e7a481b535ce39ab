//! The cached Gated PixelCNN (see [`super`]):
//!
//! - Vertical stacks: row r of every layer is computed once, when row r of the image is
//!   complete (it sees all of row r), and kept: the horizontal stack of row r + 1 reads it.
//! - Horizontal stacks: at pixel (r, c) each layer computes its output at (r, c) only, from
//!   the previous layer's outputs at (r, c - k/2 .. c) (kept for the current row) and the
//!   vertical pre-activation at (r - 1, c).
//! - Colour: the masked weights zero what a channel may not see of its own pixel, so the
//!   driver's re-step per channel is the same arithmetic (see [`super::pixelcnn`]).
//!
//! On host copies of the weights ([`crate::models::gated_pixelcnn::HostGatedPixelCnn`]).

use super::{Cached, Head, Incremental, SampleSpec, Taps};
use crate::models::gated_pixelcnn::HostGatedPixelCnn;
use crate::nn::fused::gate_value;
use crate::nn::host::HostTensor;

/// One gated layer in the cache's layout, plus its class embeddings.
struct Layer {
    vertical: Taps,
    horizontal: Taps,
    link: Taps,
    out: Taps,
    class_vertical: Option<HostTensor>,
    class_horizontal: Option<HostTensor>,
    first: bool,
    shifts_input: bool,
}

/// The whole model in the cache's layout.
pub(crate) struct Model {
    layers: Vec<Layer>,
    head: Head,
    p: usize,
    channels: usize,
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
                shifts_input: l.shifts_input,
            })
            .collect();
        let p = layers[0].out.outputs();
        Self {
            layers,
            head: Head::of(&model.output_hidden, &model.output),
            p,
            channels: model.image_channels,
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
pub(crate) struct ImageCache {
    width: usize,
    /// Model input (2v - 1), channel-last `[H][W][C]`; unknown values are never read
    /// through a non-zero weight.
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
            x: vec![0.0; height * width * model.channels],
            v_pre: vec![vec![0.0; height * width * 2 * p]; layers],
            v_out: vec![vec![0.0; height * width * p]; layers],
            h_row: vec![vec![0.0; width * p]; layers],
            class_vertical: (model.layers.iter())
                .map(|l| class_row(&l.class_vertical, class, 2 * p))
                .collect(),
            class_horizontal: (model.layers.iter())
                .map(|l| class_row(&l.class_horizontal, class, 2 * p))
                .collect(),
            logits: vec![0.0; model.head.outputs()],
        }
    }

    /// Computes row `r` of every vertical stack (row r of the image is complete). The kernel
    /// `(k/2 + 1) x k` covers rows r - k/2 ..= r and columns c - k/2 ..= c + k/2.
    fn vertical_row(&mut self, model: &Model, r: usize) {
        let (w, p, n) = (self.width, model.p, model.channels);
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
                            &self.x[at * n..(at + 1) * n]
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
        let (w, p, n) = (self.width, model.p, model.channels);
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
                if layer.shifts_input {
                    // Mask A of one channel: the input shifted right by one column.
                    if let Some(source) = cc.checked_sub(1) {
                        let at = r * w + source;
                        conv.accumulate(&mut pre, 0, dx, &self.x[at..at + 1]);
                    }
                } else if layer.first {
                    // Colour: mask A is in the weights of the last tap.
                    let at = r * w + cc;
                    conv.accumulate(&mut pre, 0, dx, &self.x[at * n..(at + 1) * n]);
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
            let top = &self.h_row[last][c * p..(c + 1) * p];
            model.head.forward(top, &mut self.logits);
        }
    }
}

/// The model in the cache's layout, for [`super::complete`].
impl Incremental for Model {
    type Image = ImageCache;

    fn channels(&self) -> usize {
        self.channels
    }

    fn logits_per_channel(&self) -> usize {
        self.head.outputs() / self.channels
    }

    fn image(&self, height: usize, width: usize, class: Option<usize>, x: Vec<f32>) -> ImageCache {
        let mut cache = ImageCache::new(self, height, width, class);
        cache.x = super::channel_last(&x, self.channels);
        cache
    }

    fn set(&self, image: &mut ImageCache, channel: usize, r: usize, c: usize, x: f32) {
        image.x[(r * image.width + c) * self.channels + channel] = x;
    }

    fn step(&self, image: &mut ImageCache, r: usize, c: usize, want_logits: bool) {
        image.step(self, r, c, want_logits);
    }

    fn end_row(&self, image: &mut ImageCache, r: usize) {
        image.vertical_row(self, r);
    }

    fn logits<'a>(&self, image: &'a ImageCache) -> &'a [f32] {
        &image.logits
    }
}

impl Cached for HostGatedPixelCnn {
    type Layout = Model;
    fn layout(&self) -> Model {
        Model::of(self)
    }
}

/// The logits the cache computes at every position of complete `images` (teacher forcing),
/// `[n][H][W][outputs]`: for checking the cache against the model's parallel forward pass.
pub fn teacher_forced_logits(
    model: &HostGatedPixelCnn,
    spec: &SampleSpec,
    images: &[u8],
) -> Vec<f32> {
    super::teacher_forced(&model.layout(), spec, images)
}
