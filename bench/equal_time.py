"""Equal-time run (issue 15): the PixelCNN of configs/pixelcnn-bmnist.toml trained from the same
initialisation for the same wall time by burn (`genmodels train`) and by PyTorch
(bench/torch_side.py's RealPixelCnn), both at once, one thread each; then each final model's
exact NLL on the whole binarized-MNIST test split (10,000 images), burn's with `genmodels eval`,
PyTorch's in PyTorch.

    python3 bench/equal_time.py --seconds 600 [--genmodels target/release/genmodels]
        [--python /work/torch-venv/bin/python] [--data-dir $GENMODELS_DATA] [--work DIR]

Phases (every burn process gets RAYON_NUM_THREADS=1, every PyTorch process
torch.set_num_threads(1) and OMP_NUM_THREADS=MKL_NUM_THREADS=1; with two or more CPUs the two
sides of a phase are pinned to CPU 0 (burn) and CPU 1 (PyTorch), --no-pin to leave that to the
scheduler):

1. init: the burn trainer's own initial weights. `genmodels train` with the run's config and
   seed, --lr 0, --max-seconds 0 and --train-limit 32 does one Adam step with learning rate 0
   (theta - 0 * update = theta, bit for bit) and checkpoints it: that checkpoint holds exactly the
   weights the equal-time burn run starts from (same binary, same config, same seed). The
   PyTorch side loads that file (burn's names -> PyTorch's, strict). As a cross-check the file
   is compared tensor by tensor with what bench/versus_pytorch.rs exports for the config.
   Then the optimiser recipe: a burn run of 5 steps on one batch (--train-limit 32 --epochs 5,
   one step an epoch) against PyTorch's 5 steps from the same weights on the same 32 images:
   losses and weights must agree (a wrong lr, epsilon, schedule or clipping shows here).
2. step 0: both sides score those initial weights on the test split at once (`genmodels eval`
   and PyTorch); they must agree to --tolerance nats (default 1e-3) or the script stops.
3. train: both sides train for --seconds of training-loop time each, at once. Same batch size,
   Adam (beta 0.9/0.999, the config's lr and epsilon), the config's learning-rate schedule per
   step, the config's gradient clipping as burn does it (each parameter tensor clipped to norm
   1.0 on its own), the same 50,000 training images; each side shuffles with its own generator.
4. final: both final models scored on the test split at once.

Prints one markdown table. The parent needs only the standard library; the PyTorch work runs in
subprocesses of this file (--worker) under --python.
"""
import argparse
import datetime
import gzip
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CONFIG = os.path.join(ROOT, "configs", "pixelcnn-bmnist.toml")
BMNIST = "binarized-mnist"
SPLIT_FILES = {"train": "binarized_mnist_train.amat.gz", "valid": "binarized_mnist_valid.amat.gz",
               "test": "binarized_mnist_test.amat.gz"}


# ---------------------------------------------------------------------------------------------
# PyTorch worker (runs under --python, which has torch)

def load_amat(data_dir, split):
    """A binarized-MNIST split as float32 [n, 1, 28, 28] in {0, 1}: the .amat text (784 values
    `0`/`1`, single spaces, `\\n`: 1,568 bytes per line), read from the stored .amat.gz."""
    import numpy as np
    import torch
    path = os.path.join(data_dir, BMNIST, SPLIT_FILES[split])
    with gzip.open(path, "rb") as f:
        raw = np.frombuffer(f.read(), dtype=np.uint8)
    assert raw.size % 1568 == 0, f"{path}: {raw.size} bytes is not a whole number of 1,568-byte rows"
    rows = raw.reshape(-1, 1568)
    values, gaps = rows[:, 0::2], rows[:, 1::2]
    assert ((values == ord("0")) | (values == ord("1"))).all(), f"{path}: a value is not 0 or 1"
    assert (gaps[:, :-1] == ord(" ")).all() and (gaps[:, -1] == ord("\n")).all(), path
    images = (values - ord("0")).astype(np.float32).reshape(-1, 1, 28, 28)
    return torch.from_numpy(images)


