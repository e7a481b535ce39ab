//! Polyak averaging: an exponential moving average of the weights,
//! `ema <- d_t * ema + (1 - d_t) * θ` after every optimiser step (openai/pixel-cnn uses
//! d = 0.9995). The average, not the raw weights, is validated, kept as the best checkpoint and
//! sampled: it sits nearer the bottom of the valley that the last steps of SGD bounce around in.
//!
//! `d_t = min(d, (1 + t) / (10 + t))` at step t, as TensorFlow's `ExponentialMovingAverage`
//! with `num_updates`: early on the average forgets the initial weights within a few hundred
//! steps instead of the ~1/(1 - d) = 2,000 that d = 0.9995 would take.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// The decay used after optimiser step `step` (0-based) for a configured decay `decay`.
pub fn decay_at(decay: f64, step: u64) -> f64 {
    decay.min((1.0 + step as f64) / (10.0 + step as f64))
}

/// One averaging step: `ema` moved towards the weights of `model` (both the same module; the
/// result carries `ema`'s parameter ids and no autodiff).
pub fn update<M: Module>(ema: M, model: &M, decay: f64) -> M {
    struct Collect(Vec<Tensor<1>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let value = param.val();
            let n = value.shape().num_elements();
            self.0.push(value.reshape([n]));
        }
    }
    struct Blend {
        current: std::vec::IntoIter<Tensor<1>>,
        decay: f64,
    }
    impl ModuleMapper for Blend {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (id, old, mapper) = param.consume();
            let current = self
                .current
                .next()
                .expect("the average and the model have the same parameters")
                .reshape(old.shape());
            let new = old.mul_scalar(self.decay) + current.mul_scalar(1.0 - self.decay);
            Param::from_mapped_value(id, new, mapper)
        }
    }
    let mut collect = Collect(Vec::new());
    model.valid().visit(&mut collect);
    ema.map(&mut Blend {
        current: collect.0.into_iter(),
        decay,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::Device;

    fn weights(m: &Linear) -> Vec<f32> {
        m.weight.val().into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn the_decay_warms_up_to_its_configured_value() {
        assert_eq!(decay_at(0.9995, 0), 0.1);
        assert!((decay_at(0.9995, 990) - 0.991).abs() < 1e-12);
        assert_eq!(decay_at(0.9995, 1_000_000), 0.9995);
        assert_eq!(decay_at(0.0, 5), 0.0);
    }

    #[test]
    fn the_average_moves_a_fraction_towards_the_weights() {
        let device = Device::flex();
        let a = LinearConfig::new(3, 2).init(&device);
        let b = LinearConfig::new(3, 2).init(&device);
        let (wa, wb) = (weights(&a), weights(&b));
        let avg = update(a, &b, 0.75);
        for ((x, y), z) in wa.iter().zip(&wb).zip(weights(&avg)) {
            assert!((z - (0.75 * x + 0.25 * y)).abs() < 1e-6, "{z} vs {x}, {y}");
        }
    }
}
