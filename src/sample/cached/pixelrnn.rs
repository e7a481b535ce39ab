//! The cached PixelRNNs (see [`super`] and [`crate::models::pixelrnn`]). Both keep every
//! layer's residual stream `s_l` along the current row and the LSTM states of the last two
//! rows, for a group of images at once, and at pixel (r, c) compute each layer at (r, c) only.
//!
//! **Row LSTM.** The state at (r, c) reads the layer input at (r, c - k/2 ..= c) and the states
//! of row r - 1 at c - k/2 ..= c + k/2; rows above are final once drawn, so each pixel costs
//! one cell per layer:
//!
//! ```text
//! gates(r, c) = K_is ⊛ s_l(r, c-k/2..=c) + K_ss ⊛ h(r-1, c-k/2..=c+k/2) + biases
//! s_{l+1}(r, c) = s_l(r, c) + W_up h(r, c)
//! ```
//!
//! **Diagonal BiLSTM.** On the skewed map, the left-to-right state of pixel (r, c) reads the
//! states of (r, c - 1) and (r - 1, c): both drawn before (r, c), so it too costs one cell per
//! layer and pixel. Left of column 0 the skew pads with positions whose gates are the biases
//! alone (`pad`); their states, a triangle of `r` positions in row r, feed column 0 and are
//! computed at the start of each row. The right-to-left direction is shifted down a row, so
//! pixel (r, c) reads its states of row r - 1 only; they are computed a row at a time, when
//! row r - 1 is complete (from the right, in mirrored coordinates `m = W - 1 - c`):
//!
//! ```text
//! s_{l+1}(r, c) = s_l(r, c) + W_up (h→(r, c) + h←(r - 1, c))
//! ```
//!
//! Colour: the masked weights zero what a channel may not see of its own pixel, and every step
//! at (r, c) is recomputed from states before (r, c), so the driver's re-step per channel is
//! the same arithmetic.

use super::{Cached, Head, Incremental, SampleSpec, Taps};
use crate::models::pixelrnn::{HostLstm, HostPixelRnn, HostRecurrent};
use crate::nn::fused::lstm_cell_value;

/// One direction's weights: `input_to_state` and `state_to_state` taps, and the gates of a
/// position with no input (both biases).
struct Lstm {
    input: Taps,
    state: Taps,
    pad: Vec<f32>,
}

impl Lstm {
    fn of(host: &HostLstm) -> Self {
        let pad = (host.input_to_state.bias.iter())
            .zip(&host.state_to_state.bias)
            .map(|(a, b)| a + b)
            .collect();
        Self {
            input: Taps::of(&host.input_to_state),
            state: Taps::of(&host.state_to_state),
            pad,
        }
    }

    fn hidden(&self) -> usize {
        self.pad.len() / 4
    }
}

enum Layer {
    Row(Lstm),
    Diagonal { forward: Lstm, backward: Lstm },
}

/// The model in the cache's layout.
pub(crate) struct Model {
    input: Taps,
    layers: Vec<(Layer, Taps)>,
    head: Head,
}

impl Model {
    fn of(host: &HostPixelRnn) -> Self {
        let layers = (host.layers.iter())
            .map(|(recurrent, up)| {
                let layer = match recurrent {
                    HostRecurrent::Row(lstm) => Layer::Row(Lstm::of(lstm)),
                    HostRecurrent::Diagonal {
                        left_to_right,
                        right_to_left,
                    } => Layer::Diagonal {
                        forward: Lstm::of(left_to_right),
                        backward: Lstm::of(right_to_left),
                    },
                };
                (layer, Taps::of(up))
            })
            .collect();
        Self {
            input: Taps::of(&host.input),
            layers,
            head: Head::of(&host.head.hidden, &host.head.logits),
        }
    }
}

/// A group's cells: `lstm_cell_value` per image, `gates` `[n][4h]`, `c_prev`, `c`, `h`
/// `[n][h]`.
fn cells(gates: &[f32], c_prev: &[f32], c: &mut [f32], h: &mut [f32], hidden: usize) {
    for (((g, p), c), h) in (gates.chunks_exact(4 * hidden))
        .zip(c_prev.chunks_exact(hidden))
        .zip(c.chunks_exact_mut(hidden))
        .zip(h.chunks_exact_mut(hidden))
    {
        lstm_cell_value(g, p, c, h);
    }
}

/// One direction's hidden and cell states of a group of `n` images, for the last two rows (a
/// ring: the recurrences read row r - 1 and row r only), `[2][columns][n][hidden]`; for the
/// Diagonal BiLSTM with `height` padded columns on the left (column `col` >= -height at
/// `col + height`).
struct States {
    h: Vec<f32>,
    c: Vec<f32>,
    /// Columns per row and the offset of column 0.
    columns: usize,
    offset: usize,
    hidden: usize,
    n: usize,
}

