//! The fused ops as burn backend extensions on flex: a forward on `FlexTensor`s for the
//! inference device, and for the autodiff device a node whose backward is our own kernel.
//! Shapes are `[b, k * n_per_item...]`: every op maps batch item to batch item, so the batch
//! is split across rayon threads.

use super::Window;
use super::kernels::AdamScalars;
use super::linalg::{self, PARALLEL_MIN};
use super::{causal_conv, kernels, scan};
use burn::backend::autodiff::{
    NodeId,
    checkpoint::{base::Checkpointer, strategy::CheckpointStrategy},
    grads::Gradients,
    ops::{Backward, Ops, OpsKind},
};
use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension, tensor::FloatTensor};
use burn::tensor::{Bytes, DType, Shape, Tensor};
use rayon::prelude::*;
use std::mem::MaybeUninit;
use std::sync::Arc;

#[backend_extension(Flex, Autodiff)]
pub trait FusedOps: Backend {
    /// `[b, 2p, ..] -> [b, p, ..]`: tanh(first half) ⊙ σ(second half).
    fn gate(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// max(x, 0), elementwise.
    fn relu(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `[b, p, ..] -> [b, 2p, ..]`: elu(x), then elu(-x), along the channels.
    fn concat_elu(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `[b, p, ..]`, `[b, 2p, ..] -> [b, p, ..]`: x + a ⊙ σ(b) for the halves `[a; b]`.
    fn residual_gate(x: FloatTensor<Self>, c: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `[b, 4h, T, L]`, `[4h, h, k] -> [b, h, T, L]`: a whole LSTM recurrence (see [`scan`]).
    fn lstm_scan(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        pad_before: usize,
    ) -> FloatTensor<Self>;
    /// `[b, 4h, H, W]`, `[4h]`, `[4h, h, k] -> [b, h, H, W]`: the recurrence along the
    /// image's diagonals, `pad` outside the image (see [`scan::Layout::Diagonals`]).
    fn diagonal_scan(
        x: FloatTensor<Self>,
        pad: FloatTensor<Self>,
        w: FloatTensor<Self>,
        pad_before: usize,
        reverse: bool,
    ) -> FloatTensor<Self>;
    /// `[b, C, H, W]`, `[O, C, T]`, `[O] -> [b, O, H, W]`: a convolution over the first T taps
    /// of `window` (see [`causal_conv`]).
    fn causal_conv(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        window: Window,
    ) -> FloatTensor<Self>;
    /// Same shapes in and out: log p(x | logits) = x l - softplus(l), elementwise.
    fn bernoulli_log_prob(logits: FloatTensor<Self>, x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// θ, g, m, v `[n]` -> `[3n]` = (θ', m', v'): one Adam step (see [`kernels::adam_update`]).
    fn adam_update(
        theta: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        m: FloatTensor<Self>,
        v: FloatTensor<Self>,
        scalars: AdamScalars,
    ) -> FloatTensor<Self>;
}

pub fn gate<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::gate(x.into_dispatch()))
}

pub fn relu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::relu(x.into_dispatch()))
}

pub fn concat_elu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::concat_elu(x.into_dispatch()))
}

pub fn residual_gate<const D: usize>(x: Tensor<D>, c: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::residual_gate(
        x.into_dispatch(),
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

pub fn diagonal_scan(
    x: Tensor<4>,
    pad: Tensor<1>,
    w: Tensor<3>,
    pad_before: usize,
    reverse: bool,
) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::diagonal_scan(
        x.into_dispatch(),
        pad.into_dispatch(),
        w.into_dispatch(),
        pad_before,
        reverse,
    ))
}

pub fn causal_conv(x: Tensor<4>, w: Tensor<3>, bias: Tensor<1>, window: Window) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::causal_conv(
        x.into_dispatch(),
        w.into_dispatch(),
        bias.into_dispatch(),
        window,
    ))
}

pub fn bernoulli_log_prob<const D: usize>(logits: Tensor<D>, x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::bernoulli_log_prob(
        logits.into_dispatch(),
        x.into_dispatch(),
    ))
}

// ---- host side: contiguous f32 slices, one item per task ------------------------------------

/// Elementwise ops work in blocks of this many elements.
const BLOCK: usize = 1 << 13;

