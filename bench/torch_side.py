"""The PyTorch side of the burn-vs-PyTorch benchmark (bench/versus_pytorch.rs is the burn side;
bench/compare.py runs both alternately). Same workloads, same weights (one formula), same losses:

    python torch_side.py WORKLOAD [--steps N] [--warmup N] [--threads T] [--weights FILE]

prints one JSON line: {"side", "workload", "loss0", "ms": [...], "peak_rss_kib"}.

The real models (real-pixelcnn, real-gated, real-row-lstm, real-diagonal, real-vae: one training
step; score-*: the exact NLL of one batch, no grad) are plain PyTorch implementations of the
architectures of configs/*-bmnist.toml, read from the same TOML files, with the weights the burn
side wrote (--weights FILE, safetensors, PyTorch's layout) loaded with load_state_dict(strict).
"""
import argparse
import json
import math
import time

import numpy as np
import torch
import torch.nn.functional as F


def fixed(n, tag, scale):
    """Value i of fixed tensor `tag`: scale * sin(0.37 i + tag), computed in float64."""
    return (scale * np.sin(0.37 * np.arange(n, dtype=np.float64) + tag)).astype(np.float32)


def fixed_binary(n, tag):
    return (np.sin(0.37 * np.arange(n, dtype=np.float64) + tag) > 0.3).astype(np.float32)


def t(values, shape):
    return torch.from_numpy(values.reshape(shape))


def conv_params(shape, tag):
    o, i, kh, kw = shape
    scale = 1.0 / math.sqrt(i * kh * kw)
    w = torch.nn.Parameter(t(fixed(o * i * kh * kw, tag, scale), shape))
    b = torch.nn.Parameter(t(fixed(o, tag + 0.5, 0.1), (o,)))
    return w, b


def causal_mask(o, i, k, mask_type):
    """One image channel: rows above the centre, and the centre row left of the centre (A), or
    up to and including it (B)."""
    m = np.zeros((o, i, k, k), dtype=np.float32)
    c = k // 2
    m[:, :, :c, :] = 1
    m[:, :, c, : c + (1 if mask_type == "B" else 0)] = 1
    return torch.from_numpy(m)


class MaskedConv(torch.nn.Module):
    def __init__(self, i, o, k, mask_type, tag):
        super().__init__()
        self.weight, self.bias = conv_params((o, i, k, k), tag)
        self.register_buffer("mask", causal_mask(o, i, k, mask_type))
        self.pad = k // 2

    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.pad)


class PixelCnn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.first = MaskedConv(1, 64, 7, "A", 1.0)
        self.hidden = torch.nn.ModuleList([MaskedConv(64, 64, 3, "B", 2.0 + l) for l in range(6)])
        self.out_weight, self.out_bias = conv_params((1, 64, 1, 1), 8.0)

    def logits(self, x):
        h = F.relu(self.first(x))
        for layer in self.hidden:
            h = F.relu(layer(h))
        return F.conv2d(h, self.out_weight, self.out_bias)

    def loss(self, x):
        """Bernoulli NLL, nats per image."""
        return F.binary_cross_entropy_with_logits(self.logits(x), x, reduction="sum") / x.shape[0]


def linear_params(inputs, outputs, tag):
    scale = 1.0 / math.sqrt(inputs)
    w = torch.nn.Parameter(t(fixed(outputs * inputs, tag, scale), (outputs, inputs)))
    b = torch.nn.Parameter(t(fixed(outputs, tag + 0.5, 0.1), (outputs,)))
    return w, b