impl States {
    fn new(n: usize, columns: usize, offset: usize, hidden: usize) -> Self {
        let len = 2 * (columns + offset) * n * hidden;
        Self {
            h: vec![0.0; len],
            c: vec![0.0; len],
            columns: columns + offset,
            offset,
            hidden,
            n,
        }
    }

    /// The group's block `[n][hidden]` at (r, col).
    fn at(&self, r: usize, col: isize) -> std::ops::Range<usize> {
        let i = (r % 2) * self.columns + (col + self.offset as isize) as usize;
        let block = self.n * self.hidden;
        i * block..(i + 1) * block
    }

    /// The skewed recurrence at (r, col) (col >= -r; mirrored coordinates for the
    /// right-to-left direction): gates from `input` `[n][in]` (none in the padding), the state
    /// of (r - 1, col) and of (r, col - 1); the cell carries along the row.
    fn diagonal_cell(&mut self, lstm: &Lstm, input: Option<&[f32]>, r: usize, col: isize) {
        let mut gates = lstm.pad.repeat(self.n);
        if let Some(x) = input {
            lstm.input.accumulate_rows(&mut gates, 0, 0, x);
        }
        // Zero states outside the skewed map: above row 0, and left of each row's start.
        if r > 0 && col >= -(r as isize - 1) {
            lstm.state
                .accumulate_rows(&mut gates, 0, 0, &self.h[self.at(r - 1, col)]);
        }
        let mut c_prev = vec![0f32; self.n * self.hidden];
        if col > -(r as isize) {
            let left = self.at(r, col - 1);
            lstm.state
                .accumulate_rows(&mut gates, 1, 0, &self.h[left.clone()]);
            c_prev.copy_from_slice(&self.c[left]);
        }
        let here = self.at(r, col);
        cells(
            &gates,
            &c_prev,
            &mut self.c[here.clone()],
            &mut self.h[here],
            self.hidden,
        );
    }
}

/// One layer's kept states.
enum LayerStates {
    Row(States),
    Diagonal { forward: States, backward: States },
}

/// A group of `n` images: their inputs, every layer's input stream along the current row and
/// the recurrent states, laid out `[position][image][features]`.
pub(crate) struct Group {
    n: usize,
    width: usize,
    /// Model input `[H][W][n][C]`.
    x: Vec<f32>,
    /// `s_l`, l = 0..=layers, along the current row: `[W][n][2h]` (the Row LSTM's input taps
    /// and the right-to-left direction read row r only).
    streams: Vec<Vec<f32>>,
    states: Vec<LayerStates>,
    /// `[n][outputs]`
    logits: Vec<f32>,
}

impl Incremental for Model {
    type Group = Group;

    fn channels(&self) -> usize {
        self.input.in_channels
    }

    fn outputs(&self) -> usize {
        self.head.outputs()
    }

    fn group(&self, height: usize, width: usize, classes: &[Option<usize>], x: Vec<f32>) -> Group {
        let (n, two_h) = (classes.len(), self.input.outputs());
        let states = (self.layers.iter())
            .map(|(layer, _)| match layer {
                Layer::Row(lstm) => LayerStates::Row(States::new(n, width, 0, lstm.hidden())),
                Layer::Diagonal { forward, backward } => LayerStates::Diagonal {
                    forward: States::new(n, width, height, forward.hidden()),
                    backward: States::new(n, width, height, backward.hidden()),
                },
            })
            .collect();
        Group {
            n,
            width,
            x: super::position_major(&x, n, self.input.in_channels),
            streams: vec![vec![0.0; width * n * two_h]; self.layers.len() + 1],
            states,
            logits: vec![0.0; n * self.head.outputs()],
        }
    }

    fn set(&self, group: &mut Group, image: usize, channel: usize, r: usize, c: usize, x: f32) {
        let channels = self.input.in_channels;
        group.x[((r * group.width + c) * group.n + image) * channels + channel] = x;
    }

