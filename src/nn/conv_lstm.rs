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
//! backward ([`crate::nn::fused::lstm_scan`]); the step-by-step burn loop it replaces is kept
//! as its reference and as the path without the `fast-ops` feature.

use burn::tensor::Tensor;

pub use crate::nn::fused::lstm_scan;

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
