//! Adam (Kingma & Ba 2015) with each parameter's update as one fused pass
//! ([`crate::nn::fused::adam_update`]) instead of burn's chain of about ten tensor ops:
//!
//! ```text
//! m ← β₁ m + (1 - β₁) g          v ← β₂ v + (1 - β₂) g²
//! θ ← θ - lr · m̂ / (√v̂ + ε)       m̂ = m / (1 - β₁ᵗ), v̂ = v / (1 - β₂ᵗ)
//! ```
//!
//! Same arithmetic (bias corrections folded as burn folds them) and the same state type as
//! burn's `Adam`, so checkpoints written by either resume with either.

use crate::nn::fused::adam_update;
use crate::nn::fused::kernels::AdamScalars;
use burn::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamState, AdaptiveMomentumState, LearningRate, ModuleOptimizer, Optimizer};
use burn::tensor::{Device, Tensor};

/// Adam's hyperparameters; `init` gives the module optimizer the trainer uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FusedAdam {
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
}

impl FusedAdam {
    /// β = (0.9, 0.999), as in the paper and PyTorch.
    pub fn new(epsilon: f32) -> Self {
        Self {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon,
        }
    }

    pub fn init(self, clip: Option<GradientClippingConfig>) -> ModuleOptimizer {
        let optim = ModuleOptimizer::from(self);
        match clip {
            Some(clip) => optim.with_grad_clipping(clip.init()),
            None => optim,
        }
    }
}

impl Optimizer for FusedAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        theta: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        // A fresh state is zero moments: β m + (1 - β) g is then exactly burn's first step.
        let (time, m, v) = match state {
            Some(AdamState { momentum: s }) => (s.time + 1, s.moment_1, s.moment_2),
            None => (1, theta.zeros_like(), theta.zeros_like()),
        };
        let scalars = AdamScalars::at(lr, self.beta_1, self.beta_2, self.epsilon, time);
        let [theta, m, v] = adam_update(theta, grad, m, v, scalars);
        let momentum = AdaptiveMomentumState {
            time,
            moment_1: m,
            moment_2: v,
            max_moment_2: None,
        };
        (theta, Some(AdamState { momentum }))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::{AdamConfig, GradientsParams};
    use burn::tensor::Distribution;

    fn weights(model: &Linear) -> Vec<f32> {
        let mut all = model.weight.val().try_into_vec_as::<f32>().unwrap();
        all.extend(
            model
                .bias
                .as_ref()
                .unwrap()
                .val()
                .try_into_vec_as::<f32>()
                .unwrap(),
        );
        all
    }

    /// Twelve steps (decaying learning rate, gradient clipping) from the same start on the same
    /// batches: the fused optimizer follows burn's Adam to float rounding. The weight is 300 x
    /// 200, so the update runs in more than one parallel chunk.
    #[test]
    fn fused_adam_follows_burns_adam() {
        let device = Device::flex().autodiff();
        let start = crate::seeded::build(&device, 7, || LinearConfig::new(300, 200).init(&device));
        let clip = || Some(GradientClippingConfig::Norm(1.0));
        let mut burns = AdamConfig::new()
            .with_epsilon(1e-8)
            .with_grad_clipping(clip())
            .init();
        let mut fused = FusedAdam::new(1e-8).init(clip());
        let initial = weights(&start);
        let (mut a, mut b) = (start.clone(), start);
        for step in 0..12 {
            let x = Tensor::<2>::random([16, 300], Distribution::Normal(0.0, 1.0), &device);
            let lr = 1e-2 * 0.9f64.powi(step);
            let loss = |m: &Linear| m.forward(x.clone()).powi_scalar(2).mean();
            let grads_a = GradientsParams::from_grads(loss(&a).backward(), &a);
            let grads_b = GradientsParams::from_grads(loss(&b).backward(), &b);
            a = burns.step(lr, a, grads_a);
            b = fused.step(lr, b, grads_b);
        }
        let (wa, wb) = (weights(&a), weights(&b));
        let moved = (wa.iter().zip(&initial)).fold(0f32, |d, (x, y)| d.max((x - y).abs()));
        assert!(
            moved > 1e-2,
            "the steps must move the weights (moved {moved})"
        );
        for (k, (x, y)) in wa.iter().zip(&wb).enumerate() {
            assert!(
                (x - y).abs() <= 1e-6 * x.abs().max(1e-2),
                "weight {k}: {x} vs {y}"
            );
        }
    }
}
