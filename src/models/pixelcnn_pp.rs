//! PixelCNN++ (Salimans, Karpathy, Chen, Kingma 2017, "PixelCNN++: Improving the PixelCNN with
//! Discretized Logistic Mixture Likelihood and Other Modifications"; openai/pixel-cnn
//! `model_spec`).
//!
//! - **Likelihood** (§2.1-2.2): a K-component discretised logistic mixture per pixel, the
//!   channels' means linked linearly (G on R, B on R and G);
//!   [`crate::nn::logistic_mixture`] has its equations.
//! - **Two causal streams, no masks, no blind spot** (the Gated PixelCNN's two stacks, as
//!   openai's `down_shifted_conv2d` and `down_right_shifted_conv2d` build them): the *above* stream `u` sees every row above the pixel
//!   (`[2, 3]` kernels padded at the top and on both sides), the *above-left* stream `ul` sees
//!   those rows and the pixels to the left in its own row (`[2, 2]` kernels padded at the top and
//!   on the left). The input (on [-1, 1], with an extra channel of ones so that the padding's
//!   zeros differ from black pixels) enters as
//!
//!   ```text
//!   u  = down_shift(conv_[2,3](x))
//!   ul = down_shift(conv_[1,3](x)) + right_shift(conv_[2,1](x))
//!   ```
//!
//! - **Gated ResNet blocks** (openai `gated_resnet`; dropout inside them is §2.5), on either
//!   stream, with an optional auxiliary input `a` (the other stream, or the skip connection)
//!   through a 1x1 "nin":
//!
//!   ```text
//!   c1 = conv(concat_elu(x)) (+ nin(concat_elu(a)))        F maps
//!   c2 = conv(dropout(concat_elu(c1)))                      2F maps: halves α, β
//!   out = x + α ⊙ σ(β)                    concat_elu(x) = elu([x, -x]) (2F maps)
//!   ```
//!
//! - **Three resolutions** (§2.3), H x W -> H/2 -> H/4 by stride-2 convolutions of each
//!   stream's shape and back by stride-2 transposed convolutions; every output of the up pass is
//!   a short-cut connection into the down pass (§2.4; openai's `u_list` / `ul_list`: `u` takes the `u` skip,
//!   `ul` takes `[u, ul skip]`). Output: `nin(elu(ul))` to the mixture's parameters.
//!
//! Departures: no weight normalisation and no data-dependent initialisation (Kaiming-uniform
//! weights; the gate's convolution starts at 0.1 x, for openai's `init_scale = 0.1`); defaults
//! sized for a CPU (32 filters and 2 blocks per stage instead of 160 and 5); no class or
//! embedding conditioning; dropout masks ([`crate::nn::dropout`]) are seeded from the device's
//! generator, which checkpoints do not store, so a resumed run with dropout does not repeat an
//! uninterrupted one mask for mask.
//! The cached sampler (`sample::cached::pixelcnn_pp`) runs on [`PixelCnnPp::to_host`]. Polyak averaging is the trainer's
//! (`[train] ema_decay`). As in openai's model, the coarser resolutions carry nothing of an odd
//! row's own pixels, and to row 1 only the part of row 0 that lies to the left, so how far a
//! pixel sees along those rows is set by the number of full-resolution blocks
//! (tests/pixelcnn_pp.rs).

use super::{Autoregressive, FastSampler, ImageSpec, Model, ModelFlags, ModelSpec, Preset};
use crate::data::Levels;
use crate::nn::PixelHead;
use crate::nn::dropout::dropout;
use crate::nn::fused::{concat_elu, reference::elu, residual_gate};
use crate::nn::host::{HostConv, HostTensor};
use crate::nn::logistic_mixture::{DiscretizedLogisticMixture, parameters_per_pixel};
use crate::nn::padded_conv::{PaddedConv2d, Padding, shift_right};
use burn::module::Module;
use burn::nn::conv::{ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Int, Tensor};

/// Resolutions: the image's and two halvings (the paper's).
const RESOLUTIONS: usize = 3;

