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
        labels: set.labels.as_ref().map(|labels| {
            let values: Vec<i64> = indices.iter().map(|&i| labels[i] as i64).collect();
            Tensor::<1, Int>::from_data(TensorData::new(values, [indices.len()]), device)
        }),
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
pub fn to_bytes(images: Tensor<4>, levels: Levels) -> Vec<u8> {
    let top = (levels.count() - 1) as f32;
    let values: Vec<f32> = images.try_into_vec_as::<f32>().unwrap_or_default();
    values
        .iter()
        .map(|&v| (v * top).round().clamp(0.0, top) as u8)
        .collect()
}
