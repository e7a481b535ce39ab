//! The burn side of the burn-vs-PyTorch benchmark. `bench/torch_side.py` is the PyTorch side,
//! `bench/compare.py` runs both alternately and prints the table, `bench/run.sh` does it all.
//!
//! ```text
//! versus_pytorch WORKLOAD [--steps N] [--warmup N]
//! ```
//! prints one JSON line: `{"side", "workload", "loss0", "ms": [...], "peak_rss_kib"}`.
//!
//! Both sides build the same networks with the same weights, from one formula
//! ([`fixed`]: value i of tensor `tag` is `scale * sin(0.37 i + tag)`, in PyTorch's layout),
//! and report `loss0`, the loss on fixed inputs before any update, so that the runner can
//! refuse a fast kernel that computes something else.
//!
//! The workloads (issue 5):
//! - `pixelcnn`: one training step, batch 32x1x28x28, 7x7 mask-A conv 1->64, six 3x3 mask-B
//!   convs 64->64, ReLU after each, 1x1 conv 64->1, Bernoulli NLL (nats per image), Adam.
//! - `vae`: one training step, batch 128, 784-400-(20,20), 20-400-784, ReLU, Bernoulli NLL + KL
//!   (nats per image), Adam.
//! - `row-lstm`: a Row-LSTM-like loop, forward and backward: a 1x3 input-to-state conv over the
//!   whole map, then 28 sequential rows of a 1x3 state-to-state conv and the LSTM gates (i, f,
//!   o, g), batch 16, 32 channels, width 28; loss mean(h^2). The burn side runs genmodels' own
//!   Row LSTM path (the fused `lstm_scan` op).
//! - `sample`: naive sampling from the `pixelcnn` network, batch 16: 784 full forward passes.
//! - `gemm`: a 2048x2048x2048 matrix product (the practical peak of the machine).
//!
//! The real models (issue 15): `real-pixelcnn`, `real-gated`, `real-row-lstm`, `real-diagonal`,
//! `real-vae` and `real-pixelcnn-pp` (configs/pixelcnn-pp-mnist8.toml) are one training step of the crate's own model, built from the shipped
//! config (`configs/*-bmnist.toml`) with `genmodels::train::init_model` and trained as the
//! trainer trains it: `Trainable::loss` on a batch of the config's size, backward, and the
//! config's optimiser (`genmodels::train::optimizer`: Adam, epsilon 1e-8, the config's
//! per-tensor gradient clipping). `score-pixelcnn`, `score-gated`, `score-row-lstm` and
//! `score-diagonal` are the exact NLL of one batch without autodiff, as the evaluator scores.
//! Weights are not a formula here: `--weights FILE` writes the freshly built model's
//! parameters (safetensors, PyTorch's layout) for the PyTorch side to load. `loss0` is the
//! trainer's loss on `fixed_binary` images before any update; for the VAE, whose loss draws
//! ε from the device, it is the same negative ELBO with a fixed ε (`fixed(b * latent, 41, 1)`).

use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use genmodels::nn::dist::PixelHead;
use genmodels::nn::fused::{Window, lstm_scan, window_conv2d};
use genmodels::nn::masked_conv::{MaskType, MaskedConv2d};
use std::time::Instant;

fn main() {
    genmodels::allocator::tune(); // as the genmodels command does
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.parse().expect("a number"))
            .unwrap_or(default)
    };
    let Some(workload) = args.first().filter(|a| !a.starts_with("--")) else {
        eprintln!(
            "usage: versus_pytorch pixelcnn|vae|row-lstm|sample|gemm|real-MODEL|score-MODEL \\
             [--steps N] [--warmup N] [--weights FILE.safetensors]"
        );
        std::process::exit(2);
    };
    let (steps, warmup) = (flag("--steps", 20), flag("--warmup", 3));
    let weights = args
        .iter()
        .position(|a| a == "--weights")
        .and_then(|i| args.get(i + 1))
        .map(std::path::PathBuf::from);
    if let Some(real) = workload.strip_prefix("real-") {
        let (loss0, ms) = real_steps(real, steps, warmup, weights.as_deref());
        print_result(workload, loss0, ms);
        return;
    }
    if let Some(real) = workload.strip_prefix("score-") {
        let (loss0, ms) = score_runs(real, steps, warmup, weights.as_deref());
        print_result(workload, loss0, ms);
        return;
    }
    let (loss0, ms) = match workload.as_str() {
        "pixelcnn" => pixelcnn_steps(steps, warmup),
        "vae" => vae_steps(steps, warmup),
        "row-lstm" => row_lstm_steps(steps, warmup),
        "sample" => sample_runs(steps, warmup),
        "gemm" => gemm_runs(steps, warmup),
        other => {
            eprintln!("unknown workload {other}");
            std::process::exit(2);
        }
    };
    print_result(workload, loss0, ms);
}

