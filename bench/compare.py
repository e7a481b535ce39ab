"""Runs the burn and PyTorch sides of the benchmark alternately and prints one table.

    python3 bench/compare.py --burn target/release/examples/versus_pytorch \
        --python ../torch-venv/bin/python [--rounds 3] [--workloads pixelcnn,vae,...]

The real models (real-pixelcnn, real-gated, real-row-lstm, real-diagonal, real-vae, and score-*
for the autoregressive ones) take their weights from the burn side, which writes them once
before the rounds (--weights); the PyTorch side loads them.

Each round runs every workload once on each side, in alternating order, as separate processes
(so that one side's memory and threads never touch the other's). Before timing counts, both
sides' loss on the fixed inputs and weights must agree to 1e-4 relative, or the run fails.
Standard library only: it runs under any Python 3.
"""
import argparse
import json
import os
import platform
import statistics
import shutil
import subprocess
import sys
import tempfile

# Dense-equivalent FLOPs of one timed unit (a multiply-add counts 2; backward = 2x forward).
PIXELCNN_FWD = 2 * 32 * 784 * (49 * 64 + 6 * 9 * 64 * 64 + 64)
VAE_FWD = 2 * 128 * (784 * 400 + 400 * 40 + 20 * 400 + 400 * 784)
ROW_LSTM_FWD = 2 * 2 * 16 * 28 * 28 * 128 * 32 * 3
FLOPS = {
    "pixelcnn": 3 * PIXELCNN_FWD,
    "vae": 3 * VAE_FWD,
    "row-lstm": 3 * ROW_LSTM_FWD,
    "sample": 784 * PIXELCNN_FWD // 2,  # batch 16 is half of the step's 32
    "gemm": 2 * 2048**3,
}
TITLES = {
    "pixelcnn": "PixelCNN training step (batch 32, 7x7 A + 6x 3x3 B convs, 64 ch, Adam)",
    "vae": "MLP VAE training step (batch 128, 784-400-20, Adam)",
    "row-lstm": "Row-LSTM-like loop, 28 rows, batch 16, 32 ch, fwd+bwd",
    "sample": "naive PixelCNN sampling, batch 16, 784 forward passes",
    "gemm": "sgemm 2048x2048x2048",
}
STEPS = {"pixelcnn": (10, 2), "vae": (50, 5), "row-lstm": (10, 2), "sample": (1, 0), "gemm": (5, 1)}

# The real models (issue 15): the shipped configs' models, one training step (real-*) or the
# exact NLL of one batch without autodiff (score-*). Weights: the burn side writes the freshly
# built model (--weights, safetensors in PyTorch's layout) and the PyTorch side loads them.
REAL = {
    "pixelcnn": ("PixelCNN, configs/pixelcnn-bmnist.toml (h 16, 10 res. blocks), batch 32", (5, 1)),
    "gated": ("Gated PixelCNN, configs/gated-pixelcnn-bmnist.toml (p 32, 8 layers), batch 32", (3, 1)),
    "row-lstm": ("Row LSTM, configs/row-lstm-bmnist.toml (h 16, 7 layers), batch 32", (5, 1)),
    "diagonal": ("Diagonal BiLSTM, configs/diagonal-bilstm-bmnist.toml (h 16, 7 layers), batch 32",
                 (2, 1)),
    "vae": ("MLP VAE, configs/vae-mlp-bmnist.toml (784-200-200-50 tanh, ELBO), batch 20", (50, 5)),
}
for _name, (_title, _steps) in REAL.items():
    TITLES["real-" + _name] = "training step: " + _title
    STEPS["real-" + _name] = _steps
    if _name != "vae":
        TITLES["score-" + _name] = "exact NLL, no grad: " + _title
        STEPS["score-" + _name] = _steps


