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
//!
//! No skewed copy is made: [`diagonal_lstm_scan`] reads step j's column of S straight from the
//! diagonal of X (mirrored for the right-to-left direction); the copy-based composition is kept
//! as its test reference.

use crate::nn::conv_lstm::diagonal_lstm_scan;
use crate::nn::host::HostConv;
use crate::nn::masked_conv::ColourMask;
use crate::nn::padded_conv::{PaddedConv2d, shift_down};
use burn::module::Module;
use burn::tensor::{Device, Tensor};

/// One direction: a column-wise LSTM over the skewed map, `[b, in, H, W] -> [b, hidden, H, W]`
/// (`reverse`: over the mirrored image's, mirrored back).
#[derive(Module, Debug)]
pub struct DiagonalLstm {
    input_to_state: PaddedConv2d,
    state_to_state: PaddedConv2d,
    reverse: bool,
}

impl DiagonalLstm {
    fn new(
        in_channels: usize,
        hidden: usize,
        reverse: bool,
        colour: Option<ColourMask>,
        device: &Device,
    ) -> Self {
        Self {
            reverse,
            input_to_state: PaddedConv2d::new(in_channels, 4 * hidden, [1, 1], [0; 4], device)
                .with_colour(colour.map(|m| m.gates(4))),
            // 2 x 1 with one row of padding on top: row r sees rows r - 1 and r.
            state_to_state: PaddedConv2d::new(hidden, 4 * hidden, [2, 1], [1, 0, 0, 0], device),
        }
    }

    /// `(input_to_state [4h, in, 1, 1], state_to_state [4h, h, 2, 1])` on the host.
    pub fn to_host(&self) -> crate::Result<(HostConv, HostConv)> {
        Ok((
            HostConv::of(&self.input_to_state)?,
            HostConv::of(&self.state_to_state)?,
        ))
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let kernel = self.state_to_state.weight.val(); // [4h, h, 2, 1]
        let [four_h, hidden, k, _] = kernel.dims();
        let state_bias = self.state_to_state.bias.val();
        // The 1x1 input conv commutes with the skew, so it runs on the image; where the skew
        // pads, its input is zero and the gate terms are the two biases alone.
        let gates = self.input_to_state.forward(x) + state_bias.clone().reshape([1, four_h, 1, 1]);
        let pad = self.input_to_state.bias.val() + state_bias;
        let [top, ..] = self.state_to_state.padding;
        let kernel = kernel.reshape([four_h, hidden, k]);
        diagonal_lstm_scan(gates, pad, kernel, top, self.reverse)
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
        colour: Option<ColourMask>,
        device: &Device,
    ) -> Self {
        // Only the left-to-right direction reads the current pixel: the right-to-left one is
        // shifted down a row, so all its inputs are in the past.
        let backward_inputs = in_channels + row_view_channels;
        Self {
            left_to_right: DiagonalLstm::new(in_channels, hidden, false, colour, device),
            right_to_left: DiagonalLstm::new(backward_inputs, hidden, true, None, device),
        }
    }

    /// `(left_to_right, right_to_left)`, each `(input_to_state, state_to_state)`, on the host.
    #[allow(clippy::type_complexity)]
    pub fn to_host(&self) -> crate::Result<((HostConv, HostConv), (HostConv, HostConv))> {
        Ok((self.left_to_right.to_host()?, self.right_to_left.to_host()?))
    }

    /// `row_view`: `[b, row_view_channels, H, W]` when built with some.
    pub fn forward(&self, x: Tensor<4>, row_view: Option<Tensor<4>>) -> Tensor<4> {
        let forward = self.left_to_right.forward(x.clone());
        let backward_input = match row_view {
            Some(view) => Tensor::cat(vec![x, view], 1),
            None => x,
        };
        // Shift down so that row r only sees rows above it.
        let backward = self.right_to_left.forward(backward_input);
        forward + shift_down(backward)
    }
}
