//! The whole recurrence of a convolutional LSTM layer as one op, forward and backward
//! (backpropagation through time by hand), for the PixelRNN layers.
//!
//! Written as burn ops, every step of the loop is a dozen small kernels, a tiny convolution and
//! their backward nodes, over tensors of a few thousand elements: the time goes to dispatch,
//! allocation and slicing, not arithmetic. Here a step is one matrix product over the whole
//! batch plus one fused cell pass:
//!
//! ```text
//! pre_t = x_t + W ⊛ h_{t-1}          W: [4h, h, k], a 1-D convolution along the positions
//! c_t   = σ(f_t) ⊙ c_{t-1} + σ(i_t) ⊙ tanh(g_t)
//! h_t   = σ(o_t) ⊙ tanh(c_t)          pre_t = [o; f; i; g]
//! ```
//!
//! `x` is `[b, 4h, T, L]` (T steps, L positions per step; biases already added), the output
//! `[b, h, T, L]`. The convolution reads positions `l + kk - pad_before`, `kk < k`, zeros
//! outside. Inside, a step's maps are laid out `[channels, b * L]`, so that the
//! convolution is one GEMM `[4h, h k] x [h k, b L]` against the shifted copies of `h_{t-1}`.

use super::kernels;
use super::linalg::{copy_shifted, matmul};

/// The sizes of one scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanShape {
    pub batch: usize,
    pub hidden: usize,
    pub steps: usize,
    pub positions: usize,
    pub kernel: usize,
    pub pad_before: usize,
}

impl ScanShape {
    /// Elements of one step's `[h, b L]` map.
    fn map(&self) -> usize {
        self.hidden * self.columns()
    }
    fn columns(&self) -> usize {
        self.batch * self.positions
    }
    fn taps(&self) -> usize {
        self.hidden * self.kernel
    }
}

/// What the backward pass needs from the forward pass.
#[derive(Debug, Clone)]
pub struct Tape {
    shape: ScanShape,
    w: Vec<f32>,
    /// T steps of `[4h, b L]` gate pre-activations.
    pre: Vec<f32>,
    /// T + 1 steps of `[h, b L]` cells and hidden states; step 0 is the zero initial state.
    cells: Vec<f32>,
    hiddens: Vec<f32>,
}

/// Forward: `x` `[b, 4h, T, L]`, `w` `[4h, h, k]` -> (`[b, h, T, L]`, tape).
pub fn forward(x: &[f32], w: &[f32], shape: ScanShape) -> (Vec<f32>, Tape) {
    let s = shape;
    let (map, cols) = (s.map(), s.columns());
    assert_eq!(
        x.len(),
        s.batch * 4 * s.hidden * s.steps * s.positions,
        "scan: x size"
    );
    assert_eq!(w.len(), 4 * s.hidden * s.taps(), "scan: w size");
    assert!(s.pad_before < s.kernel.max(1), "scan: pad_before >= kernel");
    let mut pre = vec![0f32; s.steps * 4 * map];
    let mut cells = vec![0f32; (s.steps + 1) * map];
    let mut hiddens = vec![0f32; (s.steps + 1) * map];
    let mut shifted = vec![0f32; s.taps() * cols];
    let mut out = vec![0f32; s.batch * s.hidden * s.steps * s.positions];
    for t in 0..s.steps {
        let pre_t = &mut pre[t * 4 * map..(t + 1) * 4 * map];
        gather_step(x, pre_t, 4 * s.hidden, t, s);
        let h_prev = &hiddens[t * map..(t + 1) * map];
        shift_copies(h_prev, &mut shifted, s);
        // pre_t += W [4h, h k] · shifted [h k, b L]
        matmul(
            (4 * s.hidden, cols, s.taps()),
            pre_t,
            true,
            (w, s.taps(), 1),
            (&shifted, cols, 1),
        );
        let (done, rest) = cells.split_at_mut((t + 1) * map);
        kernels::lstm_cell_forward(pre_t, &done[t * map..], &mut rest[..map]);
        kernels::lstm_output_forward(
            pre_t,
            &rest[..map],
            &mut hiddens[(t + 1) * map..(t + 2) * map],
        );
        scatter_step(
            &hiddens[(t + 1) * map..(t + 2) * map],
            &mut out,
            s.hidden,
            t,
            s,
        );
    }
    let tape = Tape {
        shape,
        w: w.to_vec(),
        pre,
        cells,
        hiddens,
    };
    (out, tape)
}