def run(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def quartiles(xs):
    q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
    return q[0], statistics.median(xs), q[2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--burn", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--workloads", default="pixelcnn,vae,row-lstm,sample,gemm")
    ap.add_argument("--json", help="also write the raw results here")
    a = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    workloads = a.workloads.split(",")
    results = {w: {"burn": [], "pytorch": []} for w in workloads}
    rss = {w: {"burn": 0, "pytorch": 0} for w in workloads}
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads), OMP_NUM_THREADS=str(a.threads))
    os.environ.update(env)
    failed = []
    # The real models' weights: written once by the burn side (a run of no steps), read by the
    # PyTorch side in every round.
    weights_dir = tempfile.mkdtemp(prefix="versus_pytorch_weights_")
    weights = {}
    for w in workloads:
        if w.startswith(("real-", "score-")):
            weights[w] = os.path.join(weights_dir, w + ".safetensors")
            out = run([a.burn, w, "--steps", "0", "--warmup", "0", "--weights", weights[w]])
            print(f"{w}: weights written, burn loss0 {out['loss0']!r}", file=sys.stderr)
    for r in range(a.rounds):
        for w in workloads:
            steps, warmup = STEPS[w]
            burn = [a.burn, w, "--steps", str(steps), "--warmup", str(warmup)]
            torch = [a.python, os.path.join(here, "torch_side.py"), w, "--steps", str(steps),
                     "--warmup", str(warmup), "--threads", str(a.threads)]
            if w in weights:
                torch += ["--weights", weights[w]]
            sides = [("burn", burn), ("pytorch", torch)]
            for side, cmd in sides if r % 2 == 0 else sides[::-1]:
                out = run(cmd)
                results[w][side].append(out)
                rss[w][side] = max(rss[w][side], out["peak_rss_kib"])
                print(f"round {r + 1} {w:9} {side:8} median {statistics.median(out['ms']):9.1f} ms",
                      file=sys.stderr)
            l_burn, l_torch = results[w]["burn"][-1]["loss0"], results[w]["pytorch"][-1]["loss0"]
            print(f"round {r + 1} {w:9} loss0 burn {l_burn!r} PyTorch {l_torch!r}", file=sys.stderr)
            if abs(l_burn - l_torch) > 1e-4 * max(abs(l_torch), 1e-30):
                failed.append(f"{w}: loss on the fixed inputs differs: burn {l_burn!r}, PyTorch {l_torch!r}")

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    torch_version = results[workloads[0]]["pytorch"][0].get("torch", "?")
    ms = {w: {s: [m for out in results[w][s] for m in out["ms"]] for s in ("burn", "pytorch")}
          for w in workloads}
    gemm_peak = max((FLOPS["gemm"] / (statistics.median(ms["gemm"][s]) / 1e3) / 1e9
                     for s in ("burn", "pytorch")), default=None) if "gemm" in ms else None
    print(f"\nmachine: {cpu}, {a.threads} threads per side; PyTorch {torch_version}; "
          f"{a.rounds} rounds, sides alternating")
    if gemm_peak:
        print(f"practical peak: {gemm_peak:.0f} GFLOP/s (the faster side's sgemm 2048)")
    print("\n| workload | PyTorch ms, median [IQR] | burn ms, median [IQR] | ratio (PyTorch/burn) "
          "| GFLOP/s PyTorch / burn | of peak | peak RSS MiB PyTorch / burn |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for w in workloads:
        (tq1, tm, tq3), (bq1, bm, bq3) = quartiles(ms[w]["pytorch"]), quartiles(ms[w]["burn"])
        if w in FLOPS:
            gt, gb = FLOPS[w] / tm / 1e6, FLOPS[w] / bm / 1e6
            gflops = f"{gt:.0f} / {gb:.0f}"
            peak = f"{gt / gemm_peak:.0%} / {gb / gemm_peak:.0%}" if gemm_peak else "-"
        else:
            gflops = peak = "-"
        print(f"| {TITLES[w]} | {tm:.1f} [{tq1:.1f}-{tq3:.1f}] | {bm:.1f} [{bq1:.1f}-{bq3:.1f}] "
              f"| {tm / bm:.2f}x | {gflops} | {peak} "
              f"| {rss[w]['pytorch'] / 1024:.0f} / {rss[w]['burn'] / 1024:.0f} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"results": results, "cpu": cpu, "threads": a.threads}, f)
    shutil.rmtree(weights_dir, ignore_errors=True)
    if failed:
        sys.exit("\n".join(["the sides disagree:"] + failed))
    print("\nlosses on the fixed inputs agree to 1e-4 relative on every workload")


if __name__ == "__main__":
    main()
