//! Fused ops with their own backward: the mask-aware or padded-window convolution
//! ([`causal_conv2d`], [`window_conv2d`]), the whole PixelRNN recurrence along rows
//! ([`lstm_scan`]) or diagonals ([`diagonal_lstm_scan`]), the
//! gated activation ([`gate`]), the Bernoulli likelihood ([`bernoulli_log_prob`]), and the
//! Adam update ([`adam_update`]).
//!
//! Written as burn ops, each of these is a chain of small kernels (slice, sigmoid, tanh,
//! multiply, add, a dense convolution over taps a mask zeroes) that each read and write the
//! whole tensor, plus as many again in the backward, and burn's scalar `tanhf`/`expf` do not
//! vectorise (docs/PERFORMANCE.md has the profiles). Fused, each is one pass over memory, or
//! one GEMM per image or step, in the forward and in the backward.
//!
//! With the `fast-ops` feature (default) they run as burn backend extensions on flex devices
//! (`flex.rs`); without it, on other backends, or through [`reference`](mod@reference), as the
//! plain burn composition. Tests hold the two to float tolerance, values and gradients.

#[cfg(feature = "fast-ops")]
pub mod causal_conv;
#[cfg(feature = "fast-ops")]
mod flex;
pub mod kernels;
#[cfg(feature = "fast-ops")]
pub(crate) mod linalg;
#[cfg(feature = "fast-ops")]
pub mod scan;

use burn::tensor::Tensor;

/// The fused kernels are host code over flex's memory; tensors on any other backend (wgpu)
/// take the reference path, so model code stays backend-agnostic.
#[cfg(feature = "fast-ops")]
#[allow(unreachable_patterns)] // flex is the only backend compiled in today
fn on_flex(device: &burn::tensor::Device) -> bool {
    use burn::backend::DispatchDevice;
    matches!(
        device.as_dispatch().clone().inner(),
        DispatchDevice::Flex(_)
    )
}

/// The gated activation `[b, 2p, ..] -> [b, p, ..]`: y = tanh(a) ⊙ σ(b) with x = [a; b] split
/// along the channels (van den Oord et al. 2016b, Eq. 2).
pub fn gate(x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "fast-ops")]
    if on_flex(&x.device()) {
        return flex::gate(x);
    }
    reference::gate(x)
}

/// `max(x, 0)`. burn's ReLU runs in the calling thread, forward and backward: on two threads,
/// with the residual adds, most of what was left serial in a PixelCNN step (docs/PERFORMANCE.md).
pub fn relu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "fast-ops")]
    if on_flex(&x.device()) {
        return flex::relu(x);
    }
    burn::tensor::activation::relu(x)
}

/// `concat_elu(x) = elu([x, -x])` along the channels, `[b, p, ..] -> [b, 2p, ..]` (PixelCNN++,
/// Salimans et al. 2017): burn's composition takes a scalar `expf` of every element, twice.
pub fn concat_elu(x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "fast-ops")]
    if on_flex(&x.device()) {
        return flex::concat_elu(x);
    }
    reference::concat_elu(x)
}

/// The end of PixelCNN++'s gated ResNet block, `x + a ⊙ σ(b)` for the halves `c = [a; b]`:
/// `[b, p, ..]`, `[b, 2p, ..] -> [b, p, ..]`.
pub fn residual_gate(x: Tensor<4>, c: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "fast-ops")]
    if on_flex(&x.device()) {
        return flex::residual_gate(x, c);
    }
    reference::residual_gate(x, c)
}

/// [`gate`] for one value pair, with the same arithmetic, so that host-side code (the cached
/// sampler) reproduces the tensor path bit for bit.
pub fn gate_value(a: f32, b: f32) -> f32 {
    #[cfg(feature = "fast-ops")]
    return kernels::tanh(a) * kernels::sigmoid(b);
    #[cfg(not(feature = "fast-ops"))]
    return a.tanh() * (1.0 / (1.0 + (-b).exp()));
}

/// Items per thread when a batch is split into one group per thread (at least one, so that an
/// empty batch still has a group size). Per-item work then allocates its buffers once per
/// group, and each group runs without waiting for the others. (Outside `linalg`, which needs
/// `fast-ops`: the cached samplers split their batch the same way on every backend.)
pub fn items_per_thread(batch: usize) -> usize {
    let batch = batch.max(1);
    batch.div_ceil(rayon::current_num_threads().clamp(1, batch))
}

/// [`gate_value`] over rows: `x` `[rows][2n]` (each row a then b) -> `y` `[rows][n]`,
/// vectorised along each row.
pub fn gate_rows(x: &[f32], y: &mut [f32], n: usize) {
    for (x, y) in x.chunks_exact(2 * n).zip(y.chunks_exact_mut(n)) {
        #[cfg(feature = "fast-ops")]
        // SAFETY: the kernel writes every element of y, and only floats.
        kernels::gate_forward(x, unsafe { kernels::slots(y) });
        #[cfg(not(feature = "fast-ops"))]
        for (j, y) in y.iter_mut().enumerate() {
            *y = gate_value(x[j], x[n + j]);
        }
    }
}

