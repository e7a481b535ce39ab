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
use crate::nn::fused::gate_rows;
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

/// A group of `n` images: the images so far and every layer's kept activations, laid out
/// `[position][image][features]` (one tap of a layer reads one contiguous `[n][in]` block).
pub(crate) struct Group {
    n: usize,
    width: usize,
    /// Model input (2v - 1) `[H][W][n][C]`; unknown values are never read through a non-zero
    /// weight.
    x: Vec<f32>,
    /// Per layer: vertical pre-activations of the last complete row, `[W][n][2p]` (the link
    /// reads the row above only), and gated outputs of the last `kept` rows, a ring
    /// `[kept][W][n][p]` (the next layer's vertical kernel reads `kept` rows).
    v_pre: Vec<Vec<f32>>,
    v_out: Vec<Vec<f32>>,
    kept: usize,
    /// Per layer: horizontal outputs of the current row, `[W][n][p]`.
    h_row: Vec<Vec<f32>>,
    /// Per layer: each image's class embedding in the vertical and horizontal gates, `[n][2p]`.
    class_vertical: Vec<Vec<f32>>,
    class_horizontal: Vec<Vec<f32>>,
    /// The logits of the last step, `[n][outputs]`.
    logits: Vec<f32>,
}

impl Group {
    fn new(model: &Model, width: usize, classes: &[Option<usize>], x: Vec<f32>) -> Self {
        let (p, layers, n) = (model.p, model.layers.len(), classes.len());
        let kept = (model.layers.iter())
            .map(|l| l.vertical.height)
            .max()
            .unwrap_or(1);
        let embeddings = |table: &dyn Fn(&Layer) -> &Option<HostTensor>| -> Vec<Vec<f32>> {
            (model.layers.iter())
                .map(|l| {
                    (classes.iter())
                        .flat_map(|&class| class_row(table(l), class, 2 * p))
                        .collect()
                })
                .collect()
        };
        Self {
            n,
            width,
            x,
            v_pre: vec![vec![0.0; width * n * 2 * p]; layers],
            v_out: vec![vec![0.0; kept * width * n * p]; layers],
            kept,
            h_row: vec![vec![0.0; width * n * p]; layers],
            class_vertical: embeddings(&|l| &l.class_vertical),
            class_horizontal: embeddings(&|l| &l.class_horizontal),
            logits: vec![0.0; n * model.head.outputs()],
        }
    }

    /// Computes row `r` of every vertical stack (row r of the images is complete). The kernel
    /// `(k/2 + 1) x k` covers rows r - k/2 ..= r and columns c - k/2 ..= c + k/2.
    fn vertical_row(&mut self, model: &Model, r: usize) {
        let (w, p, n, channels) = (self.width, model.p, self.n, model.channels);
        let mut gate_input = vec![0f32; n * 2 * p];
        let ring = |rr: usize, c: usize| {
            ((rr % self.kept) * w + c) * n * p..((rr % self.kept) * w + c + 1) * n * p
        };
        for (l, layer) in model.layers.iter().enumerate() {
            let conv = &layer.vertical;
            let (above, half) = (conv.height - 1, conv.width / 2);
            let (below, this) = self.v_out.split_at_mut(l);
            for c in 0..w {
                let acc = &mut self.v_pre[l][c * n * 2 * p..(c + 1) * n * 2 * p];
                conv.bias_rows(acc);
                for dy in 0..conv.height {
                    let Some(rr) = (r + dy).checked_sub(above) else {
                        continue;
                    };
                    for dx in 0..conv.width {
                        let Some(cc) = (c + dx).checked_sub(half).filter(|&cc| cc < w) else {
                            continue;
                        };
                        let input = if l == 0 {
                            let at = rr * w + cc;
                            &self.x[at * n * channels..(at + 1) * n * channels]
                        } else {
                            &below[l - 1][ring(rr, cc)]
                        };
                        conv.accumulate_rows(acc, dy, dx, input);
                    }
                }
                // The class enters the gate only; the link to the horizontal stack reads v_pre.
                for ((g, &a), &class) in gate_input
                    .iter_mut()
                    .zip(&*acc)
                    .zip(&self.class_vertical[l])
                {
                    *g = a + class;
                }
                gate_rows(&gate_input, &mut this[0][ring(r, c)], p);
            }
        }
    }

