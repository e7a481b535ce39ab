//! Per-pixel output distributions of autoregressive models, given as logits for every pixel at
//! once (teacher forcing):
//!
//! - Bernoulli for binary images: `log p(x) = x log σ(l) + (1 - x) log σ(-l)`.
//! - Categorical over 256 values per channel for 8-bit images (the PixelRNN paper's choice):
//!   `log p(x) = log_softmax(l)[x]`.
//!
//! Images enter as floats in [0, 1] (`value / (levels - 1)`); the head recovers the integer value.
//! Log-probabilities are in nats; summing over pixels gives nats per image.

use crate::error::{Result, host};
use burn::tensor::activation::{log_sigmoid, log_softmax, sigmoid, softmax};
use burn::tensor::{Int, Tensor};

/// One per-pixel likelihood: the extension point for output distributions. A model returns
/// its head through [`PixelHead::new`]; evaluation, training and sampling use only these three
/// methods, so a new likelihood (a discretised logistic mixture, say) is one type implementing
/// this trait, in its model's file or here.
pub trait PixelLikelihood: std::fmt::Debug {
    /// `log p(x_i | x_<i)` for every pixel value, `[batch, channels, height, width]`, in nats.
    /// `images`: `[batch, channels, height, width]` in [0, 1].
    fn log_prob_pixels(&self, images: Tensor<4>) -> Tensor<4>;

    /// Probabilities of every value at one position, per image: `[batch][levels]`. Host-side,
    /// so that samplers draw with their own seeded generator, independently of the backend.
    fn probabilities_at(&self, channel: usize, row: usize, col: usize) -> Result<Vec<Vec<f32>>>;

    /// The expected image, `[batch, channels, height, width]` in [0, 1]: what reconstructions
    /// and prior samples of latent models show.
    fn mean_image(&self) -> Tensor<4>;
}

/// The conditionals p(x_i | x_<i) of every pixel of a batch (or p(x|z) of a decoder).
#[derive(Debug)]
pub struct PixelHead(Box<dyn PixelLikelihood>);

/// Bernoulli over {0, 1}: `[batch, channels, height, width]` logits of P(x = 1).
#[derive(Debug, Clone)]
pub struct Bernoulli(pub Tensor<4>);

/// Categorical over L values per channel: `[batch, channels, L, height, width]` logits.
#[derive(Debug, Clone)]
pub struct Categorical(pub Tensor<5>);

/// Discretised logistic over 256 bins (PixelCNN++ §2.1, one component), for latent-variable
/// decoders on 8-bit images: `mean` and `log_scale` are `[batch, channels, height, width]` on
/// the [-1, 1] scale; bin i covers `2i/255 - 1 ± 1/255`, the end bins extend to ±∞.
#[derive(Debug, Clone)]
pub struct DiscretizedLogistic {
    pub mean: Tensor<4>,
    pub log_scale: Tensor<4>,
}

impl PixelHead {
    /// Any likelihood.
    pub fn new(likelihood: impl PixelLikelihood + 'static) -> Self {
        Self(Box::new(likelihood))
    }

    /// Bernoulli logits `[b, c, h, w]`.
    pub fn bernoulli(logits: Tensor<4>) -> Self {
        Self::new(Bernoulli(logits))
    }

    /// The head for an autoregressive model's output maps `[b, c * L, H, W]`: Bernoulli logits
    /// when L = 1, else L-way softmax logits, `[b, c * L, H, W] -> [b, c, L, H, W]` (each
    /// image channel's L maps are contiguous, as the channel masks lay them out).
    pub fn from_logits(logits: Tensor<4>, logits_per_channel: usize) -> Self {
        let [b, channels, height, width] = logits.dims();
        match logits_per_channel {
            1 => Self::bernoulli(logits),
            levels => Self::new(Categorical(logits.reshape([
                b,
                channels / levels,
                levels,
                height,
                width,
            ]))),
        }
    }

    /// See [`PixelLikelihood::log_prob_pixels`].
    pub fn log_prob_pixels(&self, images: Tensor<4>) -> Tensor<4> {
        self.0.log_prob_pixels(images)
    }

    /// `log p(x)` per image, `[batch]`, in nats: the sum over every pixel value.
    pub fn log_prob(&self, images: Tensor<4>) -> Tensor<1> {
        let [b, ..] = images.dims();
        self.log_prob_pixels(images)
            .reshape([b as i64, -1])
            .sum_dim(1)
            .reshape([b])
    }

