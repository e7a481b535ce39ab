"""The PyTorch side of the burn-vs-PyTorch benchmark (bench/versus_pytorch.rs is the burn side;
bench/compare.py runs both alternately). Same workloads, same weights (one formula), same losses:

    python torch_side.py WORKLOAD [--steps N] [--warmup N] [--threads T]

prints one JSON line: {"side", "workload", "loss0", "ms": [...], "peak_rss_kib"}.
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


class RowLstm(torch.nn.Module):
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
    model = RowLstm()
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
    ap.add_argument("workload", choices=["pixelcnn", "vae", "row-lstm", "sample", "gemm"])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    run = dict(pixelcnn=pixelcnn, vae=vae, sample=sample, gemm=gemm)
    run["row-lstm"] = row_lstm
    loss0, ms = run[a.workload](a.steps, a.warmup)
    print(json.dumps(dict(side="pytorch", workload=a.workload, loss0=loss0, ms=ms,
                          peak_rss_kib=peak_rss_kib(), torch=torch.__version__,
                          threads=torch.get_num_threads())))


if __name__ == "__main__":
    main()
