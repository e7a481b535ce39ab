//! The cached PixelRNNs (see [`super`] and [`crate::models::pixelrnn`]). Both keep every
//! layer's residual stream `s_l` `[H][W][2h]` and LSTM states, and at pixel (r, c) compute each
//! layer at (r, c) only.
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

use super::{Cached, EachImage, Head, PerImage, SampleSpec, Taps};
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
    logits_per_channel: usize,
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
            logits_per_channel: host.logits_per_channel,
        }
    }
}

/// One direction's hidden and cell states on a map; for the Diagonal BiLSTM, with `height`
/// padded columns on the left (column `col` >= -height at `col + height`).
struct States {
    h: Vec<f32>,
    c: Vec<f32>,
    /// Columns per row and the offset of column 0.
    columns: usize,
    offset: usize,
    hidden: usize,
}

impl States {
    fn new(height: usize, columns: usize, offset: usize, hidden: usize) -> Self {
        let len = height * (columns + offset) * hidden;
        Self {
            h: vec![0.0; len],
            c: vec![0.0; len],
            columns: columns + offset,
            offset,
            hidden,
        }
    }

    fn at(&self, r: usize, col: isize) -> std::ops::Range<usize> {
        let i = r * self.columns + (col + self.offset as isize) as usize;
        i * self.hidden..(i + 1) * self.hidden
    }

    /// The skewed recurrence at (r, col) (col >= -r; mirrored coordinates for the
    /// right-to-left direction): gates from `input` (none in the padding), the state of
    /// (r - 1, col) and of (r, col - 1); the cell carries along the row.
    fn diagonal_cell(&mut self, lstm: &Lstm, input: Option<&[f32]>, r: usize, col: isize) {
        let mut gates = lstm.pad.clone();
        if let Some(x) = input {
            lstm.input.accumulate(&mut gates, 0, 0, x);
        }
        // Zero states outside the skewed map: above row 0, and left of each row's start.
        if r > 0 && col >= -(r as isize - 1) {
            lstm.state
                .accumulate(&mut gates, 0, 0, &self.h[self.at(r - 1, col)]);
        }
        let mut c_prev = vec![0f32; self.hidden];
        if col > -(r as isize) {
            let left = self.at(r, col - 1);
            lstm.state
                .accumulate(&mut gates, 1, 0, &self.h[left.clone()]);
            c_prev.copy_from_slice(&self.c[left]);
        }
        let here = self.at(r, col);
        let (mut c, mut h) = (vec![0f32; self.hidden], vec![0f32; self.hidden]);
        lstm_cell_value(&gates, &c_prev, &mut c, &mut h);
        self.c[here.clone()].copy_from_slice(&c);
        self.h[here].copy_from_slice(&h);
    }
}

/// One layer's kept states.
enum LayerStates {
    Row(States),
    Diagonal { forward: States, backward: States },
}

/// One image: its input, every layer's input stream and states, channel-last.
pub(crate) struct Image {
    width: usize,
    /// Model input, channel-last `[H][W][C]`.
    x: Vec<f32>,
    /// `s_l`, l = 0..=layers: `[H][W][2h]`.
    streams: Vec<Vec<f32>>,
    states: Vec<LayerStates>,
    logits: Vec<f32>,
}

impl PerImage for Model {
    type Image = Image;

    fn channels(&self) -> usize {
        self.input.in_channels
    }

    fn logits_per_channel(&self) -> usize {
        self.logits_per_channel
    }

    fn image(&self, height: usize, width: usize, _class: Option<usize>, x: Vec<f32>) -> Image {
        let two_h = self.input.outputs();
        let states = (self.layers.iter())
            .map(|(layer, _)| match layer {
                Layer::Row(lstm) => LayerStates::Row(States::new(height, width, 0, lstm.hidden())),
                Layer::Diagonal { forward, backward } => LayerStates::Diagonal {
                    forward: States::new(height, width, height, forward.hidden()),
                    backward: States::new(height, width, height, backward.hidden()),
                },
            })
            .collect();
        Image {
            width,
            x: super::channel_last(&x, self.input.in_channels),
            streams: vec![vec![0.0; height * width * two_h]; self.layers.len() + 1],
            states,
            logits: vec![0.0; self.head.outputs()],
        }
    }