/// Backward: `dy` `[b, h, T, L]` -> (`dx` `[b, 4h, T, L]`, `dw` `[4h, h, k]`).
pub fn backward(tape: &Tape, dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let s = tape.shape;
    let (map, cols) = (s.map(), s.columns());
    assert_eq!(
        dy.len(),
        s.batch * s.hidden * s.steps * s.positions,
        "scan: dy size"
    );
    let mut dx = vec![0f32; s.batch * 4 * s.hidden * s.steps * s.positions];
    let mut dw = vec![0f32; tape.w.len()];
    let mut dh = vec![0f32; map];
    let mut dh_carry = vec![0f32; map]; // from step t + 1 through W
    let mut dc = vec![0f32; map];
    let mut dc_carry = vec![0f32; map]; // from step t + 1 through the cell
    let mut d_pre = vec![0f32; 4 * map];
    let mut d_pre_o = vec![0f32; 4 * map];
    let mut shifted = vec![0f32; s.taps() * cols];
    let mut d_shifted = vec![0f32; s.taps() * cols];
    for t in (0..s.steps).rev() {
        let pre_t = &tape.pre[t * 4 * map..(t + 1) * 4 * map];
        let (c_prev, c_t) = (
            &tape.cells[t * map..(t + 1) * map],
            &tape.cells[(t + 1) * map..(t + 2) * map],
        );
        gather_step(dy, &mut dh, s.hidden, t, s);
        for (d, carry) in dh.iter_mut().zip(&dh_carry) {
            *d += carry;
        }
        kernels::lstm_output_backward(pre_t, c_t, &dh, &mut d_pre_o, &mut dc);
        for (d, carry) in dc.iter_mut().zip(&dc_carry) {
            *d += carry;
        }
        kernels::lstm_cell_backward(pre_t, c_prev, &dc, &mut d_pre, &mut dc_carry);
        d_pre[..map].copy_from_slice(&d_pre_o[..map]); // the o part comes from h alone
        scatter_step(&d_pre, &mut dx, 4 * s.hidden, t, s);
        // dW [4h, h k] += d_pre [4h, b L] · shifted^T [b L, h k]
        shift_copies(&tape.hiddens[t * map..(t + 1) * map], &mut shifted, s);
        matmul(
            (4 * s.hidden, s.taps(), cols),
            &mut dw,
            true,
            (&d_pre, cols, 1),
            (&shifted, 1, cols),
        );
        // d shifted [h k, b L] = W^T [h k, 4h] · d_pre [4h, b L], then back to positions
        matmul(
            (s.taps(), cols, 4 * s.hidden),
            &mut d_shifted,
            false,
            (&tape.w, 1, s.taps()),
            (&d_pre, cols, 1),
        );
        unshift_sum(&d_shifted, &mut dh_carry, s);
    }
    (dx, dw)
}

/// `step` `[channels, b L]` <- `t` of `full` `[b, channels, T, L]`.
fn gather_step(full: &[f32], step: &mut [f32], channels: usize, t: usize, s: ScanShape) {
    let (l, cols) = (s.positions, s.columns());
    for n in 0..s.batch {
        for j in 0..channels {
            let from = ((n * channels + j) * s.steps + t) * l;
            step[j * cols + n * l..j * cols + (n + 1) * l].copy_from_slice(&full[from..from + l]);
        }
    }
}

/// `t` of `full` `[b, channels, T, L]` <- `step` `[channels, b L]`.
fn scatter_step(step: &[f32], full: &mut [f32], channels: usize, t: usize, s: ScanShape) {
    let (l, cols) = (s.positions, s.columns());
    for n in 0..s.batch {
        for j in 0..channels {
            let to = ((n * channels + j) * s.steps + t) * l;
            full[to..to + l].copy_from_slice(&step[j * cols + n * l..j * cols + (n + 1) * l]);
        }
    }
}

/// `shifted[c k + kk, n L + l] = h[c, n L + l + kk - pad_before]`, zero outside the row.
fn shift_copies(h: &[f32], shifted: &mut [f32], s: ScanShape) {
    let (l, cols) = (s.positions, s.columns());
    for c in 0..s.hidden {
        for kk in 0..s.kernel {
            let row = &mut shifted[(c * s.kernel + kk) * cols..(c * s.kernel + kk + 1) * cols];
            for n in 0..s.batch {
                let (dst, src) = (
                    &mut row[n * l..(n + 1) * l],
                    &h[c * cols + n * l..c * cols + (n + 1) * l],
                );
                copy_shifted(src, dst, kk as isize - s.pad_before as isize);
            }
        }
    }
}

/// The adjoint of [`shift_copies`]: `dh[c, n L + m] = Σ_kk d_shifted[c k + kk, n L + m - kk + pad_before]`.
fn unshift_sum(d_shifted: &[f32], dh: &mut [f32], s: ScanShape) {
    let (l, cols) = (s.positions, s.columns());
    dh.fill(0.0);
    for c in 0..s.hidden {
        for kk in 0..s.kernel {
            let row = &d_shifted[(c * s.kernel + kk) * cols..(c * s.kernel + kk + 1) * cols];
            let offset = kk as isize - s.pad_before as isize;
            for n in 0..s.batch {
                let dst = &mut dh[c * cols + n * l..c * cols + (n + 1) * l];
                let src = &row[n * l..(n + 1) * l];
                // dst[p + offset] += src[p]
                for (p, &v) in src.iter().enumerate() {
                    let q = p as isize + offset;
                    if q >= 0 && (q as usize) < l {
                        dst[q as usize] += v;
                    }
                }
            }
        }
    }
}