/// One Adam step on a parameter of any rank: `[θ', m', v']`, each shaped like θ. The three
/// are views into one buffer, so the step allocates once.
pub fn adam_update<const D: usize>(
    theta: Tensor<D>,
    grad: Tensor<D>,
    m: Tensor<D>,
    v: Tensor<D>,
    scalars: AdamScalars,
) -> [Tensor<D>; 3] {
    let dims = theta.dims();
    let n = theta.shape().num_elements();
    let flat = |t: Tensor<D>| t.reshape([n]).into_dispatch();
    let packed: Tensor<1> = Tensor::from_dispatch(<Dispatch as FusedOps>::adam_update(
        flat(theta),
        flat(grad),
        flat(m),
        flat(v),
        scalars,
    ));
    [0, 1, 2].map(|k| packed.clone().slice(k * n..(k + 1) * n).reshape(dims))
}

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

/// `shape` with `parts` times the channels.
fn wider(shape: &Shape, parts: usize) -> Shape {
    let mut dims = shape.to_vec();
    assert!(dims.len() >= 2, "fused op: {dims:?} has no channels");
    dims[1] *= parts;
    Shape::from(dims)
}

/// Runs `work(k, block k of every output)` over blocks of `len` elements (the last may be
/// shorter) of equally long outputs, in parallel when they are long enough to pay for it.
fn for_blocks<T: Send, const N: usize>(
    outputs: [&mut [T]; N],
    len: usize,
    work: impl Fn(usize, [&mut [T]; N]) + Sync,
) {
    let total = outputs.first().map_or(0, |o| o.len());
    let len = len.max(1);
    let mut chunks = outputs.map(|o| o.chunks_mut(len));
    let blocks: Vec<[&mut [T]; N]> = (0..total.div_ceil(len))
        .map(|_| std::array::from_fn(|i| chunks[i].next().expect("equally long outputs")))
        .collect();
    if total >= PARALLEL_MIN {
        blocks
            .into_par_iter()
            .enumerate()
            .for_each(|(k, b)| work(k, b));
    } else {
        blocks.into_iter().enumerate().for_each(|(k, b)| work(k, b));
    }
}

/// `len` floats made item by item: `kernel(b, item b's share)` (each `len / items` long), on
/// the pool's threads when the output is large.
///
/// # Safety
/// `kernel` must write every element of the share it is given (the kernels of
/// [`kernels`] with outputs do, or panic on sizes that do not match).
unsafe fn per_item(
    len: usize,
    items: usize,
    kernel: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync,
) -> Vec<f32> {
    // SAFETY: the caller's promise.
    unsafe { linalg::par_init(len, len / items.max(1), kernel).0 }
}

fn gate_forward(x: FlexTensor) -> FlexTensor {
    let x = contiguous_f32(x);
    let shape = narrower(x.layout().shape(), 2);
    let items = shape[0];
    let len = shape.num_elements();
    let n = len / items.max(1);
    let xs = values(&x);
    // SAFETY: the kernel writes its whole output.
    let y = unsafe {
        per_item(len, items, |b, out| {
            kernels::gate_forward(&xs[b * 2 * n..(b + 1) * 2 * n], out)
        })
    };
    from_vec(y, shape)
}

fn gate_backward(x: FlexTensor, dy: FlexTensor) -> FlexTensor {
    backward_of_halves(x, dy, kernels::gate_backward)
}

/// `dx` `[b, 2n...]` item by item from `x` `[b, 2n...]` and `dy` `[b, n...]`: the backward of
/// an op whose input has twice its output's channels (the gate; the residual gate's `c`).
fn backward_of_halves(
    x: FlexTensor,
    dy: FlexTensor,
    kernel: fn(&[f32], &[f32], &mut [MaybeUninit<f32>]),
) -> FlexTensor {
    let (x, dy) = (contiguous_f32(x), contiguous_f32(dy));
    let shape = x.layout().shape().clone();
    let items = shape[0];
    let len = shape.num_elements();
    let n = len / items.max(1) / 2;
    let (xs, dys) = (values(&x), values(&dy));
    // SAFETY: the kernels passed here write their whole output (or panic on sizes).
    let dx = unsafe {
        per_item(len, items, |b, out| {
            kernel(
                &xs[b * 2 * n..(b + 1) * 2 * n],
                &dys[b * n..(b + 1) * n],
                out,
            )
        })
    };
    from_vec(dx, shape)
}

