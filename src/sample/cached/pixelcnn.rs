//! The cached plain PixelCNN (see [`super`]). Every layer is a masked convolution, so a layer's
//! output at pixel q depends only on the layer below at q and before it in raster order: at
//! each pixel every layer is computed at that pixel alone, from the kept activations of the
//! pixels before it.
//!
//! ```text
//! h_0(q)     = conv7x7_A(x)(q)
//! y_b(q)     = ReLU(conv1x1(ReLU(h_b(q))))                          kept: the 3x3 reads it
//! h_{b+1}(q) = h_b(q) + conv1x1(ReLU(conv3x3_B(y_b)(q)))
//! logits(q)  = conv1x1(ReLU(conv1x1(ReLU(h_B(q)))))
//! ```
//!
//! Colour: the masks' channel groups zero the weights from a pixel's own later channels, so the
//! step for channel R at q ignores q's values; the step for G (and B) recomputes q with the
//! values drawn so far, and the last channel's step leaves q final.

use super::{Cached, Head, Incremental, SampleSpec, Taps, relu};
use crate::models::pixelcnn::HostPixelCnn;

struct Block {
    reduce: Taps,
    masked: Taps,
    expand: Taps,
}

/// The model in the cache's layout.
pub(crate) struct Model {
    input: Taps,
    blocks: Vec<Block>,
    head: Head,
    channels: usize,
}

impl Model {
    fn of(host: &HostPixelCnn) -> Self {
        Self {
            input: Taps::of(&host.input),
            blocks: (host.blocks.iter())
                .map(|b| Block {
                    reduce: Taps::of(&b.reduce),
                    masked: Taps::of(&b.masked),
                    expand: Taps::of(&b.expand),
                })
                .collect(),
            head: Head::of(&host.output_hidden, &host.output),
            channels: host.image_channels,
        }
    }
}

/// A group of `n` images: their inputs and every block's kept activations, laid out
/// `[position][image][features]` (one tap of a layer reads one contiguous `[n][in]` block).
pub(crate) struct Group {
    n: usize,
    width: usize,
    /// Model input `[H][W][n][c]`.
    x: Vec<f32>,
    /// `y_b` of the last `kept` rows, a ring `[kept][W][n][h]`: the masked `k x k` reads rows
    /// r - k/2 ..= r (`h_b` is read at its own pixel only, so it is not kept).
    reduced: Vec<Vec<f32>>,
    kept: usize,
    /// `[n][c * L]`
    logits: Vec<f32>,
}

impl Incremental for Model {
    type Group = Group;

    fn channels(&self) -> usize {
        self.channels
    }

    fn outputs(&self) -> usize {
        self.head.outputs()
    }

    fn group(&self, height: usize, width: usize, classes: &[Option<usize>], x: Vec<f32>) -> Group {
        let n = classes.len();
        let kept = (self.blocks.iter().map(|b| b.masked.height / 2 + 1).max())
            .unwrap_or(1)
            .min(height);
        Group {
            n,
            width,
            x: super::position_major(&x, n, self.channels),
            reduced: (self.blocks.iter())
                .map(|b| vec![0.0; kept * width * n * b.reduce.outputs()])
                .collect(),
            kept,
            logits: vec![0.0; n * self.head.outputs()],
        }
    }

    fn set(&self, group: &mut Group, image: usize, channel: usize, r: usize, c: usize, x: f32) {
        let q = r * group.width + c;
        group.x[(q * group.n + image) * self.channels + channel] = x;
    }

    fn step(&self, group: &mut Group, r: usize, c: usize, want_logits: bool) {
        let (n, w) = (group.n, group.width);
        let two_h = self.input.outputs();
        let mut h = vec![0f32; n * two_h];
        self.input
            .masked_rows_at(&mut h, (&group.x, usize::MAX), w, r, c);
        let ring = (r % group.kept) * w + c;
        let mut input = vec![0f32; n * two_h];
        let mut expanded = vec![0f32; n * two_h];
        for (b, block) in self.blocks.iter().enumerate() {
            let hidden = block.reduce.outputs();
            input.copy_from_slice(&h);
            relu(&mut input);
            let y = &mut group.reduced[b][ring * n * hidden..(ring + 1) * n * hidden];
            block.reduce.pointwise_rows(y, &input);
            relu(y);
            let mut z = vec![0f32; n * hidden];
            block
                .masked
                .masked_rows_at(&mut z, (&group.reduced[b], group.kept), w, r, c);
            relu(&mut z);
            block.expand.pointwise_rows(&mut expanded, &z);
            for (v, e) in h.iter_mut().zip(&expanded) {
                *v += e;
            }
        }
        if want_logits {
            self.head.forward_rows(&h, &mut group.logits);
        }
    }

    fn logits<'a>(&self, group: &'a Group, image: usize) -> &'a [f32] {
        let outputs = self.head.outputs();
        &group.logits[image * outputs..(image + 1) * outputs]
    }
}

impl Cached for HostPixelCnn {
    type Layout = Model;
    fn layout(&self) -> Model {
        Model::of(self)
    }
}

/// The logits the cache computes at every position of complete `images` (teacher forcing),
/// `[n][H][W][c * L]`, for checking it against the parallel forward pass.
pub fn teacher_forced_logits(model: &HostPixelCnn, spec: &SampleSpec, images: &[u8]) -> Vec<f32> {
    super::teacher_forced(&model.layout(), spec, images)
}