/// The shape of a stream's convolutions.
#[derive(Debug, Clone, Copy)]
enum Stream {
    /// `[2, 3]`, padded at the top and on both sides: the rows above (and the pixel's own row,
    /// before the down shift).
    Above,
    /// `[2, 2]`, padded at the top and on the left: the rows above and the pixels to the left.
    AboveLeft,
}

impl Stream {
    fn kernel(self) -> [usize; 2] {
        match self {
            Stream::Above => [2, 3],
            Stream::AboveLeft => [2, 2],
        }
    }

    /// `(top, bottom, left, right)`: output pixel (i, j) reads rows i-1..=i.
    fn padding(self) -> Padding {
        match self {
            Stream::Above => [1, 0, 1, 1],
            Stream::AboveLeft => [1, 0, 1, 0],
        }
    }

    fn conv(self, in_channels: usize, out_channels: usize, device: &Device) -> PaddedConv2d {
        PaddedConv2d::new(
            in_channels,
            out_channels,
            self.kernel(),
            self.padding(),
            device,
        )
    }
}

/// One gated ResNet block (openai `gated_resnet`) on `filters` maps.
#[derive(Module, Debug)]
pub struct GatedResnet {
    /// `2F -> F`, the stream's shape.
    input: PaddedConv2d,
    /// 1x1 "nin" of the auxiliary input, `2A -> F`.
    auxiliary: Option<PaddedConv2d>,
    dropout: Dropout,
    /// `2F -> 2F`, the stream's shape: the gate's two halves.
    gate: PaddedConv2d,
}

impl GatedResnet {
    fn new(
        stream: Stream,
        filters: usize,
        auxiliary: Option<usize>,
        dropout: f64,
        device: &Device,
    ) -> Self {
        let mut gate = stream.conv(2 * filters, 2 * filters, device);
        gate.weight = gate.weight.init_mapper(|w| w.mul_scalar(0.1));
        gate.bias = gate.bias.init_mapper(|b| b.mul_scalar(0.1));
        Self {
            input: stream.conv(2 * filters, filters, device),
            auxiliary: auxiliary.map(|a| PaddedConv2d::new(2 * a, filters, [1, 1], [0; 4], device)),
            dropout: DropoutConfig::new(dropout).init(),
            gate,
        }
    }

    /// `x`: `[b, F, H, W]`, `auxiliary`: `[b, A, H, W]` -> `[b, F, H, W]`.
    fn forward(&self, x: Tensor<4>, auxiliary: Option<Tensor<4>>) -> Tensor<4> {
        let mut c1 = self.input.forward(concat_elu(x.clone()));
        if let (Some(nin), Some(a)) = (&self.auxiliary, auxiliary) {
            c1 = c1 + nin.forward(concat_elu(a));
        }
        let c2 = self.gate.forward(dropout(&self.dropout, concat_elu(c1)));
        residual_gate(x, c2)
    }
}

/// A stride-2 convolution of a stream's shape: `[b, F, H, W] -> [b, F, ⌈H/2⌉, ⌈W/2⌉]`; output
/// pixel (i, j) reads fine rows 2i-1..=2i, so it stays behind fine row 2i.
#[derive(Module, Debug)]
pub struct StridedConv {
    conv: PaddedConv2d,
}

impl StridedConv {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [top, bottom, left, right] = self.conv.padding;
        let options =
            ConvOptions::new_with_padding([2, 2], [(top, bottom), (left, right)], [1, 1], 1);
        conv2d(
            x,
            self.conv.weight.val(),
            Some(self.conv.bias.val()),
            options,
        )
    }
}

/// A stride-2 transposed convolution of a stream's shape (openai `down_shifted_deconv2d`,
/// `down_right_shifted_deconv2d`): `[b, F, H, W] -> [b, F, 2H, 2W]`. Coarse row i feeds fine
/// rows 2i and 2i+1 only; a `[2, 3]` kernel's extra column is cropped on the left.
#[derive(Module, Debug)]
pub struct StridedDeconv {
    deconv: ConvTranspose2d,
    /// Columns cropped on the left: `(kernel width - 1) / 2`.
    crop_left: usize,
}

