//! The fused ops as burn backend extensions on flex: a forward on `FlexTensor`s for the
//! inference device, and for the autodiff device a node whose backward is our own kernel.
//! Shapes are `[b, k * n_per_item...]`: every op maps batch item to batch item, so the batch
//! is split across rayon threads.

use super::{causal_conv, kernels, scan};
use burn::backend::autodiff::{
    checkpoint::{base::Checkpointer, strategy::CheckpointStrategy},
    grads::Gradients,
    ops::{Backward, Ops, OpsKind},
};
use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension, tensor::FloatTensor};
use burn::tensor::{Bytes, DType, Shape, Tensor};
use rayon::prelude::*;
use std::sync::Arc;

#[backend_extension(Flex, Autodiff)]
pub trait FusedOps: Backend {
    /// `[b, 2p, ..] -> [b, p, ..]`: tanh(first half) ⊙ σ(second half).
    fn gate(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `[b, 4h, ..]`, `[b, h, ..] -> [b, h, ..]`: c = σ(f) ⊙ c_prev + σ(i) ⊙ tanh(g).
    fn lstm_cell(gates: FloatTensor<Self>, c_prev: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `[b, 4h, ..]`, `[b, h, ..] -> [b, h, ..]`: h = σ(o) ⊙ tanh(c).
    fn lstm_output(gates: FloatTensor<Self>, c: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `[b, 4h, T, L]`, `[4h, h, k] -> [b, h, T, L]`: a whole LSTM recurrence (see [`scan`]).
    fn lstm_scan(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        pad_before: usize,
    ) -> FloatTensor<Self>;
    /// `[b, C, H, W]`, `[O, C, T]`, `[O] -> [b, O, H, W]`: a convolution over the first T taps
    /// of a `kernel x kernel` window (see [`causal_conv`]).
    fn causal_conv(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        kernel: usize,
    ) -> FloatTensor<Self>;
    /// Same shapes in and out: log p(x | logits) = x l - softplus(l), elementwise.
    fn bernoulli_log_prob(logits: FloatTensor<Self>, x: FloatTensor<Self>) -> FloatTensor<Self>;
}

pub fn gate<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::gate(x.into_dispatch()))
}

pub fn lstm_cell<const D: usize>(gates: Tensor<D>, c_prev: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::lstm_cell(
        gates.into_dispatch(),
        c_prev.into_dispatch(),
    ))
}

pub fn lstm_output<const D: usize>(gates: Tensor<D>, c: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::lstm_output(
        gates.into_dispatch(),
        c.into_dispatch(),
    ))
}

pub fn lstm_scan(x: Tensor<4>, w: Tensor<3>, pad_before: usize) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::lstm_scan(
        x.into_dispatch(),
        w.into_dispatch(),
        pad_before,
    ))
}

pub fn causal_conv(x: Tensor<4>, w: Tensor<3>, bias: Tensor<1>, kernel: usize) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::causal_conv(
        x.into_dispatch(),
        w.into_dispatch(),
        bias.into_dispatch(),
        kernel,
    ))
}

pub fn bernoulli_log_prob<const D: usize>(logits: Tensor<D>, x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::bernoulli_log_prob(
        logits.into_dispatch(),
        x.into_dispatch(),
    ))
}

// ---- host side: contiguous f32 slices, one item per task ------------------------------------

/// Below this many output elements the rayon hand-off costs more than it saves.
const PARALLEL_MIN: usize = 1 << 14;

fn contiguous_f32(t: FlexTensor) -> FlexTensor {
    assert_eq!(t.dtype(), DType::F32, "the fused ops support f32 only");
    if t.as_slice::<f32>().is_some() {
        t
    } else {
        t.to_contiguous()
    }
}

fn values(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("contiguous f32")
}

/// Wraps `data` as a flex tensor without copying.
fn from_vec(data: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(data),
        Layout::contiguous(shape),
        DType::F32,
    )
}

/// `shape` with its channel dimension (1) divided by `parts`.
fn narrower(shape: &Shape, parts: usize) -> Shape {
    let mut dims = shape.to_vec();
    assert!(
        dims.len() >= 2 && dims[1].is_multiple_of(parts),
        "fused op: channels {:?} not divisible by {parts}",
        dims
    );
    dims[1] /= parts;
    Shape::from(dims)
}

