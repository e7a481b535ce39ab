//! The LSTM update shared by the PixelRNN layers (van den Oord et al. 2016, Eq. 3), applied to
//! a whole row (Row LSTM) or column (Diagonal BiLSTM) of positions at once:
//!
//! ```text
//! [o, f, i, g] = [σ, σ, σ, tanh](K_ss ⊛ h_prev + K_is ⊛ x)    4h gate maps
//! c = f ⊙ c_prev + i ⊙ g
//! h = o ⊙ tanh(c)
//! ```

use burn::tensor::Tensor;
use burn::tensor::activation::{sigmoid, tanh};

/// One LSTM step: `gates` `[b, 4h, ...]` (pre-activations, in the order o, f, i, g) and the
/// previous cell `c_prev` `[b, h, ...]` give `(h, c)`.
pub fn lstm_step(gates: Tensor<4>, c_prev: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
    let [b, four_h, d2, d3] = gates.dims();
    let h = four_h / 4;
    let part = |k: usize| {
        gates
            .clone()
            .slice([0..b, k * h..(k + 1) * h, 0..d2, 0..d3])
    };
    let (o, f, i, g) = (
        sigmoid(part(0)),
        sigmoid(part(1)),
        sigmoid(part(2)),
        tanh(part(3)),
    );
    let c = f * c_prev + i * g;
    (o * tanh(c.clone()), c)
}
