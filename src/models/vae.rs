//! Variational autoencoder (Kingma & Welling 2014, "Auto-Encoding Variational Bayes") and the
//! importance-weighted bound (Burda et al. 2016, "Importance Weighted Autoencoders").
//!
//! ```text
//! q(z|x) = N(μ(x), diag σ²(x))    encoder outputs μ and log σ²
//! p(z)   = N(0, I)                p(x|z): Bernoulli (binary images) or a discretised
//!                                 logistic per pixel (8-bit images)
//! z = μ + σ ⊙ ε, ε ~ N(0, I)      (reparameterisation)
//! ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z)) <= log p(x)
//! IWAE_k(x) = E[ log (1/k) Σ_i p(x, z_i) / q(z_i|x) ],  z_i ~ q;  ELBO = IWAE_1 <= IWAE_k <= log p(x)
//! ```
//!
//! Convention (the sum-vs-mean question): the loss is the negative ELBO in nats **per image**:
//! the reconstruction log-likelihood is **summed** over pixels, the KL is **summed** over latent
//! dimensions (closed form, non-negative, *added* to the reconstruction NLL), and both are
//! **averaged** over the batch. pytorch/examples' `vae` sums over the batch instead, which only
//! rescales the gradient (by the batch size); its printed loss is per image after it divides.
//!
//! With `iwae_k > 1` training maximises IWAE_k instead (same architecture, k samples per image).
//! Architectures: the IWAE paper's MLP (784-200-200-50, tanh) as `vae-mlp`, and a small
//! convolutional encoder/decoder as `vae-conv` (see [`crate::nn::coders`]).

use super::{
    Batch, ImageSpec, LatentModel, Loss, Model, ModelFlags, ModelSpec, Preset, Trainable,
    iwae_loss, neg_elbo_loss,
};
use crate::data::Levels;
use crate::nn::coders::{Activation, Architecture, Decoder, Encoder};
use crate::nn::dist::DiscretizedLogistic;
use crate::nn::{DiagGaussian, PixelHead};
use burn::module::Module;
use burn::tensor::{Device, Tensor};

/// Hyperparameters of a VAE / IWAE.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VaeConfig {
    pub architecture: Architecture,
    /// Hidden layer sizes of the MLP encoder (the decoder mirrors them).
    pub hidden: Vec<usize>,
    pub latent_dim: usize,
    pub activation: Activation,
    /// Samples per image of the training objective: 1 = ELBO (VAE), k > 1 = IWAE_k.
    pub iwae_k: usize,
}

impl Default for VaeConfig {
    fn default() -> Self {
        Self {
            architecture: Architecture::Mlp,
            hidden: vec![200, 200],
            latent_dim: 50,
            activation: Activation::Tanh,
            iwae_k: 1,
        }
    }
}

/// The VAE.
#[derive(Module, Debug)]
pub struct Vae {
    /// Outputs `[b, 2 * latent]`: μ then log σ².
    encoder: Encoder,
    /// Outputs `[b, c, H, W]` logits (binary) or `[b, 2c, H, W]` mean and log-scale (8-bit).
    decoder: Decoder,
    latent_dim: usize,
    image_shape: [usize; 3],
    discretized_logistic: bool,
    iwae_k: usize,
}

impl VaeConfig {
    pub fn init(&self, image: &ImageSpec, device: &Device) -> Vae {
        let s = image.shape;
        let logistic = image.levels == Levels::Bits8;
        let out_channels = if logistic { 2 * s.channels } else { s.channels };
        Vae {
            encoder: Encoder::new(
                self.architecture,
                [s.channels, s.height, s.width],
                &self.hidden,
                2 * self.latent_dim,
                self.activation,
                device,
            ),
            decoder: Decoder::new(
                self.architecture,
                self.latent_dim,
                &self.hidden,
                [out_channels, s.height, s.width],
                self.activation,
                device,
            ),
            latent_dim: self.latent_dim,
            image_shape: [s.channels, s.height, s.width],
            discretized_logistic: logistic,
            iwae_k: self.iwae_k.max(1),
        }
    }
}

impl Vae {
    /// The encoder alone, outputs `[b, 2 * latent]` (μ then log σ²): what a classifier
    /// fine-tuned from the VAE starts from.
    pub fn into_encoder(self) -> crate::nn::coders::Encoder {
        self.encoder
    }
}

impl LatentModel for Vae {
    fn encode(&self, images: Tensor<4>) -> DiagGaussian {
        let stats = self.encoder.forward(images); // [b, 2 * latent]
        let [b, _] = stats.dims();
        let d = self.latent_dim;
        DiagGaussian {
            mean: stats.clone().slice([0..b, 0..d]),
            log_var: stats.slice([0..b, d..2 * d]),
        }
    }

    fn decode(&self, z: Tensor<2>) -> PixelHead {
        let [c, h, w] = self.image_shape;
        if self.discretized_logistic {
            let out = self.decoder.forward(z, [2 * c, h, w]);
            let [b, ..] = out.dims();
            PixelHead::new(DiscretizedLogistic {
                mean: out.clone().slice([0..b, 0..c, 0..h, 0..w]),
                log_scale: out.slice([0..b, c..2 * c, 0..h, 0..w]),
            })
        } else {
            PixelHead::bernoulli(self.decoder.forward(z, [c, h, w]))
        }
    }

    fn latent_dim(&self) -> usize {
        self.latent_dim
    }
}

impl Trainable for Vae {
    fn loss(&self, batch: Batch) -> Loss {
        match self.iwae_k {
            1 => neg_elbo_loss(self, batch.images),
            k => iwae_loss(self, batch.images, k),
        }
    }
}

impl ModelSpec for VaeConfig {
    type Model = Vae;

    fn presets() -> Vec<Preset<Self>> {
        vec![
            Preset {
                name: "vae-mlp",
                about: "VAE, MLP encoder and decoder (Kingma & Welling), trained on the ELBO",
                config: Self::default(),
            },
            Preset {
                name: "vae-conv",
                about: "VAE, convolutional encoder and decoder",
                config: Self {
                    architecture: Architecture::Conv,
                    latent_dim: 32,
                    activation: Activation::Relu,
                    ..Self::default()
                },
            },
            Preset {
                name: "iwae-mlp",
                about: "the MLP VAE trained on the IWAE-50 bound (Burda et al.)",
                config: Self {
                    iwae_k: 50,
                    ..Self::default()
                },
            },
        ]
    }

    fn name(&self) -> &'static str {
        if self.iwae_k > 1 { "iwae" } else { "vae" }
    }

    fn build(&self, image: &ImageSpec, device: &Device) -> Vae {
        self.init(image, device)
    }

    fn apply(&mut self, flags: &mut ModelFlags) -> crate::Result<()> {
        self.latent_dim = flags.latent_dim.take().unwrap_or(self.latent_dim);
        self.iwae_k = flags.iwae_k.take().unwrap_or(self.iwae_k);
        if self.iwae_k == 0 {
            return Err(crate::Error::Invalid(
                "--iwae-k must be at least 1 (1 trains the plain VAE)".into(),
            ));
        }
        Ok(())
    }
}

impl Model for Vae {
    fn as_latent(&self) -> Option<&dyn LatentModel> {
        Some(self)
    }
}