/// One LSTM cell on the host, with the arithmetic of [`lstm_scan`]: `gates` `[4h]` (o, f, i,
/// g), `c_prev` `[h]` -> `c`, `h` `[h]`; for the cached samplers.
pub fn lstm_cell_value(gates: &[f32], c_prev: &[f32], c: &mut [f32], h: &mut [f32]) {
    #[cfg(feature = "fast-ops")]
    {
        kernels::lstm_cell_forward(gates, c_prev, c);
        kernels::lstm_output_forward(gates, c, h);
    }
    #[cfg(not(feature = "fast-ops"))]
    {
        let n = c.len();
        let sigmoid = |x: f32| 1.0 / (1.0 + (-x).exp());
        for k in 0..n {
            let (o, f, i, g) = (gates[k], gates[n + k], gates[2 * n + k], gates[3 * n + k]);
            c[k] = sigmoid(f) * c_prev[k] + sigmoid(i) * g.tanh();
            h[k] = sigmoid(o) * c[k].tanh();
        }
    }
}

/// A whole convolutional LSTM recurrence (the PixelRNN layers): `x` `[b, 4h, T, L]` holds the
/// input-to-state gate terms (biases included) for T steps of L positions, `w` `[4h, h, k]`
/// the state-to-state kernel, a 1-D convolution along the positions that reads
/// `l + kk - pad_before`; returns every step's hidden state `[b, h, T, L]`:
///
/// ```text
/// (h_t, c_t) = lstm_step(x_t + w ⊛ h_{t-1}, c_{t-1}),   h_{-1} = c_{-1} = 0
/// ```
///
/// with the cell of [`reference::lstm_step`].
pub fn lstm_scan(x: Tensor<4>, w: Tensor<3>, pad_before: usize) -> Tensor<4> {
    #[cfg(feature = "fast-ops")]
    if on_flex(&x.device()) {
        return flex::lstm_scan(x, w, pad_before);
    }
    reference::lstm_scan(x, w, pad_before)
}

/// [`lstm_scan`] along the diagonals of an image (the Diagonal BiLSTM): `x` `[b, 4h, H, W]`
/// holds the input-to-state gate terms of every pixel, `pad` `[4h]` those of a zero input
/// (the biases); returns `[b, h, H, W]`. Step t visits the pixels (r, t - r), t < W + H - 1,
/// which is what [`lstm_scan`] over the columns of the skewed map does
/// ([`crate::nn::conv_lstm::skew`], zero input where the skew pads). `reverse` runs on the
/// mirrored image and mirrors the result back: the right-to-left direction.
pub fn diagonal_lstm_scan(
    x: Tensor<4>,
    pad: Tensor<1>,
    w: Tensor<3>,
    pad_before: usize,
    reverse: bool,
) -> Tensor<4> {
    #[cfg(feature = "fast-ops")]
    if on_flex(&x.device()) {
        return flex::diagonal_scan(x, pad, w, pad_before, reverse);
    }
    reference::diagonal_lstm_scan(x, pad, w, pad_before, reverse)
}

/// A stride-1, "same"-padded `kernel x kernel` convolution that reads only the first `T` taps
/// of the window in raster order, the taps a causal mask keeps: `x` `[b, C, H, W]`, `w`
/// `[O, C, T]` (the kept taps' weights, already masked where a mask cuts a tap by channel),
/// `bias` `[O]` -> `[b, O, H, W]`. See [`causal_conv`] for the kernel.
pub fn causal_conv2d(x: Tensor<4>, w: Tensor<3>, bias: Tensor<1>, kernel: usize) -> Tensor<4> {
    window_conv2d(x, w, bias, Window::centred(kernel))
}

/// A stride-1 convolution over the first `T` taps (raster order) of `window`, output the size
/// of the input: `x` `[b, C, H, W]`, `w` `[O, C, T]`, `bias` `[O]` -> `[b, O, H, W]`.
/// [`causal_conv2d`] is the centred case; a padded convolution ([`Window::padded`]) the case
/// with every tap live.
pub fn window_conv2d(x: Tensor<4>, w: Tensor<3>, bias: Tensor<1>, window: Window) -> Tensor<4> {
    #[cfg(feature = "fast-ops")]
    if on_flex(&x.device()) {
        return flex::causal_conv(x, w, bias, window);
    }
    reference::window_conv2d(x, w, bias, window)
}

/// Where a convolution's taps lie: a `height x width` window whose output pixel sits at row
/// `top`, column `left` of it (so the window spans rows `y - top ..= y - top + height - 1`).
/// Stride 1, output the size of the input, zeros outside the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub height: usize,
    pub width: usize,
    pub top: usize,
    pub left: usize,
}

impl Window {
    /// A `kernel x kernel` window centred on the pixel (the masked convolutions).
    pub fn centred(kernel: usize) -> Self {
        Self {
            height: kernel,
            width: kernel,
            top: kernel / 2,
            left: kernel / 2,
        }
    }