/// Runs `body(item, outputs...)` over the batch items, in parallel when it pays.
fn per_item(
    outputs: &mut [&mut [f32]],
    items: usize,
    body: impl Fn(usize, &mut [&mut [f32]]) + Sync,
) {
    let total: usize = outputs.iter().map(|o| o.len()).sum();
    let chunks: Vec<Vec<&mut [f32]>> = {
        let mut per_output: Vec<std::slice::ChunksMut<'_, f32>> = outputs
            .iter_mut()
            .map(|o| {
                let len = o.len() / items.max(1);
                o.chunks_mut(len.max(1))
            })
            .collect();
        (0..items)
            .map(|_| per_output.iter_mut().map(|c| c.next().unwrap()).collect())
            .collect()
    };
    if total >= PARALLEL_MIN {
        chunks
            .into_par_iter()
            .enumerate()
            .for_each(|(n, mut outs)| body(n, &mut outs));
    } else {
        for (n, mut outs) in chunks.into_iter().enumerate() {
            body(n, &mut outs);
        }
    }
}

fn gate_forward(x: FlexTensor) -> FlexTensor {
    let x = contiguous_f32(x);
    let shape = narrower(x.layout().shape(), 2);
    let items = shape[0];
    let mut y = vec![0f32; shape.num_elements()];
    let n = y.len() / items.max(1);
    let xs = values(&x);
    per_item(&mut [&mut y], items, |b, out| {
        kernels::gate_forward(&xs[b * 2 * n..(b + 1) * 2 * n], out[0])
    });
    from_vec(y, shape)
}

fn gate_backward(x: FlexTensor, dy: FlexTensor) -> FlexTensor {
    let (x, dy) = (contiguous_f32(x), contiguous_f32(dy));
    let shape = x.layout().shape().clone();
    let items = shape[0];
    let mut dx = vec![0f32; shape.num_elements()];
    let n = dx.len() / items.max(1) / 2;
    let (xs, dys) = (values(&x), values(&dy));
    per_item(&mut [&mut dx], items, |b, out| {
        kernels::gate_backward(
            &xs[b * 2 * n..(b + 1) * 2 * n],
            &dys[b * n..(b + 1) * n],
            out[0],
        )
    });
    from_vec(dx, shape)
}

/// The shared shape of the LSTM ops: `(gates, state, shape of state, items, n per item)`.
fn lstm_operands(
    gates: FlexTensor,
    state: FlexTensor,
) -> (FlexTensor, FlexTensor, Shape, usize, usize) {
    let (gates, state) = (contiguous_f32(gates), contiguous_f32(state));
    let shape = narrower(gates.layout().shape(), 4);
    assert_eq!(
        &shape,
        state.layout().shape(),
        "fused LSTM: gates and state shapes disagree"
    );
    let items = shape[0];
    let n = shape.num_elements() / items.max(1);
    (gates, state, shape, items, n)
}

fn lstm_cell_forward(gates: FlexTensor, c_prev: FlexTensor) -> FlexTensor {
    let (gates, c_prev, shape, items, n) = lstm_operands(gates, c_prev);
    let mut c = vec![0f32; shape.num_elements()];
    let (gs, cs) = (values(&gates), values(&c_prev));
    per_item(&mut [&mut c], items, |b, out| {
        kernels::lstm_cell_forward(
            &gs[b * 4 * n..(b + 1) * 4 * n],
            &cs[b * n..(b + 1) * n],
            out[0],
        )
    });
    from_vec(c, shape)
}

fn lstm_cell_backward(
    gates: FlexTensor,
    c_prev: FlexTensor,
    dc: FlexTensor,
) -> (FlexTensor, FlexTensor) {
    let dc = contiguous_f32(dc);
    let (gates, c_prev, shape, items, n) = lstm_operands(gates, c_prev);
    let mut dgates = vec![0f32; 4 * shape.num_elements()];
    let mut dc_prev = vec![0f32; shape.num_elements()];
    let (gs, cs, dcs) = (values(&gates), values(&c_prev), values(&dc));
    per_item(&mut [&mut dgates, &mut dc_prev], items, |b, out| {
        let [dg, dcp] = out else { unreachable!() };
        kernels::lstm_cell_backward(
            &gs[b * 4 * n..(b + 1) * 4 * n],
            &cs[b * n..(b + 1) * n],
            &dcs[b * n..(b + 1) * n],
            dg,
            dcp,
        )
    });
    (
        from_vec(dgates, gates.layout().shape().clone()),
        from_vec(dc_prev, shape),
    )
}

