"""Seconds per training epoch of the sweep protocol, written plainly in PyTorch (CPU).

This mirrors the Rust project's `worker bench` so that users can compare the two on their
own machine.  One epoch here is exactly what one epoch is there:

* 16 Adam steps (lr 1e-3, betas 0.9/0.999, eps 1e-8) of batch 64 on the 1000 shuffled
  training points (15 batches of 64, the last of 40), and
* the held-out BCE-with-logits loss on the 1000 test points (one no-grad forward), which
  early stopping needs every epoch.

The data are two independent 2-D binary problems concatenated column-wise: "circles"
(2000 points, noise 0.1, factor 0.35) and "moons" (2000 points, noise 0.1), giving inputs
(x1, x2, x3, x4) and targets (y1, y2), split 50/50 and standardised with the train split's
mean and std.  The model is the MLP (4, w, w, 2) with ReLU hidden layers, Kaiming-normal
weights and zero biases.

Training is "masked dense", as the thesis trained it: every weight matrix carries a 0/1 mask
applied with `torch.nn.utils.prune.custom_from_mask`, so each forward uses the dense product
`weight_orig * mask` and the pruned weights stay zero.  At density 1.0 the (all-ones) mask is
still applied, as the thesis's code did at level 0; `--no-mask` benchmarks a plain dense model.

Install (outside the repository, e.g. in a virtualenv):

    pip install -r bench/requirements.txt

Run:

    python bench/pytorch_epoch.py [--widths 8,38,104,410,1310] [--densities 1.0]
        [--epochs 5] [--warmup 1] [--threads 1] [--repeats 3] [--json] [--no-mask]
"""

import argparse
import json
import math
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn

try:
    from torch.nn.utils import prune
except ImportError:  # very old torch: fall back to multiplying by the mask in forward
    prune = None

N_POINTS = 2000  # per problem
N_TRAIN = 1000
BATCH = 64
LR = 1e-3


# --------------------------------------------------------------------------- data


def make_circles(n, noise, factor, rng):
    """numpy port of sklearn.datasets.make_circles (shuffled; label 1 = inner circle)."""
    n_out = n // 2
    n_in = n - n_out
    t_out = np.linspace(0.0, 2.0 * np.pi, n_out, endpoint=False)
    t_in = np.linspace(0.0, 2.0 * np.pi, n_in, endpoint=False)
    x = np.vstack([
        np.column_stack([np.cos(t_out), np.sin(t_out)]),
        factor * np.column_stack([np.cos(t_in), np.sin(t_in)]),
    ])
    y = np.concatenate([np.zeros(n_out), np.ones(n_in)])
    order = rng.permutation(n)
    x, y = x[order], y[order]
    return x + rng.normal(scale=noise, size=x.shape), y


def make_moons(n, noise, rng):
    """numpy port of sklearn.datasets.make_moons (shuffled; label 1 = lower moon)."""
    n_out = n // 2
    n_in = n - n_out
    t_out = np.linspace(0.0, np.pi, n_out)
    t_in = np.linspace(0.0, np.pi, n_in)
    x = np.vstack([
        np.column_stack([np.cos(t_out), np.sin(t_out)]),
        np.column_stack([1.0 - np.cos(t_in), 1.0 - np.sin(t_in) - 0.5]),
    ])
    y = np.concatenate([np.zeros(n_out), np.ones(n_in)])
    order = rng.permutation(n)
    x, y = x[order], y[order]
    return x + rng.normal(scale=noise, size=x.shape), y


def protocol_data(seed=0):
    """(x_train, y_train, x_test, y_test) as float32 tensors: 1000 x 4 / 1000 x 2 each."""
    rng = np.random.default_rng(seed)
    xc, yc = make_circles(N_POINTS, noise=0.1, factor=0.35, rng=rng)
    xm, ym = make_moons(N_POINTS, noise=0.1, rng=rng)
    x = np.hstack([xc, xm])            # (x1, x2) circles, (x3, x4) moons
    y = np.column_stack([yc, ym])      # (y1, y2)
    x_train, x_test = x[:N_TRAIN], x[N_TRAIN:]
    y_train, y_test = y[:N_TRAIN], y[N_TRAIN:]
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std

    def t(a):
        return torch.tensor(a, dtype=torch.float32)

    return t(x_train), t(y_train), t(x_test), t(y_test)


# --------------------------------------------------------------------------- model


class MaskedLinear(nn.Module):
    """Fallback for torches without nn.utils.prune: dense matmul with weight * mask."""

    def __init__(self, linear, mask):
        super().__init__()
        self.linear = linear
        self.register_buffer("mask", mask)

    def forward(self, x):
        return nn.functional.linear(x, self.linear.weight * self.mask, self.linear.bias)


def random_mask(shape, density, gen):
    """0/1 mask keeping round(density * numel) entries (half away from zero) at random."""
    numel = math.prod(shape)
    keep = min(numel, int(math.floor(density * numel + 0.5)))
    mask = torch.zeros(numel)
    mask[torch.randperm(numel, generator=gen)[:keep]] = 1.0
    return mask.view(shape)


