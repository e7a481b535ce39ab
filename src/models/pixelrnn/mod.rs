//! PixelRNN (van den Oord et al. 2016, "Pixel Recurrent Neural Networks", §3, Fig. 2-4, Table 1):
//! the dependency on earlier pixels is carried by LSTMs built from convolutions and gates.
//!
//! ```text
//! x -> 7x7 conv, mask A (2h) -> [ LSTM layer (h) -> 1x1 conv (2h), + residual ] x layers
//!   -> ReLU -> 1x1 conv -> ReLU -> 1x1 conv -> Bernoulli or 256-way softmax logits
//! ```
//!
//! The LSTM layer is a [`row_lstm::RowLstm`] or a [`diagonal_bilstm::DiagonalBiLstm`].
//!
//! Colour (§3.4): every map is split into R, G, B groups; the 7x7 input conv has mask A, and
//! every tap at the current pixel after it mask B ([`ColourMask`]): the input-to-state
//! convolutions (with the four gates grouped alike, so a unit's gates share its group), the
//! 1x1s back to the residual stream and the output layers. State-to-state convolutions read
//! only earlier pixels and are not masked.
//!
//! Departures: the first Diagonal BiLSTM's right-to-left direction
//! also reads the image itself, which closes a gap of the paper's layout (see
//! [`DiagonalBiLstm`]); the gradient test checks the full field.

pub mod diagonal_bilstm;
pub mod row_lstm;

use super::{Autoregressive, FastSampler, ImageSpec, Model, ModelFlags, ModelSpec, Preset};
use crate::nn::host::{HostConv, HostHead};
use crate::nn::masked_conv::ColourMask;
use crate::nn::padded_conv::{OutputHead, PaddedConv2d};
use crate::nn::{MaskType, MaskedConv2d, PixelHead};
use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use diagonal_bilstm::DiagonalBiLstm;
use row_lstm::RowLstm;

/// Which recurrent layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RnnKind {
    RowLstm,
    DiagonalBilstm,
}

/// The recurrent part of one layer.
// One per layer, built once: boxing the larger variant buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Recurrent {
    Row(RowLstm),
    Diagonal(DiagonalBiLstm),
}

/// One residual PixelRNN layer: LSTM (h states) then a 1x1 conv back to 2h, added to the input.
#[derive(Module, Debug)]
pub struct RnnLayer {
    recurrent: Recurrent,
    up: PaddedConv2d,
}

impl RnnLayer {
    /// `image` is given to the first layer (see [`DiagonalBiLstm`] on why).
    fn forward(&self, x: Tensor<4>, image: Option<Tensor<4>>) -> Tensor<4> {
        let states = match &self.recurrent {
            Recurrent::Row(r) => r.forward(x.clone()),
            Recurrent::Diagonal(d) => d.forward(x.clone(), image),
        };
        x + self.up.forward(states)
    }
}

/// Hyperparameters of a PixelRNN.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PixelRnnConfig {
    /// Which recurrent layer ("cell", since `kind` names the model in the TOML).
    pub cell: RnnKind,
    /// h: LSTM states per position; the residual stream has 2h maps.
    pub hidden_channels: usize,
    pub layers: usize,
    pub first_kernel: usize,
    /// Row LSTM: width of the 1 x k input-to-state and state-to-state convolutions.
    pub row_kernel: usize,
    pub output_hidden: usize,
}

impl Default for PixelRnnConfig {
    fn default() -> Self {
        Self {
            cell: RnnKind::RowLstm,
            hidden_channels: 16,
            layers: 7,
            first_kernel: 7,
            row_kernel: 3,
            output_hidden: 32,
        }
    }
}

/// The PixelRNN.
#[derive(Module, Debug)]
pub struct PixelRnn {
    input: MaskedConv2d,
    layers: Vec<RnnLayer>,
    output: OutputHead,
    logits_per_channel: usize,
}

impl PixelRnnConfig {
    pub fn init(&self, image: &ImageSpec, device: &Device) -> PixelRnn {
        let c = image.shape.channels;
        let colour = ColourMask::of(MaskType::B, c);
        let (h, two_h) = (self.hidden_channels, 2 * self.hidden_channels);
        let layers = (0..self.layers)
            .map(|i| RnnLayer {
                recurrent: match self.cell {
                    RnnKind::RowLstm => {
                        Recurrent::Row(RowLstm::new(two_h, h, self.row_kernel, colour, device))
                    }
                    RnnKind::DiagonalBilstm => {
                        let row_view = if i == 0 { c } else { 0 };
                        Recurrent::Diagonal(DiagonalBiLstm::new(two_h, row_view, h, colour, device))
                    }
                },
                up: PaddedConv2d::new(h, two_h, [1, 1], [0; 4], device).with_colour(colour),
            })
            .collect();
        PixelRnn {
            input: MaskedConv2d::new(c, two_h, self.first_kernel, MaskType::A, c, device),
            layers,
            output: OutputHead::new(
                two_h,
                self.output_hidden,
                c * image.logits_per_channel(),
                colour,
                device,
            ),
            logits_per_channel: image.logits_per_channel(),
        }
    }
}