fn lstm_output_forward(gates: FlexTensor, c: FlexTensor) -> FlexTensor {
    let (gates, c, shape, items, n) = lstm_operands(gates, c);
    let mut h = vec![0f32; shape.num_elements()];
    let (gs, cs) = (values(&gates), values(&c));
    per_item(&mut [&mut h], items, |b, out| {
        kernels::lstm_output_forward(
            &gs[b * 4 * n..(b + 1) * 4 * n],
            &cs[b * n..(b + 1) * n],
            out[0],
        )
    });
    from_vec(h, shape)
}

fn lstm_output_backward(
    gates: FlexTensor,
    c: FlexTensor,
    dh: FlexTensor,
) -> (FlexTensor, FlexTensor) {
    let dh = contiguous_f32(dh);
    let (gates, c, shape, items, n) = lstm_operands(gates, c);
    let mut dgates = vec![0f32; 4 * shape.num_elements()];
    let mut dc = vec![0f32; shape.num_elements()];
    let (gs, cs, dhs) = (values(&gates), values(&c), values(&dh));
    per_item(&mut [&mut dgates, &mut dc], items, |b, out| {
        let [dg, dcs] = out else { unreachable!() };
        kernels::lstm_output_backward(
            &gs[b * 4 * n..(b + 1) * 4 * n],
            &cs[b * n..(b + 1) * n],
            &dhs[b * n..(b + 1) * n],
            dg,
            dcs,
        )
    });
    (
        from_vec(dgates, gates.layout().shape().clone()),
        from_vec(dc, shape),
    )
}

fn scan_forward(x: FlexTensor, w: FlexTensor, pad_before: usize) -> (FlexTensor, scan::Tape) {
    let (x, w) = (contiguous_f32(x), contiguous_f32(w));
    let (xs, ws) = (x.layout().shape(), w.layout().shape());
    assert!(
        xs.num_dims() == 4 && ws.num_dims() == 3 && xs[1] == ws[0] && ws[0] == 4 * ws[1],
        "lstm_scan: x {xs:?} and w {ws:?} are not [b, 4h, T, L] and [4h, h, k]"
    );
    let shape = scan::ScanShape {
        batch: xs[0],
        hidden: ws[1],
        steps: xs[2],
        positions: xs[3],
        kernel: ws[2],
        pad_before,
    };
    let (out, tape) = scan::forward(values(&x), values(&w), shape);
    let out_shape = Shape::from(vec![xs[0], ws[1], xs[2], xs[3]]);
    (from_vec(out, out_shape), tape)
}

fn conv_shape(x: &FlexTensor, w: &FlexTensor, kernel: usize) -> causal_conv::ConvShape {
    let (xs, ws) = (x.layout().shape(), w.layout().shape());
    assert!(
        xs.num_dims() == 4 && ws.num_dims() == 3 && xs[1] == ws[1],
        "causal_conv: x {xs:?} and w {ws:?} are not [b, C, H, W] and [O, C, T]"
    );
    causal_conv::ConvShape {
        batch: xs[0],
        in_channels: xs[1],
        out_channels: ws[0],
        height: xs[2],
        width: xs[3],
        kernel,
        taps: ws[2],
    }
}

fn causal_conv_forward(
    x: FlexTensor,
    w: FlexTensor,
    bias: FlexTensor,
    kernel: usize,
) -> FlexTensor {
    let (x, w, bias) = (contiguous_f32(x), contiguous_f32(w), contiguous_f32(bias));
    let s = conv_shape(&x, &w, kernel);
    let y = causal_conv::forward(values(&x), values(&w), values(&bias), s);
    from_vec(
        y,
        Shape::from(vec![s.batch, s.out_channels, s.height, s.width]),
    )
}

/// Elementwise work in blocks, in parallel when it pays.
const BLOCK: usize = 1 << 13;

fn bernoulli_forward(logits: FlexTensor, x: FlexTensor) -> FlexTensor {
    let (logits, x) = (contiguous_f32(logits), contiguous_f32(x));
    assert_eq!(
        logits.layout().shape(),
        x.layout().shape(),
        "bernoulli_log_prob: logits and images shapes disagree"
    );
    let (ls, xs) = (values(&logits), values(&x));
    let mut out = vec![0f32; ls.len()];
    let work = |(o, (l, x)): (&mut [f32], (&[f32], &[f32]))| kernels::bernoulli_forward(l, x, o);
    if out.len() >= PARALLEL_MIN {
        out.par_chunks_mut(BLOCK)
            .zip(ls.par_chunks(BLOCK).zip(xs.par_chunks(BLOCK)))
            .for_each(work);
    } else {
        out.chunks_mut(BLOCK)
            .zip(ls.chunks(BLOCK).zip(xs.chunks(BLOCK)))
            .for_each(work);
    }
    from_vec(out, logits.layout().shape().clone())
}