fn print_result(workload: &str, loss0: f64, ms: Vec<f64>) {
    println!(
        "{}",
        serde_json::json!({
            "side": "burn", "workload": workload, "loss0": loss0, "ms": ms,
            "peak_rss_kib": peak_rss_kib(),
        })
    );
}

/// Value i of fixed tensor `tag`: `scale * sin(0.37 i + tag)`, computed in f64.
fn fixed(n: usize, tag: f64, scale: f64) -> Vec<f32> {
    (0..n)
        .map(|i| (scale * (0.37 * i as f64 + tag).sin()) as f32)
        .collect()
}

/// Fixed binary images: 1 where `sin(0.37 i + tag) > 0.3`.
fn fixed_binary(n: usize, tag: f64) -> Vec<f32> {
    (0..n)
        .map(|i| f32::from((0.37 * i as f64 + tag).sin() > 0.3))
        .collect()
}

fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// A conv weight `[o, i, kh, kw]` and bias `[o]`, scaled by 1/sqrt(fan-in).
fn conv_params(
    shape: [usize; 4],
    tag: f64,
    device: &Device,
) -> (Param<Tensor<4>>, Param<Tensor<1>>) {
    let [o, i, kh, kw] = shape;
    let scale = 1.0 / ((i * kh * kw) as f64).sqrt();
    (
        Param::from_tensor(tensor(fixed(o * i * kh * kw, tag, scale), shape, device)),
        Param::from_tensor(tensor(fixed(o, tag + 0.5, 0.1), [o], device)),
    )
}

/// A linear layer's weight, stored `[in, out]` for `x.matmul(w)` but filled in PyTorch's
/// `[out, in]` order, and bias `[out]`.
fn linear_params(
    inputs: usize,
    outputs: usize,
    tag: f64,
    device: &Device,
) -> (Param<Tensor<2>>, Param<Tensor<1>>) {
    let scale = 1.0 / (inputs as f64).sqrt();
    let torch_layout = tensor(
        fixed(outputs * inputs, tag, scale),
        [outputs, inputs],
        device,
    );
    (
        Param::from_tensor(torch_layout.transpose()),
        Param::from_tensor(tensor(fixed(outputs, tag + 0.5, 0.1), [outputs], device)),
    )
}

fn linear(x: Tensor<2>, (w, b): &(Param<Tensor<2>>, Param<Tensor<1>>)) -> Tensor<2> {
    x.matmul(w.val()) + b.val().unsqueeze()
}

