//! The host f32 loops behind the fused ops: plain slices in, plain slices out, so the compiler
//! vectorises them; each is compiled for AVX-512, AVX2+FMA and baseline x86-64 and picked at
//! run time, so one binary runs everywhere.
//!
//! Every function works on one batch item: a gate tensor `[4h, S]` or `[2p, S]` is a run of
//! equally long parts, read as sub-slices.

use std::mem::MaybeUninit;

/// tanh by Eigen's rational 13/6 approximation (`generic_fast_tanh_float`): branch-free, so it
/// vectorises where libm's `tanhf` does not; max abs error ~3e-7 on [-20, 20].
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let (p, q) = tanh_fraction(x);
    if x.abs() < 4e-4 { x } else { p / q }
}

/// `(p, q)` with `tanh(x) ≈ p / q` (Eigen's polynomials; q in [0.0049, 0.9]), for kernels that
/// put several quotients over one division: the division, not the polynomials' FMAs, bounds
/// the gate's throughput. Near 0, `p / q = x (1 - 1e-7)`.
#[allow(clippy::excessive_precision)] // Eigen's constants, digit for digit
#[inline(always)]
fn tanh_fraction(x: f32) -> (f32, f32) {
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
    (p, q)
}

/// σ(x) = (1 + tanh(x / 2)) / 2.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    0.5 + 0.5 * tanh(0.5 * x)
}

