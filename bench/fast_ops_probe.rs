//! Issue 5's next step, proven but not yet wired into the models: build and run with
//! `cargo run --release --features fast-ops --example fast_ops_probe [reps]` (the `fast-ops`
//! feature turns on burn's `extension` feature, which rebuilds burn once).
//!
//! Probe: custom fused ops (own forward AND backward, host f32 loops with rayon + SIMD) on the
//! flex backend, called on `Tensor<D>`, trained through burn autodiff + optimisers.
//!
//! Mechanism: burn's `extension` feature -> `#[backend_extension(Flex, Autodiff)]` trait,
//! implemented for `Flex` (forward on `FlexTensor`) and `Autodiff<Flex, C>` (registers a
//! `Backward<Flex, N>` step via `prepare().compute_bound().stateful()`), reached from
//! `Tensor<D>` through `Tensor::into_dispatch` / `Tensor::from_dispatch`.

use std::time::Instant;

use burn::backend::autodiff::{
    checkpoint::{base::Checkpointer, strategy::CheckpointStrategy},
    grads::Gradients,
    ops::{Backward, Ops, OpsKind},
};
use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension, tensor::FloatTensor};
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{
    Bytes, DType, Device, Distribution, GradientCheckpointingStrategy, Shape, Tensor, TensorData,
    activation,
};
use rayon::prelude::*;

// ------------------------------------------------------------------------------------------
// 1. Host kernels (plain f32 loops; autovectorised, multiversioned for AVX-512 / AVX2+FMA).
// ------------------------------------------------------------------------------------------

/// Rational 13/6 approximation of tanh (Eigen's `generic_fast_tanh_float`), branch-free.
#[allow(clippy::excessive_precision)] // Eigen's constants, digit for digit
#[inline(always)]
fn tanh_f(x: f32) -> f32 {
    const C: f32 = 7.905_311_1;
    const A1: f32 = 4.893_524_6e-3;
    const A3: f32 = 6.372_619_3e-4;
    const A5: f32 = 1.485_722_4e-5;
    const A7: f32 = 5.122_297e-8;
    const A9: f32 = -8.604_672e-11;
    const A11: f32 = 2.000_188e-13;
    const A13: f32 = -2.760_768_5e-16;
    const B0: f32 = 4.893_525e-3;
    const B2: f32 = 2.268_434_7e-3;
    const B4: f32 = 1.185_347_1e-4;
    const B6: f32 = 1.198_258_4e-6;
    let xc = x.clamp(-C, C); // NaN stays NaN
    let x2 = xc * xc;
    let mut p = x2 * A13 + A11;
    p = x2 * p + A9;
    p = x2 * p + A7;
    p = x2 * p + A5;
    p = x2 * p + A3;
    p = x2 * p + A1;
    p *= xc;
    let mut q = x2 * B6 + B4;
    q = x2 * q + B2;
    q = x2 * q + B0;
    let r = p / q;
    if x.abs() < 4e-4 { x } else { r }
}

#[inline(always)]
fn sigmoid_f(x: f32) -> f32 {
    0.5 + 0.5 * tanh_f(0.5 * x)
}

#[inline(always)]
fn tanh_fwd_body(x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = tanh_f(x);
    }
}
#[inline(always)]
fn tanh_bwd_body(y: &[f32], g: &[f32], dx: &mut [f32]) {
    for ((d, &y), &g) in dx.iter_mut().zip(y).zip(g) {
        *d = g * (1.0 - y * y);
    }
}
#[inline(always)]
fn gated_fwd_body(a: &[f32], b: &[f32], o: &mut [f32]) {
    for ((o, &a), &b) in o.iter_mut().zip(a).zip(b) {
        *o = tanh_f(a) * sigmoid_f(b);
    }
}
#[inline(always)]
fn gated_bwd_body(a: &[f32], b: &[f32], g: &[f32], da: &mut [f32], db: &mut [f32]) {
    let n = a.len();
    let (b, g, da, db) = (&b[..n], &g[..n], &mut da[..n], &mut db[..n]);
    for i in 0..n {
        let t = tanh_f(a[i]);
        let s = sigmoid_f(b[i]);
        da[i] = g[i] * s * (1.0 - t * t);
        db[i] = g[i] * t * s * (1.0 - s);
    }
}

