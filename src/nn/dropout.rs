//! Dropout (Srivastava et al. 2014) with its mask drawn on the host by a fast generator.
//!
//! ```text
//! y = x ⊙ m,   m_i = [u_i < keep] / keep,   u_i ~ U(0, 1),   keep = 1 - p
//! dx = dy ⊙ m
//! ```
//!
//! burn's `Dropout` draws each element's Bernoulli through its generic per-element sampler on
//! the device's ChaCha generator and then multiplies twice (by the mask, then by `1 / keep`):
//! about 14% of a PixelCNN++ training step on flex (docs/PERFORMANCE.md). Here one draw from
//! the device's generator seeds a ChaCha8 stream, 32 bits an element, which fills the scaled
//! mask directly, and the layer is one product. The mask reaches the device as data, so this
//! works on any backend. A run seeded alike draws the same masks; they are not burn's masks.
//!
//! The layer itself stays burn's [`Dropout`] (its probability and its training flag, which
//! `freeze` clears), so models keep their records.

use burn::nn::Dropout;
use burn::tensor::{Distribution, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `layer` applied to `x`: the identity at inference (a device without autodiff), when the
/// layer is frozen, or when its probability is 0.
pub fn dropout<const D: usize>(layer: &Dropout, x: Tensor<D>) -> Tensor<D> {
    if !layer.training.is_enabled() || !x.device().is_autodiff() || layer.prob == 0.0 {
        return x;
    }
    let device = x.device();
    // 64 bits of seed from two uniform draws of the device's generator.
    let draws = Tensor::<1>::random([2], Distribution::Uniform(0.0, 1.0), &device)
        .into_data()
        .try_to_vec::<f32>()
        .expect("a float tensor made here reads back as f32");
    let seed = draws
        .iter()
        .fold(0u64, |seed, u| (seed << 32) | u64::from(u.to_bits()));
    let shape = x.shape();
    let values = mask(shape.num_elements(), 1.0 - layer.prob, seed);
    x * Tensor::<D>::from_data(TensorData::new(values, shape), &device)
}

/// `n` mask values, each `1 / keep` with probability `keep` and 0 otherwise, from the ChaCha8
/// stream of `seed`, one 32-bit word an element.
///
/// Drawn in blocks on the pool's threads, each block's generator set to its first word of the
/// one stream (`set_word_pos`), so the mask does not depend on the number of threads. Drawn
/// serially it was about 2% of a PixelCNN++ step, on the main thread while the pool waited.
pub fn mask(n: usize, keep: f64, seed: u64) -> Vec<f32> {
    use rayon::prelude::*;
    const BLOCK: usize = 1 << 16;
    // u < threshold with u uniform on 32 bits: probability keep, to within 2^-32.
    let threshold = (keep * 4_294_967_296.0) as u64;
    let scale = (1.0 / keep) as f32;
    let mut values = vec![0f32; n];
    values
        .par_chunks_mut(BLOCK)
        .enumerate()
        .for_each(|(block, out)| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_word_pos((block * BLOCK) as u128);
            let mut words = [0u32; 1024];
            for out in out.chunks_mut(words.len()) {
                let words = &mut words[..out.len()];
                rng.fill(&mut words[..]);
                for (v, &u) in out.iter_mut().zip(words.iter()) {
                    *v = if u64::from(u) < threshold { scale } else { 0.0 };
                }
            }
        });
    values
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;
    use burn::nn::DropoutConfig;
    use burn::tensor::Device;

    #[test]
    fn the_mask_keeps_each_element_with_probability_keep_and_preserves_the_mean() {
        let n = 200_000;
        for keep in [0.9, 0.5, 0.7] {
            let m = mask(n, keep, 7);
            let kept = m.iter().filter(|&&v| v != 0.0).count() as f64 / n as f64;
            // Binomial standard deviation sqrt(keep (1 - keep) / n) <= 0.0012: five of them.
            assert!((kept - keep).abs() < 0.006, "keep {keep}: kept {kept}");
            assert!(m.iter().all(|&v| v == 0.0 || v == (1.0 / keep) as f32));
            let mean = m.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
            assert!((mean - 1.0).abs() < 0.01, "keep {keep}: mean {mean}");
        }
        assert_eq!(mask(1000, 0.9, 3), mask(1000, 0.9, 3));
        assert_ne!(mask(1000, 0.9, 3), mask(1000, 0.9, 4));
        assert_eq!(mask(1500, 0.9, 3)[..1000], mask(1000, 0.9, 3)[..]);
    }

    #[test]
    fn the_mask_drawn_in_blocks_is_the_one_stream_drawn_in_order() {
        // Three blocks and a part: each element is word i of the seed's stream.
        let (n, keep, seed) = (3 * (1 << 16) + 1234, 0.8, 5);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let threshold = (keep * 4_294_967_296.0) as u64;
        let serial: Vec<f32> = (0..n)
            .map(|_| {
                if u64::from(rng.random::<u32>()) < threshold {
                    (1.0 / keep) as f32
                } else {
                    0.0
                }
            })
            .collect();
        assert_eq!(mask(n, keep, seed), serial);
        let one_thread = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        assert_eq!(one_thread.install(|| mask(n, keep, seed)), serial);
    }

    #[test]
    fn training_drops_and_scales_and_the_gradient_is_the_mask() {
        let device = Device::flex().autodiff();
        let layer = DropoutConfig::new(0.3).init();
        let x = Tensor::<2>::ones([64, 100], &device).require_grad();
        let y = crate::seeded::with_seed(&device, 11, || dropout(&layer, x.clone()));
        let values = y.clone().into_data().try_to_vec::<f32>().unwrap();
        let dropped = values.iter().filter(|&&v| v == 0.0).count();
        // 1,920 expected, standard deviation 37: five of them either way.
        assert!((1735..2105).contains(&dropped), "{dropped} of 6400 dropped");
        assert!(
            values
                .iter()
                .all(|&v| v == 0.0 || (v - 1.0 / 0.7).abs() < 1e-6)
        );
        // d(sum y)/dx = m, which is y itself for x = 1.
        let grads = y.sum().backward();
        let dx = x
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(dx, values);
        // The same seed draws the same mask.
        let again = crate::seeded::with_seed(&device, 11, || dropout(&layer, x.clone()));
        assert_eq!(again.into_data().try_to_vec::<f32>().unwrap(), values);
    }

    #[test]
    fn inference_a_frozen_layer_and_probability_zero_are_the_identity() {
        let x = Tensor::<2>::ones([4, 5], &Device::flex());
        let layer = DropoutConfig::new(0.5).init();
        let same = |y: Tensor<2>| y.into_data().try_to_vec::<f32>().unwrap() == vec![1.0; 20];
        assert!(same(dropout(&layer, x.clone())));
        let trained = Device::flex().autodiff();
        let x = Tensor::<2>::ones([4, 5], &trained);
        assert!(same(dropout(&DropoutConfig::new(0.0).init(), x.clone())));
        assert!(same(dropout(&layer.freeze(), x)));
    }
}