    /// The window of a `[kh, kw]` kernel with zero padding `(top, bottom, left, right)`, if
    /// that padding keeps the output the size of the input.
    pub fn padded(
        [height, width]: [usize; 2],
        [top, bottom, left, right]: [usize; 4],
    ) -> Option<Self> {
        (height >= 1 && width >= 1 && top + bottom + 1 == height && left + right + 1 == width)
            .then_some(Self {
                height,
                width,
                top,
                left,
            })
    }

    pub fn size(&self) -> usize {
        self.height * self.width
    }

    /// Tap t (raster order) as a (row, column) offset from the output pixel.
    pub fn offset(&self, t: usize) -> (isize, isize) {
        (
            (t / self.width) as isize - self.top as isize,
            (t % self.width) as isize - self.left as isize,
        )
    }
}

/// One Adam step on a parameter (Kingma & Ba 2015, Algorithm 1) in one pass over θ, its
/// gradient and both moments: `[θ', m', v']`. burn's Adam spends about ten tensor ops (each a
/// pass and an allocation) on the same update.
pub fn adam_update<const D: usize>(
    theta: Tensor<D>,
    grad: Tensor<D>,
    m: Tensor<D>,
    v: Tensor<D>,
    scalars: kernels::AdamScalars,
) -> [Tensor<D>; 3] {
    #[cfg(feature = "fast-ops")]
    if on_flex(&theta.device()) {
        return flex::adam_update(theta, grad, m, v, scalars);
    }
    reference::adam_update(theta, grad, m, v, scalars)
}

/// The Bernoulli log-likelihood of `images` in [0, 1] under `logits`, elementwise, in nats:
/// `x log σ(l) + (1 - x) log σ(-l) = x l - softplus(l)`, one pass with a vectorised softplus
/// instead of two libm `log_sigmoid`s.
pub fn bernoulli_log_prob(logits: Tensor<4>, images: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "fast-ops")]
    if on_flex(&logits.device()) {
        return flex::bernoulli_log_prob(logits, images);
    }
    reference::bernoulli_log_prob(logits, images)
}

/// The same ops as plain burn compositions: the definition the fused kernels are tested
/// against, and the path on builds without `fast-ops`.
pub mod reference {
    use burn::tensor::Tensor;
    use burn::tensor::activation::{sigmoid, tanh};

    pub fn gate(x: Tensor<4>) -> Tensor<4> {
        let [a, b]: [Tensor<4>; 2] = x.chunk(2, 1).try_into().expect("even channel count");
        tanh(a) * sigmoid(b)
    }

    /// `elu(v) = max(v, 0) + (exp(min(v, 0)) - 1)`, written so that no branch overflows (burn's
    /// `elu` takes `exp` of large positive inputs too, whose infinite gradient would poison the
    /// backward pass through the masked branch).
    pub fn elu(x: Tensor<4>) -> Tensor<4> {
        let negative = x.clone().clamp_max(0.0);
        x.clamp_min(0.0) + negative.exp().sub_scalar(1.0)
    }

    pub fn concat_elu(x: Tensor<4>) -> Tensor<4> {
        elu(Tensor::cat(vec![x.clone(), x.neg()], 1))
    }

    pub fn residual_gate(x: Tensor<4>, c: Tensor<4>) -> Tensor<4> {
        let [a, b]: [Tensor<4>; 2] = c.chunk(2, 1).try_into().expect("even channel count");
        x + a * sigmoid(b)
    }

    /// One LSTM step (van den Oord et al. 2016, Eq. 3): `gates` `[b, 4h, ..]` are the
    /// pre-activations in the order o, f, i, g, `c_prev` `[b, h, ..]`; returns `(h, c)`:
    ///
    /// ```text
    /// c = σ(f) ⊙ c_prev + σ(i) ⊙ tanh(g)
    /// h = σ(o) ⊙ tanh(c)
    /// ```
    pub fn lstm_step(gates: Tensor<4>, c_prev: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let [o, f, i, g]: [Tensor<4>; 4] = gates
            .chunk(4, 1)
            .try_into()
            .expect("channels divisible by 4");
        let c = sigmoid(f) * c_prev + sigmoid(i) * tanh(g);
        (sigmoid(o) * tanh(c.clone()), c)
    }

    /// Mirror, skew (`pad` where the skew adds positions), scan the skewed columns,
    /// unskew, mirror back: the layer as the paper draws it.
    pub fn diagonal_lstm_scan(
        x: Tensor<4>,
        pad: Tensor<1>,
        w: Tensor<3>,
        pad_before: usize,
        reverse: bool,
    ) -> Tensor<4> {
        use crate::nn::conv_lstm::{skew, unskew};
        let [_, four_h, _, width] = x.dims();
        let x = if reverse { x.flip([3]) } else { x };
        let pad = pad.reshape([1, four_h, 1, 1]);
        // [b, 4h, H, W + H - 1] -> steps are the skewed columns, positions the rows
        let skewed = (skew(x - pad.clone()) + pad).swap_dims(2, 3);
        let states = unskew(lstm_scan(skewed, w, pad_before).swap_dims(2, 3), width);
        if reverse { states.flip([3]) } else { states }
    }