    fn set(&self, image: &mut Image, channel: usize, r: usize, c: usize, x: f32) {
        let channels = self.input.in_channels;
        image.x[(r * image.width + c) * channels + channel] = x;
    }

    fn step(&self, image: &mut Image, r: usize, c: usize, want_logits: bool) {
        let w = image.width;
        let two_h = self.input.outputs();
        let q = r * w + c;
        let here = q * two_h..(q + 1) * two_h;
        let mut s = vec![0f32; two_h];
        self.input.masked_at(&mut s, &image.x, w, r, c);
        image.streams[0][here.clone()].copy_from_slice(&s);
        for (l, ((layer, up), states)) in self.layers.iter().zip(&mut image.states).enumerate() {
            let stream = &image.streams[l];
            let state: Vec<f32> = match (layer, states) {
                (Layer::Row(lstm), LayerStates::Row(states)) => {
                    let (k, half) = (lstm.state.width, lstm.state.width / 2);
                    let mut gates = lstm.pad.clone();
                    for d in 0..=half {
                        if let Some(col) = (c + d).checked_sub(half) {
                            let at = (r * w + col) * two_h;
                            lstm.input
                                .accumulate(&mut gates, 0, d, &stream[at..at + two_h]);
                        }
                    }
                    let mut c_prev = vec![0f32; states.hidden];
                    if r > 0 {
                        for d in 0..k {
                            let col = (c + d).checked_sub(half).filter(|&col| col < w);
                            if let Some(col) = col {
                                let above = states.at(r - 1, col as isize);
                                lstm.state.accumulate(&mut gates, 0, d, &states.h[above]);
                            }
                        }
                        c_prev.copy_from_slice(&states.c[states.at(r - 1, c as isize)]);
                    }
                    let at = states.at(r, c as isize);
                    let (cell, h) = (&mut states.c[at.clone()], &mut states.h[at.clone()]);
                    lstm_cell_value(&gates, &c_prev, cell, h);
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
            let mut out = vec![0f32; two_h];
            up.pointwise(&mut out, &state);
            for (v, o) in s.iter_mut().zip(&out) {
                *v += o;
            }
            image.streams[l + 1][here.clone()].copy_from_slice(&s);
        }
        if want_logits {
            self.head.forward(&s, &mut image.logits);
        }
    }

    /// The Diagonal BiLSTM's right-to-left states of row `r`, from the right.
    fn end_row(&self, image: &mut Image, r: usize) {
        let (w, two_h, n) = (image.width, self.input.outputs(), self.input.in_channels);
        for (l, ((layer, _), states)) in self.layers.iter().zip(&mut image.states).enumerate() {
            let (Layer::Diagonal { backward, .. }, LayerStates::Diagonal { backward: b, .. }) =
                (layer, states)
            else {
                continue;
            };
            for m in -(r as isize)..0 {
                b.diagonal_cell(backward, None, r, m);
            }
            let mut input = Vec::with_capacity(two_h + n);
            for m in 0..w {
                let q = r * w + (w - 1 - m);
                input.clear();
                input.extend_from_slice(&image.streams[l][q * two_h..(q + 1) * two_h]);
                // The first layer's right-to-left direction also reads the image's row.
                if backward.input.in_channels > two_h {
                    input.extend_from_slice(&image.x[q * n..(q + 1) * n]);
                }
                b.diagonal_cell(backward, Some(&input), r, m as isize);
            }
        }
    }

    fn logits<'a>(&self, image: &'a Image) -> &'a [f32] {
        &image.logits
    }
}

// One image at a time: the LSTM cells' gate products are not batched across images yet.
impl Cached for HostPixelRnn {
    type Layout = EachImage<Model>;
    fn layout(&self) -> EachImage<Model> {
        EachImage(Model::of(self))
    }
}

/// The logits the cache computes at every position of complete `images` (teacher forcing),
/// `[n][H][W][L]`, for checking it against the parallel forward pass.
pub fn teacher_forced_logits(model: &HostPixelRnn, spec: &SampleSpec, images: &[u8]) -> Vec<f32> {
    super::teacher_forced(&model.layout(), spec, images)
}
