//! Models and the small traits they share, so that one trainer, one evaluator and one sampler
//! serve them all. Adding a model means one file, one [`ModelConfig`] variant and one arm in
//! [`build`]; `train/`, `eval/` and `sample/` stay as they are.

pub mod autoencoder;
pub mod classifier;
pub mod gated_pixelcnn;
pub mod pixelcnn;
pub mod pixelrnn;
pub mod vae;

use crate::data::{ImageShape, Levels};
use crate::nn::{DiagGaussian, PixelHead};
use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};

pub use autoencoder::{Autoencoder, AutoencoderConfig};
pub use classifier::{Classifier, ClassifierConfig};
pub use gated_pixelcnn::{GatedPixelCnn, GatedPixelCnnConfig};
pub use pixelcnn::{PixelCnn, PixelCnnConfig};
pub use pixelrnn::{PixelRnn, PixelRnnConfig, RnnKind};
pub use vae::{Vae, VaeConfig};

/// What a model is built for: the image shape and the pixel levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageSpec {
    pub shape: ImageShape,
    pub levels: Levels,
}

impl ImageSpec {
    /// Output logits per image channel: 1 for a Bernoulli, `levels` for a softmax.
    pub fn logits_per_channel(&self) -> usize {
        match self.levels {
            Levels::Binary => 1,
            Levels::Bits8 => 256,
        }
    }
}

/// A model of p(x) (or p(x|y)) that gives exact log-likelihoods.
pub trait DensityModel {
    /// `log p(x)` (or `log p(x|y)` for a class-conditional model given `labels` `[batch]`) in
    /// nats per image, `[batch]`; `images` are `[batch, c, h, w]` in [0, 1].
    fn log_prob(&self, images: Tensor<4>, labels: Option<&Tensor<1, Int>>) -> Tensor<1>;
}

/// An autoregressive model: every conditional p(x_i | x_<i) in one teacher-forced pass, in
/// raster order with channels R -> G -> B inside a pixel.
pub trait Autoregressive {
    /// The conditionals of every pixel given the pixels before it in `images` (and the class,
    /// for a class-conditional model; others ignore `labels`).
    fn conditionals(&self, images: Tensor<4>, labels: Option<&Tensor<1, Int>>) -> PixelHead;

    /// Classes of a class-conditional model; 0 for an unconditional one.
    fn classes(&self) -> usize {
        0
    }
}

impl<T: Autoregressive + ?Sized> DensityModel for T {
    fn log_prob(&self, images: Tensor<4>, labels: Option<&Tensor<1, Int>>) -> Tensor<1> {
        self.conditionals(images.clone(), labels).log_prob(images)
    }
}

/// A latent-variable model: q(z|x), p(x|z) and the prior p(z) = N(0, I). ELBO, IWAE-k,
/// reconstructions and latent pictures are written once, in terms of these.
pub trait LatentModel {
    /// q(z|x): `[b, c, h, w]` images to a diagonal Gaussian over `[b, latent]`.
    fn encode(&self, images: Tensor<4>) -> DiagGaussian;
    /// p(x|z): `[b, latent]` codes to independent per-pixel distributions.
    fn decode(&self, z: Tensor<2>) -> PixelHead;
    fn latent_dim(&self) -> usize;
}

/// `log w = log p(x|z) + log p(z) - log q(z|x)` for `k` samples z ~ q per image, image-major:
/// `[b * k]` (entries i*k .. i*k+k belong to image i). `q` is `model.encode(images)`.
pub fn log_importance_weights<M: LatentModel + ?Sized>(
    model: &M,
    images: Tensor<4>,
    q: &DiagGaussian,
    k: usize,
) -> Tensor<1> {
    let [b, c, h, w] = images.dims();
    let q_k = q.repeat_rows(k);
    let z = q_k.rsample(); // [b*k, latent]
    let images_k = images
        .unsqueeze_dim::<5>(1)
        .repeat_dim(1, k)
        .reshape([b * k, c, h, w]);
    let log_px_given_z = model.decode(z.clone()).log_prob(images_k);
    let prior = DiagGaussian::standard(b * k, model.latent_dim(), &z.device());
    log_px_given_z + prior.log_prob(z.clone()) - q_k.log_prob(z)
}

/// log-sum-exp over dim 1 of `[b, k]`, `[b]`.
pub fn log_sum_exp(x: Tensor<2>) -> Tensor<1> {
    let [b, _] = x.dims();
    let max = x.clone().max_dim(1).detach(); // [b, 1]
    ((x - max.clone()).exp().sum_dim(1).log() + max).reshape([b])
}