impl StridedDeconv {
    fn new(stream: Stream, filters: usize, device: &Device) -> Self {
        let kernel = stream.kernel();
        Self {
            deconv: ConvTranspose2dConfig::new([filters, filters], kernel)
                .with_stride([2, 2])
                .init(device),
            crop_left: (kernel[1] - 1) / 2,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        // [b, F, 2H, 2W + kernel width - 2] -> [b, F, 2H, 2W]
        let y = self.deconv.forward(x);
        let [b, f, ..] = y.dims();
        y.slice([0..b, 0..f, 0..2 * h, self.crop_left..self.crop_left + 2 * w])
    }
}

/// One resolution's blocks of both streams.
#[derive(Module, Debug)]
pub struct Stage {
    above: Vec<GatedResnet>,
    above_left: Vec<GatedResnet>,
}

/// Both streams halved.
#[derive(Module, Debug)]
pub struct Downsample {
    above: StridedConv,
    above_left: StridedConv,
}

/// Both streams doubled.
#[derive(Module, Debug)]
pub struct Upsample {
    above: StridedDeconv,
    above_left: StridedDeconv,
}

/// The PixelCNN++.
#[derive(Module, Debug)]
pub struct PixelCnnPp {
    /// `u`: `[2, 3]` of `[x, 1]`, read one row up (the down shift).
    input_above: PaddedConv2d,
    /// `ul`, first part: `[1, 3]` of `[x, 1]` on the row above.
    input_above_row: PaddedConv2d,
    /// `ul`, second part: `[2, 1]` of `[x, 1]`, shifted right by one.
    input_left: PaddedConv2d,
    /// Up pass, finest resolution first: blocks push their outputs as skips.
    up: Vec<Stage>,
    downsample: Vec<Downsample>,
    /// Down pass, coarsest first: every block takes one skip.
    down: Vec<Stage>,
    upsample: Vec<Upsample>,
    /// 1x1, `F -> parameters_per_pixel(C, K)`.
    output: PaddedConv2d,
    image_channels: usize,
    mixtures: usize,
}

impl PixelCnnPp {
    /// The mixture parameters of every pixel: `[b, C, H, W]` in [0, 1] ->
    /// `[b, parameters_per_pixel(C, K), H, W]` (layout: [`DiscretizedLogisticMixture::new`]).
    pub fn mixture_parameters(&self, images: Tensor<4>) -> Tensor<4> {
        let [b, _, h, w] = images.dims();
        let ones = Tensor::ones([b, 1, h, w], &images.device());
        let x = Tensor::cat(vec![images.mul_scalar(2.0).sub_scalar(1.0), ones], 1);
        let mut above = vec![self.input_above.forward_shifted(x.clone(), [1, 0])];
        let mut above_left = vec![
            self.input_above_row.forward_shifted(x.clone(), [1, 0])
                + shift_right(self.input_left.forward(x)),
        ];
        let last = |list: &[Tensor<4>]| list[list.len() - 1].clone();
        for (s, stage) in self.up.iter().enumerate() {
            if s > 0 {
                let resample = &self.downsample[s - 1];
                above.push(resample.above.forward(last(&above)));
                above_left.push(resample.above_left.forward(last(&above_left)));
            }
            for (block, left_block) in stage.above.iter().zip(&stage.above_left) {
                let u = block.forward(last(&above), None);
                above.push(u.clone());
                above_left.push(left_block.forward(last(&above_left), Some(u)));
            }
        }
        let skip = |list: &mut Vec<Tensor<4>>| list.pop().expect("one skip per down-pass block");
        let (mut u, mut ul) = (skip(&mut above), skip(&mut above_left));
        for (s, stage) in self.down.iter().enumerate() {
            if s > 0 {
                let resample = &self.upsample[s - 1];
                u = resample.above.forward(u);
                ul = resample.above_left.forward(ul);
            }
            for (block, left_block) in stage.above.iter().zip(&stage.above_left) {
                u = block.forward(u, Some(skip(&mut above)));
                let auxiliary = Tensor::cat(vec![u.clone(), skip(&mut above_left)], 1);
                ul = left_block.forward(ul, Some(auxiliary));
            }
        }
        debug_assert!(above.is_empty() && above_left.is_empty());
        self.output.forward(elu(ul))
    }
}

impl Autoregressive for PixelCnnPp {
    fn conditionals(&self, images: Tensor<4>, _labels: Option<&Tensor<1, Int>>) -> PixelHead {
        let [_, channels, _, _] = images.dims();
        assert_eq!(
            channels, self.image_channels,
            "PixelCNN++ built for {} channels",
            self.image_channels
        );
        let parameters = self.mixture_parameters(images.clone());
        PixelHead::new(DiscretizedLogisticMixture::new(
            parameters,
            self.mixtures,
            images,
        ))
    }
}

impl Model for PixelCnnPp {
    fn as_autoregressive(&self) -> Option<&dyn Autoregressive> {
        Some(self)
    }

