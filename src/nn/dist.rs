//! Per-pixel output distributions of autoregressive models, given as logits for every pixel at
//! once (teacher forcing):
//!
//! - Bernoulli for binary images: `log p(x) = x log σ(l) + (1 - x) log σ(-l)`.
//! - Categorical over 256 values per channel for 8-bit images (the PixelRNN paper's choice):
//!   `log p(x) = log_softmax(l)[x]`.
//!
//! Images enter as floats in [0, 1] (`value / (levels - 1)`); the head recovers the integer value.
//! Log-probabilities are in nats; summing over pixels gives nats per image.

use burn::tensor::activation::{log_sigmoid, log_softmax, sigmoid, softmax};
use burn::tensor::{Int, Tensor};

/// The conditionals p(x_i | x_<i) of every pixel of a batch.
// Built a handful of times per process: boxing the large variant buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum PixelHead {
    /// `[batch, channels, height, width]` logits of P(x = 1).
    Bernoulli(Tensor<4>),
    /// `[batch, channels, 256, height, width]` logits over the 256 values.
    Categorical(Tensor<5>),
    /// Discretised logistic over 256 bins (PixelCNN++ §2.1, one component), for latent-variable
    /// decoders on 8-bit images: `mean` and `log_scale` are `[batch, channels, height, width]`
    /// on the [-1, 1] scale; bin i covers `2i/255 - 1 ± 1/255`, the end bins extend to ±∞.
    DiscretizedLogistic {
        mean: Tensor<4>,
        log_scale: Tensor<4>,
    },
}

impl PixelHead {
    /// The head for an autoregressive model's output maps `[b, c * L, H, W]`: Bernoulli logits
    /// when L = 1, else L-way softmax logits, `[b, c * L, H, W] -> [b, c, L, H, W]` (each
    /// image channel's L maps are contiguous, as the channel masks lay them out).
    pub fn from_logits(logits: Tensor<4>, logits_per_channel: usize) -> Self {
        let [b, channels, height, width] = logits.dims();
        match logits_per_channel {
            1 => PixelHead::Bernoulli(logits),
            levels => PixelHead::Categorical(logits.reshape([
                b,
                channels / levels,
                levels,
                height,
                width,
            ])),
        }
    }

    /// `log p(x_i | x_<i)` for every pixel value, `[batch, channels, height, width]`, in nats.
    /// `images`: `[batch, channels, height, width]` in [0, 1].
    pub fn log_prob_pixels(&self, images: Tensor<4>) -> Tensor<4> {
        match self {
            PixelHead::Bernoulli(logits) => {
                assert_eq!(logits.dims(), images.dims(), "Bernoulli head vs images");
                crate::nn::fused::bernoulli_log_prob(logits.clone(), images)
            }
            PixelHead::Categorical(logits) => {
                let [b, c, levels, h, w] = logits.dims();
                assert_eq!([b, c, h, w], images.dims(), "categorical head vs images");
                let values: Tensor<4, Int> = images
                    .mul_scalar((levels - 1) as f64)
                    .round()
                    .int()
                    .clamp(0, levels as i64 - 1);
                let index: Tensor<5, Int> = values.unsqueeze_dim(2); // [b, c, 1, h, w]
                log_softmax(logits.clone(), 2)
                    .gather(2, index)
                    .reshape([b, c, h, w])
            }
            PixelHead::DiscretizedLogistic { mean, log_scale } => {
                assert_eq!(mean.dims(), images.dims(), "logistic head vs images");
                discretized_logistic_log_prob(images, mean.clone(), log_scale.clone())
            }
        }
    }

    /// `log p(x)` per image, `[batch]`, in nats: the sum over every pixel value.
    pub fn log_prob(&self, images: Tensor<4>) -> Tensor<1> {
        let [b, ..] = images.dims();
        self.log_prob_pixels(images)
            .reshape([b as i64, -1])
            .sum_dim(1)
            .reshape([b])
    }