/// Runtime CPU dispatch: the same body compiled for AVX-512, AVX2+FMA and the baseline.
macro_rules! multiversion {
    ($(#[$doc:meta])* $name:ident => $body:ident ( $($arg:ident : $ty:ty),* )) => {
        $(#[$doc])*
        pub fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn v4($($arg: $ty),*) { $body($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                fn v3($($arg: $ty),*) { $body($($arg),*) }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F (checked just above).
                    return unsafe { v4($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU has AVX2 and FMA (checked just above).
                    return unsafe { v3($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}
#[cfg(feature = "fast-ops")] // its other users, the fused conv's loops, are fast-ops only
pub(super) use multiversion;

/// `values` as the output of a kernel below, which writes every element and reads none.
///
/// # Safety
/// Nothing but initialised floats may be written through the result (the kernels write only
/// those).
pub unsafe fn slots(values: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: MaybeUninit<f32> has f32's layout; the caller writes only initialised values.
    unsafe { &mut *(values as *mut [f32] as *mut [MaybeUninit<f32>]) }
}

// ---- gate: y = tanh(a) ⊙ σ(b), x = [a; b] --------------------------------------------------

#[inline(always)]
fn gate_forward_body(x: &[f32], y: &mut [MaybeUninit<f32>]) {
    assert_eq!(x.len(), 2 * y.len(), "gate: x must be [a; b], twice y");
    let (a, b) = x.split_at(y.len());
    // tanh(a) σ(b) = (pa / qa) (qb + pb) / (2 qb), with tanh(b / 2) = pb / qb: one division.
    for ((y, &a), &b) in y.iter_mut().zip(a).zip(b) {
        let ((pa, qa), (pb, qb)) = (tanh_fraction(a), tanh_fraction(0.5 * b));
        y.write(pa * (qb + pb) / (2.0 * qa * qb));
    }
}

#[inline(always)]
fn gate_backward_body(x: &[f32], dy: &[f32], dx: &mut [MaybeUninit<f32>]) {
    assert!(
        x.len() == 2 * dy.len() && dx.len() == x.len(),
        "gate backward: sizes"
    );
    let n = dy.len();
    let (a, b) = x.split_at(n);
    let (da, db) = dx.split_at_mut(n);
    // With t = pa / qa and s = (qb + pb) / (2 qb) as in the forward, over one denominator
    // 4 qa² qb²: da = dy s (1 - t²) = dy (qb + pb)(qa² - pa²) 2 qb / D and
    // db = dy t s (1 - s) = dy pa (qb² - pb²) qa / D.
    for k in 0..n {
        let ((pa, qa), (pb, qb)) = (tanh_fraction(a[k]), tanh_fraction(0.5 * b[k]));
        let (qa2, qb2) = (qa * qa, qb * qb);
        let r = dy[k] / (4.0 * qa2 * qb2);
        da[k].write(r * (qb + pb) * (qa2 - pa * pa) * (2.0 * qb));
        db[k].write(r * pa * (qb2 - pb * pb) * qa);
    }
}

multiversion!(
    /// One item: `x` `[2n]` (a then b) -> `y` `[n]`.
    gate_forward => gate_forward_body(x: &[f32], y: &mut [MaybeUninit<f32>]));
multiversion!(
    /// One item: `dx` `[2n]` from `x` `[2n]` and `dy` `[n]`.
    gate_backward => gate_backward_body(x: &[f32], dy: &[f32], dx: &mut [MaybeUninit<f32>]));

// ---- concat_elu: y = [elu(x); elu(-x)] (PixelCNN++) -------------------------------------------

/// `(elu(x), elu(-x))` from one exponential, branch-free so that loops vectorise:
/// `elu(v) = v` for v > 0, `exp(v) - 1` otherwise.
#[inline(always)]
pub fn elu_pair(x: f32) -> (f32, f32) {
    let e = exp_nonpositive(-x.abs()) - 1.0;
    if x > 0.0 { (x, e) } else { (e, -x) }
}

#[inline(always)]
fn concat_elu_forward_body(x: &[f32], y: &mut [MaybeUninit<f32>]) {
    assert_eq!(y.len(), 2 * x.len(), "concat_elu: y must be twice x");
    let (plus, minus) = y.split_at_mut(x.len());
    for ((p, m), &v) in plus.iter_mut().zip(minus.iter_mut()).zip(x) {
        let (e_plus, e_minus) = elu_pair(v);
        p.write(e_plus);
        m.write(e_minus);
    }
}

/// `dx = dy_+ elu'(x) - dy_- elu'(-x)`, with `elu'(v) = 1` for v > 0 and `exp(v)` otherwise.
#[inline(always)]
fn concat_elu_backward_body(x: &[f32], dy: &[f32], dx: &mut [MaybeUninit<f32>]) {
    assert!(
        dy.len() == 2 * x.len() && dx.len() == x.len(),
        "concat_elu backward: sizes"
    );
    let (d_plus, d_minus) = dy.split_at(x.len());
    for k in 0..x.len() {
        let v = x[k];
        let e = exp_nonpositive(-v.abs());
        let (g_plus, g_minus) = if v > 0.0 { (1.0, e) } else { (e, 1.0) };
        dx[k].write(d_plus[k] * g_plus - d_minus[k] * g_minus);
    }
}

multiversion!(
    /// One item: `x` `[n]` -> `y` `[2n]` (elu(x), then elu(-x)).
    concat_elu_forward => concat_elu_forward_body(x: &[f32], y: &mut [MaybeUninit<f32>]));
multiversion!(
    /// One item: `dx` `[n]` from `x` `[n]` and `dy` `[2n]`.
    concat_elu_backward => concat_elu_backward_body(
        x: &[f32], dy: &[f32], dx: &mut [MaybeUninit<f32>]));

// ---- residual gate: y = x + a ⊙ σ(b), c = [a; b] (PixelCNN++'s gated ResNet) ------------------

#[inline(always)]
fn residual_gate_forward_body(x: &[f32], c: &[f32], y: &mut [MaybeUninit<f32>]) {
    assert!(
        x.len() == y.len() && c.len() == 2 * y.len(),
        "residual gate: sizes"
    );
    let (a, b) = c.split_at(y.len());
    for k in 0..y.len() {
        y[k].write(x[k] + a[k] * sigmoid(b[k]));
    }
}

/// `dc = [dy σ(b), dy a σ(b) (1 - σ(b))]`; `dx = dy` needs no kernel.
#[inline(always)]
fn residual_gate_backward_body(c: &[f32], dy: &[f32], dc: &mut [MaybeUninit<f32>]) {
    assert!(
        c.len() == 2 * dy.len() && dc.len() == c.len(),
        "residual gate backward: sizes"
    );
    let n = dy.len();
    let (a, b) = c.split_at(n);
    let (da, db) = dc.split_at_mut(n);
    for k in 0..n {
        let s = sigmoid(b[k]);
        da[k].write(dy[k] * s);
        db[k].write(dy[k] * a[k] * s * (1.0 - s));
    }
}

multiversion!(
    /// One item: `x` `[n]`, `c` `[2n]` (a then b) -> `y` `[n]`.
    residual_gate_forward => residual_gate_forward_body(
        x: &[f32], c: &[f32], y: &mut [MaybeUninit<f32>]));
multiversion!(
    /// One item: `dc` `[2n]` from `c` `[2n]` and `dy` `[n]`.
    residual_gate_backward => residual_gate_backward_body(
        c: &[f32], dy: &[f32], dc: &mut [MaybeUninit<f32>]));

// ---- LSTM cell: gates = [o; f; i; g] (pre-activations), each part n long --------------------

/// The four parts of one item's gates.
#[inline(always)]
fn parts(gates: &[f32], n: usize) -> (&[f32], &[f32], &[f32], &[f32]) {
    let (o, rest) = gates.split_at(n);
    let (f, rest) = rest.split_at(n);
    let (i, g) = rest.split_at(n);
    (o, f, i, &g[..n])
}

/// c = σ(f) ⊙ c_prev + σ(i) ⊙ tanh(g)
#[inline(always)]
fn lstm_cell_forward_body(gates: &[f32], c_prev: &[f32], c: &mut [f32]) {
    let n = c.len();
    let (_, f, i, g) = parts(gates, n);
    let c_prev = &c_prev[..n];
    for k in 0..n {
        c[k] = sigmoid(f[k]) * c_prev[k] + sigmoid(i[k]) * tanh(g[k]);
    }
}

#[inline(always)]
fn lstm_cell_backward_body(
    gates: &[f32],
    c_prev: &[f32],
    dc: &[f32],
    dgates: &mut [f32],
    dc_prev: &mut [f32],
) {
    let n = dc.len();
    let (_, f, i, g) = parts(gates, n);
    let c_prev = &c_prev[..n];
    let (d_o, rest) = dgates.split_at_mut(n);
    let (d_f, rest) = rest.split_at_mut(n);
    let (d_i, d_g) = rest.split_at_mut(n);
    d_o.fill(0.0); // the cell does not read o
    let (d_g, dc_prev) = (&mut d_g[..n], &mut dc_prev[..n]);
    for k in 0..n {
        let (sf, si, tg) = (sigmoid(f[k]), sigmoid(i[k]), tanh(g[k]));
        dc_prev[k] = dc[k] * sf;
        d_f[k] = dc[k] * c_prev[k] * sf * (1.0 - sf);
        d_i[k] = dc[k] * tg * si * (1.0 - si);
        d_g[k] = dc[k] * si * (1.0 - tg * tg);
    }
}

/// h = σ(o) ⊙ tanh(c)
#[inline(always)]
fn lstm_output_forward_body(gates: &[f32], c: &[f32], h: &mut [f32]) {
    let n = h.len();
    let (o, c) = (&gates[..n], &c[..n]);
    for k in 0..n {
        h[k] = sigmoid(o[k]) * tanh(c[k]);
    }
}

#[inline(always)]
fn lstm_output_backward_body(
    gates: &[f32],
    c: &[f32],
    dh: &[f32],
    dgates: &mut [f32],
    dc: &mut [f32],
) {
    let n = dh.len();
    let (o, c, dc) = (&gates[..n], &c[..n], &mut dc[..n]);
    let (d_o, rest) = dgates.split_at_mut(n);
    rest.fill(0.0); // h does not read f, i, g
    for k in 0..n {
        let (so, tc) = (sigmoid(o[k]), tanh(c[k]));
        d_o[k] = dh[k] * tc * so * (1.0 - so);
        dc[k] = dh[k] * so * (1.0 - tc * tc);
    }
}

multiversion!(
    /// One item: `c` `[n]` from `gates` `[4n]` and `c_prev` `[n]`.
    lstm_cell_forward => lstm_cell_forward_body(gates: &[f32], c_prev: &[f32], c: &mut [f32]));
multiversion!(
    /// One item: `dgates` `[4n]` and `dc_prev` `[n]` from `dc` `[n]`.
    lstm_cell_backward => lstm_cell_backward_body(
        gates: &[f32], c_prev: &[f32], dc: &[f32], dgates: &mut [f32], dc_prev: &mut [f32]));
multiversion!(
    /// One item: `h` `[n]` from `gates` `[4n]` and `c` `[n]`.
    lstm_output_forward => lstm_output_forward_body(gates: &[f32], c: &[f32], h: &mut [f32]));
multiversion!(
    /// One item: `dgates` `[4n]` and `dc` `[n]` from `dh` `[n]`.
    lstm_output_backward => lstm_output_backward_body(
        gates: &[f32], c: &[f32], dh: &[f32], dgates: &mut [f32], dc: &mut [f32]));

// ---- Bernoulli log-likelihood: log p(x | l) = x l - softplus(l) -------------------------------

/// exp(x) for x <= 0 without a libm call: x = k ln 2 + r, |r| <= ln 2 / 2, exp(r) by its
/// Taylor polynomial to r^7 (relative error < 1e-7), times 2^k built from the exponent bits.
/// Below -87 it returns exp(-87) ~ 1.6e-38 instead of a denormal.
#[allow(clippy::excessive_precision)]
#[inline(always)]
pub fn exp_nonpositive(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Rounding by adding 1.5 * 2^23 (ties to even, exact for |k| < 2^22) and building 2^k from
    // the bits of k + 127 + 2^23 keep every step a float op: `round_ties_even` is a libm call
    // where the target lacks SSE4.1, and `as i32`'s saturation check stops vectorisation.
    const ROUND: f32 = 12_582_912.0;
    const BIAS: f32 = 8_388_735.0; // 2^23 + 127
    let x = x.clamp(-87.0, 0.0);
    let k = (x * LOG2E + ROUND) - ROUND;
    let r = x - k * LN2_HI - k * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    p * f32::from_bits(((k + BIAS).to_bits() & 0x7f_ffff) << 23)
}

/// log(1 + u) for u in [0, 1]: 2 atanh(s) with s = u / (2 + u) <= 1/3, by its odd series to
/// s^15 (truncation < 3e-9).
#[inline(always)]
pub fn log1p_unit(u: f32) -> f32 {
    let s = u / (2.0 + u);
    let s2 = s * s;
    let series = 1.0
        + s2 * (1.0 / 3.0
            + s2 * (1.0 / 5.0
                + s2 * (1.0 / 7.0
                    + s2 * (1.0 / 9.0
                        + s2 * (1.0 / 11.0 + s2 * (1.0 / 13.0 + s2 * (1.0 / 15.0)))))));
    2.0 * s * series
}

/// softplus(l) = log(1 + e^l) = max(l, 0) + log1p(e^-|l|), and σ(l) from the same e^-|l|.
#[inline(always)]
fn softplus_and_sigmoid(l: f32) -> (f32, f32) {
    let u = exp_nonpositive(-l.abs());
    let sigmoid = if l >= 0.0 {
        1.0 / (1.0 + u)
    } else {
        u / (1.0 + u)
    };
    (l.max(0.0) + log1p_unit(u), sigmoid)
}

/// softplus(l) = log(1 + e^l), vectorisable (log σ(l) = -softplus(-l)).
#[inline(always)]
pub fn softplus(l: f32) -> f32 {
    softplus_and_sigmoid(l).0
}

#[inline(always)]
fn bernoulli_forward_body(logits: &[f32], x: &[f32], out: &mut [f32]) {
    for ((o, &l), &x) in out.iter_mut().zip(logits).zip(x) {
        *o = x * l - softplus(l);
    }
}

#[inline(always)]
fn bernoulli_backward_body(logits: &[f32], x: &[f32], g: &[f32], dl: &mut [f32], dx: &mut [f32]) {
    let n = dl.len();
    let (logits, x, g, dx) = (&logits[..n], &x[..n], &g[..n], &mut dx[..n]);
    for k in 0..n {
        let (_, sigmoid) = softplus_and_sigmoid(logits[k]);
        dl[k] = g[k] * (x[k] - sigmoid);
        dx[k] = g[k] * logits[k];
    }
}

multiversion!(
    /// `out = x l - softplus(l)`, elementwise.
    bernoulli_forward => bernoulli_forward_body(logits: &[f32], x: &[f32], out: &mut [f32]));
multiversion!(
    /// `dl = g (x - σ(l))`, `dx = g l`.
    bernoulli_backward => bernoulli_backward_body(
        logits: &[f32], x: &[f32], g: &[f32], dl: &mut [f32], dx: &mut [f32]));

// ---- matrix-vector product for one position (the cached sampler) ---------------------------

/// `acc [n] += Σ_k x[k] · wt[k, :]` with `wt` `[x.len(), n]` row-major: one row of weights per
/// input, so the inner loop runs along the outputs, contiguous, and vectorises.
#[inline(always)]
fn matvec_accumulate_body(acc: &mut [f32], x: &[f32], wt: &[f32]) {
    let n = acc.len();
    if n == 0 {
        return;
    }
    for (&xk, row) in x.iter().zip(wt.chunks_exact(n)) {
        for (a, &w) in acc.iter_mut().zip(row) {
            *a += xk * w;
        }
    }
}

multiversion!(
    /// `acc [n] += x [k] · wt [k, n]`.
    matvec_accumulate => matvec_accumulate_body(acc: &mut [f32], x: &[f32], wt: &[f32]));

// ---- Adam: one pass over a parameter, its gradient and both moments -------------------------

/// The scalars of one Adam step (Kingma & Ba 2015, Algorithm 1), bias corrections folded in
/// as burn's Adam folds them, so both give the same arithmetic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamScalars {
    pub lr: f32,
    pub beta_1: f32,
    pub beta_2: f32,
    /// √(1 - β₂ᵗ) / (1 - β₁ᵗ)
    pub step_factor: f32,
    /// ε √(1 - β₂ᵗ)
    pub epsilon_scaled: f32,
}

impl AdamScalars {
    /// The scalars of step `time` (1 for the first).
    pub fn at(lr: f64, beta_1: f32, beta_2: f32, epsilon: f32, time: usize) -> Self {
        let t = time as i32;
        let bias_correction_2 = (1.0 - beta_2.powi(t)).sqrt();
        Self {
            lr: lr as f32,
            beta_1,
            beta_2,
            step_factor: bias_correction_2 / (1.0 - beta_1.powi(t)),
            epsilon_scaled: epsilon * bias_correction_2,
        }
    }
}

/// ```text
/// m' = β₁ m + (1 - β₁) g        v' = β₂ v + (1 - β₂) g²
/// θ' = θ - lr (m' · step_factor) / (√v' + epsilon_scaled)
/// ```
/// `inputs` = (θ, g, m, v), `outputs` = (θ', m', v'), all equally long. The outputs may be
/// uninitialised memory: every element is written, none read.
#[inline(always)]
fn adam_update_body(inputs: [&[f32]; 4], outputs: [&mut [MaybeUninit<f32>]; 3], s: AdamScalars) {
    let [theta, grad, m, v] = inputs;
    let [theta_out, m_out, v_out] = outputs;
    let n = theta.len();
    let (grad, m, v) = (&grad[..n], &m[..n], &v[..n]);
    let (theta_out, m_out, v_out) = (&mut theta_out[..n], &mut m_out[..n], &mut v_out[..n]);
    let (keep_1, keep_2) = (1.0 - s.beta_1, 1.0 - s.beta_2);
    for k in 0..n {
        let g = grad[k];
        let m1 = m[k] * s.beta_1 + g * keep_1;
        let v1 = v[k] * s.beta_2 + g * g * keep_2;
        let update = m1 * s.step_factor / (v1.sqrt() + s.epsilon_scaled);
        theta_out[k] = MaybeUninit::new(theta[k] - update * s.lr);
        m_out[k] = MaybeUninit::new(m1);
        v_out[k] = MaybeUninit::new(v1);
    }
}

multiversion!(
    /// One chunk: (θ', m', v') from (θ, g, m, v).
    adam_update => adam_update_body(
        inputs: [&[f32]; 4], outputs: [&mut [MaybeUninit<f32>]; 3], s: AdamScalars));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tanh_and_sigmoid_match_libm_to_float_precision() {
        let (mut worst_tanh, mut worst_sigmoid) = (0f64, 0f64);
        for k in -200_000..=200_000 {
            let x = k as f32 * 1e-4;
            let exact = (x as f64).tanh();
            worst_tanh = worst_tanh.max((tanh(x) as f64 - exact).abs());
            let exact = 1.0 / (1.0 + (-(x as f64)).exp());
            worst_sigmoid = worst_sigmoid.max((sigmoid(x) as f64 - exact).abs());
        }
        assert!(worst_tanh < 1e-6, "tanh error {worst_tanh}");
        assert!(worst_sigmoid < 1e-6, "sigmoid error {worst_sigmoid}");
        assert!(tanh(f32::NAN).is_nan());
        assert!((tanh(1e4) - 1.0).abs() < 1e-6 && (tanh(-1e4) + 1.0).abs() < 1e-6);
    }

    #[test]
    fn exp_log1p_and_softplus_match_f64_to_float_precision() {
        let (mut worst_exp, mut worst_softplus) = (0f64, 0f64);
        for k in 0..=1_000_000 {
            let x = -(k as f32) * 1e-4; // [-100, 0]
            let exact = (x as f64).exp();
            let rel = ((exp_nonpositive(x) as f64 - exact) / exact.max(1.6e-38)).abs();
            if x > -87.0 {
                worst_exp = worst_exp.max(rel);
            }
            // Bit for bit the earlier formulation (libm's roundeven, `as i32`), so that no
            // figure computed through it (the shipped models' check figures) moves.
            let c = x.clamp(-87.0, 0.0);
            let k = (c * std::f32::consts::LOG2_E).round_ties_even();
            let r = c - k * 0.693_145_75 - k * 1.428_606_8e-6;
            let p = 1.0
                + r * (1.0
                    + r * (0.5
                        + r * (1.0 / 6.0
                            + r * (1.0 / 24.0
                                + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
            let earlier = p * f32::from_bits(((k as i32 + 127) as u32) << 23);
            assert_eq!(
                exp_nonpositive(x).to_bits(),
                earlier.to_bits(),
                "exp_nonpositive({x})"
            );
        }
        for k in -400_000..=400_000 {
            let l = k as f32 * 1e-4; // [-40, 40]
            let exact = (l as f64).exp().ln_1p();
            worst_softplus =
                worst_softplus.max((softplus(l) as f64 - exact).abs() / exact.max(1.0));
        }
        for k in 0..=10_000 {
            let u = k as f32 * 1e-4;
            let exact = (u as f64).ln_1p();
            assert!((log1p_unit(u) as f64 - exact).abs() < 2e-7, "log1p({u})");
        }
        assert!(worst_exp < 5e-7, "exp relative error {worst_exp}");
        assert!(worst_softplus < 5e-7, "softplus error {worst_softplus}");
        assert!(softplus(f32::NAN).is_nan());
    }
}