    /// The cached sampler of `crate::sample::cached::pixelcnn_pp`, on host copies of the
    /// weights.
    fn fast_sampler(&self) -> crate::Result<Option<Box<dyn FastSampler>>> {
        Ok(Some(Box::new(self.to_host()?)))
    }
}

/// A convolution on the host with where it reads: output (r, c) reads input
/// `(stride r + dy - top, stride c + dx - left)` (zeros outside); with `shift_right`, the
/// output moves that many columns right and zeros (not the bias) enter.
pub struct HostWindowConv {
    pub conv: HostConv,
    pub stride: usize,
    pub top: usize,
    pub left: usize,
    pub shift_right: usize,
}

impl HostWindowConv {
    /// `conv` as `forward` runs it (stride 1), read `down` rows further up
    /// (`forward_shifted(x, [down, 0])`).
    fn of(conv: &PaddedConv2d, down: usize) -> crate::Result<Self> {
        Ok(Self {
            conv: HostConv::of(conv)?,
            stride: 1,
            top: conv.padding[0] + down,
            left: conv.padding[2],
            shift_right: 0,
        })
    }

    /// A 1x1 convolution at its own position.
    pub fn pointwise(conv: HostConv) -> Self {
        Self {
            conv,
            stride: 1,
            top: 0,
            left: 0,
            shift_right: 0,
        }
    }

