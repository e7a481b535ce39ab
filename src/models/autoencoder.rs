//! Autoencoder: a deterministic encoder x -> z (dim z < dim x) and decoder z -> x̂, trained to
//! reconstruct, without labels. Its encoder is what `features` hands to a classifier.
//!
//! Loss per image (batch mean): binary images, the Bernoulli NLL (binary cross-entropy summed
//! over pixels, in nats); grey images, the squared error Σ_i (x_i - x̂_i)² with x, x̂ in [0, 1]
//! (x̂ = sigmoid of the decoder output). MLP and convolutional variants share
//! [`crate::nn::coders`] with the VAE.

use super::{Batch, ImageSpec, Loss, Model, ModelFlags, ModelSpec, Preset, Trainable};
use crate::data::Levels;
use crate::nn::PixelHead;
use crate::nn::coders::{Activation, Architecture, Decoder, Encoder};
use burn::module::Module;
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor};

/// Hyperparameters of an autoencoder.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AutoencoderConfig {
    pub architecture: Architecture,
    pub hidden: Vec<usize>,
    pub latent_dim: usize,
    pub activation: Activation,
}

impl Default for AutoencoderConfig {
    fn default() -> Self {
        Self {
            architecture: Architecture::Mlp,
            hidden: vec![400],
            latent_dim: 32,
            activation: Activation::Relu,
        }
    }
}

/// The autoencoder.
#[derive(Module, Debug)]
pub struct Autoencoder {
    pub encoder: Encoder,
    decoder: Decoder,
    latent_dim: usize,
    image_shape: [usize; 3],
    binary: bool,
}

impl AutoencoderConfig {
    pub fn init(&self, image: &ImageSpec, device: &Device) -> Autoencoder {
        let s = image.shape;
        let shape = [s.channels, s.height, s.width];
        Autoencoder {
            encoder: Encoder::new(
                self.architecture,
                shape,
                &self.hidden,
                self.latent_dim,
                self.activation,
                device,
            ),
            decoder: Decoder::new(
                self.architecture,
                self.latent_dim,
                &self.hidden,
                shape,
                self.activation,
                device,
            ),
            latent_dim: self.latent_dim,
            image_shape: shape,
            binary: image.levels == Levels::Binary,
        }
    }
}

impl Autoencoder {
    /// The code z = encoder(x), `[b, latent]`.
    pub fn encode(&self, images: Tensor<4>) -> Tensor<2> {
        self.encoder.forward(images)
    }

    /// Decoder logits, `[b, c, H, W]`.
    pub fn decode_logits(&self, z: Tensor<2>) -> Tensor<4> {
        self.decoder.forward(z, self.image_shape)
    }

    /// Reconstructions x̂ in [0, 1], `[b, c, H, W]`.
    pub fn reconstruct(&self, images: Tensor<4>) -> Tensor<4> {
        sigmoid(self.decode_logits(self.encode(images)))
    }

    pub fn latent_dim(&self) -> usize {
        self.latent_dim
    }
}

impl Trainable for Autoencoder {
    fn loss(&self, batch: Batch) -> Loss {
        let images = batch.images;
        let [b, ..] = images.dims();
        let logits = self.decode_logits(self.encode(images.clone()));
        let per_image = if self.binary {
            PixelHead::bernoulli(logits).log_prob(images).neg()
        } else {
            (sigmoid(logits) - images)
                .square()
                .reshape([b as i64, -1])
                .sum_dim(1)
                .reshape([b])
        };
        let recon = per_image.mean();
        Loss {
            objective: recon.clone(),
            terms: vec![("recon", recon)],
        }
    }
}

impl ModelSpec for AutoencoderConfig {
    type Model = Autoencoder;

    fn presets() -> Vec<Preset<Self>> {
        vec![
            Preset {
                name: "ae-mlp",
                about: "autoencoder, MLP (features without labels)",
                config: Self::default(),
            },
            Preset {
                name: "ae-conv",
                about: "autoencoder, convolutional",
                config: Self {
                    architecture: Architecture::Conv,
                    ..Self::default()
                },
            },
        ]
    }

    fn name(&self) -> &'static str {
        "autoencoder"
    }

    fn build(&self, image: &ImageSpec, device: &Device) -> Autoencoder {
        self.init(image, device)
    }

    fn apply(&mut self, flags: &mut ModelFlags) -> crate::Result<()> {
        self.latent_dim = flags.latent_dim.take().unwrap_or(self.latent_dim);
        Ok(())
    }
}

/// An autoencoder has no density and no prior: it is trained and its encoder reused.
impl Model for Autoencoder {}