    /// Runs every horizontal stack at (r, c) and, when `want_logits`, the output layers into
    /// `self.logits`.
    fn step(&mut self, model: &Model, r: usize, c: usize, want_logits: bool) {
        let (w, p, n, channels) = (self.width, model.p, self.n, model.channels);
        let mut pre = vec![0f32; n * 2 * p];
        let mut gated = vec![0f32; n * p];
        let mut out = vec![0f32; n * p];
        let block = |at: usize, features: usize| at * n * features..(at + 1) * n * features;
        for (l, layer) in model.layers.iter().enumerate() {
            let conv = &layer.horizontal;
            let reach = conv.width - 1; // columns c - reach ..= c
            for (pre, class) in pre
                .chunks_exact_mut(2 * p)
                .zip(self.class_horizontal[l].chunks_exact(2 * p))
            {
                for (((pre, &bias), &link), &class) in pre
                    .iter_mut()
                    .zip(&conv.bias)
                    .zip(&layer.link.bias)
                    .zip(class)
                {
                    *pre = bias + link + class;
                }
            }
            for dx in 0..conv.width {
                let Some(cc) = (c + dx).checked_sub(reach) else {
                    continue;
                };
                if layer.shifts_input {
                    // Mask A of one channel: the input shifted right by one column.
                    if let Some(source) = cc.checked_sub(1) {
                        conv.accumulate_rows(&mut pre, 0, dx, &self.x[block(r * w + source, 1)]);
                    }
                } else if layer.first {
                    // Colour: mask A is in the weights of the last tap.
                    conv.accumulate_rows(&mut pre, 0, dx, &self.x[block(r * w + cc, channels)]);
                } else {
                    conv.accumulate_rows(&mut pre, 0, dx, &self.h_row[l - 1][block(cc, p)]);
                }
            }
            // Vertical -> horizontal link on the row above (zero above the image).
            if r > 0 {
                let link_input = &self.v_pre[l][block(c, 2 * p)];
                layer.link.accumulate_rows(&mut pre, 0, 0, link_input);
            }
            gate_rows(&pre, &mut gated, p);
            layer.out.pointwise_rows(&mut out, &gated);
            if !layer.first {
                for (o, &residual) in out.iter_mut().zip(&self.h_row[l - 1][block(c, p)]) {
                    *o += residual;
                }
            }
            self.h_row[l][block(c, p)].copy_from_slice(&out);
        }
        if want_logits {
            let last = model.layers.len() - 1;
            let top = &self.h_row[last][block(c, p)];
            model.head.forward_rows(top, &mut self.logits);
        }
    }
}

/// The model in the cache's layout, for [`super::complete`].
impl Incremental for Model {
    type Group = Group;

    fn channels(&self) -> usize {
        self.channels
    }

    fn outputs(&self) -> usize {
        self.head.outputs()
    }

    fn group(&self, _height: usize, width: usize, classes: &[Option<usize>], x: Vec<f32>) -> Group {
        let x = super::position_major(&x, classes.len(), self.channels);
        Group::new(self, width, classes, x)
    }

    fn set(&self, group: &mut Group, image: usize, channel: usize, r: usize, c: usize, x: f32) {
        let q = r * group.width + c;
        group.x[(q * group.n + image) * self.channels + channel] = x;
    }

    fn step(&self, group: &mut Group, r: usize, c: usize, want_logits: bool) {
        group.step(self, r, c, want_logits);
    }

    fn end_row(&self, group: &mut Group, r: usize) {
        group.vertical_row(self, r);
    }

    fn logits<'a>(&self, group: &'a Group, image: usize) -> &'a [f32] {
        let outputs = self.head.outputs();
        &group.logits[image * outputs..(image + 1) * outputs]
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
