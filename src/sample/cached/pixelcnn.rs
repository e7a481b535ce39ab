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
    logits_per_channel: usize,
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
            logits_per_channel: host.logits_per_channel,
        }
    }
}

/// One image: its input and every block's kept activations, channel-last.
pub(crate) struct Image {
    width: usize,
    /// Model input `[H][W][c]`.
    x: Vec<f32>,
    /// `y_b`: `[H][W][h]` (`h_b` is read at its own pixel only, so it is not kept).
    reduced: Vec<Vec<f32>>,
    logits: Vec<f32>,
}

impl Incremental for Model {
    type Image = Image;

    fn channels(&self) -> usize {
        self.channels
    }

    fn logits_per_channel(&self) -> usize {
        self.logits_per_channel
    }

    fn image(&self, height: usize, width: usize, _class: Option<usize>, x: Vec<f32>) -> Image {
        let plane = height * width;
        Image {
            width,
            x: super::channel_last(&x, self.channels),
            reduced: (self.blocks.iter())
                .map(|b| vec![0.0; plane * b.reduce.outputs()])
                .collect(),
            logits: vec![0.0; self.head.outputs()],
        }
    }

    fn set(&self, image: &mut Image, channel: usize, r: usize, c: usize, x: f32) {
        image.x[(r * image.width + c) * self.channels + channel] = x;
    }

    fn step(&self, image: &mut Image, r: usize, c: usize, want_logits: bool) {
        let (w, q) = (image.width, r * image.width + c);
        let two_h = self.input.outputs();
        let at = |q: usize, n: usize| q * n..(q + 1) * n;
        let mut h = vec![0f32; two_h];
        self.input.masked_at(&mut h, &image.x, w, r, c);
        for (b, block) in self.blocks.iter().enumerate() {
            let hidden = block.reduce.outputs();
            let mut input = h.clone();
            relu(&mut input);
            let mut y = vec![0f32; hidden];
            block.reduce.pointwise(&mut y, &input);
            relu(&mut y);
            image.reduced[b][at(q, hidden)].copy_from_slice(&y);
            let mut z = vec![0f32; hidden];
            block.masked.masked_at(&mut z, &image.reduced[b], w, r, c);
            relu(&mut z);
            let mut expanded = vec![0f32; two_h];
            block.expand.pointwise(&mut expanded, &z);
            for (v, e) in h.iter_mut().zip(&expanded) {
                *v += e;
            }
        }
        if want_logits {
            self.head.forward(&h, &mut image.logits);
        }
    }

    fn logits<'a>(&self, image: &'a Image) -> &'a [f32] {
        &image.logits
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
