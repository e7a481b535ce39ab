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
//! T steps of L positions: the convolution reads positions `l + kk - pad_before`, `kk < k`,
//! zeros outside. Where the steps and positions lie in the op's tensors is its [`Layout`]:
//! the rows of `[b, ch, T, L]` (Row LSTM), or the diagonals of an image `[b, ch, H, W]`
//! (Diagonal BiLSTM), so that no skewed, transposed or mirrored copy is ever made. Inside, a
//! step's maps are laid out `[channels, b * L]`, so that the convolution is one GEMM
//! `[4h, h k] x [h k, b L]` against the shifted copies of `h_{t-1}`.

use super::items_per_thread;
use super::kernels;
use super::linalg::{copy_shifted, matmul};
use rayon::prelude::*;

/// Where step t, position l of the scan lies in the op's input `[b, 4h, ..]` and output
/// `[b, h, ..]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `[b, ch, T, L]`: row t, column l.
    Rows,
    /// `[b, ch, H, W]` with L = H positions and T = W + H - 1 steps: step t is the t-th
    /// diagonal, pixel (l, t - l), which is column t of the image skewed by one column per row
    /// (`reverse`: pixel (l, W - 1 - (t - l)), the mirrored image's diagonal). Steps reach
    /// outside the image where the skewed map is padding: there the input is the `pad` vector
    /// (what a zero input gives, the input convolution's bias) and the output is dropped.
    Diagonals { width: usize, reverse: bool },
}

/// The sizes of one scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanShape {
    pub batch: usize,
    pub hidden: usize,
    pub steps: usize,
    pub positions: usize,
    pub kernel: usize,
    pub pad_before: usize,
    pub layout: Layout,
}

impl ScanShape {
    /// Elements of the op's input (`channels` = 4h) or output (`channels` = h).
    pub fn tensor_len(&self, channels: usize) -> usize {
        let per_map = match self.layout {
            Layout::Rows => self.steps * self.positions,
            Layout::Diagonals { width, .. } => self.positions * width,
        };
        self.batch * channels * per_map
    }