def torch_model(weights, layout):
    """RealPixelCnn of the config with `weights`: `burn` (a genmodels checkpoint, burn's names
    and layout) or `torch` (a state_dict this file saved)."""
    import torch
    sys.path.insert(0, HERE)
    import torch_side as ts
    config = ts.real_config("pixelcnn")
    model = ts.RealPixelCnn(config["model"])
    if layout == "torch":
        from safetensors.torch import load_file
        state = load_file(weights)
    else:
        state = ts.burn_names_to_torch(ts.load_safetensors(weights))
        target = model.state_dict()
        for name, value in list(state.items()):
            want = target[name].shape if name in target else None
            if want is None or value.shape == want:
                continue  # an unexpected name is reported by the strict load below
            if value.dim() == 2 and len(want) == 4 and want[2:] == (1, 1) and value.t().shape == want[:2]:
                state[name] = value.t().reshape(want).contiguous()  # burn Linear [in, out]
            else:
                raise SystemExit(f"{weights}: {name} has shape {list(value.shape)}, PyTorch's is {list(want)}")
    model.load_state_dict(state, strict=True)
    return config, model, ts


def worker_eval(a):
    """Exact test NLL (nats per image) of the weights, no grad."""
    import torch
    torch.set_num_threads(1)
    config, model, ts = torch_model(a.weights, a.layout)
    out = {"side": "pytorch", "torch": torch.__version__, "threads": torch.get_num_threads()}
    if a.compare:
        # the tensors bench/versus_pytorch.rs exported (PyTorch's layout) against these
        other = ts.burn_names_to_torch(ts.load_safetensors(a.compare))
        mine = model.state_dict()
        assert set(other) == set(mine), (sorted(set(other) ^ set(mine)))[:5]
        out["compare_max_abs_diff"] = max((other[k] - mine[k]).abs().max().item() for k in mine)
        out["compare_tensors"] = len(mine)
        out["compare_values"] = sum(v.numel() for v in mine.values())
    images = load_amat(a.data_dir, a.split)
    if a.limit:
        images = images[:a.limit]
    start = time.perf_counter()
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(images), a.batch_size):
            x = images[i:i + a.batch_size]
            total += ts.nll_loss(model, x).item() * len(x)
    out.update(split=a.split, images=len(images), nll=total / len(images),
               seconds=time.perf_counter() - start)
    print(json.dumps(out), flush=True)


def learning_rate(optim, step, steps_per_epoch):
    """genmodels' OptimConfig::learning_rate for the schedules a time-budgeted run can use."""
    warmup = optim.get("warmup_steps", 0)
    warm = min((step + 1) / warmup, 1.0) if warmup > 0 else 1.0
    schedule = optim.get("schedule", "constant")
    if schedule == "constant":
        base = optim["lr"]
    elif schedule == "exponential":
        base = optim["lr"] * optim["decay"] ** (step / max(steps_per_epoch, 1))
    else:
        raise SystemExit(f"schedule {schedule!r}: only constant and exponential have no planned end")
    return base * warm


def worker_recipe(a):
    """The optimiser recipe, checked: `a.steps` steps on the first 32 training images (one batch
    an epoch, as burn's --train-limit 32 run takes them) from the initial weights, against the
    losses and final weights of that burn run."""
    import torch
    torch.set_num_threads(1)
    config, model, ts = torch_model(a.weights, "burn")
    optim = config["optim"]
    x = load_amat(a.data_dir, "train")[:32]
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=optim["lr"], betas=(0.9, 0.999), eps=optim["epsilon"])
    clip = optim.get("grad_clip_norm", 0.0) or 0.0
    losses = []
    for step in range(a.steps):
        losses.append(adam_step(ts, model, opt, params, x, learning_rate(optim, step, 1), clip))
    burn = ts.burn_names_to_torch(ts.load_safetensors(a.compare))
    start = ts.burn_names_to_torch(ts.load_safetensors(a.weights))
    mine = model.state_dict()
    print(json.dumps({"losses": losses,
                      "max_abs_diff": max((mine[k] - burn[k]).abs().max().item() for k in mine),
                      "max_abs_moved": max((burn[k] - start[k]).abs().max().item() for k in mine)}),
          flush=True)


def adam_step(ts, model, opt, params, x, lr, clip):
    """One training step as burn's trainer takes it (each parameter clipped to norm `clip`
    separately); the recipe check and the timed run share it. Returns the loss before it."""
    for group in opt.param_groups:
        group["lr"] = lr
    opt.zero_grad(set_to_none=True)
    loss = ts.nll_loss(model, x)
    loss.backward()
    if clip > 0:
        ts.clip_each_(params, clip)
    opt.step()
    return loss.item()


