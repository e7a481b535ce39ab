//! The discretised logistic mixture of PixelCNN++ (Salimans et al. 2017, §2.1-2.2;
//! openai/pixel-cnn `discretized_mix_logistic_loss`): the likelihood of one 8-bit pixel with
//! `C` channels, with K components shared by its channels.
//!
//! On the [-1, 1] scale (`x = 2 v / 255 - 1` for the value v), bin v covers `x ± 1/255`; the end
//! bins reach to ±∞. Component k has, per channel c, a logistic with scale `s = exp(log s)`
//! (`log s` clamped at -7) and a mean that depends linearly on the pixel's earlier channels
//! (§2.2, coefficients through tanh):
//!
//! ```text
//! μ̃_{k,c} = μ_{k,c} + Σ_{c' < c} tanh(α_{k,c,c'}) x_{c'}        (G on R; B on R and G)
//! P_k(x_c) = σ((x_c + 1/255 - μ̃_{k,c}) / s_{k,c}) - σ((x_c - 1/255 - μ̃_{k,c}) / s_{k,c})
//! p(x)     = Σ_k π_k Π_c P_k(x_c)                                 π = softmax(mixture logits)
//! ```
//!
//! The model's order asks for one channel at a time, so the joint is written as its chain of
//! per-channel conditionals: the components are reweighted by how well they explain the
//! earlier channels (their posterior given x_<c),
//!
//! ```text
//! p(x_c | x_<c) = Σ_k w_{k,c} P_k(x_c),    w_{k,c} ∝ π_k Π_{c' < c} P_k(x_{c'})
//! ```
//!
//! and `Π_c p(x_c | x_<c)` is the joint above exactly (the normalisers telescope). Sampling a
//! component and then every channel from it, as openai's sampler does, draws from the same
//! distribution. Log-masses use the exact tail formulation of
//! [`super::dist::discretized_logistic_log_prob`] (no centre-density fallback).
//!
//! Teacher forcing: `log_prob_pixels(images)` takes x_<c (for μ̃ and for w) from `images`, the
//! image being scored, as openai's loss does; `probabilities_at` and `mean_image`, which score no
//! image, take them from the input the conditionals were computed from (the sampler sets R before
//! it asks for G).

use super::dist::{
    PixelLikelihood, discretized_logistic_log_prob, log_logistic_bin, logistic_bin_masses,
};
use crate::error::{Result, host};
use burn::tensor::Tensor;
use burn::tensor::activation::{log_softmax, tanh};

/// Values per channel (8-bit).
const LEVELS: usize = 256;
/// The lower clamp of `log s` (openai/pixel-cnn).
const MIN_LOG_SCALE: f64 = -7.0;

/// A K-component discretised logistic mixture per pixel, for every pixel of a batch.
///
/// # Shapes
/// Channel-major: `C` image channels, then K components.
#[derive(Debug, Clone)]
pub struct DiscretizedLogisticMixture {
    /// `log π_k`, `[b, 1, K, h, w]` (log-softmax over K).
    log_weights: Tensor<5>,
    /// `μ_{k,c}` before the channel coefficients, `[b, C, K, h, w]` on the [-1, 1] scale.
    means: Tensor<5>,
    /// `log s_{k,c}`, clamped at -7, `[b, C, K, h, w]`.
    log_scales: Tensor<5>,
    /// `tanh(α)`, `[b, C(C-1)/2, K, h, w]`: the pairs (c, c') with c' < c in the order
    /// (1,0), (2,0), (2,1), ... (index `c(c-1)/2 + c'`); absent for one channel.
    coefficients: Option<Tensor<5>>,
    /// The input the parameters were computed from, `[b, C, h, w]` in [0, 1].
    input: Tensor<4>,
}

/// Output maps per pixel for `channels` and `mixtures` components:
/// `K (logits) + C K (means) + C K (log scales) + C(C-1)/2 K (coefficients)`; 10 K for RGB
/// (openai's layout), 3 K for grey.
pub fn parameters_per_pixel(channels: usize, mixtures: usize) -> usize {
    mixtures * (1 + 2 * channels + channels * channels.saturating_sub(1) / 2)
}