/// Negative ELBO in nats per image (batch mean): summed reconstruction NLL plus the closed-form
/// KL(q(z|x) || N(0, I)) summed over latent dimensions; one reparameterised sample per image.
pub fn neg_elbo_loss<M: LatentModel + ?Sized>(model: &M, images: Tensor<4>) -> Loss {
    let q = model.encode(images.clone());
    let recon_nll = model.decode(q.rsample()).log_prob(images).neg(); // [b]
    let kl = q.kl_to_standard_normal(); // [b], >= 0
    let objective = (recon_nll.clone() + kl.clone()).mean();
    Loss {
        objective,
        terms: vec![("recon", recon_nll.mean()), ("kl", kl.mean())],
    }
}

/// Negative IWAE_k bound in nats per image (batch mean): `-(logsumexp_i log w_i - log k)`.
pub fn iwae_loss<M: LatentModel + ?Sized>(model: &M, images: Tensor<4>, k: usize) -> Loss {
    let [b, ..] = images.dims();
    let q = model.encode(images.clone());
    let log_w = log_importance_weights(model, images, &q, k).reshape([b, k]);
    let bound = log_sum_exp(log_w).sub_scalar((k as f64).ln());
    let objective = bound.mean().neg();
    Loss {
        objective: objective.clone(),
        terms: vec![("neg_iwae", objective)],
    }
}

/// A training loss: the scalar to minimise (nats per image, batch mean) and named terms.
pub struct Loss {
    pub objective: Tensor<1>,
    pub terms: Vec<(&'static str, Tensor<1>)>,
}

pub use crate::data::batch::Batch;

/// What the trainer needs of a model.
pub trait Trainable {
    fn loss(&self, batch: Batch) -> Loss;
    /// Whether [`Trainable::loss`] needs labels (the trainer refuses unlabelled data then).
    fn needs_labels(&self) -> bool {
        false
    }
}

/// The negative log-likelihood loss of a density model, in nats per image (batch mean).
pub fn nll_loss<M: DensityModel + ?Sized>(model: &M, batch: Batch) -> Loss {
    let nll = model
        .log_prob(batch.images, batch.labels.as_ref())
        .mean()
        .neg();
    Loss {
        objective: nll.clone(),
        terms: vec![("nll", nll)],
    }
}

/// Which model, with its hyperparameters: the `[model]` table of a run's TOML.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ModelConfig {
    Pixelcnn(PixelCnnConfig),
    GatedPixelcnn(GatedPixelCnnConfig),
    Pixelrnn(PixelRnnConfig),
    Vae(VaeConfig),
    Autoencoder(AutoencoderConfig),
    Classifier(ClassifierConfig),
}

/// Model names accepted by `genmodels train`.
pub const MODEL_NAMES: [&str; 11] = [
    "pixelcnn",
    "gated-pixelcnn",
    "row-lstm",
    "diagonal-bilstm",
    "vae-mlp",
    "vae-conv",
    "iwae-mlp",
    "ae-mlp",
    "ae-conv",
    "classifier-mlp",
    "classifier-conv",
];

impl ModelConfig {
    /// The default configuration of the model called `name` on the command line.
    pub fn from_name(name: &str) -> crate::error::Result<Self> {
        use crate::nn::coders::{Activation, Architecture};
        let conv_vae = VaeConfig {
            architecture: Architecture::Conv,
            latent_dim: 32,
            activation: Activation::Relu,
            ..VaeConfig::default()
        };
        match name {
            "pixelcnn" => Ok(ModelConfig::Pixelcnn(PixelCnnConfig::default())),
            "gated-pixelcnn" => Ok(ModelConfig::GatedPixelcnn(GatedPixelCnnConfig::default())),
            "row-lstm" => Ok(ModelConfig::Pixelrnn(PixelRnnConfig::default())),
            "diagonal-bilstm" => Ok(ModelConfig::Pixelrnn(PixelRnnConfig {
                cell: RnnKind::DiagonalBilstm,
                ..PixelRnnConfig::default()
            })),
            "vae-mlp" => Ok(ModelConfig::Vae(VaeConfig::default())),
            "vae-conv" => Ok(ModelConfig::Vae(conv_vae)),
            "iwae-mlp" => Ok(ModelConfig::Vae(VaeConfig {
                iwae_k: 50,
                ..VaeConfig::default()
            })),
            "ae-mlp" => Ok(ModelConfig::Autoencoder(AutoencoderConfig::default())),
            "ae-conv" => Ok(ModelConfig::Autoencoder(AutoencoderConfig {
                architecture: Architecture::Conv,
                ..AutoencoderConfig::default()
            })),
            "classifier-mlp" => Ok(ModelConfig::Classifier(ClassifierConfig::default())),
            "classifier-conv" => Ok(ModelConfig::Classifier(ClassifierConfig {
                architecture: Architecture::Conv,
                ..ClassifierConfig::default()
            })),
            other => Err(crate::error::Error::Invalid(format!(
                "unknown model {other:?}; known: {}",
                MODEL_NAMES.join(", ")
            ))),
        }
    }