    pub fn bernoulli_log_prob(logits: Tensor<4>, images: Tensor<4>) -> Tensor<4> {
        use burn::tensor::activation::log_sigmoid;
        let zeros = images.clone().neg().add_scalar(1.0);
        log_sigmoid(logits.clone()) * images + log_sigmoid(logits.neg()) * zeros
    }

    /// burn's Adam arithmetic, op by op.
    pub fn adam_update<const D: usize>(
        theta: Tensor<D>,
        grad: Tensor<D>,
        m: Tensor<D>,
        v: Tensor<D>,
        s: super::kernels::AdamScalars,
    ) -> [Tensor<D>; 3] {
        let m = m.mul_scalar(s.beta_1) + grad.clone().mul_scalar(1.0 - s.beta_1);
        let v = v.mul_scalar(s.beta_2) + grad.square().mul_scalar(1.0 - s.beta_2);
        let update =
            m.clone().mul_scalar(s.step_factor) / v.clone().sqrt().add_scalar(s.epsilon_scaled);
        [theta - update.mul_scalar(s.lr), m, v]
    }

    /// The dense convolution with the dropped taps as zeros.
    pub fn causal_conv2d(x: Tensor<4>, w: Tensor<3>, bias: Tensor<1>, kernel: usize) -> Tensor<4> {
        window_conv2d(x, w, bias, super::Window::centred(kernel))
    }

    /// The taps past `T` as zero weights, then burn's dense convolution.
    pub fn window_conv2d(
        x: Tensor<4>,
        w: Tensor<3>,
        bias: Tensor<1>,
        window: super::Window,
    ) -> Tensor<4> {
        use burn::tensor::module::conv2d;
        use burn::tensor::ops::ConvOptions;
        let [out_channels, in_channels, taps] = w.dims();
        let dense = if taps < window.size() {
            let dropped = Tensor::zeros(
                [out_channels, in_channels, window.size() - taps],
                &w.device(),
            );
            Tensor::cat(vec![w, dropped], 2)
        } else {
            w
        };
        let dense = dense.reshape([out_channels, in_channels, window.height, window.width]);
        let padding = [
            (window.top, window.height - 1 - window.top),
            (window.left, window.width - 1 - window.left),
        ];
        conv2d(
            x,
            dense,
            Some(bias),
            ConvOptions::new_with_padding([1, 1], padding, [1, 1], 1),
        )
    }

    pub fn lstm_scan(x: Tensor<4>, w: Tensor<3>, pad_before: usize) -> Tensor<4> {
        use burn::tensor::module::conv2d;
        use burn::tensor::ops::ConvOptions;
        let [b, _, _, positions] = x.dims();
        let [four_h, hidden, kernel] = w.dims();
        let w = w.reshape([four_h, hidden, 1, kernel]);
        let padding = [(0, 0), (pad_before, kernel - 1 - pad_before)];
        let options = ConvOptions::new_with_padding([1, 1], padding, [1, 1], 1);
        let mut h = Tensor::zeros([b, hidden, 1, positions], &x.device());
        let mut c = h.clone();
        let mut steps = Vec::new();
        for x_t in crate::nn::conv_lstm::unstack(x, 2) {
            let gates = x_t + conv2d(h, w.clone(), None, options.clone());
            (h, c) = lstm_step(gates, c);
            steps.push(h.clone());
        }
        Tensor::cat(steps, 2)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution};

    std::thread_local! {
        /// One generator per test (libtest runs each on its own thread), so every test draws
        /// the same numbers on every run and machine: a failure reproduces.
        static RNG: std::cell::RefCell<rand_chacha::ChaCha8Rng> =
            std::cell::RefCell::new(rand::SeedableRng::seed_from_u64(0));
    }

    /// N(0, std²) entries, drawn on the host from the test's own seeded generator.
    fn normal<const D: usize>(shape: [usize; D], std: f32, device: &Device) -> Tensor<D> {
        use rand::Rng;
        let n = shape.iter().product::<usize>();
        let values: Vec<f32> = RNG.with_borrow_mut(|rng| {
            (0..n)
                .map(|_| {
                    // Box-Muller: u1 in (0, 1] keeps the log finite.
                    let u1 = 1.0 - rng.random::<f64>();
                    let u2 = rng.random::<f64>();
                    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                    (z * std as f64) as f32
                })
                .collect()
        });
        Tensor::from_data(burn::tensor::TensorData::new(values, shape), device)
    }

    fn random(shape: [usize; 4], scale: f32, device: &Device) -> Tensor<4> {
        normal(shape, scale, device)
    }

