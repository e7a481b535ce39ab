"""PyTorch's naive ancestral sampler on the real models of bench/torch_side.py (issue 15): one
full forward pass of the whole batch per pixel, under torch.no_grad(), as a PyTorch user would
write it. Prints one JSON line: {"model", "batch", "pixels", "seconds", "images_per_s"}.

    python bench/torch_naive_sample.py MODEL --weights W.safetensors [--batch 16] [--pixels 784] [--threads 1]

MODEL is pixelcnn, gated, row-lstm or diagonal; W is what `versus_pytorch real-MODEL --steps 0
--weights W` writes. `--pixels P` times the first P pixels and scales to a whole image (every
pixel costs one forward pass, whatever the pixel).
"""
import argparse
import json
import time

import torch

import torch_side


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", choices=["pixelcnn", "gated", "row-lstm", "diagonal"])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--pixels", type=int, default=784)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    _, model = torch_side.real_model(a.model, a.weights)
    model.eval()
    x = torch.zeros(a.batch, 1, 28, 28)
    start = time.perf_counter()
    with torch.no_grad():
        for p in range(a.pixels):
            r, c = divmod(p, 28)
            logits = model.logits(x)[:, 0, r, c]
            x[:, 0, r, c] = torch.bernoulli(torch.sigmoid(logits))
    seconds = (time.perf_counter() - start) * 784 / a.pixels
    print(json.dumps(dict(model=a.model, batch=a.batch, pixels=a.pixels, seconds=seconds,
                          images_per_s=a.batch / seconds, torch=torch.__version__)))


if __name__ == "__main__":
    main()