fn bernoulli_backward(
    logits: FlexTensor,
    x: FlexTensor,
    g: FlexTensor,
) -> (FlexTensor, FlexTensor) {
    let g = contiguous_f32(g);
    let (ls, xs, gs) = (values(&logits), values(&x), values(&g));
    let (mut dl, mut dx) = (vec![0f32; ls.len()], vec![0f32; ls.len()]);
    let work = |(k, (dl, dx)): (usize, (&mut [f32], &mut [f32]))| {
        let block = k * BLOCK..k * BLOCK + dl.len();
        let (l, x, g) = (&ls[block.clone()], &xs[block.clone()], &gs[block]);
        kernels::bernoulli_backward(l, x, g, dl, dx)
    };
    if dl.len() >= PARALLEL_MIN {
        dl.par_chunks_mut(BLOCK)
            .zip(dx.par_chunks_mut(BLOCK))
            .enumerate()
            .for_each(work);
    } else {
        dl.chunks_mut(BLOCK)
            .zip(dx.chunks_mut(BLOCK))
            .enumerate()
            .for_each(work);
    }
    let shape = logits.layout().shape().clone();
    (from_vec(dl, shape.clone()), from_vec(dx, shape))
}

// ---- the backend extension: inference device, then autodiff device ----------------------------

impl FusedOps for Flex {
    fn gate(x: FlexTensor) -> FlexTensor {
        gate_forward(x)
    }
    fn lstm_cell(gates: FlexTensor, c_prev: FlexTensor) -> FlexTensor {
        lstm_cell_forward(gates, c_prev)
    }
    fn lstm_output(gates: FlexTensor, c: FlexTensor) -> FlexTensor {
        lstm_output_forward(gates, c)
    }
    fn lstm_scan(x: FlexTensor, w: FlexTensor, pad_before: usize) -> FlexTensor {
        scan_forward(x, w, pad_before).0
    }
    fn causal_conv(x: FlexTensor, w: FlexTensor, bias: FlexTensor, kernel: usize) -> FlexTensor {
        causal_conv_forward(x, w, bias, kernel)
    }
    fn bernoulli_log_prob(logits: FlexTensor, x: FlexTensor) -> FlexTensor {
        bernoulli_forward(logits, x)
    }
}

#[derive(Debug)]
struct CausalConvBackward {
    kernel: usize,
}

impl Backward<Flex, 3> for CausalConvBackward {
    type State = (FlexTensor, FlexTensor); // x, w (contiguous)
    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x_node, w_node, bias_node] = ops.parents;
        let dy = contiguous_f32(grads.consume::<Flex>(&ops.node));
        let (x, w) = ops.state;
        let s = conv_shape(&x, &w, self.kernel);
        let (dx, dw, dbias) = causal_conv::backward(values(&x), values(&w), values(&dy), s);
        if let Some(node) = x_node {
            grads.register::<Flex>(node.id, from_vec(dx, x.layout().shape().clone()));
        }
        if let Some(node) = w_node {
            grads.register::<Flex>(node.id, from_vec(dw, w.layout().shape().clone()));
        }
        if let Some(node) = bias_node {
            grads.register::<Flex>(node.id, from_vec(dbias, Shape::from(vec![s.out_channels])));
        }
    }
}

#[derive(Debug)]
struct ScanBackward {
    x_shape: Shape,
    w_shape: Shape,
}

impl Backward<Flex, 2> for ScanBackward {
    type State = Arc<scan::Tape>;
    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x_node, w_node] = ops.parents;
        let dy = contiguous_f32(grads.consume::<Flex>(&ops.node));
        let (dx, dw) = scan::backward(&ops.state, values(&dy));
        if let Some(node) = x_node {
            grads.register::<Flex>(node.id, from_vec(dx, self.x_shape));
        }
        if let Some(node) = w_node {
            grads.register::<Flex>(node.id, from_vec(dw, self.w_shape));
        }
    }
}

#[derive(Debug)]
struct GateBackward;