    fn strided(conv: &StridedConv) -> crate::Result<Self> {
        Ok(Self {
            stride: 2,
            ..Self::of(&conv.conv, 0)?
        })
    }
}

/// A stride-2 transposed convolution on the host: `conv` `[out, in, kh, kw]` (burn keeps
/// `[in, out, kh, kw]`); fine (R, C) reads coarse `((R - dy) / 2, (C + crop_left - dx) / 2)`
/// where both divide evenly.
pub struct HostDeconv {
    pub conv: HostConv,
    pub crop_left: usize,
}

impl HostDeconv {
    fn of(deconv: &StridedDeconv) -> crate::Result<Self> {
        let weight = deconv.deconv.weight.val().swap_dims(0, 1);
        let outputs = weight.dims()[0];
        let bias = match &deconv.deconv.bias {
            Some(b) => HostTensor::of(b.val())?.values,
            None => vec![0.0; outputs],
        };
        Ok(Self {
            conv: HostConv {
                weight: HostTensor::of(weight)?,
                bias,
            },
            crop_left: deconv.crop_left,
        })
    }
}

/// A gated ResNet block on the host.
pub struct HostGatedResnet {
    pub input: HostWindowConv,
    /// The 1x1 of `concat_elu` of the auxiliary input (itself a concatenation in the down pass).
    pub auxiliary: Option<HostConv>,
    pub gate: HostWindowConv,
}

/// One resolution's blocks on the host.
pub struct HostStage {
    pub above: Vec<HostGatedResnet>,
    pub above_left: Vec<HostGatedResnet>,
}

/// The model's weights on the host, layer for layer.
pub struct HostPixelCnnPp {
    pub input_above: HostWindowConv,
    pub input_above_row: HostWindowConv,
    pub input_left: HostWindowConv,
    pub up: Vec<HostStage>,
    /// `[above, above_left]` per halving.
    pub downsample: Vec<[HostWindowConv; 2]>,
    pub down: Vec<HostStage>,
    /// `[above, above_left]` per doubling.
    pub upsample: Vec<[HostDeconv; 2]>,
    pub output: HostConv,
    pub image_channels: usize,
    pub mixtures: usize,
}

impl PixelCnnPp {
    /// Copies the weights to the host, with where each layer reads as `mixture_parameters`
    /// applies it.
    pub fn to_host(&self) -> crate::Result<HostPixelCnnPp> {
        let block = |b: &GatedResnet| -> crate::Result<HostGatedResnet> {
            Ok(HostGatedResnet {
                input: HostWindowConv::of(&b.input, 0)?,
                auxiliary: b.auxiliary.as_ref().map(HostConv::of).transpose()?,
                gate: HostWindowConv::of(&b.gate, 0)?,
            })
        };
        let stage = |s: &Stage| -> crate::Result<HostStage> {
            Ok(HostStage {
                above: s.above.iter().map(block).collect::<crate::Result<_>>()?,
                above_left: s
                    .above_left
                    .iter()
                    .map(block)
                    .collect::<crate::Result<_>>()?,
            })
        };
        Ok(HostPixelCnnPp {
            input_above: HostWindowConv::of(&self.input_above, 1)?,
            input_above_row: HostWindowConv::of(&self.input_above_row, 1)?,
            input_left: HostWindowConv {
                shift_right: 1,
                ..HostWindowConv::of(&self.input_left, 0)?
            },
            up: self.up.iter().map(stage).collect::<crate::Result<_>>()?,
            downsample: (self.downsample.iter())
                .map(|d| {
                    Ok([
                        HostWindowConv::strided(&d.above)?,
                        HostWindowConv::strided(&d.above_left)?,
                    ])
                })
                .collect::<crate::Result<_>>()?,
            down: self.down.iter().map(stage).collect::<crate::Result<_>>()?,
            upsample: (self.upsample.iter())
                .map(|u| Ok([HostDeconv::of(&u.above)?, HostDeconv::of(&u.above_left)?]))
                .collect::<crate::Result<_>>()?,
            output: HostConv::of(&self.output)?,
            image_channels: self.image_channels,
            mixtures: self.mixtures,
        })
    }
}

/// Hyperparameters of a PixelCNN++. Image size and channels come from the data.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PixelCnnPpConfig {
    /// F: feature maps of both streams at every resolution (160 in the paper; 32 keeps a
    /// CPU epoch of MNIST near an hour).
    pub filters: usize,
    /// Gated ResNet blocks per stream per stage of the up pass (5 in the paper); the down pass
    /// has one more in each stage after the coarsest.
    pub resnets_per_stage: usize,
    /// K, mixture components; absent: 5 for grey images, 10 for colour (the paper's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mixtures: Option<usize>,
    /// Dropout inside each block, before its gate convolution (0.5 in the paper for CIFAR-10 at
    /// 160 filters; a 32-filter model on 50k images underfits before it overfits).
    pub dropout: f64,
}

impl Default for PixelCnnPpConfig {
    fn default() -> Self {
        Self {
            filters: 32,
            resnets_per_stage: 2,
            mixtures: None,
            dropout: 0.1,
        }
    }
}

impl PixelCnnPpConfig {
    /// Components for `channels`-channel images.
    pub fn mixtures_for(&self, channels: usize) -> usize {
        self.mixtures.unwrap_or(if channels == 1 { 5 } else { 10 })
    }