    /// The command-line name.
    pub fn name(&self) -> &'static str {
        match self {
            ModelConfig::Pixelcnn(_) => "pixelcnn",
            ModelConfig::GatedPixelcnn(_) => "gated-pixelcnn",
            ModelConfig::Pixelrnn(c) if c.cell == RnnKind::RowLstm => "row-lstm",
            ModelConfig::Pixelrnn(_) => "diagonal-bilstm",
            ModelConfig::Vae(c) if c.iwae_k > 1 => "iwae",
            ModelConfig::Vae(_) => "vae",
            ModelConfig::Autoencoder(_) => "autoencoder",
            ModelConfig::Classifier(_) => "classifier",
        }
    }
}

/// Every model, as one `Module` the trainer, evaluator and sampler can hold.
#[derive(Module, Debug)]
pub enum AnyModel {
    Pixelcnn(PixelCnn),
    GatedPixelcnn(GatedPixelCnn),
    Pixelrnn(PixelRnn),
    Vae(Vae),
    Autoencoder(Autoencoder),
    Classifier(Classifier),
}

/// Builds the model a config describes. The only `match` that lists every model.
pub fn build(config: &ModelConfig, image: &ImageSpec, device: &Device) -> AnyModel {
    match config {
        ModelConfig::Pixelcnn(c) => AnyModel::Pixelcnn(c.init(image, device)),
        ModelConfig::GatedPixelcnn(c) => AnyModel::GatedPixelcnn(c.init(image, device)),
        ModelConfig::Pixelrnn(c) => AnyModel::Pixelrnn(c.init(image, device)),
        ModelConfig::Vae(c) => AnyModel::Vae(c.init(image, device)),
        ModelConfig::Autoencoder(c) => AnyModel::Autoencoder(c.init(image, device)),
        ModelConfig::Classifier(c) => AnyModel::Classifier(c.init(image, device)),
    }
}

impl AnyModel {
    /// The model as an autoregressive density, if it is one (exact NLL, pixel sampling).
    pub fn as_autoregressive(&self) -> Option<&dyn Autoregressive> {
        match self {
            AnyModel::Pixelcnn(m) => Some(m),
            AnyModel::GatedPixelcnn(m) => Some(m),
            AnyModel::Pixelrnn(m) => Some(m),
            AnyModel::Vae(_) | AnyModel::Autoencoder(_) | AnyModel::Classifier(_) => None,
        }
    }

    /// The model as a latent-variable model, if it is one (ELBO, IWAE, prior samples).
    pub fn as_latent(&self) -> Option<&dyn LatentModel> {
        match self {
            AnyModel::Vae(m) => Some(m),
            AnyModel::Pixelcnn(_)
            | AnyModel::GatedPixelcnn(_)
            | AnyModel::Pixelrnn(_)
            | AnyModel::Autoencoder(_)
            | AnyModel::Classifier(_) => None,
        }
    }
}

impl Trainable for AnyModel {
    fn loss(&self, batch: Batch) -> Loss {
        match self {
            AnyModel::Pixelcnn(m) => nll_loss(m, batch),
            AnyModel::GatedPixelcnn(m) => nll_loss(m, batch),
            AnyModel::Pixelrnn(m) => nll_loss(m, batch),
            AnyModel::Vae(m) => m.loss(batch),
            AnyModel::Autoencoder(m) => m.loss(batch),
            AnyModel::Classifier(m) => m.loss(batch),
        }
    }

    fn needs_labels(&self) -> bool {
        match self {
            AnyModel::Classifier(_) => true,
            AnyModel::GatedPixelcnn(m) => m.classes() > 0,
            _ => false,
        }
    }
}