    /// See [`PixelLikelihood::probabilities_at`].
    pub fn probabilities_at(
        &self,
        channel: usize,
        row: usize,
        col: usize,
    ) -> Result<Vec<Vec<f32>>> {
        self.0.probabilities_at(channel, row, col)
    }

    /// See [`PixelLikelihood::mean_image`].
    pub fn mean_image(&self) -> Tensor<4> {
        self.0.mean_image()
    }
}

impl PixelLikelihood for Bernoulli {
    fn log_prob_pixels(&self, images: Tensor<4>) -> Tensor<4> {
        assert_eq!(self.0.dims(), images.dims(), "Bernoulli head vs images");
        crate::nn::fused::bernoulli_log_prob(self.0.clone(), images)
    }

    fn probabilities_at(&self, channel: usize, row: usize, col: usize) -> Result<Vec<Vec<f32>>> {
        let [b, ..] = self.0.dims();
        let at = self
            .0
            .clone()
            .slice([0..b, channel..channel + 1, row..row + 1, col..col + 1]);
        let p1 = host(sigmoid(at))?;
        Ok(p1.into_iter().map(|p| vec![1.0 - p, p]).collect())
    }

    fn mean_image(&self) -> Tensor<4> {
        sigmoid(self.0.clone())
    }
}

impl PixelLikelihood for Categorical {
    fn log_prob_pixels(&self, images: Tensor<4>) -> Tensor<4> {
        let [b, c, levels, h, w] = self.0.dims();
        assert_eq!([b, c, h, w], images.dims(), "categorical head vs images");
        let values: Tensor<4, Int> = images
            .mul_scalar((levels - 1) as f64)
            .round()
            .int()
            .clamp(0, levels as i64 - 1);
        let index: Tensor<5, Int> = values.unsqueeze_dim(2); // [b, c, 1, h, w]
        log_softmax(self.0.clone(), 2)
            .gather(2, index)
            .reshape([b, c, h, w])
    }

    fn probabilities_at(&self, channel: usize, row: usize, col: usize) -> Result<Vec<Vec<f32>>> {
        let [b, _, levels, ..] = self.0.dims();
        let at = self
            .0
            .clone()
            .slice([
                0..b,
                channel..channel + 1,
                0..levels,
                row..row + 1,
                col..col + 1,
            ])
            .reshape([b, levels]);
        let p = host(softmax(at, 1))?;
        Ok(p.chunks(levels).map(<[f32]>::to_vec).collect())
    }

    fn mean_image(&self) -> Tensor<4> {
        let [b, c, levels, h, w] = self.0.dims();
        let values = Tensor::<1, Int>::arange(0..levels as i64, &self.0.device())
            .float()
            .div_scalar((levels - 1) as f64)
            .reshape([1, 1, levels, 1, 1]);
        (softmax(self.0.clone(), 2) * values)
            .sum_dim(2)
            .reshape([b, c, h, w])
    }
}

impl PixelLikelihood for DiscretizedLogistic {
    fn log_prob_pixels(&self, images: Tensor<4>) -> Tensor<4> {
        assert_eq!(self.mean.dims(), images.dims(), "logistic head vs images");
        discretized_logistic_log_prob(images, self.mean.clone(), self.log_scale.clone())
    }

    fn probabilities_at(&self, channel: usize, row: usize, col: usize) -> Result<Vec<Vec<f32>>> {
        let [b, ..] = self.mean.dims();
        let pick = |t: &Tensor<4>| {
            host(
                t.clone()
                    .slice([0..b, channel..channel + 1, row..row + 1, col..col + 1]),
            )
        };
        let (means, log_scales) = (pick(&self.mean)?, pick(&self.log_scale)?);
        Ok(means
            .iter()
            .zip(&log_scales)
            .map(|(&m, &ls)| logistic_bins(m as f64, ls as f64))
            .collect())
    }

    fn mean_image(&self) -> Tensor<4> {
        self.mean
            .clone()
            .add_scalar(1.0)
            .mul_scalar(0.5)
            .clamp(0.0, 1.0)
    }
}