    /// Builds the model for images of `image` (8-bit, sides divisible by 4: see `accepts`).
    pub fn init(&self, image: &ImageSpec, device: &Device) -> PixelCnnPp {
        let c = image.shape.channels;
        let (f, n, p) = (self.filters, self.resnets_per_stage, self.dropout);
        let mixtures = self.mixtures_for(c);
        let stage = |blocks: usize, skips: bool| Stage {
            // Up pass: `u` has no auxiliary input, `ul` has `u`. Down pass: `u` has its skip,
            // `ul` has `[u, ul skip]`.
            above: (0..blocks)
                .map(|_| GatedResnet::new(Stream::Above, f, skips.then_some(f), p, device))
                .collect(),
            above_left: (0..blocks)
                .map(|_| {
                    let a = if skips { 2 * f } else { f };
                    GatedResnet::new(Stream::AboveLeft, f, Some(a), p, device)
                })
                .collect(),
        };
        let downsample = || Downsample {
            above: StridedConv {
                conv: Stream::Above.conv(f, f, device),
            },
            above_left: StridedConv {
                conv: Stream::AboveLeft.conv(f, f, device),
            },
        };
        let upsample = || Upsample {
            above: StridedDeconv::new(Stream::Above, f, device),
            above_left: StridedDeconv::new(Stream::AboveLeft, f, device),
        };
        PixelCnnPp {
            input_above: Stream::Above.conv(c + 1, f, device),
            input_above_row: PaddedConv2d::new(c + 1, f, [1, 3], [0, 0, 1, 1], device),
            input_left: PaddedConv2d::new(c + 1, f, [2, 1], [1, 0, 0, 0], device),
            up: (0..RESOLUTIONS).map(|_| stage(n, false)).collect(),
            downsample: (1..RESOLUTIONS).map(|_| downsample()).collect(),
            down: (0..RESOLUTIONS)
                .map(|s| stage(if s == 0 { n } else { n + 1 }, true))
                .collect(),
            upsample: (1..RESOLUTIONS).map(|_| upsample()).collect(),
            output: PaddedConv2d::new(f, parameters_per_pixel(c, mixtures), [1, 1], [0; 4], device),
            image_channels: c,
            mixtures,
        }
    }
}

impl ModelSpec for PixelCnnPpConfig {
    type Model = PixelCnnPp;

    fn presets() -> Vec<Preset<Self>> {
        vec![Preset {
            name: "pixelcnn-pp",
            about: "PixelCNN++: logistic mixture, two shifted streams, 3 resolutions (8-bit images)",
            config: Self::default(),
        }]
    }

    fn name(&self) -> &'static str {
        "pixelcnn-pp"
    }

    fn build(&self, image: &ImageSpec, device: &Device) -> PixelCnnPp {
        self.init(image, device)
    }

    fn accepts(&self, image: &ImageSpec) -> crate::Result<()> {
        let name = self.name();
        if image.levels == Levels::Binary {
            return Err(crate::Error::Invalid(format!(
                "{name} models 8-bit images (a discretised logistic mixture over 0..=255), and these images are binary: \
                 train it on mnist, fashion-mnist, cifar10, synth-shapes or folder:PATH, or use pixelcnn or gated-pixelcnn for binary data"
            )));
        }
        let factor = 1 << (RESOLUTIONS - 1);
        let shape = image.shape;
        if !shape.height.is_multiple_of(factor) || !shape.width.is_multiple_of(factor) {
            return Err(crate::Error::Invalid(format!(
                "{name} halves the image twice, so its sides must be multiples of {factor}; these images are {}x{}",
                shape.height, shape.width
            )));
        }
        if !(0.0..1.0).contains(&self.dropout) || self.filters == 0 || self.mixtures == Some(0) {
            return Err(crate::Error::Invalid(format!(
                "{name}: dropout must be in [0, 1) and filters and mixtures at least 1; got dropout {}, filters {}, mixtures {:?}",
                self.dropout, self.filters, self.mixtures
            )));
        }
        Ok(())
    }

    fn apply(&mut self, flags: &mut ModelFlags) -> crate::Result<()> {
        self.filters = flags.hidden_channels.take().unwrap_or(self.filters);
        self.resnets_per_stage = flags
            .residual_blocks
            .take()
            .unwrap_or(self.resnets_per_stage);
        Ok(())
    }
}
