//! Gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN
//! Decoders", §2.1-2.3, Fig. 2).
//!
//! Two stacks remove the PixelCNN's blind spot: the **vertical** stack sees every row above
//! (a `(k/2+1) x k` convolution padded only at the top), the **horizontal** stack sees the current
//! row to the left (a `1 x (k/2+1)` convolution padded only on the left). Each layer:
//!
//! ```text
//! v     = W_v * v_in (+ V_v y)                       2p features
//! v_out = tanh(v_f) ⊙ σ(v_g)                         p features (f, g: the two halves)
//! h     = W_h * h_in + W_{v->h} * shift_down(v) (+ V_h y)
//! h_out = h_in + W_o * (tanh(h_f) ⊙ σ(h_g))          (no residual in the first layer)
//! ```
//!
//! `shift_down` keeps row i of the horizontal stack from seeing row i of the vertical one
//! (which has seen all of row i). In the first layer of a single-channel model the horizontal
//! input is also shifted right by one, so that pixel i never sees itself (mask A). Both shifts are read into the
//! convolutions' windows ([`PaddedConv2d::forward_shifted`]) rather than built as copies. For
//! p(x|y), a learned class embedding is added inside every gate of both stacks. Output: ReLU,
//! 1x1 conv, ReLU, 1x1 conv to Bernoulli logits or 256-way softmax logits.
//!
//! Colour (R -> G -> B within a pixel, PixelRNN paper §3.4): only the horizontal stack and the
//! output layers read the current pixel, so only their tap at it is masked
//! ([`ColourMask`]): mask A on the image in the first layer (in place of the shift), mask B
//! after, with the two gate halves split into colour groups alike so that a unit's tanh and
//! sigmoid inputs share its group. The vertical stack and its link see only rows above the
//! pixel and need no mask.

use super::{Autoregressive, FastSampler, ImageSpec, Model, ModelFlags, ModelSpec, Preset};
use crate::nn::PixelHead;
use crate::nn::fused::gate;
use crate::nn::host::{HostConv, HostTensor};
use crate::nn::masked_conv::{ColourMask, MaskType};
use crate::nn::padded_conv::{OutputHead, PaddedConv2d};
use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig};
use burn::tensor::{Device, Int, Tensor};

/// One gated layer with its vertical and horizontal stacks.
#[derive(Module, Debug)]
pub struct GatedLayer {
    vertical: PaddedConv2d,
    horizontal: PaddedConv2d,
    vertical_to_horizontal: PaddedConv2d,
    horizontal_out: PaddedConv2d,
    class_vertical: Option<Embedding>,
    class_horizontal: Option<Embedding>,
    first: bool,
}

impl GatedLayer {
    fn new(
        in_channels: usize,
        p: usize,
        kernel: usize,
        first: bool,
        classes: Option<usize>,
        image_channels: usize,
        device: &Device,
    ) -> Self {
        let half = kernel / 2;
        let embed = |n: usize| EmbeddingConfig::new(n, 2 * p).init(device);
        let mask = if first { MaskType::A } else { MaskType::B };
        let colour = ColourMask::of(mask, image_channels);
        Self {
            vertical: PaddedConv2d::new(
                in_channels,
                2 * p,
                [half + 1, kernel],
                [half, 0, half, half],
                device,
            ),
            horizontal: PaddedConv2d::new(
                in_channels,
                2 * p,
                [1, half + 1],
                [0, 0, half, 0],
                device,
            )
            .with_colour(colour.map(|m| m.gates(2))),
            vertical_to_horizontal: PaddedConv2d::new(2 * p, 2 * p, [1, 1], [0; 4], device),
            horizontal_out: PaddedConv2d::new(p, p, [1, 1], [0; 4], device)
                .with_colour(ColourMask::of(MaskType::B, image_channels)),
            class_vertical: classes.map(embed),
            class_horizontal: classes.map(embed),
            first,
        }
    }