/// Times `warmup + steps` calls of `step`, keeping the last `steps`.
fn time_steps(steps: usize, warmup: usize, mut step: impl FnMut()) -> Vec<f64> {
    let mut ms = Vec::with_capacity(steps);
    for i in 0..warmup + steps {
        let start = Instant::now();
        step();
        if i >= warmup {
            ms.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    ms
}

/// Times Adam steps (lr 1e-3, eps 1e-8) on `loss(&model)`, with the trainer's optimizer.
fn adam_steps<M: Module + Clone>(
    mut model: M,
    steps: usize,
    warmup: usize,
    loss: impl Fn(&M) -> Tensor<1>,
) -> Vec<f64> {
    let mut optim = genmodels::train::adam::FusedAdam::new(1e-8).init(None);
    time_steps(steps, warmup, || {
        let value = loss(&model);
        let grads = GradientsParams::from_grads(value.backward(), &model);
        model = optim.step(1e-3, model.clone(), grads);
        let _ = value.into_scalar::<f32>();
    })
}

// ---------------------------------------------------------------------------------------------
// PixelCNN

#[derive(Module, Debug)]
struct PixelCnn {
    first: MaskedConv2d,
    hidden: Vec<MaskedConv2d>,
    /// PyTorch's plain 1x1 conv: a 1x1 type-B mask keeps its one tap, as in the library.
    out: MaskedConv2d,
}

impl PixelCnn {
    fn new(device: &Device) -> Self {
        let masked = |i, o, k, mask, tag| {
            let mut layer = MaskedConv2d::new(i, o, k, mask, 1, device);
            (layer.weight, layer.bias) = conv_params([o, i, k, k], tag, device);
            layer
        };
        Self {
            first: masked(1, 64, 7, MaskType::A, 1.0),
            hidden: (0..6)
                .map(|l| masked(64, 64, 3, MaskType::B, 2.0 + l as f64))
                .collect(),
            out: masked(64, 1, 1, MaskType::B, 8.0),
        }
    }

    /// `[b, 1, 28, 28]` images -> Bernoulli logits of the same shape.
    fn logits(&self, x: Tensor<4>) -> Tensor<4> {
        let mut h = relu(self.first.forward(x));
        for layer in &self.hidden {
            h = relu(layer.forward(h));
        }
        self.out.forward(h)
    }

    /// Bernoulli NLL in nats per image (batch mean).
    fn loss(&self, x: Tensor<4>) -> Tensor<1> {
        PixelHead::bernoulli(self.logits(x.clone()))
            .log_prob(x)
            .mean()
            .neg()
    }
}

fn pixelcnn_steps(steps: usize, warmup: usize) -> (f64, Vec<f64>) {
    let device = Device::flex().autodiff();
    let shape = [32, 1, 28, 28];
    let x = tensor(fixed_binary(32 * 784, 0.25), shape, &device);
    let model = PixelCnn::new(&device);
    let loss0 = model.loss(x.clone()).into_scalar::<f32>() as f64;
    let ms = adam_steps(model, steps, warmup, |m| m.loss(x.clone()));
    (loss0, ms)
}

// ---------------------------------------------------------------------------------------------
// Naive sampling

fn sample_runs(steps: usize, warmup: usize) -> (f64, Vec<f64>) {
    use rand::{Rng, SeedableRng};
    let device = Device::flex();
    let model = PixelCnn::new(&device);
    let x = tensor(fixed_binary(32 * 784, 0.25), [32, 1, 28, 28], &device);
    let loss0 = model.loss(x).into_scalar::<f32>() as f64;
    let batch = 16;
    let ms = time_steps(steps, warmup, || {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut pixels = vec![0.0f32; batch * 784];
        for i in 0..784 {
            let images = tensor(pixels.clone(), [batch, 1, 28, 28], &device);
            let logits: Vec<f32> = model.logits(images).try_into_vec_as::<f32>().expect("f32");
            for b in 0..batch {
                let p = 1.0 / (1.0 + (-logits[b * 784 + i]).exp());
                pixels[b * 784 + i] = f32::from(rng.random::<f32>() < p);
            }
        }
    });
    (loss0, ms)
}

// ---------------------------------------------------------------------------------------------
// VAE (pytorch/examples' shape)

#[derive(Module, Debug)]
struct Vae {
    fc1: (Param<Tensor<2>>, Param<Tensor<1>>),
    fc21: (Param<Tensor<2>>, Param<Tensor<1>>),
    fc22: (Param<Tensor<2>>, Param<Tensor<1>>),
    fc3: (Param<Tensor<2>>, Param<Tensor<1>>),
    fc4: (Param<Tensor<2>>, Param<Tensor<1>>),
}

impl Vae {
    fn new(device: &Device) -> Self {
        Self {
            fc1: linear_params(784, 400, 11.0, device),
            fc21: linear_params(400, 20, 12.0, device),
            fc22: linear_params(400, 20, 13.0, device),
            fc3: linear_params(20, 400, 14.0, device),
            fc4: linear_params(400, 784, 15.0, device),
        }
    }

    /// Negative ELBO in nats per image: Bernoulli NLL of x given z = mu + sigma * eps, plus the
    /// closed-form KL to N(0, I); `x` `[b, 784]`, `eps` `[b, 20]`.
    fn loss(&self, x: Tensor<2>, eps: Tensor<2>) -> Tensor<1> {
        let [b, _] = x.dims();
        let h = relu(linear(x.clone(), &self.fc1));
        let (mu, logvar) = (linear(h.clone(), &self.fc21), linear(h, &self.fc22));
        let z = mu.clone() + logvar.clone().mul_scalar(0.5).exp() * eps;
        let logits = linear(relu(linear(z, &self.fc3)), &self.fc4);
        let nll = PixelHead::bernoulli(logits.reshape([b, 1, 28, 28]))
            .log_prob(x.reshape([b, 1, 28, 28]))
            .neg();
        let kl = (logvar.clone().add_scalar(1.0) - mu.powi_scalar(2) - logvar.exp())
            .sum_dim(1)
            .mul_scalar(-0.5)
            .reshape([b]);
        (nll + kl).mean()
    }
}

fn vae_steps(steps: usize, warmup: usize) -> (f64, Vec<f64>) {
    let device = Device::flex().autodiff();
    let x = tensor(fixed_binary(128 * 784, 0.75), [128, 784], &device);
    let eps = tensor(fixed(128 * 20, 16.0, 1.0), [128, 20], &device);
    let model = Vae::new(&device);
    let loss0 = model.loss(x.clone(), eps).into_scalar::<f32>() as f64;
    let ms = adam_steps(model, steps, warmup, |m| {
        let eps = Tensor::random([128, 20], Distribution::Normal(0.0, 1.0), &device);
        m.loss(x.clone(), eps)
    });
    (loss0, ms)
}

// ---------------------------------------------------------------------------------------------
// Row-LSTM-like loop

#[derive(Module, Debug)]
struct RowLstm {
    input_to_state: (Param<Tensor<4>>, Param<Tensor<1>>),
    state_to_state: (Param<Tensor<4>>, Param<Tensor<1>>),
}

impl RowLstm {
    /// mean(h^2) over the `[b, c, rows, w]` hidden states of a row-by-row LSTM over `x`,
    /// computed as genmodels' Row LSTM layer computes it: the input-to-state conv over the whole
    /// map, then the fused recurrence (`lstm_scan`). The weights are PyTorch's, with the gate
    /// blocks reordered from its (i, f, o, g) to our (o, f, i, g): the same function.
    fn loss(&self, x: Tensor<4>) -> Tensor<1> {
        let (wi, bi) = &self.input_to_state;
        let (ws, bs) = &self.state_to_state;
        let [four_c, c, _, k] = ws.dims();
        let bias = to_ofig(bi.val()) + to_ofig(bs.val());
        // PyTorch's centred 1 x 3 convolution, as the library's PaddedConv2d runs it.
        let row = Window::padded([1, k], [0, 0, k / 2, k / 2]).expect("a same-size window");
        let wi = to_ofig(wi.val()).reshape([four_c, c, k]);
        let input_gates = window_conv2d(x, wi, bias, row); // [b, 4c, rows, w]
        let kernel = to_ofig(ws.val()).reshape([four_c, c, k]);
        lstm_scan(input_gates, kernel, 1).powi_scalar(2).mean()
    }
}

/// Gate blocks along dim 0 from PyTorch's order (i, f, o, g) to genmodels' (o, f, i, g).
fn to_ofig<const D: usize>(t: Tensor<D>) -> Tensor<D> {
    let [i, f, o, g]: [Tensor<D>; 4] = t.chunk(4, 0).try_into().expect("4 gate blocks");
    Tensor::cat(vec![o, f, i, g], 0)
}

fn row_lstm_steps(steps: usize, warmup: usize) -> (f64, Vec<f64>) {
    let device = Device::flex().autodiff();
    let model = RowLstm {
        input_to_state: conv_params([128, 32, 1, 3], 21.0, &device),
        state_to_state: conv_params([128, 32, 1, 3], 22.0, &device),
    };
    let x = tensor(
        fixed(16 * 32 * 28 * 28, 23.0, 1.0),
        [16, 32, 28, 28],
        &device,
    );
    let loss0 = model.loss(x.clone()).into_scalar::<f32>() as f64;
    let ms = time_steps(steps, warmup, || {
        let loss = model.loss(x.clone());
        let _grads = loss.backward();
    });
    (loss0, ms)
}

// ---------------------------------------------------------------------------------------------
// GEMM

fn gemm_runs(steps: usize, warmup: usize) -> (f64, Vec<f64>) {
    let device = Device::flex();
    let n = 2048;
    let a = tensor(fixed(n * n, 31.0, 1.0), [n, n], &device);
    let b = tensor(fixed(n * n, 32.0, 1.0), [n, n], &device);
    let loss0 = a
        .clone()
        .matmul(b.clone())
        .powi_scalar(2)
        .mean()
        .into_scalar::<f32>() as f64;
    let ms = time_steps(steps, warmup, || {
        let _ = a
            .clone()
            .matmul(b.clone())
            .slice([0..1, 0..1])
            .into_scalar::<f32>();
    });
    (loss0, ms)
}

// ---------------------------------------------------------------------------------------------
// The real models, from the shipped configs

/// The shipped config of a real workload.
fn real_config(name: &str) -> genmodels::config::RunConfig {
    let file = match name {
        "pixelcnn" => "pixelcnn-bmnist.toml",
        "gated" => "gated-pixelcnn-bmnist.toml",
        "row-lstm" => "row-lstm-bmnist.toml",
        "diagonal" => "diagonal-bilstm-bmnist.toml",
        "vae" => "vae-mlp-bmnist.toml",
        "pixelcnn-pp" => "pixelcnn-pp-mnist8.toml",
        other => {
            eprintln!(
                "unknown real model {other}: pixelcnn|gated|row-lstm|diagonal|vae|pixelcnn-pp"
            );
            std::process::exit(2);
        }
    };
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("configs")
        .join(file);
    genmodels::config::RunConfig::load(&path).expect("a shipped config")
}

/// The model of a real workload, built as `genmodels train` builds it (the config's seed),
/// with its weights written to `weights` (safetensors, PyTorch's layout) when given.
fn real_model(
    config: &genmodels::config::RunConfig,
    device: &Device,
    weights: Option<&std::path::Path>,
) -> genmodels::models::AnyModel {
    use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, SafetensorsStore};
    // For PixelCNN++ (8-bit only) the benchmark's binary images are its 0s and 255s.
    let spec = genmodels::models::benchmark_image(&config.model);
    let model = genmodels::train::init_model(config, &spec, device);
    if let Some(path) = weights {
        let mut store = SafetensorsStore::from_file(path)
            .with_to_adapter(BurnToPyTorchAdapter)
            .overwrite(true);
        model.save_into(&mut store).expect("weights written");
    }
    model
}

/// The benchmark batch of a real workload: `fixed_binary` images, `[b, 1, 28, 28]`.
fn real_batch(b: usize, device: &Device) -> genmodels::models::Batch {
    genmodels::models::Batch {
        images: tensor(fixed_binary(b * 784, 0.25), [b, 1, 28, 28], device),
        labels: None,
    }
}

/// The loss before any update (see the module docs on the VAE's fixed ε).
fn real_loss0(model: &genmodels::models::AnyModel, batch: genmodels::models::Batch) -> f64 {
    use genmodels::models::Trainable;
    let loss = match model.as_latent() {
        Some(latent) => {
            let [b, ..] = batch.images.dims();
            let d = latent.latent_dim();
            let q = latent.encode(batch.images.clone());
            let eps = tensor(fixed(b * d, 41.0, 1.0), [b, d], &batch.images.device());
            let z = q.mean.clone() + q.log_var.clone().mul_scalar(0.5).exp() * eps;
            let recon_nll = latent.decode(z).log_prob(batch.images).neg();
            (recon_nll + q.kl_to_standard_normal()).mean()
        }
        None => model.loss(batch).objective,
    };
    loss.into_scalar::<f32>() as f64
}

/// Training steps of a real model, as the trainer's loop runs them.
fn real_steps(
    name: &str,
    steps: usize,
    warmup: usize,
    weights: Option<&std::path::Path>,
) -> (f64, Vec<f64>) {
    use genmodels::models::Trainable;
    let config = real_config(name);
    let device = Device::flex().autodiff();
    let mut model = real_model(&config, &device, weights);
    let batch = real_batch(config.train.batch_size, &device);
    let loss0 = real_loss0(&model, batch.clone());
    let mut optim = genmodels::train::optimizer(&config.optim);
    let lr = config.optim.lr;
    let ms = time_steps(steps, warmup, || {
        let loss = model.loss(batch.clone());
        let _ = loss.objective.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(loss.objective.backward(), &model);
        model = optim.step(lr, model.clone(), grads);
    });
    (loss0, ms)
}

/// Exact NLL (nats per image, batch mean) of one batch without autodiff, as the evaluator
/// scores; `loss0` is the same number.
fn score_runs(
    name: &str,
    steps: usize,
    warmup: usize,
    weights: Option<&std::path::Path>,
) -> (f64, Vec<f64>) {
    let config = real_config(name);
    let device = Device::flex();
    let model = real_model(&config, &device, weights);
    let Some(ar) = model.as_autoregressive() else {
        eprintln!("score-{name}: not an autoregressive model (no exact NLL)");
        std::process::exit(2);
    };
    let images = real_batch(config.train.batch_size, &device).images;
    let nll = || {
        ar.conditionals(images.clone(), None)
            .log_prob(images.clone())
            .mean()
            .neg()
            .into_scalar::<f32>() as f64
    };
    let loss0 = nll();
    let ms = time_steps(steps, warmup, || {
        let _ = nll();
    });
    (loss0, ms)
}

/// Peak resident memory of this process (VmHWM), KiB; 0 where /proc is missing.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