impl DiscretizedLogisticMixture {
    /// Splits a network's output `[b, P, h, w]`, P = [`parameters_per_pixel`], laid out as
    /// `[logits (K) | means (C x K) | log scales (C x K) | coefficients (C(C-1)/2 x K)]`, each
    /// block channel-major. `input`: `[b, C, h, w]`, the images the network saw.
    pub fn new(parameters: Tensor<4>, mixtures: usize, input: Tensor<4>) -> Self {
        let [b, p, h, w] = parameters.dims();
        let [bi, c, hi, wi] = input.dims();
        assert_eq!([b, h, w], [bi, hi, wi], "mixture parameters vs input");
        assert_eq!(
            p,
            parameters_per_pixel(c, mixtures),
            "mixture parameter maps"
        );
        let k = mixtures;
        let pairs = c * (c - 1) / 2;
        let block = |start: usize, groups: usize| {
            // [b, groups*K, h, w] -> [b, groups, K, h, w]
            (parameters.clone())
                .slice([0..b, start..start + groups * k, 0..h, 0..w])
                .reshape([b, groups, k, h, w])
        };
        Self {
            log_weights: log_softmax(block(0, 1), 2),
            means: block(k, c),
            log_scales: block(k + c * k, c).clamp_min(MIN_LOG_SCALE),
            coefficients: (pairs > 0).then(|| tanh(block(k + 2 * c * k, pairs))),
            input,
        }
    }

    /// `μ̃` given the earlier channels of `images` (`[b, C, h, w]` in [0, 1]): `[b, C, K, h, w]`.
    fn shifted_means(&self, images: &Tensor<4>) -> Tensor<5> {
        let [b, c, k, h, w] = self.means.dims();
        let Some(coefficients) = &self.coefficients else {
            return self.means.clone();
        };
        let x = images.clone().mul_scalar(2.0).sub_scalar(1.0);
        // x_{c'} as [b, 1, K, h, w], the same for every component.
        let channel = |i: usize| -> Tensor<5> {
            (x.clone().slice([0..b, i..i + 1, 0..h, 0..w]))
                .reshape([b, 1, 1, h, w])
                .expand([b, 1, k, h, w])
        };
        let means = (0..c)
            .map(|ci| {
                let mut mean = self
                    .means
                    .clone()
                    .slice([0..b, ci..ci + 1, 0..k, 0..h, 0..w]);
                for earlier in 0..ci {
                    let pair = ci * (ci - 1) / 2 + earlier;
                    let alpha =
                        (coefficients.clone()).slice([0..b, pair..pair + 1, 0..k, 0..h, 0..w]);
                    mean = mean + alpha * channel(earlier);
                }
                mean
            })
            .collect();
        Tensor::cat(means, 1)
    }

    /// log P_k(x_c) of every component for `images`: `[b, C, K, h, w]`.
    fn component_log_probs(&self, images: &Tensor<4>, means: Tensor<5>) -> Tensor<5> {
        let [b, c, k, h, w] = self.means.dims();
        let x = (images.clone())
            .reshape([b, c, 1, h, w])
            .expand([b, c, k, h, w]);
        discretized_logistic_log_prob(x, means, self.log_scales.clone())
    }

    /// `log w_{k,c}` for every channel: `[b, 1, K, h, w]` each, from the component log-probs of
    /// the earlier channels (`[b, C, K, h, w]`).
    fn posterior_log_weights(&self, log_probs: &Tensor<5>) -> Vec<Tensor<5>> {
        let [b, c, k, h, w] = log_probs.dims();
        let mut explained = self.log_weights.clone(); // log π_k + Σ_{c'<c} log P_k(x_c')
        (0..c)
            .map(|ci| {
                let weights = log_softmax(explained.clone(), 2);
                explained = explained.clone()
                    + log_probs
                        .clone()
                        .slice([0..b, ci..ci + 1, 0..k, 0..h, 0..w]);
                weights
            })
            .collect()
    }
}

/// One pixel's mixture on the host, its parameters as [`DiscretizedLogisticMixture`] holds them
/// (`log π` normalised, `log s` clamped, `tanh(α)`), laid out `[K]`, `[C][K]`, `[C][K]`,
/// `[C(C-1)/2][K]`. The naive sampler ([`PixelLikelihood::probabilities_at`]) and the cached
/// one (`sample::cached::pixelcnn_pp`) draw from its [`HostMixture::conditional`].
#[derive(Debug, Clone)]
pub(crate) struct HostMixture {
    pub mixtures: usize,
    pub log_weights: Vec<f32>,
    pub means: Vec<f32>,
    pub log_scales: Vec<f32>,
    /// Empty for one channel.
    pub coefficients: Vec<f32>,
}