    /// `(v_in, h_in)` -> `(v_out, h_out)`, all `[b, ·, H, W]`; `labels` `[b]` when conditional.
    fn forward(
        &self,
        v_in: Tensor<4>,
        h_in: Tensor<4>,
        labels: Option<&Tensor<1, Int>>,
    ) -> (Tensor<4>, Tensor<4>) {
        let mut v = self.vertical.forward(v_in);
        // The shifts are read into the kernels' windows (no shifted copies).
        let h_shift = [0, usize::from(self.shifts_input())];
        let mut h = self.horizontal.forward_shifted(h_in.clone(), h_shift)
            + self
                .vertical_to_horizontal
                .forward_shifted(v.clone(), [1, 0]);
        if let (Some(labels), Some(ev), Some(eh)) =
            (labels, &self.class_vertical, &self.class_horizontal)
        {
            v = v.clone() + class_bias(ev, labels, v.dims());
            h = h.clone() + class_bias(eh, labels, h.dims());
        }
        let h_gated = self.horizontal_out.forward(gate(h));
        let h_out = if self.first { h_gated } else { h_in + h_gated };
        (gate(v), h_out)
    }
}

impl GatedLayer {
    /// Whether the horizontal stack reads its input one column to the left: the first layer's
    /// mask A for a single channel (colour models mask the centre tap instead).
    fn shifts_input(&self) -> bool {
        self.first && self.horizontal.colour.is_none()
    }
}

/// The class embedding as a per-channel bias, expanded to `dims` = `[b, 2p, H, W]`.
fn class_bias(embedding: &Embedding, labels: &Tensor<1, Int>, dims: [usize; 4]) -> Tensor<4> {
    let [b, c, h, w] = dims;
    let e: Tensor<3> = embedding.forward(labels.clone().reshape([b, 1])); // [b, 1, 2p]
    e.reshape([b, c, 1, 1]).expand([b, c, h, w])
}

/// Hyperparameters of a Gated PixelCNN.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatedPixelCnnConfig {
    /// p: feature maps of each stack.
    pub hidden_channels: usize,
    /// Gated layers, the first included.
    pub layers: usize,
    /// Kernel of the first layer (7 in the paper).
    pub first_kernel: usize,
    /// Kernel of the later layers.
    pub kernel: usize,
    pub output_hidden: usize,
    /// Number of classes for p(x|y); absent for an unconditional model.
    pub classes: Option<usize>,
}

impl Default for GatedPixelCnnConfig {
    fn default() -> Self {
        Self {
            hidden_channels: 32,
            layers: 8,
            first_kernel: 7,
            kernel: 3,
            output_hidden: 64,
            classes: None,
        }
    }
}

/// The Gated PixelCNN.
#[derive(Module, Debug)]
pub struct GatedPixelCnn {
    layers: Vec<GatedLayer>,
    output: OutputHead,
    image_channels: usize,
    logits_per_channel: usize,
    classes: usize,
}

impl GatedPixelCnnConfig {
    pub fn init(&self, image: &ImageSpec, device: &Device) -> GatedPixelCnn {
        let c = image.shape.channels;
        let p = self.hidden_channels;
        let layers = (0..self.layers.max(1))
            .map(|i| {
                let (input, kernel) = if i == 0 {
                    (c, self.first_kernel)
                } else {
                    (p, self.kernel)
                };
                GatedLayer::new(input, p, kernel, i == 0, self.classes, c, device)
            })
            .collect();
        GatedPixelCnn {
            layers,
            output: OutputHead::new(
                p,
                self.output_hidden,
                c * image.logits_per_channel(),
                ColourMask::of(MaskType::B, c),
                device,
            ),
            image_channels: c,
            logits_per_channel: image.logits_per_channel(),
            classes: self.classes.unwrap_or(0),
        }
    }
}

impl GatedPixelCnn {
    /// Logits `[b, c * L, H, W]`; `labels` `[b]` are required by (and only used by) conditional models.
    pub fn logits(&self, images: Tensor<4>, labels: Option<&Tensor<1, Int>>) -> Tensor<4> {
        let x = images.mul_scalar(2.0).sub_scalar(1.0);
        let (mut v, mut h) = (x.clone(), x);
        for layer in &self.layers {
            (v, h) = layer.forward(v, h, labels);
        }
        self.output.forward(h)
    }
}