impl Backward<Flex, 1> for GateBackward {
    type State = FlexTensor; // x; tanh and σ are recomputed, cheaper than storing them
    fn backward(self, ops: Ops<FlexTensor, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        if let Some(node) = parent {
            grads.register::<Flex>(node.id, gate_backward(ops.state, dy));
        }
    }
}

/// Backward of a two-input op `(a, b) -> out` (the LSTM cell and output, the Bernoulli
/// likelihood) whose kernel needs both inputs and returns both gradients.
#[derive(Debug)]
struct PairBackward {
    kernel: fn(FlexTensor, FlexTensor, FlexTensor) -> (FlexTensor, FlexTensor),
}

impl Backward<Flex, 2> for PairBackward {
    type State = (FlexTensor, FlexTensor);
    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [a_node, b_node] = ops.parents;
        let d_out = grads.consume::<Flex>(&ops.node);
        let (a, b) = ops.state;
        let (d_a, d_b) = (self.kernel)(a, b, d_out);
        if let Some(node) = a_node {
            grads.register::<Flex>(node.id, d_a);
        }
        if let Some(node) = b_node {
            grads.register::<Flex>(node.id, d_b);
        }
    }
}

impl<C: CheckpointStrategy> FusedOps for Autodiff<Flex, C> {
    fn gate(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match GateBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let x = x.primitive().clone();
                let y = gate_forward(x.clone());
                prep.finish(x, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(gate_forward(x.into_primitive())),
        }
    }

    fn lstm_cell(gates: FloatTensor<Self>, c_prev: FloatTensor<Self>) -> FloatTensor<Self> {
        lstm_op::<C>(gates, c_prev, lstm_cell_forward, lstm_cell_backward)
    }

    fn lstm_output(gates: FloatTensor<Self>, c: FloatTensor<Self>) -> FloatTensor<Self> {
        lstm_op::<C>(gates, c, lstm_output_forward, lstm_output_backward)
    }

    fn lstm_scan(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        pad_before: usize,
    ) -> FloatTensor<Self> {
        let backward = ScanBackward {
            x_shape: x.primitive().layout().shape().clone(),
            w_shape: w.primitive().layout().shape().clone(),
        };
        match backward
            .prepare::<C>([x.node(), w.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, w) = (x.primitive().clone(), w.primitive().clone());
                let (out, tape) = scan_forward(x, w, pad_before);
                prep.finish(Arc::new(tape), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(scan_forward(x.into_primitive(), w.into_primitive(), pad_before).0)
            }
        }
    }

    fn causal_conv(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        kernel: usize,
    ) -> FloatTensor<Self> {
        match (CausalConvBackward { kernel })
            .prepare::<C>([x.node(), w.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, w) = (
                    contiguous_f32(x.primitive().clone()),
                    contiguous_f32(w.primitive().clone()),
                );
                let y = causal_conv_forward(x.clone(), w.clone(), bias.primitive().clone(), kernel);
                prep.finish((x, w), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(causal_conv_forward(
                x.into_primitive(),
                w.into_primitive(),
                bias.into_primitive(),
                kernel,
            )),
        }
    }

    fn bernoulli_log_prob(logits: FloatTensor<Self>, x: FloatTensor<Self>) -> FloatTensor<Self> {
        match (PairBackward {
            kernel: bernoulli_backward,
        })
        .prepare::<C>([logits.node(), x.node()])
        .compute_bound()
        .stateful()
        {
            OpsKind::Tracked(prep) => {
                let logits = contiguous_f32(logits.primitive().clone());
                let x = contiguous_f32(x.primitive().clone());
                let out = bernoulli_forward(logits.clone(), x.clone());
                prep.finish((logits, x), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(bernoulli_forward(
                logits.into_primitive(),
                x.into_primitive(),
            )),
        }
    }
}

type AutodiffFlexTensor<C> = FloatTensor<Autodiff<Flex, C>>;

fn lstm_op<C: CheckpointStrategy>(
    gates: AutodiffFlexTensor<C>,
    state: AutodiffFlexTensor<C>,
    forward: fn(FlexTensor, FlexTensor) -> FlexTensor,
    backward: fn(FlexTensor, FlexTensor, FlexTensor) -> (FlexTensor, FlexTensor),
) -> AutodiffFlexTensor<C> {
    match (PairBackward { kernel: backward })
        .prepare::<C>([gates.node(), state.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (g, s) = (gates.primitive().clone(), state.primitive().clone());
            let out = forward(g.clone(), s.clone());
            prep.finish((g, s), out)
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(forward(gates.into_primitive(), state.into_primitive()))
        }
    }
}