    /// Probabilities of every value at one position, per image: `[batch][levels]`. Host-side,
    /// so that samplers draw with their own seeded generator, independently of the backend.
    pub fn probabilities_at(&self, channel: usize, row: usize, col: usize) -> Vec<Vec<f32>> {
        match self {
            PixelHead::Bernoulli(logits) => {
                let [b, ..] = logits.dims();
                let p1: Vec<f32> = sigmoid(logits.clone().slice([
                    0..b,
                    channel..channel + 1,
                    row..row + 1,
                    col..col + 1,
                ]))
                .try_into_vec_as::<f32>()
                .unwrap_or_default();
                p1.into_iter().map(|p| vec![1.0 - p, p]).collect()
            }
            PixelHead::Categorical(logits) => {
                let [b, _, levels, ..] = logits.dims();
                let at = logits
                    .clone()
                    .slice([
                        0..b,
                        channel..channel + 1,
                        0..levels,
                        row..row + 1,
                        col..col + 1,
                    ])
                    .reshape([b, levels]);
                let p: Vec<f32> = softmax(at, 1).try_into_vec_as::<f32>().unwrap_or_default();
                p.chunks(levels).map(<[f32]>::to_vec).collect()
            }
            PixelHead::DiscretizedLogistic { mean, log_scale } => {
                let [b, ..] = mean.dims();
                let pick = |t: &Tensor<4>| -> Vec<f32> {
                    t.clone()
                        .slice([0..b, channel..channel + 1, row..row + 1, col..col + 1])
                        .try_into_vec_as::<f32>()
                        .unwrap_or_default()
                };
                let (means, log_scales) = (pick(mean), pick(log_scale));
                means
                    .iter()
                    .zip(&log_scales)
                    .map(|(&m, &ls)| logistic_bins(m as f64, ls as f64))
                    .collect()
            }
        }
    }

    /// The expected image under the head, `[batch, channels, height, width]` in [0, 1]: what
    /// reconstructions and prior samples of latent models show.
    pub fn mean_image(&self) -> Tensor<4> {
        match self {
            PixelHead::Bernoulli(logits) => sigmoid(logits.clone()),
            PixelHead::Categorical(logits) => {
                let [b, c, levels, h, w] = logits.dims();
                let values = Tensor::<1, Int>::arange(0..levels as i64, &logits.device())
                    .float()
                    .div_scalar((levels - 1) as f64)
                    .reshape([1, 1, levels, 1, 1]);
                (softmax(logits.clone(), 2) * values)
                    .sum_dim(2)
                    .reshape([b, c, h, w])
            }
            PixelHead::DiscretizedLogistic { mean, .. } => {
                mean.clone().add_scalar(1.0).mul_scalar(0.5).clamp(0.0, 1.0)
            }
        }
    }
}

/// log P(bin of x) under a logistic(mean, exp(log_scale)) on [-1, 1]; all `[b, c, h, w]`.
fn discretized_logistic_log_prob(
    images: Tensor<4>,
    mean: Tensor<4>,
    log_scale: Tensor<4>,
) -> Tensor<4> {
    let x = images.mul_scalar(2.0).sub_scalar(1.0);
    let centred = x.clone() - mean;
    let inv_scale = log_scale.clamp_min(-7.0).neg().exp();
    let plus = inv_scale.clone() * centred.clone().add_scalar(1.0 / 255.0);
    let minus = inv_scale * centred.sub_scalar(1.0 / 255.0);
    let log_cdf_plus = log_sigmoid(plus.clone()); // lowest bin: P(X <= x + 1/255)
    let log_one_minus_cdf_minus = log_sigmoid(minus.clone().neg()); // highest bin
    let mid = (sigmoid(plus) - sigmoid(minus)).clamp_min(1e-12).log();
    let low = x.clone().lower_elem(-0.999);
    let high = x.greater_elem(0.999);
    mid.mask_where(low, log_cdf_plus)
        .mask_where(high, log_one_minus_cdf_minus)
}