    /// The largest elementwise |a - b|.
    pub(crate) fn max_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
        let (a, b): (Vec<f32>, Vec<f32>) = (
            a.try_into_vec_as::<f32>().unwrap(),
            b.try_into_vec_as::<f32>().unwrap(),
        );
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    /// Asserts that each named leaf pair `(fused, reference)` got the same gradient from the two
    /// graphs, relative to the reference's largest entry (weight gradients sum many products).
    fn assert_same_grads(
        leaves: &[(&str, &Tensor<4>, &Tensor<4>)],
        fused: &burn::tensor::Gradients,
        reference: &burn::tensor::Gradients,
        at: &str,
    ) {
        for (name, a, r) in leaves {
            let (da, dr) = (a.grad(fused).unwrap(), r.grad(reference).unwrap());
            let scale = dr.clone().abs().max().into_scalar::<f32>().max(1.0);
            let d = max_diff(da, dr);
            assert!(d < 1e-5 * scale, "d {name} at {at}: {d} (scale {scale})");
        }
    }

    /// Same values on a fresh leaf, so fused and reference get separate graphs.
    fn leaf(t: &Tensor<4>) -> Tensor<4> {
        Tensor::from_data(t.to_data(), &t.device()).require_grad()
    }

    /// Shapes the models use (Gated PixelCNN feature maps, Row LSTM rows, Diagonal BiLSTM
    /// columns), a batch large enough to take the parallel path, and an empty batch.
    const SHAPES: [[usize; 4]; 5] = [
        [2, 3, 5, 7],
        [32, 16, 28, 28],
        [16, 16, 1, 28],
        [32, 16, 28, 1],
        [1, 1, 1, 1],
    ];

    /// Otherwise the comparisons below would hold the reference against itself.
    #[cfg(feature = "fast-ops")]
    #[test]
    fn flex_devices_take_the_fused_path() {
        assert!(on_flex(&Device::flex()));
        assert!(on_flex(&Device::flex().autodiff()));
    }

    #[test]
    fn the_fused_relu_matches_burns_in_value_and_gradient_zeros_included() {
        let device = Device::flex().autodiff();
        for [b, p, h, w] in SHAPES {
            // Rounded to a tenth: some inputs are exactly 0, where both take the gradient as 0.
            let x = (random([b, p, h, w], 1.0, &device) * 10.0).round() / 10.0;
            let weight = random([b, p, h, w], 1.0, &device);
            let (x1, x2) = (leaf(&x), leaf(&x));
            let (y1, y2) = (relu(x1.clone()), burn::tensor::activation::relu(x2.clone()));
            let g1 = (y1.clone() * weight.clone()).sum().backward();
            let g2 = (y2.clone() * weight).sum().backward();
            assert_eq!(max_diff(y1, y2), 0.0, "relu forward at {b}x{p}x{h}x{w}");
            let d = max_diff(x1.grad(&g1).unwrap(), x2.grad(&g2).unwrap());
            assert_eq!(d, 0.0, "relu gradient at {b}x{p}x{h}x{w}");
        }
        let plain = Device::flex();
        let x = random([40, 16, 8, 8], 1.0, &plain);
        assert_eq!(
            max_diff(relu(x.clone()), burn::tensor::activation::relu(x)),
            0.0
        );
    }

    #[test]
    fn the_fused_concat_elu_matches_elu_of_the_concatenation_in_value_and_gradient() {
        let device = Device::flex().autodiff();
        for [b, p, h, w] in SHAPES {
            // Scale 3: both branches of elu, and exp far into its tail.
            let x = random([b, p, h, w], 3.0, &device);
            let weight = random([b, 2 * p, h, w], 1.0, &device);
            let (x1, x2) = (leaf(&x), leaf(&x));
            let (y1, y2) = (concat_elu(x1.clone()), reference::concat_elu(x2.clone()));
            let g1 = (y1.clone() * weight.clone()).sum().backward();
            let g2 = (y2.clone() * weight).sum().backward();
            let d = max_diff(y1, y2);
            assert!(d < 1e-6, "concat_elu forward at {b}x{p}x{h}x{w}: {d}");
            let d = max_diff(x1.grad(&g1).unwrap(), x2.grad(&g2).unwrap());
            assert!(d < 1e-5, "concat_elu gradient at {b}x{p}x{h}x{w}: {d}");
        }
        // The inference device takes the fused path too.
        let plain = Device::flex();
        let x = random([2, 3, 4, 5], 3.0, &plain);
        let d = max_diff(concat_elu(x.clone()), reference::concat_elu(x));
        assert!(d < 1e-6, "concat_elu forward, no autodiff: {d}");
    }