def worker_train(a):
    """Trains from the burn run's initial weights for a.seconds of training-loop time."""
    # Before the timed run: a missing package must not cost the whole run (it did once).
    from safetensors.torch import save_file
    import torch
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    config, model, ts = torch_model(a.weights, "burn")
    optim, train = config["optim"], config["train"]
    assert optim["kind"] == "adam", optim["kind"]
    images = load_amat(a.data_dir, "train")
    n, b = len(images), train["batch_size"]
    steps_per_epoch = math.ceil(n / b)
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=optim["lr"], betas=(0.9, 0.999), eps=optim["epsilon"])
    clip = optim.get("grad_clip_norm", 0.0) or 0.0
    gen = torch.Generator().manual_seed(train["seed"] if a.shuffle_seed is None else a.shuffle_seed)
    step = seen = 0
    epoch = 0
    loss_sum = 0.0
    began = time.time()
    start = time.perf_counter()
    done = False
    while not done:
        order = torch.randperm(n, generator=gen)
        for k in range(steps_per_epoch):
            x = images[order[k * b:(k + 1) * b]]
            lr = learning_rate(optim, step, steps_per_epoch)
            value = adam_step(ts, model, opt, params, x, lr, clip)
            if not math.isfinite(value):
                raise SystemExit(f"non-finite loss {value} at step {step}")
            step += 1
            seen += len(x)
            loss_sum += value
            if time.perf_counter() - start >= a.seconds:
                done = True
                break
        else:
            epoch += 1
    seconds = time.perf_counter() - start
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, a.out)
    print(json.dumps({"side": "pytorch", "steps": step, "images": seen, "seconds": seconds,
                      "epochs_completed": epoch, "last_lr": lr, "began_unix": began,
                      "mean_train_loss": loss_sum / max(step, 1), "torch": torch.__version__,
                      "threads": torch.get_num_threads()}), flush=True)


# ---------------------------------------------------------------------------------------------
# Parent (standard library only)