def build_model(width, density, masked, seed=0):
    """The (4, w, w, 2) MLP, masked via prune.custom_from_mask unless `masked` is False.

    Returns (model, kept) where kept is the number of unmasked weights."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    sizes = [4, width, width, 2]
    layers = []
    kept = 0
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = nn.Linear(fan_in, fan_out)
        nn.init.kaiming_normal_(lin.weight, mode="fan_in", nonlinearity="relu")
        nn.init.zeros_(lin.bias)
        if masked:
            mask = random_mask(lin.weight.shape, density, gen)
            with torch.no_grad():
                lin.weight.mul_(mask)  # pruned weights start (and, under Adam, stay) at zero
            if prune is not None:
                # Reparametrises weight as weight_orig * weight_mask, recomputed by a
                # forward pre-hook on every call: exactly the thesis's masked-dense training.
                prune.custom_from_mask(lin, name="weight", mask=mask)
                layer = lin
            else:
                layer = MaskedLinear(lin, mask)
            kept += int(mask.sum().item())
        else:
            layer = lin
            kept += lin.weight.numel()
        layers.append(layer)
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers), kept


def weight_count(width):
    return 4 * width + width * width + 2 * width


# --------------------------------------------------------------------------- epoch


def run_epoch(model, opt, loss_fn, data):
    """16 Adam steps of batch 64 on the shuffled train split + the held-out loss."""
    x_train, y_train, x_test, y_test = data
    model.train()
    order = torch.randperm(x_train.shape[0])
    for start in range(0, x_train.shape[0], BATCH):
        idx = order[start:start + BATCH]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x_train[idx]), y_train[idx])
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        held_out = loss_fn(model(x_test), y_test).item()  # a float, as early stopping needs
    return held_out


def bench_one(width, density, masked, args, data):
    model, kept = build_model(width, density, masked)
    opt = torch.optim.Adam(model.parameters(), lr=LR, betas=(0.9, 0.999), eps=1e-8)
    loss_fn = nn.BCEWithLogitsLoss()  # mean over both outputs and the batch
    for _ in range(args.warmup):
        run_epoch(model, opt, loss_fn, data)
    per_epoch = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        for _ in range(args.epochs):
            run_epoch(model, opt, loss_fn, data)
        per_epoch.append((time.perf_counter() - start) / args.epochs)
    return {
        "width": width,
        "density": density,
        "weights": weight_count(width),
        "kept": kept,
        "seconds_per_epoch": statistics.median(per_epoch),
        "seconds_per_epoch_min": min(per_epoch),
        "threads": torch.get_num_threads(),
        "epochs": args.epochs,
        "repeats": args.repeats,
        "torch_version": torch.__version__,
        "masked": masked,
    }


# --------------------------------------------------------------------------- main


def parse_list(text, kind):
    return [kind(v) for v in text.split(",") if v.strip()]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--widths", default="8,38,104,410,1310", help="comma-separated hidden widths")
    p.add_argument("--densities", default="1.0", help="comma-separated mask densities in (0, 1]")
    p.add_argument("--epochs", type=int, default=5, help="timed epochs per repeat")
    p.add_argument("--warmup", type=int, default=1, help="untimed epochs before timing")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats (median reported)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--no-mask", action="store_true",
                   help="plain dense model without masks (ignores --densities)")
    args = p.parse_args()

    # Set threads before any parallel work: set_num_interop_threads fails once it has started.
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)

    widths = parse_list(args.widths, int)
    densities = parse_list(args.densities, float)
    if args.epochs < 1 or args.repeats < 1 or args.warmup < 0:
        p.error("--epochs and --repeats must be >= 1, --warmup >= 0")
    if any(not 0.0 < d <= 1.0 for d in densities):
        p.error("densities must lie in (0, 1]")
    masked = not args.no_mask
    if not masked:
        if densities != [1.0]:
            print("--no-mask: ignoring --densities, running unmasked at density 1.0",
                  file=sys.stderr)
        densities = [1.0]

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()} "
          f"(interop {torch.get_num_interop_threads()}), "
          f"{'masked dense (prune.custom_from_mask)' if masked else 'plain dense (no mask)'}"
          f"{'' if prune is not None or not masked else ' [fallback: weight * mask]'}",
          file=sys.stderr)

    data = protocol_data()
    if not args.json:
        print(f"{'width':>6}  {'density':>7}  {'weights':>9}  {'kept':>8}  "
              f"{'s/epoch(median)':>15}  {'s/epoch(min)':>12}  {'threads':>7}", flush=True)
    for width in widths:
        for density in densities:
            r = bench_one(width, density, masked, args, data)
            if args.json:
                print(json.dumps(r), flush=True)
            else:
                print(f"{r['width']:>6}  {r['density']:>7.3g}  {r['weights']:>9}  "
                      f"{r['kept']:>8}  {r['seconds_per_epoch']:>15.6f}  "
                      f"{r['seconds_per_epoch_min']:>12.6f}  {r['threads']:>7}", flush=True)


if __name__ == "__main__":
    main()
