"""PyTorch's naive ancestral sampler on a PixelCNN++ of our `pixelcnn-pp` architecture (issue 15),
written as a PyTorch user would (after openai/pixel-cnn and pclucas14/pixel-cnn-pp): two shifted
streams, gated ResNets with concat_elu, three resolutions with skips, a discretised logistic
mixture sampled per pixel. One full forward pass of the batch per pixel under torch.no_grad().
Random weights (the sampler's speed does not depend on them); the shapes are
configs/pixelcnn-pp-mnist8.toml's by default. Prints one JSON line.

    python bench/torch_pixelcnn_pp.py [--filters 32] [--resnets 2] [--mixtures 5]
        [--batch 16] [--pixels 784] [--threads 1]

`--pixels P` times the first P pixels and scales to the whole 28x28 image (every pixel costs one
forward pass, whatever the pixel). `--train --batch 32` times training steps instead, on the
binary images of versus_pytorch's `real-*` workloads (`versus_pytorch real-pixelcnn-pp` is ours).
Not yet: a loss check against our model on shared weights.
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def concat_elu(x):
    return F.elu(torch.cat([x, -x], dim=1))


class DownShiftedConv(nn.Module):
    """[2, 3] kernel over the rows above and the current row (padded top, left and right)."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, (2, 3), stride=stride)

    def forward(self, x):
        return self.conv(F.pad(x, (1, 1, 1, 0)))


class DownRightShiftedConv(nn.Module):
    """[2, 2] kernel over the rows above and the pixels to the left (padded top and left)."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, (2, 2), stride=stride)

    def forward(self, x):
        return self.conv(F.pad(x, (1, 0, 1, 0)))


class DownShiftedDeconv(nn.Module):
    def __init__(self, c, kernel):
        super().__init__()
        self.deconv = nn.ConvTranspose2d(c, c, kernel, stride=2)
        self.crop = (kernel[1] - 1) // 2

    def forward(self, x):
        h, w = x.shape[2], x.shape[3]
        return self.deconv(x)[:, :, : 2 * h, self.crop : self.crop + 2 * w]


class GatedResnet(nn.Module):
    def __init__(self, conv, f, aux=None, dropout=0.1):
        super().__init__()
        self.c1 = conv(2 * f, f)
        self.nin = nn.Conv2d(2 * aux, f, 1) if aux else None
        self.drop = nn.Dropout(dropout)
        self.c2 = conv(2 * f, 2 * f)

    def forward(self, x, a=None):
        c1 = self.c1(concat_elu(x))
        if a is not None:
            c1 = c1 + self.nin(concat_elu(a))
        a_, b_ = self.c2(self.drop(concat_elu(c1))).chunk(2, dim=1)
        return x + a_ * torch.sigmoid(b_)


def down_shift(x):
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1, :]


def right_shift(x):
    return F.pad(x, (1, 0, 0, 0))[:, :, :, :-1]


class PixelCnnPp(nn.Module):
    def __init__(self, channels=1, f=32, n=2, k=5, dropout=0.1):
        super().__init__()
        self.u0 = DownShiftedConv(channels + 1, f)
        self.ul_row = nn.Conv2d(channels + 1, f, (1, 3))
        self.ul_left = nn.Conv2d(channels + 1, f, (2, 1))
        up = lambda: nn.ModuleList(
            [nn.ModuleList([GatedResnet(DownShiftedConv, f, None, dropout),
                            GatedResnet(DownRightShiftedConv, f, f, dropout)]) for _ in range(n)])
        down = lambda m: nn.ModuleList(
            [nn.ModuleList([GatedResnet(DownShiftedConv, f, f, dropout),
                            GatedResnet(DownRightShiftedConv, f, 2 * f, dropout)]) for _ in range(m)])
        self.up = nn.ModuleList([up() for _ in range(3)])
        self.down = nn.ModuleList([down(n), down(n + 1), down(n + 1)])
        self.downsample = nn.ModuleList(
            [nn.ModuleList([DownShiftedConv(f, f, 2), DownRightShiftedConv(f, f, 2)]) for _ in range(2)])
        self.upsample = nn.ModuleList(
            [nn.ModuleList([DownShiftedDeconv(f, (2, 3)), DownShiftedDeconv(f, (2, 2))]) for _ in range(2)])
        per = k * (1 + 2 * channels + channels * (channels - 1) // 2)
        self.out = nn.Conv2d(f, per, 1)
        self.k, self.channels = k, channels

    def forward(self, x):  # x in [-1, 1], [b, C, H, W]
        b, _, h, w = x.shape
        x = torch.cat([x, torch.ones(b, 1, h, w)], 1)
        us = [down_shift(self.u0(x))]
        uls = [down_shift(self.ul_row(F.pad(x, (1, 1, 0, 0))))
               + right_shift(self.ul_left(F.pad(x, (0, 0, 1, 0))))]
        for s, stage in enumerate(self.up):
            if s > 0:
                us.append(self.downsample[s - 1][0](us[-1]))
                uls.append(self.downsample[s - 1][1](uls[-1]))
            for ub, ulb in stage:
                us.append(ub(us[-1]))
                uls.append(ulb(uls[-1], us[-1]))
        u, ul = us.pop(), uls.pop()
        for s, stage in enumerate(self.down):
            if s > 0:
                u = self.upsample[s - 1][0](u)
                ul = self.upsample[s - 1][1](ul)
            for ub, ulb in stage:
                u = ub(u, us.pop())
                ul = ulb(ul, torch.cat([u, uls.pop()], 1))
        return self.out(F.elu(ul))


def sample_grey(params, k):
    """openai's sample_from_discretized_mix_logistic for one channel: [b, 3K] -> [b] in [-1, 1]."""
    logits, means, log_scales = params[:, :k], params[:, k : 2 * k], params[:, 2 * k : 3 * k]
    gumbel = -torch.log(-torch.log(torch.rand_like(logits).clamp(1e-5, 1 - 1e-5)))
    pick = F.one_hot((logits + gumbel).argmax(1), k).float()
    mean = (means * pick).sum(1)
    log_scale = (log_scales.clamp(min=-7.0) * pick).sum(1)
    u = torch.rand_like(mean).clamp(1e-5, 1 - 1e-5)
    x = mean + torch.exp(log_scale) * (torch.log(u) - torch.log(1 - u))
    return torch.round((x.clamp(-1, 1) + 1) * 127.5) / 127.5 - 1