impl HostMixture {
    /// From a network's raw output at one pixel, `[P]` laid out as for
    /// [`DiscretizedLogisticMixture::new`]: the same log-softmax, clamp and tanh, on the host.
    pub fn of_raw(raw: &[f32], channels: usize, mixtures: usize) -> Self {
        let (c, k) = (channels, mixtures);
        debug_assert_eq!(raw.len(), parameters_per_pixel(c, k));
        let logits = &raw[..k];
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let log_z = (logits
            .iter()
            .map(|&l| ((l - max) as f64).exp())
            .sum::<f64>())
        .ln();
        Self {
            mixtures: k,
            log_weights: (logits.iter())
                .map(|&l| ((l - max) as f64 - log_z) as f32)
                .collect(),
            means: raw[k..k + c * k].to_vec(),
            log_scales: (raw[k + c * k..k + 2 * c * k].iter())
                .map(|&l| l.max(MIN_LOG_SCALE as f32))
                .collect(),
            coefficients: raw[k + 2 * c * k..].iter().map(|a| a.tanh()).collect(),
        }
    }

    /// `p(x_c = v | x_<c)` for v in 0..256, `values` the pixel's channels before `channel`
    /// (0..=255); f64 maths.
    pub fn conditional(&self, channel: usize, values: &[usize]) -> Vec<f32> {
        let k = self.mixtures;
        let mean = |ci: usize, ki: usize| {
            let mut m = self.means[ci * k + ki] as f64;
            for (earlier, &v) in values.iter().enumerate().take(ci) {
                let alpha = self.coefficients[(ci * (ci - 1) / 2 + earlier) * k + ki] as f64;
                m += alpha * (2.0 * v as f64 / 255.0 - 1.0);
            }
            m
        };
        let log_scale = |ci: usize, ki: usize| self.log_scales[ci * k + ki] as f64;
        // log π_k + Σ_{c' < c} log P_k(x_c'), normalised over k.
        let explained: Vec<f64> = (0..k)
            .map(|ki| {
                self.log_weights[ki] as f64
                    + (0..channel)
                        .map(|e| log_logistic_bin(mean(e, ki), log_scale(e, ki), values[e]))
                        .sum::<f64>()
            })
            .collect();
        let max = explained.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let total: f64 = explained.iter().map(|l| (l - max).exp()).sum();
        let mut probabilities = vec![0.0f64; LEVELS];
        for (ki, l) in explained.iter().enumerate() {
            let weight = (l - max).exp() / total;
            let bins = logistic_bin_masses(mean(channel, ki), log_scale(channel, ki));
            for (p, bin) in probabilities.iter_mut().zip(bins) {
                *p += weight * bin;
            }
        }
        probabilities.into_iter().map(|p| p as f32).collect()
    }
}

/// log Σ over dim 2 of `[b, 1, K, h, w]`, `[b, 1, h, w]`.
fn log_sum_exp_components(x: Tensor<5>) -> Tensor<4> {
    let [b, _, _, h, w] = x.dims();
    let max = x.clone().max_dim(2).detach();
    ((x - max.clone()).exp().sum_dim(2).log() + max).reshape([b, 1, h, w])
}

impl PixelLikelihood for DiscretizedLogisticMixture {
    /// `log p(x_c | x_<c)` per channel, `[b, C, h, w]`; their sum over c is `log p(x)`.
    fn log_prob_pixels(&self, images: Tensor<4>) -> Tensor<4> {
        assert_eq!(self.input.dims(), images.dims(), "mixture head vs images");
        let [b, _, k, h, w] = self.means.dims();
        let log_probs = self.component_log_probs(&images, self.shifted_means(&images));
        let weights = self.posterior_log_weights(&log_probs);
        let channels = (weights.into_iter().enumerate())
            .map(|(ci, log_w)| {
                let own = log_probs
                    .clone()
                    .slice([0..b, ci..ci + 1, 0..k, 0..h, 0..w]);
                log_sum_exp_components(log_w + own)
            })
            .collect();
        Tensor::cat(channels, 1)
    }