    #[test]
    fn the_fused_residual_gate_matches_x_plus_a_times_sigmoid_b_in_value_and_gradients() {
        let device = Device::flex().autodiff();
        let largest = |t: &Tensor<4>| t.clone().abs().max().into_scalar::<f32>();
        for [b, p, h, w] in SHAPES {
            let x = random([b, p, h, w], 1.0, &device);
            let c = random([b, 2 * p, h, w], 3.0, &device);
            let weight = random([b, p, h, w], 1.0, &device);
            let (x1, x2, c1, c2) = (leaf(&x), leaf(&x), leaf(&c), leaf(&c));
            let y1 = residual_gate(x1.clone(), c1.clone());
            let y2 = reference::residual_gate(x2.clone(), c2.clone());
            let g1 = (y1.clone() * weight.clone()).sum().backward();
            let g2 = (y2.clone() * weight.clone()).sum().backward();
            // The kernels' σ is within 1e-6 of libm's (kernels' tests), and y, dc multiply it
            // by a and by the incoming gradient: the bounds scale with them.
            let (a, g) = (largest(&c), largest(&weight));
            let d = max_diff(y1, y2);
            assert!(
                d < 1e-6 * (1.0 + a),
                "residual_gate forward at {b}x{p}x{h}x{w}: {d}"
            );
            let d = max_diff(x1.grad(&g1).unwrap(), x2.grad(&g2).unwrap());
            assert!(d == 0.0, "residual_gate dx at {b}x{p}x{h}x{w}: {d}");
            let d = max_diff(c1.grad(&g1).unwrap(), c2.grad(&g2).unwrap());
            let bound = 2e-6 * g * (1.0 + a);
            assert!(
                d < bound,
                "residual_gate dc at {b}x{p}x{h}x{w}: {d} (bound {bound})"
            );
        }
    }

    #[test]
    fn the_fused_gate_matches_tanh_times_sigmoid_in_value_and_gradient() {
        let device = Device::flex().autodiff();
        for [b, p, h, w] in SHAPES {
            let x = random([b, 2 * p, h, w], 3.0, &device);
            let weight = random([b, p, h, w], 1.0, &device);
            let (x1, x2) = (leaf(&x), leaf(&x));
            let (y1, y2) = (gate(x1.clone()), reference::gate(x2.clone()));
            let g1 = (y1.clone() * weight.clone()).sum().backward();
            let g2 = (y2.clone() * weight).sum().backward();
            assert!(max_diff(y1, y2) < 1e-6, "gate forward at {b}x{p}x{h}x{w}");
            let d = max_diff(x1.grad(&g1).unwrap(), x2.grad(&g2).unwrap());
            assert!(d < 1e-5, "gate gradient at {b}x{p}x{h}x{w}: {d}");
        }
    }

    #[test]
    fn the_fused_lstm_scan_matches_the_step_by_step_loop_in_value_and_gradients() {
        // (batch, hidden, steps, positions, kernel, pad_before): the Row LSTM's 1 x 3 (pad 1),
        // the Diagonal BiLSTM's 2 x 1 (pad 1), a 1 x 1, a one-sided kernel, a size that
        // takes the threaded GEMM path, and an empty batch.
        let cases = [
            (3, 2, 4, 5, 3, 1),
            (2, 3, 5, 4, 2, 1),
            (2, 2, 3, 3, 1, 0),
            (1, 2, 4, 6, 3, 0),
            (32, 16, 3, 28, 2, 1),
            (0, 2, 3, 4, 3, 1),
        ];
        for device in [Device::flex(), Device::flex().autodiff()] {
            let tracked = device.is_autodiff();
            for (b, hidden, steps, positions, kernel, pad) in cases {
                let at = format!("b{b} h{hidden} T{steps} L{positions} k{kernel} pad{pad}");
                let x = random([b, 4 * hidden, steps, positions], 2.0, &device);
                // A recurrent kernel of the scale a model starts from (variance 1/fan-in), so
                // the recurrence contracts: with N(0, 0.5²) entries a 16-unit state is chaotic,
                // and one rounding difference (our tanh is within 3e-7 of libm's) grew past
                // 1e-5 over 28 steps on one machine in CI.
                let std = 1.0 / ((hidden * kernel) as f32).sqrt();
                let w = normal([4 * hidden, hidden, kernel], std, &device);
                let weight = random([b, hidden, steps, positions], 1.0, &device);
                let fresh_x = || {
                    let t = Tensor::<4>::from_data(x.to_data(), &device);
                    if tracked { t.require_grad() } else { t }
                };
                let fresh_w = || {
                    let t = Tensor::<4>::from_data(w.clone().unsqueeze::<4>().to_data(), &device);
                    if tracked { t.require_grad() } else { t }
                };
                let (x1, x2, w1, w2) = (fresh_x(), fresh_x(), fresh_w(), fresh_w());
                let squeeze_w = |t: &Tensor<4>| t.clone().reshape([4 * hidden, hidden, kernel]);
                let y1 = lstm_scan(x1.clone(), squeeze_w(&w1), pad);
                let y2 = reference::lstm_scan(x2.clone(), squeeze_w(&w2), pad);
                assert!(max_diff(y1.clone(), y2.clone()) < 1e-5, "forward at {at}");
                if !tracked || b == 0 {
                    continue; // an empty batch: its forward is the check (burn has no graph)
                }
                let g1 = (y1 * weight.clone()).sum().backward();
                let g2 = (y2 * weight).sum().backward();
                let d = max_diff(x1.grad(&g1).unwrap(), x2.grad(&g2).unwrap());
                assert!(d < 1e-4, "d x at {at}: {d}");
                assert_same_grads(&[("w", &w1, &w2)], &g1, &g2, &at);
            }
        }
    }