fn relu_forward(x: FlexTensor) -> FlexTensor {
    let x = contiguous_f32(x);
    let shape = x.layout().shape().clone();
    let xs = values(&x);
    let chunk = linalg::thread_chunk(xs.len());
    let y = linalg::par_collect(xs.len(), chunk, |k| {
        xs[k * chunk..((k + 1) * chunk).min(xs.len())]
            .iter()
            .map(|&v| v.max(0.0))
    });
    from_vec(y, shape)
}

/// `dx = dy` where the output `y` is positive, 0 elsewhere (burn's rule, so the two agree at 0).
fn relu_backward(y: FlexTensor, dy: FlexTensor) -> FlexTensor {
    let (y, dy) = (contiguous_f32(y), contiguous_f32(dy));
    let shape = y.layout().shape().clone();
    let (ys, dys) = (values(&y), values(&dy));
    let chunk = linalg::thread_chunk(ys.len());
    let dx = linalg::par_collect(ys.len(), chunk, |k| {
        let range = k * chunk..((k + 1) * chunk).min(ys.len());
        ys[range.clone()]
            .iter()
            .zip(&dys[range])
            .map(|(&y, &d)| if y > 0.0 { d } else { 0.0 })
    });
    from_vec(dx, shape)
}

fn concat_elu_forward(x: FlexTensor) -> FlexTensor {
    let x = contiguous_f32(x);
    let shape = wider(x.layout().shape(), 2);
    let items = shape[0];
    let len = shape.num_elements();
    let n = len / items.max(1) / 2;
    let xs = values(&x);
    // SAFETY: the kernel writes its whole output.
    let y = unsafe {
        per_item(len, items, |b, out| {
            kernels::concat_elu_forward(&xs[b * n..(b + 1) * n], out)
        })
    };
    from_vec(y, shape)
}

fn concat_elu_backward(x: FlexTensor, dy: FlexTensor) -> FlexTensor {
    let (x, dy) = (contiguous_f32(x), contiguous_f32(dy));
    let shape = x.layout().shape().clone();
    let items = shape[0];
    let len = shape.num_elements();
    let n = len / items.max(1);
    let (xs, dys) = (values(&x), values(&dy));
    // SAFETY: the kernel writes its whole output.
    let dx = unsafe {
        per_item(len, items, |b, out| {
            kernels::concat_elu_backward(
                &xs[b * n..(b + 1) * n],
                &dys[b * 2 * n..(b + 1) * 2 * n],
                out,
            )
        })
    };
    from_vec(dx, shape)
}

fn residual_gate_forward(x: FlexTensor, c: FlexTensor) -> FlexTensor {
    let (x, c) = (contiguous_f32(x), contiguous_f32(c));
    let shape = x.layout().shape().clone();
    assert_eq!(
        narrower(c.layout().shape(), 2),
        shape,
        "residual_gate: the gate must have twice the channels of the input"
    );
    let items = shape[0];
    let len = shape.num_elements();
    let n = len / items.max(1);
    let (xs, cs) = (values(&x), values(&c));
    // SAFETY: the kernel writes its whole output.
    let y = unsafe {
        per_item(len, items, |b, out| {
            kernels::residual_gate_forward(
                &xs[b * n..(b + 1) * n],
                &cs[b * 2 * n..(b + 1) * 2 * n],
                out,
            )
        })
    };
    from_vec(y, shape)
}

fn residual_gate_backward(c: FlexTensor, dy: FlexTensor) -> FlexTensor {
    backward_of_halves(c, dy, kernels::residual_gate_backward)
}

/// `diagonal`: `Some((pad, reverse))` scans along the diagonals of `x` (see [`scan::Layout`]).
fn scan_forward(
    x: FlexTensor,
    w: FlexTensor,
    pad_before: usize,
    diagonal: Option<(FlexTensor, bool)>,
) -> (FlexTensor, scan::Tape) {
    let (x, w) = (contiguous_f32(x), contiguous_f32(w));
    let (xs, ws) = (x.layout().shape(), w.layout().shape());
    assert!(
        xs.num_dims() == 4 && ws.num_dims() == 3 && xs[1] == ws[0] && ws[0] == 4 * ws[1],
        "lstm_scan: x {xs:?} and w {ws:?} are not [b, 4h, .., ..] and [4h, h, k]"
    );
    let (steps, positions, layout, pad) = match diagonal {
        None => (xs[2], xs[3], scan::Layout::Rows, None),
        Some((pad, reverse)) => {
            let (height, width) = (xs[2], xs[3]);
            let layout = scan::Layout::Diagonals { width, reverse };
            let steps = if height * width == 0 {
                0
            } else {
                width + height - 1
            };
            (steps, height, layout, Some(contiguous_f32(pad)))
        }
    };
    let shape = scan::ScanShape {
        batch: xs[0],
        hidden: ws[1],
        steps,
        positions,
        kernel: ws[2],
        pad_before,
        layout,
    };
    let pad_values = pad.as_ref().map_or(&[][..], values);
    let (out, tape) = scan::forward(values(&x), values(&w), pad_values, shape);
    let out_shape = Shape::from(vec![xs[0], ws[1], xs[2], xs[3]]);
    (from_vec(out, out_shape), tape)
}