    /// `p(x_c = v | x_<c)` for v in 0..256, with x_<c the input's values at that pixel; f64
    /// maths on the host.
    fn probabilities_at(&self, channel: usize, row: usize, col: usize) -> Result<Vec<Vec<f32>>> {
        let [b, c, k, ..] = self.means.dims();
        let at = |t: &Tensor<5>| {
            let groups = t.dims()[1];
            host(
                t.clone()
                    .slice([0..b, 0..groups, 0..k, row..row + 1, col..col + 1]),
            )
        };
        let (log_weights, means, log_scales) = (
            at(&self.log_weights)?,
            at(&self.means)?,
            at(&self.log_scales)?,
        );
        let coefficients = self.coefficients.as_ref().map(at).transpose()?;
        let input = host(
            self.input
                .clone()
                .slice([0..b, 0..c, row..row + 1, col..col + 1]),
        )?;
        let pairs = c * (c - 1) / 2;
        Ok((0..b)
            .map(|i| {
                let values: Vec<usize> = (0..channel)
                    .map(|ci| (input[i * c + ci] as f64 * 255.0).round().clamp(0.0, 255.0) as usize)
                    .collect();
                let pixel = HostMixture {
                    mixtures: k,
                    log_weights: log_weights[i * k..(i + 1) * k].to_vec(),
                    means: means[i * c * k..(i + 1) * c * k].to_vec(),
                    log_scales: log_scales[i * c * k..(i + 1) * c * k].to_vec(),
                    coefficients: (coefficients.as_ref())
                        .map_or_else(Vec::new, |a| a[i * pairs * k..(i + 1) * pairs * k].to_vec()),
                };
                pixel.conditional(channel, &values)
            })
            .collect())
    }

    /// `Σ_k w_{k,c} clamp(μ̃_{k,c}, -1, 1)` mapped to [0, 1], given the input's earlier
    /// channels: the mean of each component's continuous logistic, clamped to the pixel range
    /// (the discretised mean up to the mass piled into the end bins).
    fn mean_image(&self) -> Tensor<4> {
        let [b, _, k, h, w] = self.means.dims();
        let means = self.shifted_means(&self.input);
        let log_probs = self.component_log_probs(&self.input, means.clone());
        let clamped = means.clamp(-1.0, 1.0).add_scalar(1.0).mul_scalar(0.5);
        let weights = self.posterior_log_weights(&log_probs);
        let channels = (weights.into_iter().enumerate())
            .map(|(ci, log_w)| {
                let mean = clamped.clone().slice([0..b, ci..ci + 1, 0..k, 0..h, 0..w]);
                (log_w.exp() * mean).sum_dim(2).reshape([b, 1, h, w])
            })
            .collect();
        Tensor::cat(channels, 1).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution, TensorData};

    /// Random mixture parameters `[b, P, 1, 1]` with means and log scales spread wide: means far
    /// outside [-1, 1] and log scales from -9 (below the clamp) to 2.
    fn parameters(b: usize, c: usize, k: usize, device: &Device) -> Tensor<4> {
        let p = parameters_per_pixel(c, k);
        let raw = Tensor::<4>::random([b, p, 1, 1], Distribution::Uniform(-1.0, 1.0), device);
        let mut values = raw.try_into_vec_as::<f32>().unwrap();
        for i in 0..b {
            for j in 0..p {
                let v = &mut values[i * p + j];
                *v = match j {
                    _ if j < k => *v * 4.0,                   // logits
                    _ if j < k + c * k => *v * 3.0,           // means in [-3, 3]
                    _ if j < k + 2 * c * k => *v * 5.5 - 3.5, // log scales in [-9, 2]
                    _ => *v * 3.0,                            // coefficients
                };
            }
        }
        Tensor::from_data(TensorData::new(values, [b, p, 1, 1]), device)
    }

    fn images(values: &[Vec<usize>], device: &Device) -> Tensor<4> {
        let (b, c) = (values.len(), values[0].len());
        let flat: Vec<f32> = values.iter().flatten().map(|&v| v as f32 / 255.0).collect();
        Tensor::from_data(TensorData::new(flat, [b, c, 1, 1]), device)
    }

    #[test]
    fn grey_probabilities_sum_to_one_for_extreme_parameters() {
        let device = Device::flex();
        device.seed(3);
        let b = 64;
        let head = DiscretizedLogisticMixture::new(
            parameters(b, 1, 5, &device),
            5,
            images(&(0..b).map(|_| vec![0]).collect::<Vec<_>>(), &device),
        );
        for (i, p) in head.probabilities_at(0, 0, 0).unwrap().iter().enumerate() {
            let total: f64 = p.iter().map(|&q| q as f64).sum();
            assert!((total - 1.0).abs() < 1e-5, "image {i}: {total}");
            assert!(p.iter().all(|&q| q >= 0.0));
        }
    }