    #[test]
    fn the_diagonal_scan_matches_skew_scan_unskew_in_value_and_gradients() {
        // (batch, hidden, height, width, reverse): the model's 2 x 1 state kernel (pad 1) on
        // square, tall, wide and one-pixel images in both directions, the model's size, and an
        // empty batch.
        let cases = [
            (2, 2, 4, 4, false),
            (2, 3, 5, 3, true),
            (3, 2, 3, 6, false),
            (1, 2, 6, 2, true),
            (2, 1, 1, 1, true),
            (16, 16, 28, 28, true),
            (0, 2, 3, 4, false),
        ];
        for device in [Device::flex(), Device::flex().autodiff()] {
            let tracked = device.is_autodiff();
            for (b, hidden, height, width, reverse) in cases {
                let at = format!("b{b} h{hidden} {height}x{width} reverse {reverse}");
                let x = random([b, 4 * hidden, height, width], 2.0, &device);
                // The recurrent kernel at variance 1/fan-in, as in the Row LSTM test above: at
                // N(0, 0.5²) the 16-unit case is chaotic and once (CI, 2026-12-03) amplified a
                // rounding difference to more than 1e-5 over its 55 diagonals.
                let w = normal(
                    [4 * hidden, hidden, 2],
                    1.0 / (2.0 * hidden as f32).sqrt(),
                    &device,
                );
                let pad = normal([4 * hidden], 0.5, &device);
                let weight = random([b, hidden, height, width], 1.0, &device);
                let fresh = |data| {
                    let t = Tensor::<4>::from_data(data, &device);
                    if tracked { t.require_grad() } else { t }
                };
                let (x1, x2) = (fresh(x.to_data()), fresh(x.to_data()));
                let w_data = w.clone().unsqueeze::<4>().to_data();
                let pad_data = pad.clone().reshape([1, 1, 1, 4 * hidden]).to_data();
                let (w1, w2) = (fresh(w_data.clone()), fresh(w_data));
                let (p1, p2) = (fresh(pad_data.clone()), fresh(pad_data));
                let squeeze_w = |t: &Tensor<4>| t.clone().reshape([4 * hidden, hidden, 2]);
                let squeeze_p = |t: &Tensor<4>| t.clone().reshape([4 * hidden]);
                let y1 = diagonal_lstm_scan(x1.clone(), squeeze_p(&p1), squeeze_w(&w1), 1, reverse);
                let y2 = reference::diagonal_lstm_scan(
                    x2.clone(),
                    squeeze_p(&p2),
                    squeeze_w(&w2),
                    1,
                    reverse,
                );
                assert!(max_diff(y1.clone(), y2.clone()) < 1e-5, "forward at {at}");
                if !tracked || b == 0 {
                    continue; // an empty batch: its forward is the check (burn has no graph)
                }
                let g1 = (y1 * weight.clone()).sum().backward();
                let g2 = (y2 * weight).sum().backward();
                let d = max_diff(x1.grad(&g1).unwrap(), x2.grad(&g2).unwrap());
                assert!(d < 1e-4, "d x at {at}: {d}");
                assert_same_grads(&[("w", &w1, &w2), ("pad", &p1, &p2)], &g1, &g2, &at);
            }
        }
    }