fn conv_shape(x: &FlexTensor, w: &FlexTensor, window: Window) -> causal_conv::ConvShape {
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
        window,
        taps: ws[2],
    }
}

fn causal_conv_forward(
    x: FlexTensor,
    w: FlexTensor,
    bias: FlexTensor,
    window: Window,
) -> FlexTensor {
    let (x, w, bias) = (contiguous_f32(x), contiguous_f32(w), contiguous_f32(bias));
    let s = conv_shape(&x, &w, window);
    let y = causal_conv::forward(values(&x), values(&w), values(&bias), s);
    from_vec(
        y,
        Shape::from(vec![s.batch, s.out_channels, s.height, s.width]),
    )
}

fn bernoulli_forward(logits: FlexTensor, x: FlexTensor) -> FlexTensor {
    let (logits, x) = (contiguous_f32(logits), contiguous_f32(x));
    assert_eq!(
        logits.layout().shape(),
        x.layout().shape(),
        "bernoulli_log_prob: logits and images shapes disagree"
    );
    let (ls, xs) = (values(&logits), values(&x));
    let mut out = vec![0f32; ls.len()];
    for_blocks([&mut out], BLOCK, |k, [o]| {
        let block = k * BLOCK..k * BLOCK + o.len();
        kernels::bernoulli_forward(&ls[block.clone()], &xs[block], o)
    });
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
    for_blocks([&mut dl, &mut dx], BLOCK, |k, [dl, dx]| {
        let block = k * BLOCK..k * BLOCK + dl.len();
        let (l, x, g) = (&ls[block.clone()], &xs[block.clone()], &gs[block]);
        kernels::bernoulli_backward(l, x, g, dl, dx)
    });
    let shape = logits.layout().shape().clone();
    (from_vec(dl, shape.clone()), from_vec(dx, shape))
}

fn adam_forward(
    theta: FlexTensor,
    grad: FlexTensor,
    m: FlexTensor,
    v: FlexTensor,
    scalars: AdamScalars,
) -> FlexTensor {
    let inputs = [theta, grad, m, v].map(contiguous_f32);
    let [theta, grad, m, v] = [0, 1, 2, 3].map(|k| values(&inputs[k]));
    let n = theta.len();
    assert!(
        grad.len() == n && m.len() == n && v.len() == n,
        "adam_update: parameter, gradient and moments differ in size"
    );
    // Written in full by the kernel, so not zeroed first (7% of the VAE step was that memset).
    let mut out: Vec<f32> = Vec::with_capacity(3 * n);
    let (theta_out, rest) = out.spare_capacity_mut()[..3 * n].split_at_mut(n);
    let (m_out, v_out) = rest.split_at_mut(n);
    // Big parameters (a 784 x 400 layer) split across threads; small ones (biases) run on
    // this thread, with no hand-off to the pool.
    for_blocks([theta_out, m_out, v_out], BLOCK, |k, outputs| {
        let block = k * BLOCK..k * BLOCK + outputs[0].len();
        let inputs = [theta, grad, m, v].map(|x| &x[block.clone()]);
        kernels::adam_update(inputs, outputs, scalars);
    });
    // SAFETY: the blocks above cover 0..3n and the kernel writes every element of each.
    unsafe { out.set_len(3 * n) };
    from_vec(out, Shape::from(vec![3 * n]))
}

// ---- the backend extension: inference device, then autodiff device ----------------------------