def mix_logistic_nll(params, x, k):
    """openai's discretized_mix_logistic_loss for one channel, nats per image: params [b, 3K, H, W],
    x [b, 1, H, W] in [-1, 1]."""
    logits, means, log_scales = params[:, :k], params[:, k : 2 * k], params[:, 2 * k : 3 * k]
    log_scales = log_scales.clamp(min=-7.0)
    centred = x - means
    inv = torch.exp(-log_scales)
    plus, minus = inv * (centred + 1 / 255), inv * (centred - 1 / 255)
    cdf_plus, cdf_minus = torch.sigmoid(plus), torch.sigmoid(minus)
    log_cdf_plus = plus - F.softplus(plus)
    log_one_minus_cdf_min = -F.softplus(minus)
    cdf_delta = cdf_plus - cdf_minus
    mid = inv * centred
    log_pdf_mid = mid - log_scales - 2 * F.softplus(mid)
    inner = torch.where(cdf_delta > 1e-5, torch.log(cdf_delta.clamp(min=1e-12)),
                        log_pdf_mid - math.log(127.5))
    log_probs = torch.where(x < -0.999, log_cdf_plus,
                            torch.where(x > 0.999, log_one_minus_cdf_min, inner))
    log_probs = log_probs + torch.log_softmax(logits, 1)
    return -torch.logsumexp(log_probs, 1).sum((1, 2)).mean()


def train_steps(a, model):
    """Training steps as a PyTorch user writes them: openai's loss, backward, per-tensor
    gradient clipping at 1.0 (the config's), Adam(1e-3, eps 1e-8); dropout on."""
    import numpy as np
    model.train()
    n = a.batch * 784
    binary = (np.sin(0.37 * np.arange(n, dtype=np.float64) + 0.25) > 0.3).astype(np.float32)
    x = torch.from_numpy(binary.reshape(a.batch, 1, 28, 28)) * 2 - 1
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-8)
    ms = []
    for step in range(a.warmup + a.steps):
        start = time.perf_counter()
        opt.zero_grad()
        loss = mix_logistic_nll(model(x), x, a.mixtures)
        loss.backward()
        for p in model.parameters():
            torch.nn.utils.clip_grad_norm_([p], 1.0)
        opt.step()
        if step >= a.warmup:
            ms.append((time.perf_counter() - start) * 1e3)
    ms.sort()
    print(json.dumps(dict(model="pixelcnn-pp", workload="train-step", batch=a.batch,
                          median_ms=ms[len(ms) // 2], ms=ms, loss=loss.item(),
                          torch=torch.__version__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--filters", type=int, default=32)
    ap.add_argument("--resnets", type=int, default=2)
    ap.add_argument("--mixtures", type=int, default=5)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--pixels", type=int, default=784)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train", action="store_true", help="time training steps instead")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = PixelCnnPp(1, a.filters, a.resnets, a.mixtures).eval()
    parameters = sum(p.numel() for p in model.parameters())
    if a.train:
        return train_steps(a, model)
    x = torch.zeros(a.batch, 1, 28, 28)
    start = time.perf_counter()
    with torch.no_grad():
        for p in range(a.pixels):
            r, c = divmod(p, 28)
            params = model(x)[:, :, r, c]
            x[:, 0, r, c] = sample_grey(params, a.mixtures)
    seconds = (time.perf_counter() - start) * 784 / a.pixels
    print(json.dumps(dict(model="pixelcnn-pp", parameters=parameters, batch=a.batch,
                          pixels=a.pixels, seconds=seconds, images_per_s=a.batch / seconds,
                          torch=torch.__version__)))


if __name__ == "__main__":
    main()
