//! A classifier p(y|x): an encoder from [`crate::nn::coders`] (the autoencoder's, so that a
//! trained one can be moved in) and a linear head to class logits, trained by cross-entropy
//! `-log softmax(logits)[y]`, in nats per image (batch mean).

use super::{Batch, ImageSpec, Loss, Model, ModelFlags, ModelSpec, Preset, Trainable};
use crate::nn::coders::{Activation, Architecture, Encoder};
use crate::nn::dropout::dropout;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::{log_softmax, relu};
use burn::tensor::{Device, Int, Tensor};

/// Hyperparameters of a classifier. Its encoder has the autoencoder's shape for the same
/// `architecture`, `hidden`, `feature_dim` and `activation`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassifierConfig {
    pub architecture: Architecture,
    pub hidden: Vec<usize>,
    /// Encoder output size (the autoencoder's latent size).
    pub feature_dim: usize,
    pub activation: Activation,
    pub classes: usize,
    /// Dropout probability on the features before the head (training only; 0 = none).
    pub dropout: f64,
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        Self {
            architecture: Architecture::Mlp,
            hidden: vec![400],
            feature_dim: 32,
            activation: Activation::Relu,
            classes: 10,
            dropout: 0.0,
        }
    }
}

/// Encoder, ReLU, dropout, linear head.
#[derive(Module, Debug)]
pub struct Classifier {
    pub encoder: Encoder,
    dropout: Dropout,
    head: Linear,
}

impl ClassifierConfig {
    pub fn init(&self, image: &ImageSpec, device: &Device) -> Classifier {
        let s = image.shape;
        let encoder = Encoder::new(
            self.architecture,
            [s.channels, s.height, s.width],
            &self.hidden,
            self.feature_dim,
            self.activation,
            device,
        );
        self.with_encoder(encoder, device)
    }

    /// A classifier on a given (e.g. pre-trained) encoder with a fresh head.
    pub fn with_encoder(&self, encoder: Encoder, device: &Device) -> Classifier {
        Classifier {
            encoder,
            dropout: DropoutConfig::new(self.dropout).init(),
            head: LinearConfig::new(self.feature_dim, self.classes).init(device),
        }
    }
}

impl Classifier {
    /// Class logits, `[b, classes]`.
    pub fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        let features = relu(self.encoder.forward(images));
        self.head.forward(dropout(&self.dropout, features))
    }
}

impl Trainable for Classifier {
    fn loss(&self, batch: Batch) -> Loss {
        let labels = batch
            .labels
            .expect("the trainer checks that a classifier gets labels");
        let [b] = labels.dims();
        let index: Tensor<2, Int> = labels.reshape([b, 1]);
        let xent = log_softmax(self.logits(batch.images), 1)
            .gather(1, index)
            .mean()
            .neg();
        Loss {
            objective: xent.clone(),
            terms: vec![("xent", xent)],
        }
    }

    fn needs_labels(&self) -> bool {
        true
    }
}

impl ModelSpec for ClassifierConfig {
    type Model = Classifier;

    fn presets() -> Vec<Preset<Self>> {
        vec![
            Preset {
                name: "classifier-mlp",
                about: "discriminative classifier p(y|x), MLP (needs labels)",
                config: Self::default(),
            },
            Preset {
                name: "classifier-conv",
                about: "discriminative classifier p(y|x), convolutional",
                config: Self {
                    architecture: Architecture::Conv,
                    ..Self::default()
                },
            },
        ]
    }

    fn name(&self) -> &'static str {
        "classifier"
    }

    fn build(&self, image: &ImageSpec, device: &Device) -> Classifier {
        self.init(image, device)
    }

    fn apply(&mut self, flags: &mut ModelFlags) -> crate::Result<()> {
        self.feature_dim = flags.latent_dim.take().unwrap_or(self.feature_dim);
        Ok(())
    }
}

impl Model for Classifier {
    fn as_classifier(&self) -> Option<&Classifier> {
        Some(self)
    }
}