    /// For RGB: every channel's 256 conditionals sum to 1 whatever the earlier channels are, and
    /// the tensor log-probability of a value is the log of its host-side probability.
    #[test]
    fn rgb_conditionals_sum_to_one_and_match_the_log_prob() {
        let device = Device::flex();
        device.seed(4);
        let fixed = [
            [0usize, 0, 0],
            [255, 255, 255],
            [17, 200, 128],
            [128, 3, 254],
        ];
        let b = 16;
        let params = parameters(b, 3, 10, &device);
        for earlier in fixed {
            let values: Vec<Vec<usize>> = (0..b)
                .map(|i| vec![earlier[0], earlier[1], (earlier[2] + 37 * i) % 256])
                .collect();
            let input = images(&values, &device);
            let head = DiscretizedLogisticMixture::new(params.clone(), 10, input.clone());
            let log_p = host(head.log_prob_pixels(input)).unwrap(); // [b, 3, 1, 1]
            for channel in 0..3 {
                let p = head.probabilities_at(channel, 0, 0).unwrap();
                for i in 0..b {
                    let total: f64 = p[i].iter().map(|&q| q as f64).sum();
                    assert!(
                        (total - 1.0).abs() < 1e-5,
                        "{earlier:?}, channel {channel}: {total}"
                    );
                    let q = p[i][values[i][channel]] as f64;
                    let l = log_p[i * 3 + channel] as f64;
                    if q < 1e-30 {
                        // Below f32's range on the host: the tensor side must say so too.
                        assert!(
                            l < -60.0,
                            "{earlier:?}, channel {channel}: {l} for mass {q}"
                        );
                        continue;
                    }
                    assert!(
                        (l - q.ln()).abs() < 2e-3 * q.ln().abs().max(1.0),
                        "{earlier:?}, image {i}, channel {channel}: {l} vs ln {q} = {}",
                        q.ln()
                    );
                }
            }
        }
    }

    /// The chain of conditionals is the joint mixture `log Σ_k π_k Π_c P_k(x_c)`.
    #[test]
    fn conditionals_multiply_to_the_joint_mixture() {
        let device = Device::flex();
        device.seed(5);
        let (b, k) = (8, 4);
        let params = parameters(b, 3, k, &device);
        let values: Vec<Vec<usize>> = (0..b).map(|i| vec![30 * i, 255 - 20 * i, 7 * i]).collect();
        let input = images(&values, &device);
        let head = DiscretizedLogisticMixture::new(params.clone(), k, input.clone());
        let log_p = host(head.log_prob_pixels(input)).unwrap();
        let raw = host(params).unwrap();
        let p = parameters_per_pixel(3, k);
        for i in 0..b {
            let at = |j: usize| raw[i * p + j] as f64;
            let x = |c: usize| 2.0 * values[i][c] as f64 / 255.0 - 1.0;
            let logits: Vec<f64> = (0..k).map(at).collect();
            let log_z = logits.iter().map(|l| l.exp()).sum::<f64>().ln();
            let terms: Vec<f64> = (0..k)
                .map(|ki| {
                    let mean = |c: usize| at(k + c * k + ki);
                    let scale = |c: usize| at(k + 3 * k + c * k + ki);
                    let coeff = |pair: usize| at(k + 6 * k + pair * k + ki).tanh();
                    let means = [
                        mean(0),
                        mean(1) + coeff(0) * x(0),
                        mean(2) + coeff(1) * x(0) + coeff(2) * x(1),
                    ];
                    let log_prob: f64 = (0..3)
                        .map(|c| log_logistic_bin(means[c], scale(c), values[i][c]))
                        .sum();
                    logits[ki] - log_z + log_prob
                })
                .collect();
            let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let joint = max + terms.iter().map(|t| (t - max).exp()).sum::<f64>().ln();
            let total: f64 = (0..3).map(|c| log_p[i * 3 + c] as f64).sum();
            assert!(
                (total - joint).abs() < 2e-3 * joint.abs().max(1.0),
                "image {i}: {total} vs {joint}"
            );
        }
    }
}
