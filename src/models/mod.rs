//! Models and the small traits they share, so that one trainer, one evaluator and one sampler
//! serve them all. Adding a model means one file, one [`ModelConfig`] variant and one arm in
//! [`build`]; `train/`, `eval/` and `sample/` stay as they are.

pub mod pixelcnn;

use crate::data::{ImageShape, Levels};
use crate::nn::PixelHead;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

pub use pixelcnn::{PixelCnn, PixelCnnConfig};

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

/// A model of p(x) that gives exact log-likelihoods.
pub trait DensityModel {
    /// `log p(x)` in nats per image, `[batch]`; `images` are `[batch, c, h, w]` in [0, 1].
    fn log_prob(&self, images: Tensor<4>) -> Tensor<1>;
}

/// An autoregressive model: every conditional p(x_i | x_<i) in one teacher-forced pass, in
/// raster order with channels R -> G -> B inside a pixel.
pub trait Autoregressive {
    /// The conditionals of every pixel given the pixels before it in `images`.
    fn conditionals(&self, images: Tensor<4>) -> PixelHead;
}

impl<T: Autoregressive> DensityModel for T {
    fn log_prob(&self, images: Tensor<4>) -> Tensor<1> {
        self.conditionals(images.clone()).log_prob(images)
    }
}

/// A training loss: the scalar to minimise (nats per image, batch mean) and named terms.
pub struct Loss {
    pub objective: Tensor<1>,
    pub terms: Vec<(&'static str, Tensor<1>)>,
}

/// What the trainer needs of a model.
pub trait Trainable {
    fn loss(&self, images: Tensor<4>) -> Loss;
}

/// The negative log-likelihood loss of a density model, in nats per image (batch mean).
pub fn nll_loss(model: &impl DensityModel, images: Tensor<4>) -> Loss {
    let nll = model.log_prob(images).mean().neg();
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
}

impl ModelConfig {
    /// The default configuration of the model called `name` on the command line.
    pub fn from_name(name: &str) -> crate::error::Result<Self> {
        match name {
            "pixelcnn" => Ok(ModelConfig::Pixelcnn(PixelCnnConfig::default())),
            other => Err(crate::error::Error::Invalid(format!(
                "unknown model {other:?}; known: pixelcnn"
            ))),
        }
    }

    /// The command-line name.
    pub fn name(&self) -> &'static str {
        match self {
            ModelConfig::Pixelcnn(_) => "pixelcnn",
        }
    }
}

/// Every model, as one `Module` the trainer, evaluator and sampler can hold.
#[derive(Module, Debug)]
pub enum AnyModel {
    Pixelcnn(PixelCnn),
}

/// Builds the model a config describes. The only `match` that lists every model.
pub fn build(config: &ModelConfig, image: &ImageSpec, device: &Device) -> AnyModel {
    match config {
        ModelConfig::Pixelcnn(c) => AnyModel::Pixelcnn(c.init(image, device)),
    }
}

impl Autoregressive for AnyModel {
    fn conditionals(&self, images: Tensor<4>) -> PixelHead {
        match self {
            AnyModel::Pixelcnn(m) => m.conditionals(images),
        }
    }
}

impl Trainable for AnyModel {
    fn loss(&self, images: Tensor<4>) -> Loss {
        nll_loss(self, images)
    }
}
