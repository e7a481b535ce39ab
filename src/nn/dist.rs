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
#[derive(Debug, Clone)]
pub enum PixelHead {
    /// `[batch, channels, height, width]` logits of P(x = 1).
    Bernoulli(Tensor<4>),
    /// `[batch, channels, 256, height, width]` logits over the 256 values.
    Categorical(Tensor<5>),
}

impl PixelHead {
    /// `log p(x_i | x_<i)` for every pixel value, `[batch, channels, height, width]`, in nats.
    /// `images`: `[batch, channels, height, width]` in [0, 1].
    pub fn log_prob_pixels(&self, images: Tensor<4>) -> Tensor<4> {
        match self {
            PixelHead::Bernoulli(logits) => {
                assert_eq!(logits.dims(), images.dims(), "Bernoulli head vs images");
                let ones = images.clone();
                let zeros = images.neg().add_scalar(1.0);
                log_sigmoid(logits.clone()) * ones + log_sigmoid(logits.clone().neg()) * zeros
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
        }
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