/// log P(bin of x) under a logistic(mean, exp(log_scale)) on [-1, 1], elementwise over tensors
/// of one shape (`[b, c, h, w]` here, `[b, c, K, h, w]` for the components of a mixture,
/// [`crate::nn::logistic_mixture`]); `images` in [0, 1].
pub(crate) fn discretized_logistic_log_prob<const D: usize>(
    images: Tensor<D>,
    mean: Tensor<D>,
    log_scale: Tensor<D>,
) -> Tensor<D> {
    let x = images.mul_scalar(2.0).sub_scalar(1.0);
    let centred = x.clone() - mean;
    let inv_scale = log_scale.clamp_min(-7.0).neg().exp();
    let plus = inv_scale.clone() * centred.clone().add_scalar(1.0 / 255.0);
    let minus = inv_scale * centred.clone().sub_scalar(1.0 / 255.0);
    let log_cdf_plus = log_sigmoid(plus.clone()); // lowest bin: P(X <= x + 1/255)
    let log_one_minus_cdf_minus = log_sigmoid(minus.clone().neg()); // highest bin
    let cdf_delta = sigmoid(plus.clone()) - sigmoid(minus.clone());
    // Far in a tail the difference of two f32 CDFs loses its digits. There the bin's mass is
    // taken in log space from the tail's own side: below the mean
    // log(σ(b) - σ(a)) = log σ(b) + log(1 - exp(log σ(a) - log σ(b))), above it the same with
    // the survival function σ(-·). Exact, not the centre-density estimate, which is off when
    // the bin is wider than the scale.
    let log_mass_between = |upper: Tensor<D>, lower: Tensor<D>| {
        let (log_upper, log_lower) = (log_sigmoid(upper), log_sigmoid(lower));
        let ratio = (log_lower - log_upper.clone()).exp();
        log_upper + ratio.neg().add_scalar(1.0).clamp_min(1e-30).log()
    };
    let below_mean = centred.lower_elem(0.0);
    let tail_mass = log_mass_between(minus.clone().neg(), plus.clone().neg())
        .mask_where(below_mean, log_mass_between(plus, minus));
    let tail = cdf_delta.clone().lower_equal_elem(1e-5);
    let mid = cdf_delta.clamp_min(1e-12).log().mask_where(tail, tail_mass);
    let low = x.clone().lower_elem(-0.999);
    let high = x.greater_elem(0.999);
    mid.mask_where(low, log_cdf_plus)
        .mask_where(high, log_one_minus_cdf_minus)
}

/// The 256 bin probabilities of one discretised logistic (host side, for samplers).
fn logistic_bins(mean: f64, log_scale: f64) -> Vec<f32> {
    (logistic_bin_masses(mean, log_scale).into_iter())
        .map(|p| p as f32)
        .collect()
}

/// [`logistic_bins`] in f64: the bins telescope, so they sum to 1 to f64 rounding.
pub(crate) fn logistic_bin_masses(mean: f64, log_scale: f64) -> Vec<f64> {
    let inv_scale = (-log_scale.max(-7.0)).exp();
    // (P(X <= e), P(X > e)) at the 255 inner edges e_j = (2j + 1) / 255 - 1, one exp each:
    // with u = exp(-|z|) <= 1 the smaller is u / (1 + u), the larger 1 / (1 + u), so neither
    // overflows nor is a difference of two numbers near 1.
    let edges: Vec<(f64, f64)> = (0..255)
        .map(|j| {
            let z = ((2 * j + 1) as f64 / 255.0 - 1.0 - mean) * inv_scale;
            let u = (-z.abs()).exp();
            let (small, large) = (u / (1.0 + u), 1.0 / (1.0 + u));
            if z >= 0.0 {
                (large, small)
            } else {
                (small, large)
            }
        })
        .collect();
    // Below the mean a bin is a difference of CDFs, above it of survival functions.
    (0..256)
        .map(|i| {
            let centre = 2.0 * i as f64 / 255.0 - 1.0;
            let mass = if centre <= mean {
                let below_upper = if i == 255 { 1.0 } else { edges[i].0 };
                let below_lower = if i == 0 { 0.0 } else { edges[i - 1].0 };
                below_upper - below_lower
            } else {
                let above_lower = if i == 0 { 1.0 } else { edges[i - 1].1 };
                let above_upper = if i == 255 { 0.0 } else { edges[i].1 };
                above_lower - above_upper
            };
            mass.max(0.0)
        })
        .collect()
}