/// The 256 bin probabilities of one discretised logistic (host side, for samplers).
fn logistic_bins(mean: f64, log_scale: f64) -> Vec<f32> {
    let inv_scale = (-log_scale.max(-7.0)).exp();
    let cdf = |edge: f64| 1.0 / (1.0 + (-(edge - mean) * inv_scale).exp());
    (0..256)
        .map(|i| {
            let centre = 2.0 * i as f64 / 255.0 - 1.0;
            let upper = if i == 255 {
                1.0
            } else {
                cdf(centre + 1.0 / 255.0)
            };
            let lower = if i == 0 {
                0.0
            } else {
                cdf(centre - 1.0 / 255.0)
            };
            (upper - lower).max(0.0) as f32
        })
        .collect()
}

/// Draws a value from `probabilities` with the uniform number `u` in [0, 1) (inverse CDF).
pub fn draw(probabilities: &[f32], u: f32) -> usize {
    let mut cumulative = 0.0;
    for (value, &p) in probabilities.iter().enumerate() {
        cumulative += p;
        if u < cumulative {
            return value;
        }
    }
    probabilities.len() - 1
}

/// A diagonal Gaussian over latent vectors: q(z|x) from an encoder, or the prior N(0, I).
///
/// ```text
/// log N(z; μ, diag σ²) = -½ Σ_d [ (z_d - μ_d)² / σ_d² + log σ_d² + log 2π ]
/// KL(N(μ, σ²) || N(0, I)) = ½ Σ_d [ μ_d² + σ_d² - 1 - log σ_d² ]   (≥ 0, in nats)
/// ```
#[derive(Debug, Clone)]
pub struct DiagGaussian {
    /// `[batch, latent]`
    pub mean: Tensor<2>,
    /// `[batch, latent]`, log σ²
    pub log_var: Tensor<2>,
}

impl DiagGaussian {
    /// The standard normal N(0, I) for `batch` vectors of size `latent`.
    pub fn standard(batch: usize, latent: usize, device: &burn::tensor::Device) -> Self {
        Self {
            mean: Tensor::zeros([batch, latent], device),
            log_var: Tensor::zeros([batch, latent], device),
        }
    }

    /// A reparameterised sample z = μ + σ ⊙ ε, ε ~ N(0, I) (from the device's seeded generator).
    pub fn rsample(&self) -> Tensor<2> {
        let eps = self
            .mean
            .random_like(burn::tensor::Distribution::Normal(0.0, 1.0));
        self.mean.clone() + self.log_var.clone().mul_scalar(0.5).exp() * eps
    }

    /// `log q(z)` summed over latent dimensions, `[batch]`, in nats.
    pub fn log_prob(&self, z: Tensor<2>) -> Tensor<1> {
        let [b, d] = z.dims();
        assert_eq!([b, d], self.mean.dims(), "latent sample vs Gaussian");
        let sq = (z - self.mean.clone()).square() * self.log_var.clone().neg().exp();
        (sq + self.log_var.clone())
            .add_scalar((2.0 * std::f64::consts::PI).ln())
            .sum_dim(1)
            .reshape([b])
            .mul_scalar(-0.5)
    }

    /// KL(self || N(0, I)) in closed form, summed over latent dimensions, `[batch]`, in nats.
    pub fn kl_to_standard_normal(&self) -> Tensor<1> {
        let [b, _] = self.mean.dims();
        (self.mean.clone().square() + self.log_var.clone().exp() - self.log_var.clone())
            .sub_scalar(1.0)
            .sum_dim(1)
            .reshape([b])
            .mul_scalar(0.5)
    }

    /// Repeats every row `k` times (row i becomes rows i*k .. i*k+k).
    pub fn repeat_rows(&self, k: usize) -> Self {
        let repeat = |t: &Tensor<2>| {
            let [b, d] = t.dims();
            t.clone()
                .unsqueeze_dim::<3>(1)
                .repeat_dim(1, k)
                .reshape([b * k, d])
        };
        Self {
            mean: repeat(&self.mean),
            log_var: repeat(&self.log_var),
        }
    }
}