/// Runtime CPU dispatch: the same body compiled for AVX-512, AVX2+FMA and baseline SSE2.
macro_rules! multiversion {
    ($name:ident => $body:ident ( $($arg:ident : $ty:ty),* )) => {
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn v4($($arg: $ty),*) { $body($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                fn v3($($arg: $ty),*) { $body($($arg),*) }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    return unsafe { v4($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    return unsafe { v3($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}
multiversion!(tanh_fwd => tanh_fwd_body(x: &[f32], y: &mut [f32]));
multiversion!(tanh_bwd => tanh_bwd_body(y: &[f32], g: &[f32], dx: &mut [f32]));
multiversion!(gated_fwd => gated_fwd_body(a: &[f32], b: &[f32], o: &mut [f32]));
multiversion!(gated_bwd => gated_bwd_body(a: &[f32], b: &[f32], g: &[f32], da: &mut [f32], db: &mut [f32]));

const CHUNK: usize = 1 << 14;

// ------------------------------------------------------------------------------------------
// 2. FlexTensor <-> f32 slices (zero-copy in, one allocation out).
// ------------------------------------------------------------------------------------------

/// Contiguous f32 view of a flex tensor (copies only if it is a strided/permuted view).
fn contiguous_f32(t: FlexTensor) -> FlexTensor {
    assert_eq!(t.dtype(), DType::F32, "fused ops support f32 only");
    if t.as_slice::<f32>().is_some() {
        t
    } else {
        t.to_contiguous()
    }
}
fn slice(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("contiguous f32")
}
/// Address of an inference-device tensor's f32 storage (zero-copy checks).
fn flex_ptr<const D: usize>(t: Tensor<D>) -> *const f32 {
    slice(&t.try_into_primitive::<Flex>().unwrap()).as_ptr()
}
/// Wraps a Vec<f32> as a flex tensor without copying (Bytes::from_elems takes the allocation).
fn flex_from_vec(data: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(data),
        Layout::contiguous(shape),
        DType::F32,
    )
}

fn flex_tanh(x: FlexTensor) -> FlexTensor {
    let x = contiguous_f32(x);
    let xs = slice(&x);
    let mut out = vec![0f32; xs.len()];
    out.par_chunks_mut(CHUNK)
        .zip(xs.par_chunks(CHUNK))
        .for_each(|(o, x)| tanh_fwd(x, o));
    flex_from_vec(out, x.layout().shape().clone())
}
fn flex_tanh_backward(y: FlexTensor, grad: FlexTensor) -> FlexTensor {
    let (y, grad) = (contiguous_f32(y), contiguous_f32(grad));
    let (ys, gs) = (slice(&y), slice(&grad));
    assert_eq!(ys.len(), gs.len());
    let mut out = vec![0f32; ys.len()];
    out.par_chunks_mut(CHUNK)
        .zip(ys.par_chunks(CHUNK).zip(gs.par_chunks(CHUNK)))
        .for_each(|(o, (y, g))| tanh_bwd(y, g, o));
    flex_from_vec(out, y.layout().shape().clone())
}
fn flex_gated(a: FlexTensor, b: FlexTensor) -> FlexTensor {
    let (a, b) = (contiguous_f32(a), contiguous_f32(b));
    assert_eq!(
        a.layout().shape(),
        b.layout().shape(),
        "gated: no broadcasting"
    );
    let (as_, bs) = (slice(&a), slice(&b));
    let mut out = vec![0f32; as_.len()];
    out.par_chunks_mut(CHUNK)
        .zip(as_.par_chunks(CHUNK).zip(bs.par_chunks(CHUNK)))
        .for_each(|(o, (a, b))| gated_fwd(a, b, o));
    flex_from_vec(out, a.layout().shape().clone())
}
fn flex_gated_backward(a: FlexTensor, b: FlexTensor, grad: FlexTensor) -> (FlexTensor, FlexTensor) {
    let (a, b, g) = (contiguous_f32(a), contiguous_f32(b), contiguous_f32(grad));
    let (as_, bs, gs) = (slice(&a), slice(&b), slice(&g));
    let n = as_.len();
    let (mut da, mut db) = (vec![0f32; n], vec![0f32; n]);
    da.par_chunks_mut(CHUNK)
        .zip(db.par_chunks_mut(CHUNK))
        .zip(
            as_.par_chunks(CHUNK)
                .zip(bs.par_chunks(CHUNK))
                .zip(gs.par_chunks(CHUNK)),
        )
        .for_each(|((da, db), ((a, b), g))| gated_bwd(a, b, g, da, db));
    let shape = a.layout().shape().clone();
    (flex_from_vec(da, shape.clone()), flex_from_vec(db, shape))
}

// ------------------------------------------------------------------------------------------
// 3. The extension trait, routed through the runtime `Dispatch` backend.
// ------------------------------------------------------------------------------------------

#[backend_extension(Flex, Autodiff)]
pub trait FusedOps: Backend {
    fn fast_tanh(x: FloatTensor<Self>) -> FloatTensor<Self>;
    fn gated(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// Inference device (`Device::flex()`): plain forward.
impl FusedOps for Flex {
    fn fast_tanh(x: FlexTensor) -> FlexTensor {
        flex_tanh(x)
    }
    fn gated(a: FlexTensor, b: FlexTensor) -> FlexTensor {
        flex_gated(a, b)
    }
}

#[derive(Debug)]
struct TanhBackward;
impl Backward<Flex, 1> for TanhBackward {
    type State = FlexTensor; // the forward output y (Arc clone, no copy)
    fn backward(self, ops: Ops<FlexTensor, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        if let Some(node) = parent {
            grads.register::<Flex>(node.id, flex_tanh_backward(ops.state, grad));
        }
    }
}

#[derive(Debug)]
struct GatedBackward;
impl Backward<Flex, 2> for GatedBackward {
    type State = (FlexTensor, FlexTensor); // inputs a, b; tanh/sigmoid recomputed in backward
    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [pa, pb] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (a, b) = ops.state;
        let (da, db) = flex_gated_backward(a, b, grad);
        if let Some(node) = pa {
            grads.register::<Flex>(node.id, da);
        }
        if let Some(node) = pb {
            grads.register::<Flex>(node.id, db);
        }
    }
}

/// Training device (`Device::flex().autodiff()`, any checkpointing strategy).
impl<C: CheckpointStrategy> FusedOps for Autodiff<Flex, C> {
    fn fast_tanh(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match TanhBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = flex_tanh(x.primitive().clone());
                prep.finish(y.clone(), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(flex_tanh(x.into_primitive())),
        }
    }
    fn gated(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        match GatedBackward
            .prepare::<C>([a.node(), b.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (ap, bp) = (a.primitive().clone(), b.primitive().clone());
                let out = flex_gated(ap.clone(), bp.clone());
                prep.finish((ap, bp), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(flex_gated(a.into_primitive(), b.into_primitive()))
            }
        }
    }
}

/// User-facing API on `Tensor<D>`.
pub fn fast_tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::fast_tanh(x.into_dispatch()))
}
pub fn gated<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::gated(
        a.into_dispatch(),
        b.into_dispatch(),
    ))
}

// ------------------------------------------------------------------------------------------
// 4. Checks.
// ------------------------------------------------------------------------------------------

fn vec_of<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}
fn max_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    let (a, b) = (vec_of(a), vec_of(b));
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
fn check(name: &str, d: f32, tol: f32) {
    println!(
        "  {name:<44} max|diff| = {d:.3e}  (tol {tol:.0e}) {}",
        if d <= tol { "OK" } else { "FAIL" }
    );
    assert!(d <= tol, "{name}: {d} > {tol}");
}
fn rand_data(shape: &[usize], scale: f32) -> TensorData {
    (Tensor::<4>::random(
        [shape[0], shape[1], shape[2], shape[3]],
        Distribution::Normal(0.0, 1.0),
        &Device::flex(),
    ) * scale)
        .into_data()
}
fn ref_gated<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
    activation::tanh(a) * activation::sigmoid(b)
}

fn kernel_accuracy() {
    let (mut worst, mut at) = (0f64, 0f32);
    let mut x = -20f32;
    while x <= 20.0 {
        let e = (tanh_f(x) as f64 - (x as f64).tanh()).abs();
        if e > worst {
            (worst, at) = (e, x);
        }
        x += 1e-4;
    }
    println!("  tanh_f vs f64 tanh on [-20,20] step 1e-4: max abs err {worst:.2e} at x={at}");
    assert!(tanh_f(f32::NAN).is_nan());
}

fn grad_checks(dev: &Device, label: &str) {
    println!("[{label}]");
    let shape = [2, 3, 5, 7];
    let (xd, wd) = (rand_data(&shape, 3.0), rand_data(&shape, 1.0));
    let (ad, bd) = (rand_data(&shape, 3.0), rand_data(&shape, 3.0));
    let w = Tensor::<4>::from_data(wd, dev);

    // unary: loss = sum(F(x) * w)  and a double application F(F(x)) (grad accumulation through 2 nodes)
    for twice in [false, true] {
        let x1 = Tensor::<4>::from_data(xd.clone(), dev).require_grad();
        let x2 = Tensor::<4>::from_data(xd.clone(), dev).require_grad();
        let y1 = if twice {
            fast_tanh(fast_tanh(x1.clone()))
        } else {
            fast_tanh(x1.clone())
        };
        let y2 = if twice {
            activation::tanh(activation::tanh(x2.clone()))
        } else {
            activation::tanh(x2.clone())
        };
        let g1 = (y1.clone() * w.clone()).sum().backward();
        let g2 = (y2.clone() * w.clone()).sum().backward();
        let tag = if twice { "tanh(tanh(x))" } else { "tanh(x)" };
        check(&format!("{tag} forward"), max_diff(y1, y2), 1e-6);
        check(
            &format!("{tag} d/dx"),
            max_diff(x1.grad(&g1).unwrap(), x2.grad(&g2).unwrap()),
            1e-5,
        );
    }
    // non-contiguous input (permuted view) + op output feeding more burn ops
    {
        let x1 = Tensor::<4>::from_data(xd.clone(), dev).require_grad();
        let x2 = Tensor::<4>::from_data(xd.clone(), dev).require_grad();
        let y1 = fast_tanh(x1.clone().permute([0, 2, 3, 1])).exp().mean();
        let y2 = activation::tanh(x2.clone().permute([0, 2, 3, 1]))
            .exp()
            .mean();
        let (g1, g2) = (y1.backward(), y2.backward());
        check(
            "permuted tanh, d/dx of mean(exp(.))",
            max_diff(x1.grad(&g1).unwrap(), x2.grad(&g2).unwrap()),
            1e-5,
        );
    }
    // binary gated: tanh(a) * sigmoid(b), both tracked, then only a tracked
    for b_tracked in [true, false] {
        let a1 = Tensor::<4>::from_data(ad.clone(), dev).require_grad();
        let a2 = Tensor::<4>::from_data(ad.clone(), dev).require_grad();
        let mut b1 = Tensor::<4>::from_data(bd.clone(), dev);
        let mut b2 = Tensor::<4>::from_data(bd.clone(), dev);
        if b_tracked {
            b1 = b1.require_grad();
            b2 = b2.require_grad();
        }
        let y1 = gated(a1.clone(), b1.clone());
        let y2 = ref_gated(a2.clone(), b2.clone());
        let g1 = (y1.clone() * w.clone()).sum().backward();
        let g2 = (y2.clone() * w.clone()).sum().backward();
        let tag = if b_tracked {
            "gated(a,b)"
        } else {
            "gated(a,const b)"
        };
        check(&format!("{tag} forward"), max_diff(y1, y2), 1e-6);
        check(
            &format!("{tag} d/da"),
            max_diff(a1.grad(&g1).unwrap(), a2.grad(&g2).unwrap()),
            1e-5,
        );
        if b_tracked {
            check(
                &format!("{tag} d/db"),
                max_diff(b1.grad(&g1).unwrap(), b2.grad(&g2).unwrap()),
                1e-5,
            );
        } else {
            assert!(b1.grad(&g1).is_none());
        }
    }
}

fn inference_checks() {
    println!("[inference device Device::flex()]");
    let dev = Device::flex();
    let shape = [2, 3, 5, 7];
    let xd = rand_data(&shape, 3.0);
    let bd = rand_data(&shape, 3.0);
    let x = Tensor::<4>::from_data(xd, &dev);
    let b = Tensor::<4>::from_data(bd, &dev);
    check(
        "fast_tanh forward",
        max_diff(fast_tanh(x.clone()), activation::tanh(x.clone())),
        1e-6,
    );
    check(
        "gated forward",
        max_diff(gated(x.clone(), b.clone()), ref_gated(x, b)),
        1e-6,
    );
}

fn zero_copy_checks() {
    println!("[raw data / zero-copy]");
    let n = 1 << 16;
    // inference device
    let v: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let p = v.as_ptr();
    let t = Tensor::<2>::from_data(TensorData::new(v, [256, 256]), &Device::flex());
    let prim = t.clone().try_into_primitive::<Flex>().unwrap(); // FlexTensor (Arc clone)
    println!(
        "  flex: from_data(TensorData::new(vec)) zero-copy: {}",
        prim.as_slice::<f32>().unwrap().as_ptr() == p
    );
    drop(prim);
    let back = t.into_data().try_into_vec::<f32>().unwrap();
    println!(
        "  flex: into_data().into_vec() zero-copy (unique): {}",
        back.as_ptr() == p
    );
    let p = back.as_ptr();
    let t = Tensor::<2>::from_primitive::<Flex>(flex_from_vec(back, Shape::new([256, 256])));
    println!(
        "  flex: from_primitive::<Flex>(FlexTensor::new(Bytes::from_elems(vec))) zero-copy: {}",
        flex_ptr(t.clone()) == p
    );
    // autodiff device
    let v: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let p = v.as_ptr();
    let ad = Device::flex().autodiff();
    let t = Tensor::<2>::from_data(TensorData::new(v, [256, 256]), &ad).require_grad();
    let adt = t.clone().try_into_primitive::<Autodiff<Flex>>().unwrap(); // AutodiffTensor<Flex>
    println!(
        "  autodiff: from_data zero-copy, primitive().as_slice(): {}",
        adt.primitive().as_slice::<f32>().unwrap().as_ptr() == p
    );
    // try_into_primitive is strategy-typed: Balanced needs Autodiff<Flex, BalancedCheckpointing>
    let bal = t
        .clone()
        .with_gradient_checkpointing_strategy(GradientCheckpointingStrategy::Balanced);
    println!(
        "  autodiff+Balanced: try_into_primitive::<Autodiff<Flex>>() is_err: {}",
        bal.try_into_primitive::<Autodiff<Flex>>().is_err()
    );
    // inner (detached) view without extension API: Tensor::inner() -> flex tensor, same buffer
    let inner = t.clone().inner();
    println!(
        "  autodiff: t.inner() shares buffer: {}",
        flex_ptr(inner) == p
    );
}

// ------------------------------------------------------------------------------------------
// 5. Training through burn optimisers.
// ------------------------------------------------------------------------------------------

#[derive(Module, Debug)]
struct Net {
    l1: Linear,
    l2: Linear,
    fused: bool,
}
impl Net {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let h = self.l1.forward(x);
        let [a, b]: [Tensor<2>; 2] = h.chunk(2, 1).try_into().unwrap();
        let h = if self.fused {
            gated(a, b)
        } else {
            ref_gated(a, b)
        };
        let o = self.l2.forward(h);
        if self.fused {
            fast_tanh(o)
        } else {
            activation::tanh(o)
        }
    }
}

fn training_check() {
    println!("[training: Linear -> gated -> Linear -> tanh, Adam, 40 steps]");
    let dev = Device::flex().autodiff();
    let base = Net {
        l1: LinearConfig::new(16, 64).init(&dev),
        l2: LinearConfig::new(32, 4).init(&dev),
        fused: true,
    };
    let mut m1 = base.clone();
    let mut m2 = Net {
        fused: false,
        ..base
    };
    let x = Tensor::<2>::random([128, 16], Distribution::Normal(0.0, 1.0), &dev);
    let target = (x.clone().slice([0..128, 0..4]) * 2.0).sin() * 0.8;
    let (mut o1, mut o2) = (AdamConfig::new().init(), AdamConfig::new().init());
    let (mut first, mut last, mut worst) = (0f32, (0f32, 0f32), 0f32);
    for step in 0..40 {
        let l1 = (m1.forward(x.clone()) - target.clone())
            .powi_scalar(2)
            .mean();
        let l2 = (m2.forward(x.clone()) - target.clone())
            .powi_scalar(2)
            .mean();
        let (v1, v2) = (
            l1.clone().into_scalar::<f32>(),
            l2.clone().into_scalar::<f32>(),
        );
        if step == 0 {
            first = v1;
        }
        last = (v1, v2);
        worst = worst.max((v1 - v2).abs() / v2.abs());
        let g1 = GradientsParams::from_grads(l1.backward(), &m1);
        let g2 = GradientsParams::from_grads(l2.backward(), &m2);
        m1 = o1.step(1e-2, m1, g1);
        m2 = o2.step(1e-2, m2, g2);
    }
    println!(
        "  loss fused {first:.4} -> {:.4}; reference -> {:.4}; max rel loss diff over steps {worst:.2e}",
        last.0, last.1
    );
    assert!(last.0 < first * 0.5 && worst < 1e-3);
}

// ------------------------------------------------------------------------------------------
// 6. Timing.
// ------------------------------------------------------------------------------------------

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn timing(reps: usize) {
    let shape = [32, 64, 28, 28];
    println!(
        "[timing {shape:?} = {} elems, {} rayon threads, median of {reps}, interleaved]",
        shape.iter().product::<usize>(),
        rayon::current_num_threads()
    );
    let xd = rand_data(&shape, 2.0);
    let bd = rand_data(&shape, 2.0);
    let ad = Device::flex().autodiff();
    let inf = Device::flex();

    type F = fn(Tensor<4>, Tensor<4>) -> Tensor<4>;
    let cases: [(&str, F, F, bool); 2] = [
        (
            "tanh",
            |x, _| activation::tanh(x),
            |x, _| fast_tanh(x),
            false,
        ),
        ("tanh(a)*sigmoid(b)", ref_gated, gated, true),
    ];
    for (name, reference, custom, binary) in cases {
        // forward + backward on autodiff device; loss = sum(y)
        let run_ad = |f: F| -> f64 {
            let a = Tensor::<4>::from_data(xd.clone(), &ad).require_grad();
            let b = Tensor::<4>::from_data(bd.clone(), &ad);
            let b = if binary { b.require_grad() } else { b };
            let t = Instant::now();
            let g = f(a.clone(), b.clone()).sum().backward();
            let ga = a.grad(&g).unwrap();
            let gb = if binary { b.grad(&g) } else { None };
            let dt = t.elapsed().as_secs_f64();
            drop((ga, gb));
            dt
        };
        let run_inf = |f: F| -> f64 {
            let a = Tensor::<4>::from_data(xd.clone(), &inf);
            let b = Tensor::<4>::from_data(bd.clone(), &inf);
            let t = Instant::now();
            let y = f(a, b);
            let dt = t.elapsed().as_secs_f64();
            drop(y);
            dt
        };
        for (mode, run) in [
            ("fwd (inference dev)", &run_inf as &dyn Fn(F) -> f64),
            ("fwd+bwd (autodiff dev)", &run_ad),
        ] {
            run(reference);
            run(custom);
            let (mut r, mut c) = (vec![], vec![]);
            for _ in 0..reps {
                r.push(run(reference));
                c.push(run(custom));
            }
            let (r, c) = (median(r), median(c));
            println!(
                "  {name:<20} {mode:<24} burn {:7.2} ms   custom {:7.2} ms   speedup x{:.2}",
                r * 1e3,
                c * 1e3,
                r / c
            );
        }
    }
}

fn main() {
    println!("[kernel accuracy]");
    kernel_accuracy();
    inference_checks();
    grad_checks(
        &Device::flex().autodiff(),
        "autodiff Device::flex().autodiff()",
    );
    // Balanced checkpointing routes to Autodiff<Flex, BalancedCheckpointing>: same impl.
    {
        let dev = Device::flex().autodiff();
        let x = Tensor::<2>::from_data([[0.3f32, -1.2], [2.0, 0.0]], &dev)
            .with_gradient_checkpointing_strategy(GradientCheckpointingStrategy::Balanced)
            .require_grad();
        let y = fast_tanh(x.clone()).exp().sum();
        let g = x.grad(&y.backward()).unwrap();
        let xr = Tensor::<2>::from_data([[0.3f32, -1.2], [2.0, 0.0]], &dev).require_grad();
        let gr = xr
            .grad(&activation::tanh(xr.clone()).exp().sum().backward())
            .unwrap();
        println!("[autodiff + Balanced checkpointing]");
        check("tanh d/dx", max_diff(g, gr), 1e-5);
    }
    zero_copy_checks();
    training_check();
    let reps = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    timing(reps);
    println!("ALL CHECKS PASSED");
}