class Vae(torch.nn.Module):
    def __init__(self):
        super().__init__()
        for name, (i, o, tag) in dict(fc1=(784, 400, 11.0), fc21=(400, 20, 12.0), fc22=(400, 20, 13.0),
                                      fc3=(20, 400, 14.0), fc4=(400, 784, 15.0)).items():
            w, b = linear_params(i, o, tag)
            self.register_parameter(name + "_w", w)
            self.register_parameter(name + "_b", b)

    def lin(self, name, x):
        return F.linear(x, getattr(self, name + "_w"), getattr(self, name + "_b"))

    def loss(self, x, eps):
        h = F.relu(self.lin("fc1", x))
        mu, logvar = self.lin("fc21", h), self.lin("fc22", h)
        z = mu + torch.exp(0.5 * logvar) * eps
        logits = self.lin("fc4", F.relu(self.lin("fc3", z)))
        nll = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return (nll + kl) / x.shape[0]


class RowLstmLoop(torch.nn.Module):
    """The synthetic row-lstm workload (named apart from the real model's RowLstm below)."""

    def __init__(self):
        super().__init__()
        self.wi, self.bi = conv_params((128, 32, 1, 3), 21.0)
        self.ws, self.bs = conv_params((128, 32, 1, 3), 22.0)

    def loss(self, x):
        b, c, rows, w = x.shape
        input_gates = F.conv2d(x, self.wi, self.bi, padding=(0, 1))
        hidden = x.new_zeros(b, c, 1, w)
        cell = hidden
        outputs = []
        for r in range(rows):
            gates = input_gates[:, :, r:r + 1, :] + F.conv2d(hidden, self.ws, self.bs, padding=(0, 1))
            i, f, o, g = gates.chunk(4, 1)
            cell = torch.sigmoid(f) * cell + torch.sigmoid(i) * torch.tanh(g)
            hidden = torch.sigmoid(o) * torch.tanh(cell)
            outputs.append(hidden)
        return torch.cat(outputs, 2).pow(2).mean()


def time_steps(steps, warmup, step):
    ms = []
    for k in range(warmup + steps):
        start = time.perf_counter()
        step()
        if k >= warmup:
            ms.append((time.perf_counter() - start) * 1e3)
    return ms