    #[test]
    fn the_window_conv_matches_the_dense_conv_with_zeros_for_every_model_shape() {
        let centred = Window::centred;
        let padded = |kernel, padding| Window::padded(kernel, padding).unwrap();
        let above = |rows| Window {
            height: rows + 1,
            width: 1,
            top: rows,
            left: 0,
        };
        // (batch, in, out, height, width, window, taps): the PixelCNN's 7x7 mask A (24 taps)
        // and 3x3 mask B (5), a 5x5 B (13), a colour-group centre, odd sizes, one pixel; the
        // Gated PixelCNN's vertical (2x3, 4x7 above the pixel) and horizontal (1x2, 1x4 to
        // its left) stacks and its 1x1s, the Diagonal BiLSTM's 2x1 state kernel.
        let cases = [
            (2, 1, 8, 28, 28, centred(7), 24),
            (3, 16, 16, 28, 28, centred(3), 5),
            (2, 3, 6, 7, 5, centred(5), 13),
            (2, 6, 9, 4, 6, centred(3), 5),
            (1, 2, 3, 1, 1, centred(3), 4),
            (3, 8, 16, 28, 28, padded([2, 3], [1, 0, 1, 1]), 6),
            (2, 1, 16, 9, 7, padded([4, 7], [3, 0, 3, 3]), 28),
            (3, 8, 16, 28, 28, padded([1, 2], [0, 0, 1, 0]), 2),
            (2, 1, 16, 5, 6, padded([1, 4], [0, 0, 3, 0]), 4),
            (3, 16, 8, 28, 28, padded([1, 1], [0; 4]), 1),
            (2, 4, 16, 6, 1, padded([2, 1], [1, 0, 0, 0]), 2),
            // One tap whole rows up, run on blocks of the image's columns without im2col: the
            // Gated PixelCNN's vertical-to-horizontal link (one row), three rows, and a shift
            // past the whole image (output = bias, no gradient into x).
            (3, 16, 8, 28, 28, above(1), 1),
            (2, 3, 5, 5, 4, above(3), 1),
            (2, 4, 5, 1, 6, above(1), 1),
            // Small images, several to a product (their im2col blocks side by side), with a
            // last product of fewer images than the others: PixelCNN++'s 7x7 and 14x14 down
            // and down-right windows, a mask B on 3x4, a window wider than a one-pixel-wide image.
            (7, 5, 7, 7, 7, padded([2, 3], [1, 0, 1, 1]), 6),
            (9, 4, 6, 5, 5, padded([2, 2], [1, 0, 1, 0]), 4),
            (5, 3, 4, 3, 4, centred(3), 5),
            (6, 2, 3, 4, 1, padded([2, 3], [1, 0, 1, 1]), 6),
        ];
        for device in [Device::flex(), Device::flex().autodiff()] {
            let tracked = device.is_autodiff();
            for (b, c, o, h, w, window, taps) in cases {
                let at = format!("b{b} {c}->{o} {h}x{w} {window:?} T{taps}");
                let x = random([b, c, h, w], 1.0, &device);
                let weight = normal([o, c, taps], 0.3, &device);
                let bias = normal([o], 0.3, &device);
                let probe = random([b, o, h, w], 1.0, &device);
                let fresh = |data: burn::tensor::TensorData| {
                    let t = Tensor::<4>::from_data(data, &device);
                    if tracked { t.require_grad() } else { t }
                };
                let (x1, x2) = (fresh(x.to_data()), fresh(x.to_data()));
                let w4 = weight.clone().unsqueeze::<4>();
                let (w1, w2) = (fresh(w4.to_data()), fresh(w4.to_data()));
                let b4 = bias.clone().reshape([1, 1, 1, o]);
                let (b1, b2) = (fresh(b4.to_data()), fresh(b4.to_data()));
                let y1 = window_conv2d(
                    x1.clone(),
                    w1.clone().reshape([o, c, taps]),
                    b1.clone().reshape([o]),
                    window,
                );
                let y2 = reference::window_conv2d(
                    x2.clone(),
                    w2.clone().reshape([o, c, taps]),
                    b2.clone().reshape([o]),
                    window,
                );
                assert!(max_diff(y1.clone(), y2.clone()) < 1e-5, "forward at {at}");
                if !tracked {
                    continue;
                }
                let g1 = (y1 * probe.clone()).sum().backward();
                let g2 = (y2 * probe).sum().backward();
                let leaves = [("x", &x1, &x2), ("w", &w1, &w2), ("bias", &b1, &b2)];
                assert_same_grads(&leaves, &g1, &g2, &at);
            }
        }
    }

    #[test]
    fn the_fused_bernoulli_likelihood_matches_log_sigmoid_in_value_and_gradients() {
        let device = Device::flex().autodiff();
        for shape in [[2, 1, 5, 7], [32, 1, 28, 28], [128, 1, 28, 28]] {
            // Logits up to |l| ~ 30 and targets both binary and grey.
            let logits = random(shape, 8.0, &device);
            let binary = random(shape, 1.0, &device).greater_elem(0.0).float();
            let grey = Tensor::<4>::random(shape, Distribution::Uniform(0.0, 1.0), &device);
            for images in [binary, grey] {
                let (l1, l2) = (leaf(&logits), leaf(&logits));
                let (x1, x2) = (leaf(&images), leaf(&images));
                let y1 = bernoulli_log_prob(l1.clone(), x1.clone());
                let y2 = reference::bernoulli_log_prob(l2.clone(), x2.clone());
                let d = max_diff(y1.clone(), y2.clone());
                assert!(d < 2e-5, "forward {shape:?}: {d}");
                let weight = random(shape, 1.0, &device);
                let g1 = (y1 * weight.clone()).sum().backward();
                let g2 = (y2 * weight).sum().backward();
                let d = max_diff(l1.grad(&g1).unwrap(), l2.grad(&g2).unwrap());
                assert!(d < 1e-5, "d logits {shape:?}: {d}");
                let d = max_diff(x1.grad(&g1).unwrap(), x2.grad(&g2).unwrap());
                assert!(d < 1e-4, "d images {shape:?}: {d}");
            }
        }
    }

    #[test]
    fn the_fused_ops_run_on_the_inference_device_and_on_strided_views() {
        let device = Device::flex();
        let x = random([2, 8, 5, 3], 3.0, &device);
        // A permuted view: the op must read it in logical order, not storage order.
        let view = x.clone().permute([0, 1, 3, 2]);
        assert!(max_diff(gate(view.clone()), reference::gate(view.clone())) < 1e-6);
        let logits = random([2, 1, 3, 5], 4.0, &device).permute([0, 1, 3, 2]);
        let images = random([2, 1, 5, 3], 1.0, &device).greater_elem(0.0).float();
        let d = max_diff(
            bernoulli_log_prob(logits.clone(), images.clone()),
            reference::bernoulli_log_prob(logits, images),
        );
        assert!(d < 2e-5);
    }
}