impl Autoregressive for GatedPixelCnn {
    fn conditionals(&self, images: Tensor<4>, labels: Option<&Tensor<1, Int>>) -> PixelHead {
        assert!(
            self.classes == 0 || labels.is_some(),
            "a class-conditional model needs labels (callers check this and report it)"
        );
        let labels = if self.classes > 0 { labels } else { None };
        PixelHead::from_logits(self.logits(images, labels), self.logits_per_channel)
    }

    fn classes(&self) -> usize {
        self.classes
    }
}

/// One gated layer's weights on the host (see [`GatedLayer`]).
#[derive(Debug, Clone)]
pub struct HostGatedLayer {
    pub vertical: HostConv,
    pub horizontal: HostConv,
    pub vertical_to_horizontal: HostConv,
    pub horizontal_out: HostConv,
    /// `[classes, 2p]` class embeddings of each stack, for conditional models.
    pub class_vertical: Option<HostTensor>,
    pub class_horizontal: Option<HostTensor>,
    pub first: bool,
    /// The horizontal stack reads its input one column to the left (see
    /// [`GatedLayer::shifts_input`]).
    pub shifts_input: bool,
}

/// Every weight of a Gated PixelCNN on the host, for the cached sampler
/// ([`crate::sample::cached`]), which recomputes the same equations one pixel at a time.
#[derive(Debug, Clone)]
pub struct HostGatedPixelCnn {
    pub layers: Vec<HostGatedLayer>,
    pub output_hidden: HostConv,
    pub output: HostConv,
    pub image_channels: usize,
    pub logits_per_channel: usize,
    pub classes: usize,
}

impl GatedPixelCnn {
    /// Copies the weights to the host.
    pub fn to_host(&self) -> crate::Result<HostGatedPixelCnn> {
        let embedding = |e: &Option<Embedding>| {
            e.as_ref()
                .map(|e| HostTensor::of(e.weight.val()))
                .transpose()
        };
        let layers = self
            .layers
            .iter()
            .map(|l| {
                Ok(HostGatedLayer {
                    vertical: HostConv::of(&l.vertical)?,
                    horizontal: HostConv::of(&l.horizontal)?,
                    vertical_to_horizontal: HostConv::of(&l.vertical_to_horizontal)?,
                    horizontal_out: HostConv::of(&l.horizontal_out)?,
                    class_vertical: embedding(&l.class_vertical)?,
                    class_horizontal: embedding(&l.class_horizontal)?,
                    first: l.first,
                    shifts_input: l.shifts_input(),
                })
            })
            .collect::<crate::Result<_>>()?;
        Ok(HostGatedPixelCnn {
            layers,
            output_hidden: HostConv::of(&self.output.hidden)?,
            output: HostConv::of(&self.output.logits)?,
            image_channels: self.image_channels,
            logits_per_channel: self.logits_per_channel,
            classes: self.classes,
        })
    }
}

impl ModelSpec for GatedPixelCnnConfig {
    type Model = GatedPixelCnn;

    fn presets() -> Vec<Preset<Self>> {
        vec![Preset {
            name: "gated-pixelcnn",
            about: "Gated PixelCNN, no blind spot (binary, grey or RGB); --conditional learns p(x|y)",
            config: Self::default(),
        }]
    }

    fn name(&self) -> &'static str {
        "gated-pixelcnn"
    }

    fn build(&self, image: &ImageSpec, device: &Device) -> GatedPixelCnn {
        self.init(image, device)
    }

    fn apply(&mut self, flags: &mut ModelFlags) -> crate::Result<()> {
        self.hidden_channels = flags.hidden_channels.take().unwrap_or(self.hidden_channels);
        self.layers = flags.layers.take().unwrap_or(self.layers);
        if std::mem::take(&mut flags.conditional) {
            self.classes = Some(10);
        }
        Ok(())
    }
}

impl Model for GatedPixelCnn {
    fn as_autoregressive(&self) -> Option<&dyn Autoregressive> {
        Some(self)
    }

    /// The cached sampler of `crate::sample::cached`, on host copies of the weights.
    fn fast_sampler(&self) -> crate::Result<Option<Box<dyn FastSampler>>> {
        Ok(Some(Box::new(self.to_host()?)))
    }
}