def adam_steps(model, steps, warmup, loss):
    """Times Adam steps (lr 1e-3, eps 1e-8) on loss(), as both training workloads do."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-8)

    def step():
        opt.zero_grad(set_to_none=True)
        value = loss()
        value.backward()
        opt.step()
        value.item()

    return time_steps(steps, warmup, step)


def pixelcnn(steps, warmup):
    x = t(fixed_binary(32 * 784, 0.25), (32, 1, 28, 28))
    model = PixelCnn()
    with torch.no_grad():
        loss0 = model.loss(x).item()
    return loss0, adam_steps(model, steps, warmup, lambda: model.loss(x))


def sample(steps, warmup):
    model = PixelCnn()
    x = t(fixed_binary(32 * 784, 0.25), (32, 1, 28, 28))
    batch = 16
    with torch.no_grad():
        loss0 = model.loss(x).item()

        def run():
            gen = torch.Generator().manual_seed(1)
            images = torch.zeros(batch, 1, 28, 28)
            for i in range(784):
                r, c = divmod(i, 28)
                p = torch.sigmoid(model.logits(images)[:, 0, r, c])
                images[:, 0, r, c] = (torch.rand(batch, generator=gen) < p).float()

        return loss0, time_steps(steps, warmup, run)


def vae(steps, warmup):
    x = t(fixed_binary(128 * 784, 0.75), (128, 784))
    eps = t(fixed(128 * 20, 16.0, 1.0), (128, 20))
    model = Vae()
    with torch.no_grad():
        loss0 = model.loss(x, eps).item()
    return loss0, adam_steps(model, steps, warmup, lambda: model.loss(x, torch.randn(128, 20)))


def row_lstm(steps, warmup):
    model = RowLstmLoop()
    x = t(fixed(16 * 32 * 28 * 28, 23.0, 1.0), (16, 32, 28, 28))
    with torch.no_grad():
        loss0 = model.loss(x).item()

    def step():
        for p in model.parameters():
            p.grad = None
        model.loss(x).backward()

    return loss0, time_steps(steps, warmup, step)


def gemm(steps, warmup):
    n = 2048
    a = t(fixed(n * n, 31.0, 1.0), (n, n))
    b = t(fixed(n * n, 32.0, 1.0), (n, n))
    loss0 = (a @ b).pow(2).mean().item()
    return loss0, time_steps(steps, warmup, lambda: (a @ b)[0, 0].item())


# ---------------------------------------------------------------------------------------------
# The real models (configs/*-bmnist.toml), written the way a PyTorch user writes them.

import os
import tomllib

CONFIGS = {"pixelcnn": "pixelcnn-bmnist.toml", "gated": "gated-pixelcnn-bmnist.toml",
           "row-lstm": "row-lstm-bmnist.toml", "diagonal": "diagonal-bilstm-bmnist.toml",
           "vae": "vae-mlp-bmnist.toml"}


def real_config(name):
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "configs", CONFIGS[name])
    with open(path, "rb") as f:
        return tomllib.load(f)


def load_safetensors(path):
    """{name: tensor} of a safetensors file of f32 tensors (the format: u64 header length, JSON
    header, raw little-endian data)."""
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", (name, info["dtype"])
        a, b = info["data_offsets"]
        values = np.frombuffer(data[8 + n + a:8 + n + b], dtype="<f4").reshape(info["shape"])
        out[name] = torch.from_numpy(values.copy())
    return out


def burn_names_to_torch(state):
    """burn's paths (`Pixelrnn.layers.0.recurrent.Row.input_to_state.weight`) to this file's
    module names (`layers.0.recurrent.input_to_state.weight`): drop the model's and the enums'
    variant names."""
    variants = {"Row", "Diagonal", "Mlp"}
    return {".".join(p for p in k.split(".")[1:] if p not in variants): v for k, v in state.items()}


class MaskedConv2d(torch.nn.Conv2d):
    """nn.Conv2d with the PixelCNN causal mask (one image channel) on its weight."""

    def __init__(self, i, o, k, mask_type):
        super().__init__(i, o, k, padding=k // 2)
        self.register_buffer("mask", causal_mask(o, i, k, mask_type), persistent=False)

    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class PaddedConv2d(torch.nn.Conv2d):
    """nn.Conv2d with explicit zero padding (left, right, top, bottom), as F.pad takes it."""

    def __init__(self, i, o, kernel, pad=(0, 0, 0, 0)):
        super().__init__(i, o, kernel)
        self.pad = pad

    def forward(self, x):
        return super().forward(F.pad(x, self.pad) if any(self.pad) else x)


def shift_down(x):
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1, :]


def shift_right(x):
    return F.pad(x, (1, 0, 0, 0))[:, :, :, :-1]


def gate(x):
    a, b = x.chunk(2, 1)
    return torch.tanh(a) * torch.sigmoid(b)


class OutputHead(torch.nn.Module):
    def __init__(self, i, hidden, o):
        super().__init__()
        self.hidden = torch.nn.Conv2d(i, hidden, 1)
        self.logits = torch.nn.Conv2d(hidden, o, 1)

    def forward(self, x):
        return self.logits(F.relu(self.hidden(F.relu(x))))


class ResidualBlock(torch.nn.Module):
    def __init__(self, h, k):
        super().__init__()
        self.reduce = torch.nn.Conv2d(2 * h, h, 1)
        self.masked = MaskedConv2d(h, h, k, "B")
        self.expand = torch.nn.Conv2d(h, 2 * h, 1)

    def forward(self, x):
        return x + self.expand(F.relu(self.masked(F.relu(self.reduce(F.relu(x))))))


class RealPixelCnn(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        h = m["hidden_channels"]
        self.input = MaskedConv2d(1, 2 * h, m["first_kernel"], "A")
        self.blocks = torch.nn.ModuleList(
            [ResidualBlock(h, m["block_kernel"]) for _ in range(m["residual_blocks"])])
        self.output_hidden = torch.nn.Conv2d(2 * h, m["output_hidden"], 1)
        self.output = torch.nn.Conv2d(m["output_hidden"], 1, 1)

    def logits(self, images):
        h = self.input(2 * images - 1)
        for block in self.blocks:
            h = block(h)
        return self.output(F.relu(self.output_hidden(F.relu(h))))


class GatedLayer(torch.nn.Module):
    def __init__(self, i, p, k, first):
        super().__init__()
        half = k // 2
        self.vertical = PaddedConv2d(i, 2 * p, (half + 1, k), (half, half, half, 0))
        self.horizontal = PaddedConv2d(i, 2 * p, (1, half + 1), (half, 0, 0, 0))
        self.vertical_to_horizontal = torch.nn.Conv2d(2 * p, 2 * p, 1)
        self.horizontal_out = torch.nn.Conv2d(p, p, 1)
        self.first = first

    def forward(self, v_in, h_in):
        v = self.vertical(v_in)
        h = self.horizontal(shift_right(h_in) if self.first else h_in)
        h = h + self.vertical_to_horizontal(shift_down(v))
        h_gated = self.horizontal_out(gate(h))
        return gate(v), h_gated if self.first else h_in + h_gated


class RealGated(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        p = m["hidden_channels"]
        self.layers = torch.nn.ModuleList(
            [GatedLayer(1 if l == 0 else p, p, m["first_kernel"] if l == 0 else m["kernel"], l == 0)
             for l in range(m["layers"])])
        self.output = OutputHead(p, m["output_hidden"], 1)

    def logits(self, images):
        v = h = 2 * images - 1
        for layer in self.layers:
            v, h = layer(v, h)
        return self.output(h)


def lstm_cell(gates, c):
    """PixelRNN's LSTM cell; gates in genmodels' order (o, f, i, g)."""
    o, f, i, g = gates.chunk(4, 1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


class RowLstm(torch.nn.Module):
    """Row by row from the top: a masked 1 x k input-to-state conv (a 1 x (k/2+1) conv padded
    on the left) over the whole map, then per row a 1 x k state-to-state conv of the row above."""

    def __init__(self, i, h, k):
        super().__init__()
        half = k // 2
        self.input_to_state = PaddedConv2d(i, 4 * h, (1, half + 1), (half, 0, 0, 0))
        self.state_to_state = torch.nn.Conv2d(h, 4 * h, (1, k), padding=(0, half))

    def forward(self, x):
        b, _, rows, w = x.shape
        hidden_size = self.state_to_state.in_channels
        # [rows, b, 4h, W]: each step's gate terms contiguous
        input_gates = self.input_to_state(x).permute(2, 0, 1, 3).contiguous()
        # the 1 x k state-to-state conv along one row, as a conv1d
        weight, half = self.state_to_state.weight[:, :, 0], self.state_to_state.padding[1]
        h = x.new_zeros(b, hidden_size, w)
        c = h
        out = []
        for r in range(rows):
            gates = input_gates[r] + F.conv1d(h, weight, self.state_to_state.bias, padding=half)
            h, c = lstm_cell(gates, c)
            out.append(h)
        return torch.stack(out, 2)


def skew(x):
    """[b, c, H, W] -> [b, c, H, W + H - 1], row r shifted right by r."""
    b, c, hgt, w = x.shape
    out = x.new_zeros(b, c, hgt, w + hgt - 1)
    for r in range(hgt):
        out[:, :, r, r:r + w] = x[:, :, r]
    return out


def unskew(s, w):
    return torch.stack([s[:, :, r, r:r + w] for r in range(s.shape[2])], 2)


class DiagonalLstm(torch.nn.Module):
    """Skew, a column-by-column LSTM (1x1 input-to-state, 2x1 state-to-state: rows r-1 and r of
    the previous column), unskew; `reverse` on the mirrored image, mirrored back."""

    def __init__(self, i, h, reverse):
        super().__init__()
        self.input_to_state = torch.nn.Conv2d(i, 4 * h, 1)
        self.state_to_state = torch.nn.Conv2d(h, 4 * h, (2, 1))
        self.reverse = reverse

    def forward(self, x):
        if self.reverse:
            x = x.flip(3)
        b, _, hgt, w = x.shape
        hidden_size = self.state_to_state.in_channels
        # [W + H - 1, b, 4h, H]: each skewed column's gate terms contiguous
        gates = self.input_to_state(skew(x)).permute(3, 0, 1, 2).contiguous()
        # the 2 x 1 state-to-state conv along one column (rows r - 1 and r), as a conv1d
        weight = self.state_to_state.weight[:, :, :, 0]
        h = x.new_zeros(b, hidden_size, hgt)
        c = h
        out = []
        for gates_j in gates:
            gates_j = gates_j + F.conv1d(F.pad(h, (1, 0)), weight, self.state_to_state.bias)
            h, c = lstm_cell(gates_j, c)
            out.append(h)
        states = unskew(torch.stack(out, 3), w)
        return states.flip(3) if self.reverse else states


class DiagonalBiLstm(torch.nn.Module):
    def __init__(self, i, row_view, h):
        super().__init__()
        self.left_to_right = DiagonalLstm(i, h, False)
        self.right_to_left = DiagonalLstm(i + row_view, h, True)

    def forward(self, x, image=None):
        backward_input = x if image is None else torch.cat([x, image], 1)
        # The right-to-left states have seen all of their row: shift them down a row.
        return self.left_to_right(x) + shift_down(self.right_to_left(backward_input))


class RnnLayer(torch.nn.Module):
    def __init__(self, recurrent, h):
        super().__init__()
        self.recurrent = recurrent
        self.up = torch.nn.Conv2d(h, 2 * h, 1)


class RealPixelRnn(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        h = m["hidden_channels"]
        self.diagonal = m["cell"] == "diagonal-bilstm"
        self.input = MaskedConv2d(1, 2 * h, m["first_kernel"], "A")

        def recurrent(l):
            if self.diagonal:
                return DiagonalBiLstm(2 * h, 1 if l == 0 else 0, h)
            return RowLstm(2 * h, h, m["row_kernel"])

        self.layers = torch.nn.ModuleList([RnnLayer(recurrent(l), h) for l in range(m["layers"])])
        self.output = OutputHead(2 * h, m["output_hidden"], 1)

    def logits(self, images):
        image = 2 * images - 1
        x = self.input(image)
        for l, layer in enumerate(self.layers):
            if self.diagonal:
                states = layer.recurrent(x, image if l == 0 else None)
            else:
                states = layer.recurrent(x)
            x = x + layer.up(states)
        return self.output(x)


def mlp(sizes):
    return torch.nn.ModuleDict({"layers": torch.nn.ModuleList(
        [torch.nn.Linear(a, b) for a, b in zip(sizes, sizes[1:])])})


def mlp_forward(net, x, act):
    layers = net["layers"]
    for k, layer in enumerate(layers):
        x = layer(x)
        if k < len(layers) - 1:
            x = act(x)
    return x


class RealVae(torch.nn.Module):
    """The IWAE paper's MLP VAE; loss: negative ELBO, nats per image (batch mean)."""

    def __init__(self, m):
        super().__init__()
        self.latent = m["latent_dim"]
        self.act = torch.tanh if m["activation"] == "tanh" else F.relu
        self.encoder = mlp([784, *m["hidden"], 2 * self.latent])
        self.decoder = mlp([self.latent, *reversed(m["hidden"]), 784])

    def loss(self, images, eps=None):
        x = images.flatten(1)
        stats = mlp_forward(self.encoder, x, self.act)
        mu, logvar = stats[:, :self.latent], stats[:, self.latent:]
        if eps is None:
            eps = torch.randn_like(mu)
        z = mu + torch.exp(0.5 * logvar) * eps
        logits = mlp_forward(self.decoder, z, self.act)
        nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(1)
        return (nll + kl).mean()