    /// Diagonal layout: the positions of step t < T inside the image (never none), `first`
    /// the map index of the first one and `stride` the step between them (one row down, one
    /// column left, or right when mirrored).
    fn diagonal(&self, t: usize, width: usize, reverse: bool) -> Diagonal {
        let inside = (t + 1).saturating_sub(width)..(t + 1).min(self.positions);
        let (r, c) = (inside.start, t - inside.start); // c < width as r >= t + 1 - width
        let first = r * width + if reverse { width - 1 - c } else { c };
        let stride = if reverse { width + 1 } else { width - 1 };
        Diagonal {
            inside,
            first,
            stride,
        }
    }

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

/// Where one step's positions lie in a `[H, W]` map (see [`ScanShape::diagonal`]).
struct Diagonal {
    inside: std::ops::Range<usize>,
    first: usize,
    stride: usize,
}

/// What the backward pass needs from the forward pass: the tapes of the batch's chunks.
#[derive(Debug, Clone)]
pub struct Tape {
    shape: ScanShape,
    items_per_chunk: usize,
    chunks: Vec<ChunkTape>,
}

/// One chunk of the batch: the scan's state at every step.
#[derive(Debug, Clone)]
struct ChunkTape {
    shape: ScanShape,
    w: Vec<f32>,
    /// T steps of `[4h, b L]` gate pre-activations.
    pre: Vec<f32>,
    /// T + 1 steps of `[h, b L]` cells and hidden states; step 0 is the zero initial state.
    cells: Vec<f32>,
    hiddens: Vec<f32>,
}

/// Forward: `x` `[b, 4h, ..]`, `w` `[4h, h, k]`, `pad` `[4h]` (read by the diagonal layout
/// only) -> (`[b, h, ..]`, tape).
///
/// The items of the batch are independent, so the batch is cut into one chunk per thread and
/// each chunk runs the whole recurrence on its own: the per-step GEMMs and cell passes are
/// too small to split across threads without a wait at every step.
pub fn forward(x: &[f32], w: &[f32], pad: &[f32], shape: ScanShape) -> (Vec<f32>, Tape) {
    let s = shape;
    assert_eq!(x.len(), s.tensor_len(4 * s.hidden), "scan: x size");
    assert_eq!(w.len(), 4 * s.hidden * s.taps(), "scan: w size");
    assert!(s.pad_before < s.kernel.max(1), "scan: pad_before >= kernel");
    if let Layout::Diagonals { .. } = s.layout {
        assert_eq!(pad.len(), 4 * s.hidden, "scan: pad size");
    }
    let items = items_per_thread(s.batch);
    let (x_item, out_item) = (item_len(s, 4 * s.hidden), item_len(s, s.hidden));
    let mut out = vec![0f32; s.tensor_len(s.hidden)];
    let chunks = out
        .par_chunks_mut((items * out_item).max(1)) // empty maps: no chunks at all
        .zip(x.par_chunks((items * x_item).max(1)))
        .map(|(out, x)| {
            let chunk = ScanShape {
                batch: x.len() / x_item,
                ..s
            };
            forward_chunk(x, w, pad, out, chunk)
        })
        .collect();
    let tape = Tape {
        shape,
        items_per_chunk: items,
        chunks,
    };
    (out, tape)
}

/// Backward: `dy` `[b, h, ..]` -> (`dx` `[b, 4h, ..]`, `dw` `[4h, h, k]`, `dpad` `[4h]`, zero
/// but for the diagonal layout); chunk by chunk as the forward.
pub fn backward(tape: &Tape, dy: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let s = tape.shape;
    assert_eq!(dy.len(), s.tensor_len(s.hidden), "scan: dy size");
    let items = tape.items_per_chunk;
    let (x_item, out_item) = (item_len(s, 4 * s.hidden), item_len(s, s.hidden));
    let mut dx = vec![0f32; s.tensor_len(4 * s.hidden)];
    let partials: Vec<(Vec<f32>, Vec<f32>)> = dx
        .par_chunks_mut((items * x_item).max(1))
        .zip(dy.par_chunks((items * out_item).max(1)))
        .zip(&tape.chunks)
        .map(|((dx, dy), chunk)| backward_chunk(chunk, dy, dx))
        .collect();
    let mut dw = vec![0f32; 4 * s.hidden * s.taps()];
    let mut dpad = vec![0f32; 4 * s.hidden];
    for (chunk_dw, chunk_dpad) in partials {
        add_into(&mut dw, &chunk_dw);
        add_into(&mut dpad, &chunk_dpad);
    }
    (dx, dw, dpad)
}

/// Elements of one item of the op's input (`channels` = 4h) or output (`channels` = h).
fn item_len(s: ScanShape, channels: usize) -> usize {
    ScanShape { batch: 1, ..s }.tensor_len(channels)
}

fn add_into(sum: &mut [f32], part: &[f32]) {
    for (a, b) in sum.iter_mut().zip(part) {
        *a += b;
    }
}

/// [`forward`] on one chunk of the batch, writing its output into `out`.
fn forward_chunk(
    x: &[f32],
    w: &[f32],
    pad: &[f32],
    out: &mut [f32],
    shape: ScanShape,
) -> ChunkTape {
    let s = shape;
    let map = s.map();
    let cols = s.columns();
    let mut pre = to_steps(x, 4 * s.hidden, s, pad);
    let mut cells = vec![0f32; (s.steps + 1) * map];
    let mut hiddens = vec![0f32; (s.steps + 1) * map];
    let mut shifted = vec![0f32; s.taps() * cols];
    for t in 0..s.steps {
        let pre_t = &mut pre[t * 4 * map..(t + 1) * 4 * map];
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
    }
    from_steps(&hiddens[map..], out, s.hidden, s, None);
    ChunkTape {
        shape,
        w: w.to_vec(),
        pre,
        cells,
        hiddens,
    }
}

/// [`backward`] on one chunk: writes `dx`, returns this chunk's share of (`dw`, `dpad`).
fn backward_chunk(tape: &ChunkTape, dy: &[f32], dx: &mut [f32]) -> (Vec<f32>, Vec<f32>) {
    let s = tape.shape;
    let (map, cols) = (s.map(), s.columns());
    let mut dw = vec![0f32; tape.w.len()];
    let dys = to_steps(dy, s.hidden, s, &[]);
    let mut d_pres = vec![0f32; s.steps * 4 * map];
    let mut dh = vec![0f32; map];
    let mut dh_carry = vec![0f32; map]; // from step t + 1 through W
    let mut dc = vec![0f32; map];
    let mut dc_carry = vec![0f32; map]; // from step t + 1 through the cell
    let mut d_pre_o = vec![0f32; 4 * map];
    let mut shifted = vec![0f32; s.taps() * cols];
    let mut d_shifted = vec![0f32; s.taps() * cols];
    for t in (0..s.steps).rev() {
        let pre_t = &tape.pre[t * 4 * map..(t + 1) * 4 * map];
        let (c_prev, c_t) = (
            &tape.cells[t * map..(t + 1) * map],
            &tape.cells[(t + 1) * map..(t + 2) * map],
        );
        let d_pre = &mut d_pres[t * 4 * map..(t + 1) * 4 * map];
        for ((d, dy), carry) in dh.iter_mut().zip(&dys[t * map..]).zip(&dh_carry) {
            *d = dy + carry;
        }
        kernels::lstm_output_backward(pre_t, c_t, &dh, &mut d_pre_o, &mut dc);
        for (d, carry) in dc.iter_mut().zip(&dc_carry) {
            *d += carry;
        }
        kernels::lstm_cell_backward(pre_t, c_prev, &dc, d_pre, &mut dc_carry);
        d_pre[..map].copy_from_slice(&d_pre_o[..map]); // the o part comes from h alone
        // dW [4h, h k] += d_pre [4h, b L] · shifted^T [b L, h k]
        shift_copies(&tape.hiddens[t * map..(t + 1) * map], &mut shifted, s);
        matmul(
            (4 * s.hidden, s.taps(), cols),
            &mut dw,
            true,
            (d_pre, cols, 1),
            (&shifted, 1, cols),
        );
        // d shifted [h k, b L] = W^T [h k, 4h] · d_pre [4h, b L], then back to positions
        matmul(
            (s.taps(), cols, 4 * s.hidden),
            &mut d_shifted,
            false,
            (&tape.w, 1, s.taps()),
            (d_pre, cols, 1),
        );
        unshift_sum(&d_shifted, &mut dh_carry, s);
    }
    let mut dpad = vec![0f32; 4 * s.hidden];
    from_steps(&d_pres, dx, 4 * s.hidden, s, Some(&mut dpad));
    (dw, dpad)
}

/// `full` (`[b, channels, ..]` in the shape's layout) -> its T steps `[T, channels, b L]`;
/// positions outside the image read `pad[channel]`, or zero when `pad` is empty.
///
/// One pass, with the maps of one channel in cache while their diagonals are read. Gathering
/// each step from the whole tensor in the loop instead touched one cache line per element and
/// took most of the scan's time.
fn to_steps(full: &[f32], channels: usize, s: ScanShape, pad: &[f32]) -> Vec<f32> {
    let (l, cols) = (s.positions, s.columns());
    let mut steps = vec![0f32; s.steps * channels * cols];
    let map_len = full.len() / (s.batch * channels).max(1);
    // Channel by channel: its b maps stay in cache while each step's row is written in order.
    for j in 0..channels {
        let outside = pad.get(j).copied().unwrap_or(0.0);
        for t in 0..s.steps {
            let row = &mut steps[(t * channels + j) * cols..(t * channels + j + 1) * cols];
            for (n, run) in row.chunks_exact_mut(l.max(1)).enumerate() {
                let map = &full[(n * channels + j) * map_len..(n * channels + j + 1) * map_len];
                match s.layout {
                    Layout::Rows => run.copy_from_slice(&map[t * l..(t + 1) * l]),
                    Layout::Diagonals { width, reverse } => {
                        let d = s.diagonal(t, width, reverse);
                        run[..d.inside.start].fill(outside);
                        run[d.inside.end..].fill(outside);
                        let pixels = map[d.first..].iter().step_by(d.stride);
                        for (v, &x) in run[d.inside].iter_mut().zip(pixels) {
                            *v = x;
                        }
                    }
                }
            }
        }
    }
    steps
}

/// The adjoint of [`to_steps`]: `full` <- `steps` `[T, channels, b L]`; positions outside the
/// image are summed into `pad_grad[channel]` when given, else dropped.
fn from_steps(
    steps: &[f32],
    full: &mut [f32],
    channels: usize,
    s: ScanShape,
    mut pad_grad: Option<&mut [f32]>,
) {
    let (l, cols) = (s.positions, s.columns());
    let map_len = full.len() / (s.batch * channels).max(1);
    for j in 0..channels {
        for t in 0..s.steps {
            let row = &steps[(t * channels + j) * cols..(t * channels + j + 1) * cols];
            for (n, run) in row.chunks_exact(l.max(1)).enumerate() {
                let at = (n * channels + j) * map_len;
                let map = &mut full[at..at + map_len];
                match s.layout {
                    Layout::Rows => map[t * l..(t + 1) * l].copy_from_slice(run),
                    Layout::Diagonals { width, reverse } => {
                        let d = s.diagonal(t, width, reverse);
                        if let Some(pad_grad) = pad_grad.as_deref_mut() {
                            let outside = run[..d.inside.start].iter().chain(&run[d.inside.end..]);
                            pad_grad[j] += outside.sum::<f32>();
                        }
                        let pixels = map[d.first..].iter_mut().step_by(d.stride);
                        for (x, &v) in pixels.zip(&run[d.inside]) {
                            *x = v;
                        }
                    }
                }
            }
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
