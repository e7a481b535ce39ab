//! Diagonal BiLSTM (van den Oord et al. 2016, "Pixel Recurrent Neural Networks", §3.2, Fig. 3).
//!
//! Skew the input map so that each diagonal becomes a column (row r shifted right by r), run a
//! column-wise LSTM from left to right with a 2 x 1 state-to-state convolution (a state sees the
//! previous column's states in its own row and the row above), and unskew:
//!
//! ```text
//! skew:    S[r, r + c] = X[r, c]                     [H, W] -> [H, W + H - 1]
//! gates_j = K_is ⊛ S[:, j] + K_ss ⊛ h_{j-1}          K_is: 1x1, K_ss: 2x1 (rows r-1, r)
//! ```
//!
//! Done from the left and, on the mirrored image, from the right. The right-to-left output at
//! row r has seen all of row r to the right, so it is **shifted down by one row** before the two
//! are added: otherwise a pixel would see its future (the bug of e.g.
//! carpedm20/pixel-rnn-tensorflow#16). The result has the full dependency field: no blind spot.

use crate::nn::conv_lstm::lstm_scan;
use crate::nn::padded_conv::{PaddedConv2d, shift_down};
use burn::module::Module;
use burn::tensor::ops::PadMode;
use burn::tensor::{Device, Tensor};

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

/// One direction: a column-wise LSTM over the skewed map, `[b, in, H, W] -> [b, hidden, H, W]`.
#[derive(Module, Debug)]
pub struct DiagonalLstm {
    input_to_state: PaddedConv2d,
    state_to_state: PaddedConv2d,
}

impl DiagonalLstm {
    fn new(in_channels: usize, hidden: usize, device: &Device) -> Self {
        Self {
            input_to_state: PaddedConv2d::new(in_channels, 4 * hidden, [1, 1], [0; 4], device),
            // 2 x 1 with one row of padding on top: row r sees rows r - 1 and r.
            state_to_state: PaddedConv2d::new(hidden, 4 * hidden, [2, 1], [1, 0, 0, 0], device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, _, width] = x.dims();
        let kernel = self.state_to_state.weight.val(); // [4h, h, 2, 1]
        let [four_h, hidden, k, _] = kernel.dims();
        let bias = self.state_to_state.bias.val().reshape([1, four_h, 1, 1]);
        // [b, 4h, H, W + H - 1] -> steps are the skewed columns, positions the rows
        let input_gates = (self.input_to_state.forward(skew(x)) + bias).swap_dims(2, 3);
        let [top, ..] = self.state_to_state.padding;
        let states = lstm_scan(input_gates, kernel.reshape([four_h, hidden, k]), top);
        unskew(states.swap_dims(2, 3), width)
    }
}

/// Both directions: `[b, in, H, W] -> [b, hidden, H, W]`.
///
/// `row_view_channels` > 0 adds a second input to the right-to-left direction only: a map that
/// may see *all* of its row (the first layer gets the image itself). Its output is shifted down
/// a row, so that is causal, and it closes a gap the mask-A input alone leaves: pixel
/// (r, W-1) reaches the mask-A map only in row r + 1, too late for the start of row r + 1.
#[derive(Module, Debug)]
pub struct DiagonalBiLstm {
    left_to_right: DiagonalLstm,
    right_to_left: DiagonalLstm,
}

impl DiagonalBiLstm {
    pub fn new(
        in_channels: usize,
        row_view_channels: usize,
        hidden: usize,
        device: &Device,
    ) -> Self {
        Self {
            left_to_right: DiagonalLstm::new(in_channels, hidden, device),
            right_to_left: DiagonalLstm::new(in_channels + row_view_channels, hidden, device),
        }
    }

    /// `row_view`: `[b, row_view_channels, H, W]` when built with some.
    pub fn forward(&self, x: Tensor<4>, row_view: Option<Tensor<4>>) -> Tensor<4> {
        let forward = self.left_to_right.forward(x.clone());
        let backward_input = match row_view {
            Some(view) => Tensor::cat(vec![x, view], 1),
            None => x,
        };
        // Mirror, run, mirror back; then shift down so row r only sees rows above it.
        let backward = self
            .right_to_left
            .forward(backward_input.flip([3]))
            .flip([3]);
        forward + shift_down(backward)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

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
}