def nll_loss(model, images):
    """Exact NLL in nats per image (batch mean): Bernoulli over every pixel."""
    return F.binary_cross_entropy_with_logits(model.logits(images), images,
                                              reduction="sum") / images.shape[0]


def real_model(name, weights):
    config = real_config(name)
    m = config["model"]
    model = {"pixelcnn": RealPixelCnn, "gated": RealGated, "row-lstm": RealPixelRnn,
             "diagonal": RealPixelRnn, "vae": RealVae}[name](m)
    model.load_state_dict(burn_names_to_torch(load_safetensors(weights)), strict=True)
    return config, model


def real_images(b):
    return t(fixed_binary(b * 784, 0.25), (b, 1, 28, 28))


def clip_each_(params, max_norm):
    """burn's GradientClipping::Norm: each parameter's gradient clipped to norm max_norm."""
    grads = [p.grad for p in params if p.grad is not None]
    norms = torch._foreach_norm(grads)
    coefs = [torch.clamp(max_norm / (n + torch.finfo(torch.float32).tiny), max=1.0) for n in norms]
    torch._foreach_mul_(grads, coefs)


def real_steps(name, steps, warmup, weights):
    config, model = real_model(name, weights)
    b = config["train"]["batch_size"]
    images = real_images(b)
    with torch.no_grad():
        if name == "vae":
            eps = t(fixed(b * model.latent, 41.0, 1.0), (b, model.latent))
            loss0 = model.loss(images, eps).item()
        else:
            loss0 = nll_loss(model, images).item()
    optim = config["optim"]
    assert optim["kind"] == "adam"
    opt = torch.optim.Adam(model.parameters(), lr=optim["lr"], eps=optim["epsilon"])
    clip = optim.get("grad_clip_norm", 0.0)
    params = list(model.parameters())
    loss = (lambda: model.loss(images)) if name == "vae" else (lambda: nll_loss(model, images))

    def step():
        opt.zero_grad(set_to_none=True)
        value = loss()
        value.backward()
        if clip > 0:
            clip_each_(params, clip)
        opt.step()
        value.item()

    return loss0, time_steps(steps, warmup, step)