    fn step(&self, group: &mut Group, r: usize, c: usize, want_logits: bool) {
        let (w, n) = (group.width, group.n);
        let two_h = self.input.outputs();
        let column = |col: usize| col * n * two_h..(col + 1) * n * two_h;
        let here = column(c);
        let mut s = vec![0f32; n * two_h];
        self.input
            .masked_rows_at(&mut s, (&group.x, usize::MAX), w, r, c);
        group.streams[0][here.clone()].copy_from_slice(&s);
        for (l, ((layer, up), states)) in self.layers.iter().zip(&mut group.states).enumerate() {
            let stream = &group.streams[l];
            let state: Vec<f32> = match (layer, states) {
                (Layer::Row(lstm), LayerStates::Row(states)) => {
                    let (k, half, hidden) = (lstm.state.width, lstm.state.width / 2, states.hidden);
                    let mut gates = lstm.pad.repeat(n);
                    for d in 0..=half {
                        if let Some(col) = (c + d).checked_sub(half) {
                            lstm.input
                                .accumulate_rows(&mut gates, 0, d, &stream[column(col)]);
                        }
                    }
                    let mut c_prev = vec![0f32; n * hidden];
                    if r > 0 {
                        for d in 0..k {
                            let col = (c + d).checked_sub(half).filter(|&col| col < w);
                            if let Some(col) = col {
                                let above = states.at(r - 1, col as isize);
                                lstm.state
                                    .accumulate_rows(&mut gates, 0, d, &states.h[above]);
                            }
                        }
                        c_prev.copy_from_slice(&states.c[states.at(r - 1, c as isize)]);
                    }
                    let at = states.at(r, c as isize);
                    let (cell, h) = (&mut states.c[at.clone()], &mut states.h[at.clone()]);
                    cells(&gates, &c_prev, cell, h, hidden);
                    states.h[at].to_vec()
                }
                (
                    Layer::Diagonal { forward, .. },
                    LayerStates::Diagonal {
                        forward: f,
                        backward: b,
                    },
                ) => {
                    if c == 0 {
                        for col in -(r as isize)..0 {
                            f.diagonal_cell(forward, None, r, col);
                        }
                    }
                    f.diagonal_cell(forward, Some(&stream[here.clone()]), r, c as isize);
                    let mut state = f.h[f.at(r, c as isize)].to_vec();
                    if r > 0 {
                        let mirrored = (w - 1 - c) as isize;
                        for (v, &above) in state.iter_mut().zip(&b.h[b.at(r - 1, mirrored)]) {
                            *v += above;
                        }
                    }
                    state
                }
                _ => unreachable!("states are built from the layers"),
            };
            let mut out = vec![0f32; n * two_h];
            up.pointwise_rows(&mut out, &state);
            for (v, o) in s.iter_mut().zip(&out) {
                *v += o;
            }
            group.streams[l + 1][here.clone()].copy_from_slice(&s);
        }
        if want_logits {
            self.head.forward_rows(&s, &mut group.logits);
        }
    }

    /// The Diagonal BiLSTM's right-to-left states of row `r`, from the right.
    fn end_row(&self, group: &mut Group, r: usize) {
        let (w, two_h, channels, n) = (
            group.width,
            self.input.outputs(),
            self.input.in_channels,
            group.n,
        );
        for (l, ((layer, _), states)) in self.layers.iter().zip(&mut group.states).enumerate() {
            let (Layer::Diagonal { backward, .. }, LayerStates::Diagonal { backward: b, .. }) =
                (layer, states)
            else {
                continue;
            };
            for m in -(r as isize)..0 {
                b.diagonal_cell(backward, None, r, m);
            }
            // The first layer's right-to-left direction also reads the image's row.
            let with_image = backward.input.in_channels > two_h;
            let per_image = two_h + if with_image { channels } else { 0 };
            let mut input = vec![0f32; n * per_image];
            for m in 0..w {
                let c = w - 1 - m;
                let stream = &group.streams[l][c * n * two_h..(c + 1) * n * two_h];
                let q = r * w + c;
                let pixel = &group.x[q * n * channels..(q + 1) * n * channels];
                for (i, row) in input.chunks_exact_mut(per_image).enumerate() {
                    row[..two_h].copy_from_slice(&stream[i * two_h..(i + 1) * two_h]);
                    if with_image {
                        row[two_h..].copy_from_slice(&pixel[i * channels..(i + 1) * channels]);
                    }
                }
                b.diagonal_cell(backward, Some(&input), r, m as isize);
            }
        }
    }

    fn logits<'a>(&self, group: &'a Group, image: usize) -> &'a [f32] {
        let outputs = self.head.outputs();
        &group.logits[image * outputs..(image + 1) * outputs]
    }
}

impl Cached for HostPixelRnn {
    type Layout = Model;
    fn layout(&self) -> Model {
        Model::of(self)
    }
}

/// The logits the cache computes at every position of complete `images` (teacher forcing),
/// `[n][H][W][L]`, for checking it against the parallel forward pass.
pub fn teacher_forced_logits(model: &HostPixelRnn, spec: &SampleSpec, images: &[u8]) -> Vec<f32> {
    super::teacher_forced(&model.layout(), spec, images)
}
