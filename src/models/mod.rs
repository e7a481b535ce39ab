//! Models and the small traits they share, so that one trainer, one evaluator and one sampler
//! serve them all. Adding a model means its file and one line in the registry below
//! ([`ModelSpec`] for its config, [`Model`] for what it can do); nothing else changes.

pub mod autoencoder;
pub mod classifier;
pub mod gated_pixelcnn;
pub mod pixelcnn;
pub mod pixelcnn_pp;
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
pub use pixelcnn_pp::{PixelCnnPp, PixelCnnPpConfig};
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

/// Every autoregressive model trains on its exact NLL; a class-conditional one needs labels.
impl<T: Autoregressive> Trainable for T {
    fn loss(&self, batch: Batch) -> Loss {
        nll_loss(self, batch)
    }

    fn needs_labels(&self) -> bool {
        self.classes() > 0
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

/// What a model can do beyond being trained. Each model's file answers for itself; the
/// evaluator, samplers, `serve` and the zoo ask these questions and never name a model.
pub trait Model: Trainable {
    /// An exact density by the chain rule: exact NLL, pixel-by-pixel sampling, completion. A
    /// class-conditional one says so through [`Autoregressive::classes`].
    fn as_autoregressive(&self) -> Option<&dyn Autoregressive> {
        None
    }

    /// A latent-variable model: ELBO, IWAE-k, prior samples, latent pictures.
    fn as_latent(&self) -> Option<&dyn LatentModel> {
        None
    }

    /// A discriminative classifier p(y|x).
    fn as_classifier(&self) -> Option<&Classifier> {
        None
    }

    /// A sampler that draws exactly the images the naive sampler draws under one seed, only
    /// faster (checked by tests/cached_sampler.rs). Host copies of the weights are made here.
    fn fast_sampler(&self) -> crate::Result<Option<Box<dyn FastSampler>>> {
        Ok(None)
    }
}

/// The 28x28 image a bench or example builds `model` for when its config names none: binary
/// (binarized MNIST's), or 8-bit for a model of 8-bit images only (PixelCNN++).
pub fn benchmark_image(model: &ModelConfig) -> ImageSpec {
    let binary = ImageSpec {
        shape: ImageShape {
            channels: 1,
            height: 28,
            width: 28,
        },
        levels: Levels::Binary,
    };
    match model.accepts(&binary) {
        Ok(()) => binary,
        Err(_) => ImageSpec {
            levels: Levels::Bits8,
            ..binary
        },
    }
}

/// What to sample: image shape and levels, the seed, and for a class-conditional model the
/// class of each image.
#[derive(Debug, Clone, Copy)]
pub struct SampleSpec<'a> {
    pub shape: ImageShape,
    pub levels: Levels,
    pub seed: u64,
    /// One class per image, for class-conditional models.
    pub classes: Option<&'a [u8]>,
}

/// A fast ancestral sampler (see [`Model::fast_sampler`]): samples every value where `known`
/// (per position, `c*h*w`) is false, conditioning on `images` (row-major `[n, c, h, w]`)
/// elsewhere, drawing the same random numbers in the same order as `crate::sample::complete`.
pub trait FastSampler {
    fn complete(
        &self,
        spec: &SampleSpec,
        images: &[u8],
        known: &[bool],
        progress: &mut dyn crate::progress::Progress,
    ) -> Vec<u8>;
}

/// The command line's model flags (`--hidden-channels`, `--layers`, ...). Each model takes the
/// ones it has; [`ModelConfig::apply`] refuses the rest by name.
#[derive(Debug, Clone, Default)]
pub struct ModelFlags {
    pub hidden_channels: Option<usize>,
    pub residual_blocks: Option<usize>,
    pub layers: Option<usize>,
    pub conditional: bool,
    pub latent_dim: Option<usize>,
    pub iwae_k: Option<usize>,
}

impl ModelFlags {
    /// The flags still set, by their command-line names.
    pub fn given(&self) -> Vec<&'static str> {
        [
            ("--hidden-channels", self.hidden_channels.is_some()),
            ("--residual-blocks", self.residual_blocks.is_some()),
            ("--layers", self.layers.is_some()),
            ("--conditional", self.conditional),
            ("--latent-dim", self.latent_dim.is_some()),
            ("--iwae-k", self.iwae_k.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

/// A named starting configuration: `genmodels train NAME`.
#[derive(Debug, Clone)]
pub struct Preset<C> {
    pub name: &'static str,
    /// One line for `genmodels train --help`.
    pub about: &'static str,
    pub config: C,
}

/// A model's `[model]` table: its names on the command line, how to build it, which data it
/// takes and which flags. Implemented beside each model, in its file.
pub trait ModelSpec: Sized {
    type Model: Model;
    /// Every `genmodels train NAME` of this model.
    fn presets() -> Vec<Preset<Self>>;
    /// The name tables and messages show.
    fn name(&self) -> &'static str;
    fn build(&self, image: &ImageSpec, device: &Device) -> Self::Model;
    /// Refuses data the model cannot take; checked before a run writes anything.
    fn accepts(&self, _image: &ImageSpec) -> crate::Result<()> {
        Ok(())
    }
    /// Takes (with `Option::take`) the command-line flags this model has; whatever is left is
    /// refused by name.
    fn apply(&mut self, flags: &mut ModelFlags) -> crate::Result<()>;
}

/// The registry: every model, once. Adding a model is its file (a config implementing
/// [`ModelSpec`], a module implementing [`Model`]) and one line here. The line generates the
/// `[model]` table's enum ([`ModelConfig`], tagged by `kind`), the enum of built models
/// ([`AnyModel`]) and the dispatch between them.
macro_rules! registry {
    ($($variant:ident($config:ident => $model:ident)),+ $(,)?) => {
        /// Which model, with its hyperparameters: the `[model]` table of a run's TOML.
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(tag = "kind", rename_all = "kebab-case")]
        pub enum ModelConfig {
            $($variant($config)),+
        }

        /// Every model, as one `Module` the trainer, evaluator and sampler can hold.
        #[derive(Module, Debug)]
        pub enum AnyModel {
            $($variant($model)),+
        }

        impl ModelConfig {
            /// Every `genmodels train NAME`, in registry order.
            pub fn presets() -> Vec<Preset<ModelConfig>> {
                let mut all = Vec::new();
                $(all.extend(<$config as ModelSpec>::presets().into_iter().map(|p| Preset {
                    name: p.name,
                    about: p.about,
                    config: ModelConfig::$variant(p.config),
                }));)+
                all
            }

            /// The name tables and messages show.
            pub fn name(&self) -> &'static str {
                match self {
                    $(ModelConfig::$variant(c) => c.name()),+
                }
            }

            /// Refuses data the model cannot take (before a run writes anything).
            pub fn accepts(&self, image: &ImageSpec) -> crate::Result<()> {
                match self {
                    $(ModelConfig::$variant(c) => c.accepts(image)),+
                }
            }

            /// Applies the command line's model flags; a flag this model lacks is an error.
            pub fn apply(&mut self, mut flags: ModelFlags) -> crate::Result<()> {
                match self {
                    $(ModelConfig::$variant(c) => c.apply(&mut flags)?),+
                }
                let left = flags.given();
                if left.is_empty() {
                    Ok(())
                } else {
                    Err(crate::Error::Invalid(format!(
                        "{} takes no {}",
                        self.name(),
                        left.join(", ")
                    )))
                }
            }
        }

        /// Builds the model a config describes.
        pub fn build(config: &ModelConfig, image: &ImageSpec, device: &Device) -> AnyModel {
            match config {
                $(ModelConfig::$variant(c) => AnyModel::$variant(c.build(image, device))),+
            }
        }

        impl AnyModel {
            /// The model behind the enum, as the traits everything else uses.
            pub fn model(&self) -> &dyn Model {
                match self {
                    $(AnyModel::$variant(m) => m),+
                }
            }
        }
    };
}

registry! {
    Pixelcnn(PixelCnnConfig => PixelCnn),
    GatedPixelcnn(GatedPixelCnnConfig => GatedPixelCnn),
    PixelcnnPp(PixelCnnPpConfig => PixelCnnPp),
    Pixelrnn(PixelRnnConfig => PixelRnn),
    Vae(VaeConfig => Vae),
    Autoencoder(AutoencoderConfig => Autoencoder),
    Classifier(ClassifierConfig => Classifier),
}

impl ModelConfig {
    /// The configuration of the model called `name` on the command line.
    pub fn from_name(name: &str) -> crate::error::Result<Self> {
        Self::presets()
            .into_iter()
            .find(|p| p.name == name)
            .map(|p| p.config)
            .ok_or_else(|| {
                crate::error::Error::Invalid(format!(
                    "unknown model {name:?}; known: {}",
                    model_names().join(", ")
                ))
            })
    }
}

/// Model names accepted by `genmodels train`.
pub fn model_names() -> Vec<&'static str> {
    ModelConfig::presets().iter().map(|p| p.name).collect()
}

impl AnyModel {
    /// See [`Model::as_autoregressive`].
    pub fn as_autoregressive(&self) -> Option<&dyn Autoregressive> {
        self.model().as_autoregressive()
    }

    /// See [`Model::as_latent`].
    pub fn as_latent(&self) -> Option<&dyn LatentModel> {
        self.model().as_latent()
    }

    /// See [`Model::as_classifier`].
    pub fn as_classifier(&self) -> Option<&Classifier> {
        self.model().as_classifier()
    }

    /// See [`Model::fast_sampler`].
    pub fn fast_sampler(&self) -> crate::Result<Option<Box<dyn FastSampler>>> {
        self.model().fast_sampler()
    }
}

impl Trainable for AnyModel {
    fn loss(&self, batch: Batch) -> Loss {
        self.model().loss(batch)
    }

    fn needs_labels(&self) -> bool {
        self.model().needs_labels()
    }
}