impl PixelRnn {
    /// Logits of every pixel, `[b, c * L, H, W]`.
    pub fn logits(&self, images: Tensor<4>) -> Tensor<4> {
        let image = images.mul_scalar(2.0).sub_scalar(1.0);
        let mut x = self.input.forward(image.clone());
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x, (i == 0).then(|| image.clone()));
        }
        self.output.forward(x)
    }
}

/// One direction of a recurrence on the host: `(input_to_state, state_to_state)`.
#[derive(Debug, Clone)]
pub struct HostLstm {
    pub input_to_state: HostConv,
    pub state_to_state: HostConv,
}

impl From<(HostConv, HostConv)> for HostLstm {
    fn from((input_to_state, state_to_state): (HostConv, HostConv)) -> Self {
        Self {
            input_to_state,
            state_to_state,
        }
    }
}

/// One layer's recurrence on the host.
#[derive(Debug, Clone)]
pub enum HostRecurrent {
    Row(HostLstm),
    Diagonal {
        left_to_right: HostLstm,
        right_to_left: HostLstm,
    },
}

/// Every weight of a PixelRNN on the host, for the cached sampler
/// ([`crate::sample::cached::pixelrnn`]).
#[derive(Debug, Clone)]
pub struct HostPixelRnn {
    /// The 7x7 mask-A convolution, mask applied.
    pub input: HostConv,
    /// Per layer: the recurrence and the 1x1 convolution back to 2h.
    pub layers: Vec<(HostRecurrent, HostConv)>,
    pub head: HostHead,
    pub logits_per_channel: usize,
}

impl PixelRnn {
    /// Copies the weights to the host.
    pub fn to_host(&self) -> crate::Result<HostPixelRnn> {
        let layers = (self.layers.iter())
            .map(|layer| {
                let recurrent = match &layer.recurrent {
                    Recurrent::Row(r) => HostRecurrent::Row(r.to_host()?.into()),
                    Recurrent::Diagonal(d) => {
                        let (left, right) = d.to_host()?;
                        HostRecurrent::Diagonal {
                            left_to_right: left.into(),
                            right_to_left: right.into(),
                        }
                    }
                };
                Ok((recurrent, HostConv::of(&layer.up)?))
            })
            .collect::<crate::Result<_>>()?;
        Ok(HostPixelRnn {
            input: HostConv::masked(&self.input)?,
            layers,
            head: HostHead::of(&self.output)?,
            logits_per_channel: self.logits_per_channel,
        })
    }
}

impl Autoregressive for PixelRnn {
    fn conditionals(&self, images: Tensor<4>, _labels: Option<&Tensor<1, Int>>) -> PixelHead {
        PixelHead::from_logits(self.logits(images), self.logits_per_channel)
    }
}

impl ModelSpec for PixelRnnConfig {
    type Model = PixelRnn;

    fn presets() -> Vec<Preset<Self>> {
        vec![
            Preset {
                name: "row-lstm",
                about: "PixelRNN, Row LSTM (a triangular context above each pixel; binary, grey or RGB)",
                config: Self::default(),
            },
            Preset {
                name: "diagonal-bilstm",
                about: "PixelRNN, Diagonal BiLSTM (every earlier pixel; binary, grey or RGB)",
                config: Self {
                    cell: RnnKind::DiagonalBilstm,
                    ..Self::default()
                },
            },
        ]
    }

    fn name(&self) -> &'static str {
        match self.cell {
            RnnKind::RowLstm => "row-lstm",
            RnnKind::DiagonalBilstm => "diagonal-bilstm",
        }
    }

    fn build(&self, image: &ImageSpec, device: &Device) -> PixelRnn {
        self.init(image, device)
    }

    fn apply(&mut self, flags: &mut ModelFlags) -> crate::Result<()> {
        self.hidden_channels = flags.hidden_channels.take().unwrap_or(self.hidden_channels);
        self.layers = flags.layers.take().unwrap_or(self.layers);
        Ok(())
    }
}

impl Model for PixelRnn {
    fn as_autoregressive(&self) -> Option<&dyn Autoregressive> {
        Some(self)
    }

    /// The cached sampler of `crate::sample::cached::pixelrnn`, on host copies of the weights.
    fn fast_sampler(&self) -> crate::Result<Option<Box<dyn FastSampler>>> {
        Ok(Some(Box::new(self.to_host()?)))
    }
}
