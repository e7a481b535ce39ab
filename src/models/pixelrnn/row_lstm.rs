//! Row LSTM (van den Oord et al. 2016, "Pixel Recurrent Neural Networks", §3.1, Fig. 2 left).
//!
//! Processes the image row by row from the top, computing a whole row of states at once:
//!
//! ```text
//! gates_r = K_is ⊛ x_r  +  K_ss ⊛ h_{r-1}       x_r: row r of the layer input
//! (h_r, c_r) = LSTM(gates_r, c_{r-1})            see crate::nn::conv_lstm
//! ```
//!
//! - input-to-state: a 1 x k convolution along the row, masked (type B): it sees columns
//!   c - k/2 ..= c, built as a `1 x (k/2+1)` convolution padded on the left only;
//!   computed for all rows in parallel before the loop.
//!   For colour its tap at the pixel itself has a type-B [`ColourMask`] over the four gates.
//! - state-to-state: a 1 x k convolution over the previous row's hidden state, unmasked (the
//!   whole previous row is in the past).
//!
//! The receptive field is a triangle above the pixel (it misses pixels far to the upper left
//! and right); the Diagonal BiLSTM covers the whole context.

use crate::nn::conv_lstm::lstm_scan;
use crate::nn::host::HostConv;
use crate::nn::masked_conv::ColourMask;
use crate::nn::padded_conv::PaddedConv2d;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

/// One Row LSTM layer: `[b, in, H, W] -> [b, hidden, H, W]`.
#[derive(Module, Debug)]
pub struct RowLstm {
    input_to_state: PaddedConv2d,
    state_to_state: PaddedConv2d,
}

impl RowLstm {
    pub fn new(
        in_channels: usize,
        hidden: usize,
        kernel: usize,
        colour: Option<ColourMask>,
        device: &Device,
    ) -> Self {
        let half = kernel / 2;
        Self {
            input_to_state: PaddedConv2d::new(
                in_channels,
                4 * hidden,
                [1, half + 1],
                [0, 0, half, 0],
                device,
            )
            .with_colour(colour.map(|m| m.gates(4))),
            state_to_state: PaddedConv2d::new(
                hidden,
                4 * hidden,
                [1, kernel],
                [0, 0, half, half],
                device,
            ),
        }
    }

    /// `(input_to_state [4h, in, 1, k/2 + 1], state_to_state [4h, h, 1, k])` on the host.
    pub fn to_host(&self) -> crate::Result<(HostConv, HostConv)> {
        Ok((
            HostConv::of(&self.input_to_state)?,
            HostConv::of(&self.state_to_state)?,
        ))
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let kernel = self.state_to_state.weight.val(); // [4h, h, 1, k]
        let [four_h, hidden, _, k] = kernel.dims();
        // All rows' input-to-state terms at once (plus the state-to-state bias); then the
        // recurrence over rows, in which row 0 sees a zero state above it.
        let bias = self.state_to_state.bias.val().reshape([1, four_h, 1, 1]);
        let input_gates = self.input_to_state.forward(x) + bias; // [b, 4h, H, W]
        let [_, _, left, _] = self.state_to_state.padding;
        lstm_scan(input_gates, kernel.reshape([four_h, hidden, k]), left)
    }
}
