//! Images (bytes) to model input tensors.

use super::{ImageSet, Levels};
use burn::tensor::{Device, Int, Tensor, TensorData};

/// One mini-batch: images `[b, c, h, w]` in [0, 1] and, when the data set has them, labels `[b]`.
#[derive(Debug, Clone)]
pub struct Batch {
    pub images: Tensor<4>,
    pub labels: Option<Tensor<1, Int>>,
}

/// The mini-batch of `set` at `indices`, with `pixels` the set's pixels for this epoch (see
/// [`ImageSet::epoch_pixels`]) and labels when the set has them.
pub fn make(set: &ImageSet, pixels: &[u8], indices: &[usize], device: &Device) -> Batch {
    let dims = [set.shape.channels, set.shape.height, set.shape.width];
    Batch {
        images: to_tensor(pixels, indices, dims, set.levels, device),
        labels: labels(set, indices, device),
    }
}

/// The labels `[b]` of the images at `indices`, when the set has them.
fn labels(set: &ImageSet, indices: &[usize], device: &Device) -> Option<Tensor<1, Int>> {
    set.labels.as_ref().map(|labels| {
        let values: Vec<i64> = indices.iter().map(|&i| labels[i] as i64).collect();
        Tensor::<1, Int>::from_data(TensorData::new(values, [indices.len()]), device)
    })
}

/// [`make`] with every image translated by a random (dx, dy) in [-max_shift, max_shift]²
/// (zeros shifted in), drawn from `seed`: data augmentation for classifiers.
pub fn make_shifted(
    set: &ImageSet,
    pixels: &[u8],
    indices: &[usize],
    max_shift: usize,
    seed: u64,
    device: &Device,
) -> Batch {
    use rand::{Rng, SeedableRng};
    let (c, h, w) = (set.shape.channels, set.shape.height, set.shape.width);
    let per_image = c * h * w;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let s = max_shift as i64;
    let mut shifted = vec![0u8; indices.len() * per_image];
    for (k, &i) in indices.iter().enumerate() {
        let (dx, dy) = (rng.random_range(-s..=s), rng.random_range(-s..=s));
        let src = &pixels[i * per_image..(i + 1) * per_image];
        let dst = &mut shifted[k * per_image..(k + 1) * per_image];
        for ch in 0..c {
            for y in 0..h as i64 {
                let sy = y - dy;
                if !(0..h as i64).contains(&sy) {
                    continue;
                }
                for x in 0..w as i64 {
                    let sx = x - dx;
                    if (0..w as i64).contains(&sx) {
                        dst[(ch * h + y as usize) * w + x as usize] =
                            src[(ch * h + sy as usize) * w + sx as usize];
                    }
                }
            }
        }
    }
    let local: Vec<usize> = (0..indices.len()).collect();
    Batch {
        images: to_tensor(&shifted, &local, [c, h, w], set.levels, device),
        labels: labels(set, indices, device),
    }
}

/// [`make`] with each pixel value replaced, with probability `rate`, by a value drawn uniformly
/// from the set's levels (Ren et al. 2019's perturbation for a likelihood-ratio background),
/// drawn from `seed`.
pub fn make_perturbed(
    set: &ImageSet,
    pixels: &[u8],
    indices: &[usize],
    rate: f64,
    seed: u64,
    device: &Device,
) -> Batch {
    use rand::{Rng, SeedableRng};
    let per_image = set.shape.dims();
    let levels = set.levels.count() as u32;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut perturbed = Vec::with_capacity(indices.len() * per_image);
    for &i in indices {
        perturbed.extend_from_slice(&pixels[i * per_image..(i + 1) * per_image]);
    }
    for v in &mut perturbed {
        if rng.random::<f64>() < rate {
            *v = rng.random_range(0..levels) as u8;
        }
    }
    let local: Vec<usize> = (0..indices.len()).collect();
    let dims = [set.shape.channels, set.shape.height, set.shape.width];
    Batch {
        images: to_tensor(&perturbed, &local, dims, set.levels, device),
        labels: labels(set, indices, device),
    }
}

/// Builds a `[n, c, h, w]` float tensor in [0, 1] (`value / (levels - 1)`) from the images at
/// `indices` of a row-major byte buffer.
pub fn to_tensor(
    pixels: &[u8],
    indices: &[usize],
    dims: [usize; 3],
    levels: Levels,
    device: &Device,
) -> Tensor<4> {
    let [c, h, w] = dims;
    let per_image = c * h * w;
    let scale = 1.0 / (levels.count() - 1) as f32;
    let mut values = Vec::with_capacity(indices.len() * per_image);
    for &i in indices {
        values.extend(
            pixels[i * per_image..(i + 1) * per_image]
                .iter()
                .map(|&v| v as f32 * scale),
        );
    }
    Tensor::from_data(TensorData::new(values, [indices.len(), c, h, w]), device)
}

/// Back to bytes: `[n, c, h, w]` floats in [0, 1] to values 0..levels.
pub fn to_bytes(images: Tensor<4>, levels: Levels) -> crate::Result<Vec<u8>> {
    let top = (levels.count() - 1) as f32;
    let values = crate::error::host(images)?;
    Ok(values
        .iter()
        .map(|&v| (v * top).round().clamp(0.0, top) as u8)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Binarization, ImageShape, Split};

    fn dot_set(n: usize) -> ImageSet {
        // 9x9 images with one lit pixel in the centre, labelled 0..n.
        let mut pixels = vec![0u8; n * 81];
        for i in 0..n {
            pixels[i * 81 + 40] = 1;
        }
        ImageSet {
            dataset: "dots".into(),
            split: Split::Train,
            shape: ImageShape {
                channels: 1,
                height: 9,
                width: 9,
            },
            levels: Levels::Binary,
            binarization: Binarization::Static,
            pixels,
            labels: Some((0..n as u8).collect()),
            dynamic_seed: None,
        }
    }

    #[test]
    fn shifted_batches_translate_each_image_and_keep_its_label() {
        let set = dot_set(64);
        let device = Device::flex();
        let indices: Vec<usize> = (0..64).rev().collect();
        let plain = make(&set, &set.pixels, &indices, &device);
        let unshifted = make_shifted(&set, &set.pixels, &indices, 0, 3, &device);
        assert_eq!(
            plain
                .images
                .clone()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap(),
            unshifted.images.into_data().try_to_vec::<f32>().unwrap()
        );
        let shifted = make_shifted(&set, &set.pixels, &indices, 2, 3, &device);
        let values = shifted
            .images
            .clone()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let mut offsets = std::collections::HashSet::new();
        for image in values.chunks(81) {
            let lit: Vec<usize> = (0..81).filter(|&p| image[p] == 1.0).collect();
            assert_eq!(lit.len(), 1, "a translation keeps the one dot");
            let (y, x) = (lit[0] / 9, lit[0] % 9);
            assert!(y.abs_diff(4) <= 2 && x.abs_diff(4) <= 2, "({y}, {x})");
            offsets.insert((y, x));
        }
        assert!(offsets.len() > 10, "shifts vary: {offsets:?}");
        let labels = |b: Batch| b.labels.unwrap().try_into_vec_as::<i64>().unwrap();
        assert_eq!(labels(shifted), labels(plain));
        // Same seed, same shifts (a resumed run draws the same batches).
        let again = make_shifted(&set, &set.pixels, &indices, 2, 3, &device);
        assert_eq!(
            values,
            again.images.into_data().try_to_vec::<f32>().unwrap()
        );
    }
}