impl FusedOps for Flex {
    fn gate(x: FlexTensor) -> FlexTensor {
        gate_forward(x)
    }
    fn relu(x: FlexTensor) -> FlexTensor {
        relu_forward(x)
    }
    fn concat_elu(x: FlexTensor) -> FlexTensor {
        concat_elu_forward(x)
    }
    fn residual_gate(x: FlexTensor, c: FlexTensor) -> FlexTensor {
        residual_gate_forward(x, c)
    }
    fn lstm_scan(x: FlexTensor, w: FlexTensor, pad_before: usize) -> FlexTensor {
        scan_forward(x, w, pad_before, None).0
    }
    fn diagonal_scan(
        x: FlexTensor,
        pad: FlexTensor,
        w: FlexTensor,
        pad_before: usize,
        reverse: bool,
    ) -> FlexTensor {
        scan_forward(x, w, pad_before, Some((pad, reverse))).0
    }
    fn causal_conv(x: FlexTensor, w: FlexTensor, bias: FlexTensor, window: Window) -> FlexTensor {
        causal_conv_forward(x, w, bias, window)
    }
    fn bernoulli_log_prob(logits: FlexTensor, x: FlexTensor) -> FlexTensor {
        bernoulli_forward(logits, x)
    }
    fn adam_update(
        theta: FlexTensor,
        grad: FlexTensor,
        m: FlexTensor,
        v: FlexTensor,
        scalars: AdamScalars,
    ) -> FlexTensor {
        adam_forward(theta, grad, m, v, scalars)
    }
}

#[derive(Debug)]
struct CausalConvBackward {
    window: Window,
}

impl Backward<Flex, 3> for CausalConvBackward {
    type State = (FlexTensor, FlexTensor); // x, w (contiguous)
    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x_node, w_node, bias_node] = ops.parents;
        let dy = contiguous_f32(grads.consume::<Flex>(&ops.node));
        let (x, w) = ops.state;
        let s = conv_shape(&x, &w, self.window);
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

/// The backward of both scans: parents x, w and, for the diagonal scan, pad.
#[derive(Debug)]
struct ScanBackward {
    x_shape: Shape,
    w_shape: Shape,
}

impl ScanBackward {
    fn register(
        self,
        parents: [Option<NodeId>; 3],
        tape: &scan::Tape,
        dy: FlexTensor,
        grads: &mut Gradients,
    ) {
        let dy = contiguous_f32(dy);
        let (dx, dw, dpad) = scan::backward(tape, values(&dy));
        let pad_shape = Shape::from(vec![dpad.len()]);
        let results = [(dx, self.x_shape), (dw, self.w_shape), (dpad, pad_shape)];
        for (node, (grad, shape)) in parents.into_iter().zip(results) {
            if let Some(id) = node {
                grads.register::<Flex>(id, from_vec(grad, shape));
            }
        }
    }
}

impl Backward<Flex, 2> for ScanBackward {
    type State = Arc<scan::Tape>;
    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x, w] = ops
            .parents
            .each_ref()
            .map(|node| node.as_ref().map(|n| n.id));
        let dy = grads.consume::<Flex>(&ops.node);
        self.register([x, w, None], &ops.state, dy, grads);
    }
}

impl Backward<Flex, 3> for ScanBackward {
    type State = Arc<scan::Tape>;
    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x, pad, w] = ops
            .parents
            .each_ref()
            .map(|node| node.as_ref().map(|n| n.id));
        let dy = grads.consume::<Flex>(&ops.node);
        self.register([x, w, pad], &ops.state, dy, grads);
    }
}

/// The backward of a one-input elementwise op: `backward(state, dy)` is the input's gradient,
/// where the state is what the forward kept (the input for the gate and `concat_elu`, whose
/// activations are cheaper to recompute than to store; the output for ReLU).
#[derive(Debug)]
struct UnaryBackward(fn(FlexTensor, FlexTensor) -> FlexTensor);

impl Backward<Flex, 1> for UnaryBackward {
    type State = FlexTensor;
    fn backward(self, ops: Ops<FlexTensor, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        if let Some(node) = parent {
            grads.register::<Flex>(node.id, (self.0)(ops.state, dy));
        }
    }
}

#[derive(Debug)]
struct ResidualGateBackward;

impl Backward<Flex, 2> for ResidualGateBackward {
    type State = FlexTensor; // c, contiguous
    fn backward(self, ops: Ops<FlexTensor, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x_node, c_node] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        if let Some(node) = c_node {
            grads.register::<Flex>(node.id, residual_gate_backward(ops.state, dy.clone()));
        }
        if let Some(node) = x_node {
            grads.register::<Flex>(node.id, dy);
        }
    }
}