def log(msg):
    print(f"[{datetime.datetime.now(datetime.timezone.utc):%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def cpu_info():
    info = {"model_name": "?", "family": None, "model": None, "avx512f": False}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "model name" and info["model_name"] == "?":
                    info["model_name"] = value
                elif key == "cpu family" and info["family"] is None:
                    info["family"] = int(value)
                elif key == "model" and info["model"] is None:
                    info["model"] = int(value)
                elif key == "flags":
                    info["avx512f"] = "avx512f" in value.split()
    except OSError:
        pass
    fam, mod = info["family"], info["model"]
    core = ""
    if fam == 25 and mod is not None:  # AMD family 19h: Zen 3 or Zen 4 by model range
        core = "Zen 4" if (0x10 <= mod <= 0x1F or 0x60 <= mod <= 0x7F or 0xA0 <= mod <= 0xAF) else "Zen 3"
    elif fam == 26:
        core = "Zen 5"
    info["core"] = core
    info["cpus"] = os.cpu_count()
    return info


def pinned(cpu, pin):
    if not pin:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def env_one_thread():
    env = dict(os.environ)
    env.update(RAYON_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def start(cmd, log_path, cpu, pin, capture=False):
    """Starts cmd with one thread (pinned to `cpu`); stderr (and stdout unless captured) to
    log_path."""
    log("$ " + " ".join(cmd))
    f = open(log_path, "w")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE if capture else f, stderr=f,
                         env=env_one_thread(), preexec_fn=pinned(cpu, pin), cwd=ROOT, text=True)
    p._log, p._logfile = log_path, f
    return p


def finish(p, what):
    out, _ = p.communicate()
    p._logfile.close()
    if p.returncode != 0:
        with open(p._log) as f:
            tail = f.read()[-3000:]
        raise SystemExit(f"{what} failed (exit {p.returncode}); log {p._log}:\n{tail}\n{out or ''}")
    return out


def torch_worker(a, args, log_path, cpu):
    return start([a.python, os.path.abspath(__file__), "--worker", *args,
                  "--data-dir", a.data_dir], log_path, cpu, a.pin, capture=True)


def read_json(path):
    with open(path) as f:
        return json.load(f)


def run_config(a, path):
    """configs/pixelcnn-bmnist.toml with only the [train] bookkeeping that would cost training
    time unrelated to training changed: no test-split scoring after each epoch, validation on
    32 images, no samples at the end."""
    with open(CONFIG) as f:
        text = f.read()
    lines, section = [], None
    drop = {"test_each_epoch", "valid_limit", "final_samples", "sample_every_epochs"}
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("["):
            section = s
        elif section == "[train]" and s.split("=")[0].strip() in drop:
            continue
        lines.append(line)
        if s == "[train]":
            lines += ["test_each_epoch = false", "valid_limit = 32", "final_samples = 0",
                      "sample_every_epochs = 0"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def burn_eval(a, run_dir, cpu, log_path):
    return start([a.genmodels, "eval", run_dir, "--split", "test", "--checkpoint", "last",
                  "--data-dir", a.data_dir, "--batch-size", "100"], log_path, cpu, a.pin)


def burn_nll(run_dir):
    report = read_json(os.path.join(run_dir, "eval-test.json"))
    assert report["images"] == 10000, report
    return report["nll_nats_per_image"]


def last_checkpoint(run_dir):
    name = read_json(os.path.join(run_dir, "last.json"))["dir"]
    return os.path.join(run_dir, "checkpoints", name)


def images_of(steps, n=50000, b=32):
    per_epoch = math.ceil(n / b)
    return (steps // per_epoch) * n + (steps % per_epoch) * b


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=600, help="training time per side")
    ap.add_argument("--genmodels", default=os.path.join(ROOT, "target", "release", "genmodels"))
    ap.add_argument("--versus", default=os.path.join(ROOT, "target", "release", "examples", "versus_pytorch"),
                    help="bench/versus_pytorch.rs binary, for the cross-check of the initial weights ('' to skip)")
    ap.add_argument("--python", default="/work/torch-venv/bin/python"
                    if os.path.exists("/work/torch-venv/bin/python") else sys.executable)
    ap.add_argument("--data-dir", default=os.environ.get("GENMODELS_DATA", os.path.join(ROOT, "data")))
    ap.add_argument("--work", help="folder for the runs (default: a fresh temporary one, kept)")
    ap.add_argument("--tolerance", type=float, default=1e-3, help="step-0 test NLL agreement, nats")
    ap.add_argument("--no-pin", dest="pin", action="store_false",
                    help="do not pin burn to CPU 0 and PyTorch to CPU 1")
    ap.add_argument("--shuffle-seed", type=int,
                    help="seed of the PyTorch side's batch order (default: the config's seed); "
                         "another value shows how much the data order alone moves the result")
    ap.add_argument("--json", help="also write the results here")
    # worker mode (PyTorch subprocesses)
    ap.add_argument("--worker", choices=["train", "eval", "recipe"], help=argparse.SUPPRESS)
    ap.add_argument("--weights", help=argparse.SUPPRESS)
    ap.add_argument("--layout", choices=["burn", "torch"], default="burn", help=argparse.SUPPRESS)
    ap.add_argument("--compare", help=argparse.SUPPRESS)
    ap.add_argument("--split", default="test", help=argparse.SUPPRESS)
    ap.add_argument("--batch-size", type=int, default=100, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--steps", type=int, default=5, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker == "eval":
        return worker_eval(a)
    if a.worker == "train":
        return worker_train(a)
    if a.worker == "recipe":
        return worker_recipe(a)

    a.data_dir = os.path.abspath(a.data_dir)
    a.genmodels = os.path.abspath(a.genmodels)
    a.pin = a.pin and (os.cpu_count() or 1) >= 2
    work = os.path.abspath(a.work or tempfile.mkdtemp(prefix="equal-time-"))
    os.makedirs(work, exist_ok=True)
    cpu = cpu_info()
    log(f"work folder {work}; CPU {cpu['model_name']} family {cpu['family']} model {cpu['model']} "
        f"{cpu['core']}, AVX-512 {'yes' if cpu['avx512f'] else 'no'}, {cpu['cpus']} CPUs; pinned: {a.pin}")
    began = datetime.datetime.now(datetime.timezone.utc)
    config = os.path.join(work, "pixelcnn-bmnist-equal-time.toml")
    run_config(a, config)

    # 1. the burn trainer's initial weights: one step at lr 0
    init = os.path.join(work, "burn-init")
    shutil.rmtree(init, ignore_errors=True)
    p = start([a.genmodels, "train", "--config", config, "--out", init, "--lr", "0",
               "--max-seconds", "0", "--train-limit", "32", "--data-dir", a.data_dir],
              os.path.join(work, "burn-init.log"), 0, a.pin)
    finish(p, "burn init run")
    init_state = read_json(os.path.join(last_checkpoint(init), "state.json"))
    assert init_state["step"] == 1, init_state
    init_weights = os.path.join(last_checkpoint(init), "model.safetensors")
    versus = None
    if a.versus:
        versus = os.path.join(work, "versus-init.safetensors")
        p = start([a.versus, "real-pixelcnn", "--steps", "0", "--warmup", "0", "--weights", versus],
                  os.path.join(work, "versus-init.log"), 0, a.pin)
        finish(p, "versus_pytorch export")

    # 1b. the optimiser recipe: 5 steps on one batch of 32 (--train-limit 32: one step an
    # epoch), burn's losses and weights against PyTorch's from the same start
    recipe_run = os.path.join(work, "burn-recipe")
    shutil.rmtree(recipe_run, ignore_errors=True)
    p = start([a.genmodels, "train", "--config", config, "--out", recipe_run, "--epochs", "5",
               "--train-limit", "32", "--data-dir", a.data_dir], os.path.join(work, "burn-recipe.log"), 0, a.pin)
    finish(p, "burn recipe run")
    with open(os.path.join(recipe_run, "metrics.jsonl")) as f:
        burn_losses = [json.loads(line)["train_nll"] for line in f if line.strip()]
    pt = torch_worker(a, ["recipe", "--steps", "5", "--weights", init_weights, "--compare",
                          os.path.join(last_checkpoint(recipe_run), "model.safetensors")],
                      os.path.join(work, "torch-recipe.log"), 1)
    recipe = json.loads(finish(pt, "PyTorch recipe check").strip().splitlines()[-1])
    recipe["burn_losses"] = burn_losses
    recipe["max_loss_diff"] = max(abs(x - y) for x, y in zip(burn_losses, recipe["losses"]))
    log(f"recipe, 5 steps on one batch: losses burn {[round(x, 3) for x in burn_losses]}, PyTorch "
        f"{[round(x, 3) for x in recipe['losses']]}; weights max |diff| {recipe['max_abs_diff']:.2g} "
        f"(the steps moved them up to {recipe['max_abs_moved']:.2g})")
    if not (len(burn_losses) == 5 and recipe["max_loss_diff"] <= 1e-2
            and recipe["max_abs_diff"] <= 1e-2 * recipe["max_abs_moved"]):
        raise SystemExit("the two optimiser recipes differ (see above)")

    # 2. step-0 test NLL, both sides at once
    log("step 0: scoring the initial weights on the test split, both sides")
    pb = burn_eval(a, init, 0, os.path.join(work, "burn-eval0.log"))
    pt = torch_worker(a, ["eval", "--weights", init_weights, "--layout", "burn"]
                      + (["--compare", versus] if versus else []), os.path.join(work, "torch-eval0.log"), 1)
    t0 = json.loads(finish(pt, "PyTorch step-0 eval").strip().splitlines()[-1])
    finish(pb, "burn step-0 eval")
    b0 = burn_nll(init)
    diff0 = abs(b0 - t0["nll"])
    log(f"step-0 test NLL: burn {b0:.6f}, PyTorch {t0['nll']:.6f}, |diff| {diff0:.2e} nats")
    if versus:
        log(f"burn trainer init vs versus_pytorch export: {t0['compare_tensors']} tensors, "
            f"{t0['compare_values']} values, max |diff| {t0['compare_max_abs_diff']:.3g}")
    if not diff0 <= a.tolerance:
        raise SystemExit(f"the sides disagree at step 0: {diff0:.3g} nats > {a.tolerance}")

    # 3. equal-time training, both sides at once
    burn_run = os.path.join(work, "burn-run")
    shutil.rmtree(burn_run, ignore_errors=True)
    torch_weights = os.path.join(work, "torch-final.safetensors")
    log(f"training both sides for {a.seconds} s each")
    train_began = datetime.datetime.now(datetime.timezone.utc)
    pb = start([a.genmodels, "train", "--config", config, "--out", burn_run,
                "--max-seconds", str(a.seconds), "--data-dir", a.data_dir],
               os.path.join(work, "burn-train.log"), 0, a.pin)
    pt = torch_worker(a, ["train", "--weights", init_weights, "--out", torch_weights,
                          "--seconds", str(a.seconds)]
                      + ([] if a.shuffle_seed is None else ["--shuffle-seed", str(a.shuffle_seed)]),
                      os.path.join(work, "torch-train.log"), 1)
    t_train = json.loads(finish(pt, "PyTorch training").strip().splitlines()[-1])
    finish(pb, "burn training")
    train_ended = datetime.datetime.now(datetime.timezone.utc)
    b_train = read_json(os.path.join(burn_run, "train-summary.json"))
    assert b_train["stopped_by_time_budget"], b_train

    # 4. final test NLL, both sides at once
    log("final: scoring both final models on the test split")
    pb = burn_eval(a, burn_run, 0, os.path.join(work, "burn-eval.log"))
    pt = torch_worker(a, ["eval", "--weights", torch_weights, "--layout", "torch"],
                      os.path.join(work, "torch-eval.log"), 1)
    t_final = json.loads(finish(pt, "PyTorch final eval").strip().splitlines()[-1])
    finish(pb, "burn final eval")
    b_final = burn_nll(burn_run)

    b_images = images_of(b_train["steps"])
    rows = [
        ("burn (genmodels train)", b_train["steps"], b_images, b_train["seconds"], b0, b_final),
        (f"PyTorch {t_train['torch']}", t_train["steps"], t_train["images"], t_train["seconds"],
         t0["nll"], t_final["nll"]),
    ]
    ended = datetime.datetime.now(datetime.timezone.utc)
    version = subprocess.run([a.genmodels, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"## Equal-time run: PixelCNN (configs/pixelcnn-bmnist.toml), T = {a.seconds} s per side\n")
    print("Benchmark: binarized MNIST (static, Larochelle-Murray), test split (10,000 images), "
          "exact NLL in nats per image.")
    print(f"CPU: {cpu['model_name']} (family {cpu['family']}, model {cpu['model']}"
          f"{', ' + cpu['core'] if cpu['core'] else ''}), AVX-512: {'yes' if cpu['avx512f'] else 'no'}, "
          f"{cpu['cpus']} CPUs; one thread per side, both sides at once"
          f"{', pinned to CPU 0 (burn) and CPU 1 (PyTorch)' if a.pin else ''}.")
    print(f"{version}; PyTorch {t_train['torch']}. Training {train_began:%Y-%m-%d %H:%M:%S}-"
          f"{train_ended:%H:%M:%S} UTC (whole script {began:%H:%M:%S}-{ended:%H:%M:%S}).\n")
    print("| side | steps | images | training s | images/s | test NLL at step 0 | final test NLL (nats) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for side, steps, images, seconds, nll0, nll in rows:
        print(f"| {side} | {steps} | {images} | {seconds:.1f} | {images / seconds:.1f} | "
              f"{nll0:.4f} | **{nll:.3f}** |")
    print(f"\nStep-0 check (same initial weights): |burn - PyTorch| = {diff0:.2e} nats "
          f"(tolerance {a.tolerance:g}).", end="")
    if versus:
        print(f" The burn trainer's initial weights against bench/versus_pytorch.rs's export: "
              f"max |diff| {t0['compare_max_abs_diff']:.3g} over {t0['compare_values']} values.")
    else:
        print()
    print(f"Recipe check, 5 Adam steps on one batch of 32 from these weights: train losses differ by "
          f"at most {recipe['max_loss_diff']:.1e} nats, weights by at most {recipe['max_abs_diff']:.1e} "
          f"(the steps moved them by up to {recipe['max_abs_moved']:.1e}).")
    print(f"Final test NLL, PyTorch - burn: {t_final['nll'] - b_final:+.3f} nats. Work folder: {work}")
    results = dict(seconds=a.seconds, shuffle_seed=a.shuffle_seed, cpu=cpu, pinned=a.pin, genmodels=version, work=work,
                   train_began=train_began.isoformat(), train_ended=train_ended.isoformat(),
                   burn=dict(train=b_train, images=b_images, nll0=b0, nll=b_final),
                   pytorch=dict(train=t_train, nll0=t0["nll"], nll=t_final["nll"], eval0=t0, eval=t_final),
                   step0_abs_diff=diff0, recipe=recipe)
    with open(os.path.join(work, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