def score_runs(name, steps, warmup, weights):
    config, model = real_model(name, weights)
    images = real_images(config["train"]["batch_size"])
    with torch.no_grad():
        loss0 = nll_loss(model, images).item()
        return loss0, time_steps(steps, warmup, lambda: nll_loss(model, images).item())


def peak_rss_kib():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main():
    ap = argparse.ArgumentParser()
    real = [p + m for p in ("real-", "score-") for m in CONFIGS if (p, m) != ("score-", "vae")]
    ap.add_argument("workload", choices=["pixelcnn", "vae", "row-lstm", "sample", "gemm"] + real)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--weights", help="the burn side's weights (real-* and score-* workloads)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    run = dict(pixelcnn=pixelcnn, vae=vae, sample=sample, gemm=gemm)
    run["row-lstm"] = row_lstm
    if a.workload.startswith(("real-", "score-")):
        kind, name = a.workload.split("-", 1)
        loss0, ms = (real_steps if kind == "real" else score_runs)(name, a.steps, a.warmup, a.weights)
    else:
        loss0, ms = run[a.workload](a.steps, a.warmup)
    print(json.dumps(dict(side="pytorch", workload=a.workload, loss0=loss0, ms=ms,
                          peak_rss_kib=peak_rss_kib(), torch=torch.__version__,
                          threads=torch.get_num_threads())))


if __name__ == "__main__":
    main()