#[derive(Debug)]
struct BernoulliBackward;

impl Backward<Flex, 2> for BernoulliBackward {
    type State = (FlexTensor, FlexTensor); // logits, images
    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [logits_node, images_node] = ops.parents;
        let d_out = grads.consume::<Flex>(&ops.node);
        let (logits, images) = ops.state;
        let (d_logits, d_images) = bernoulli_backward(logits, images, d_out);
        if let Some(node) = logits_node {
            grads.register::<Flex>(node.id, d_logits);
        }
        if let Some(node) = images_node {
            grads.register::<Flex>(node.id, d_images);
        }
    }
}

impl<C: CheckpointStrategy> FusedOps for Autodiff<Flex, C> {
    fn gate(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match UnaryBackward(gate_backward)
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

    fn residual_gate(x: FloatTensor<Self>, c: FloatTensor<Self>) -> FloatTensor<Self> {
        match ResidualGateBackward
            .prepare::<C>([x.node(), c.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let c = contiguous_f32(c.primitive().clone());
                let y = residual_gate_forward(x.primitive().clone(), c.clone());
                prep.finish(c, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(residual_gate_forward(
                x.into_primitive(),
                c.into_primitive(),
            )),
        }
    }

    fn relu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match UnaryBackward(relu_backward)
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = relu_forward(x.primitive().clone());
                prep.finish(y.clone(), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(relu_forward(x.into_primitive())),
        }
    }

    fn concat_elu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match UnaryBackward(concat_elu_backward)
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let x = x.primitive().clone();
                let y = concat_elu_forward(x.clone());
                prep.finish(x, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(concat_elu_forward(x.into_primitive())),
        }
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
                let (out, tape) = scan_forward(x, w, pad_before, None);
                prep.finish(Arc::new(tape), out)
            }
            OpsKind::UnTracked(prep) => prep
                .finish(scan_forward(x.into_primitive(), w.into_primitive(), pad_before, None).0),
        }
    }

    fn diagonal_scan(
        x: FloatTensor<Self>,
        pad: FloatTensor<Self>,
        w: FloatTensor<Self>,
        pad_before: usize,
        reverse: bool,
    ) -> FloatTensor<Self> {
        let backward = ScanBackward {
            x_shape: x.primitive().layout().shape().clone(),
            w_shape: w.primitive().layout().shape().clone(),
        };
        match backward
            .prepare::<C>([x.node(), pad.node(), w.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let diagonal = Some((pad.primitive().clone(), reverse));
                let (x, w) = (x.primitive().clone(), w.primitive().clone());
                let (out, tape) = scan_forward(x, w, pad_before, diagonal);
                prep.finish(Arc::new(tape), out)
            }
            OpsKind::UnTracked(prep) => {
                let diagonal = Some((pad.into_primitive(), reverse));
                let (x, w) = (x.into_primitive(), w.into_primitive());
                prep.finish(scan_forward(x, w, pad_before, diagonal).0)
            }
        }
    }

    fn causal_conv(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        window: Window,
    ) -> FloatTensor<Self> {
        match (CausalConvBackward { window })
            .prepare::<C>([x.node(), w.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, w) = (
                    contiguous_f32(x.primitive().clone()),
                    contiguous_f32(w.primitive().clone()),
                );
                let y = causal_conv_forward(x.clone(), w.clone(), bias.primitive().clone(), window);
                prep.finish((x, w), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(causal_conv_forward(
                x.into_primitive(),
                w.into_primitive(),
                bias.into_primitive(),
                window,
            )),
        }
    }

    fn bernoulli_log_prob(logits: FloatTensor<Self>, x: FloatTensor<Self>) -> FloatTensor<Self> {
        match BernoulliBackward
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

    /// Optimizer states are never part of a graph (burn's optimizers step on the inner
    /// tensors); should one arrive here, the step is computed untracked.
    fn adam_update(
        theta: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        m: FloatTensor<Self>,
        v: FloatTensor<Self>,
        scalars: AdamScalars,
    ) -> FloatTensor<Self> {
        FloatTensor::<Self>::new(adam_forward(
            theta.into_primitive(),
            grad.into_primitive(),
            m.into_primitive(),
            v.into_primitive(),
            scalars,
        ))
    }
}
