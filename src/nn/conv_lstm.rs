//! The recurrence shared by the PixelRNN layers (van den Oord et al. 2016, Eq. 3), applied to
//! a whole row (Row LSTM) or column (Diagonal BiLSTM) of positions at once:
//!
//! ```text
//! [o, f, i, g] = [σ, σ, σ, tanh](K_ss ⊛ h_prev + K_is ⊛ x)    4h gate maps
//! c = f ⊙ c_prev + i ⊙ g
//! h = o ⊙ tanh(c)
//! ```
//!
//! The whole recurrence, convolution and cell for every step, is one fused op with its own
//! backward ([`crate::nn::fused::lstm_scan`], and [`crate::nn::fused::diagonal_lstm_scan`],
//! which reads the diagonals of the image in place of a [`skew`]ed copy); the step-by-step
//! burn loop it replaces is kept as its reference and as the path without the `fast-ops`
//! feature.

use burn::tensor::Tensor;
use burn::tensor::ops::PadMode;

pub use crate::nn::fused::{diagonal_lstm_scan, lstm_scan};

/// `[b, c, H, W] -> [b, c, H, W + H - 1]`, row r shifted right by r (zeros elsewhere).
///
/// Without a loop over rows: pad each row with H zeros to length W + H and read the same
/// memory back with rows one element shorter; element (r, c) at `r (W + H) + c` then lies in
/// row r at column `r + c`.
pub fn skew(x: Tensor<4>) -> Tensor<4> {
    let [b, c, height, width] = x.dims();
    let skewed_width = width + height - 1;
    x.pad((0, height, 0, 0), PadMode::Constant(0.0))
        .reshape([b, c, height * (skewed_width + 1)])
        .narrow(2, 0, height * skewed_width)
        .reshape([b, c, height, skewed_width])
}

/// The inverse of [`skew`]: `[b, c, H, W + H - 1] -> [b, c, H, W]` for the given `width`
/// (the same reading, backwards: append H zeros, read rows of W + H, keep the first W).
pub fn unskew(s: Tensor<4>, width: usize) -> Tensor<4> {
    let [b, c, height, skewed_width] = s.dims();
    s.reshape([b, c, 1, height * skewed_width])
        .pad((0, height, 0, 0), PadMode::Constant(0.0))
        .reshape([b, c, height, skewed_width + 1])
        .narrow(3, 0, width)
}

/// `x` cut into its unit slices along `dim`, in order: the rows or columns an LSTM loop visits.
///
/// Why not one slice per step: burn's slice backward scatters the gradient into a zero tensor
/// of the *whole* parent, so n slices of one tensor cost n full-size gradients, quadratic in
/// the image side. Halving recursively costs about log2(n) full-size gradients.
pub fn unstack<const D: usize>(x: Tensor<D>, dim: usize) -> Vec<Tensor<D>> {
    fn halve<const D: usize>(x: Tensor<D>, dim: usize, out: &mut Vec<Tensor<D>>) {
        let n = x.dims()[dim];
        if n <= 1 {
            out.push(x);
            return;
        }
        let half = n / 2;
        halve(x.clone().narrow(dim, 0, half), dim, out);
        halve(x.narrow(dim, half, n - half), dim, out);
    }
    let mut out = Vec::with_capacity(x.dims()[dim]);
    halve(x, dim, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn skew_then_unskew_is_the_identity_and_skew_shifts_rows() {
        let device = Device::flex();
        let values: Vec<f32> = (0..2 * 3 * 4 * 5).map(|v| v as f32 + 1.0).collect();
        let x = Tensor::<4>::from_data(TensorData::new(values.clone(), [2, 3, 4, 5]), &device);
        let s = skew(x.clone());
        assert_eq!(s.dims(), [2, 3, 4, 8]);
        let skewed: Vec<f32> = s.clone().try_into_vec_as::<f32>().unwrap();
        // Row 2 of image 0, channel 0 starts at column 2.
        let row2 = &skewed[2 * 8..3 * 8];
        assert_eq!(row2, &[0.0, 0.0, 11.0, 12.0, 13.0, 14.0, 15.0, 0.0]);
        let back: Vec<f32> = unskew(s, 5).try_into_vec_as::<f32>().unwrap();
        assert_eq!(back, values);
    }

    #[test]
    fn unstack_gives_every_unit_slice_in_order_and_cat_undoes_it() {
        let device = Device::flex();
        let values: Vec<f32> = (0..2 * 3 * 5 * 7).map(|v| v as f32).collect();
        let x = Tensor::<4>::from_data(TensorData::new(values.clone(), [2, 3, 5, 7]), &device);
        for dim in 0..4 {
            let parts = unstack(x.clone(), dim);
            assert_eq!(parts.len(), x.dims()[dim]);
            for (k, part) in parts.iter().enumerate() {
                let direct = x.clone().narrow(dim, k, 1);
                assert_eq!(part.to_data(), direct.to_data(), "dim {dim}, slice {k}");
            }
            let back: Vec<f32> = Tensor::cat(parts, dim).try_into_vec_as::<f32>().unwrap();
            assert_eq!(back, values);
        }
    }
}