/// `log P(bin value)` of one discretised logistic on the host, in f64, by the same exact tail
/// formulation as [`discretized_logistic_log_prob`]: finite even where the mass underflows.
pub(crate) fn log_logistic_bin(mean: f64, log_scale: f64, value: usize) -> f64 {
    let inv_scale = (-log_scale.max(-7.0)).exp();
    let centre = 2.0 * value as f64 / 255.0 - 1.0;
    let plus = inv_scale * (centre - mean + 1.0 / 255.0);
    let minus = inv_scale * (centre - mean - 1.0 / 255.0);
    // log(e^a - e^b) for a >= b.
    let log_diff = |a: f64, b: f64| a + (-(b - a).exp_m1()).max(1e-300).ln();
    match value {
        0 => log_sigmoid_f64(plus),
        255 => log_sigmoid_f64(-minus),
        _ if centre <= mean => log_diff(log_sigmoid_f64(plus), log_sigmoid_f64(minus)),
        _ => log_diff(log_sigmoid_f64(-minus), log_sigmoid_f64(-plus)),
    }
}

/// `log σ(x)` without overflow.
fn log_sigmoid_f64(x: f64) -> f64 {
    if x >= 0.0 {
        -(-x).exp().ln_1p()
    } else {
        x - x.exp().ln_1p()
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    /// A `[1, 1, 1, n]` tensor.
    fn row(values: &[f32], device: &Device) -> Tensor<4> {
        Tensor::from_data(
            TensorData::new(values.to_vec(), [1, 1, 1, values.len()]),
            device,
        )
    }

    #[test]
    fn discretized_logistic_bins_sum_to_one_and_match_its_log_prob() {
        let device = Device::flex();
        // Centred, off-centre, at both edges, very sharp and very flat.
        let means = [0.0f32, 0.3, -1.0, 1.0, 0.5, -0.2];
        let log_scales = [-2.0f32, -3.0, -2.5, -2.5, -7.0, 1.0];
        let n = means.len();
        let head = DiscretizedLogistic {
            mean: row(&means, &device),
            log_scale: row(&log_scales, &device),
        };
        for (i, (&m, &s)) in means.iter().zip(&log_scales).enumerate() {
            let bins = logistic_bins(m as f64, s as f64);
            let total: f64 = bins.iter().map(|&p| p as f64).sum();
            assert!(
                (total - 1.0).abs() < 1e-4,
                "mean {m}, log scale {s}: bins sum to {total}"
            );
            // The tensor log-probability of every value equals the log of its host-side bin,
            // including the open-ended bins 0 and 255.
            for value in [0usize, 1, 77, 128, 200, 254, 255] {
                let x = vec![value as f32 / 255.0; n];
                let log_p = crate::error::host(head.log_prob_pixels(row(&x, &device))).unwrap();
                if bins[value] == 0.0 {
                    // Below f32's range on the host: the tensor side must say so too.
                    assert!(
                        log_p[i] < -87.0,
                        "value {value}: {} for an empty bin",
                        log_p[i]
                    );
                    continue;
                }
                let expected = (bins[value] as f64).ln();
                assert!(
                    (log_p[i] as f64 - expected).abs() < 2e-3 * expected.abs().max(1.0),
                    "mean {m}, log scale {s}, value {value}: {} vs {expected}",
                    log_p[i]
                );
            }
        }
        // The sampler's probabilities are the same bins.
        let at = head.probabilities_at(0, 0, 2).unwrap();
        assert_eq!(at[0], logistic_bins(-1.0, -2.5));
    }

    #[test]
    fn categorical_probabilities_are_the_softmax_of_the_logits() {
        let device = Device::flex();
        let logits: Vec<f32> = (0..4).map(|v| v as f32 * 0.5).collect();
        let head = PixelHead::from_logits(
            Tensor::from_data(TensorData::new(logits.clone(), [1, 4, 1, 1]), &device),
            4,
        );
        let p = head.probabilities_at(0, 0, 0).unwrap();
        let z: f32 = logits.iter().map(|l| l.exp()).sum();
        for (v, &l) in logits.iter().enumerate() {
            assert!((p[0][v] - l.exp() / z).abs() < 1e-6);
        }
    }
}
