"""The IMP protocol of docs/PROTOCOL.md written plainly in PyTorch, to check the project's engine.

An independent implementation of one sweep task: train a masked MLP by iterative magnitude
pruning (train, prune, reset to theta_0, repeat) for a list of model seeds, analyse every level's
ticket as a graph (active / zombie / inactive weights, components, split / connected / degraded)
and classify each run into the four outcomes (separated, separated_degraded, interconnected,
degraded_unsplit). Compare the outcome counts with the project's engine on the same data.

Install (outside the repository, e.g. in a virtualenv):

    pip install -r bench/requirements.txt        # torch, numpy, scikit-learn (for --sklearn)

Run IMP on the project's own data set (exported by `worker data SWEEP --task N > data.csv`):

    python bench/pytorch_imp.py --data data.csv --shape 4,410,410,2 --levels 20 [--target 112]
        [--seeds 0..7] [--jobs 4] [--out runs.jsonl]

or on the poster's extension trajectory (experiment 1: the shape of extension level 19 of the
base (4, 8, 8, 2) at rate 0.32, pruned through the weight counts of levels 18, 17, ..., 0):

    python bench/pytorch_imp.py --data data.csv --base 4,8,8,2 --extension-rate 0.32
        --extension-level 19 [--seeds 0..3]

or on data made with scikit-learn as the thesis made it (see "Data" below):

    python bench/pytorch_imp.py --sklearn [--data-seed 0] [--split thesis|halves|permutation]
        --shape 4,20,20,2 --levels 3 --target 200 --seeds 0,1 --max-epochs 50

Other options: --max-epochs 3000, --patience 30, --lr 1e-3, --batch-size 64,
--no-stop-at-first-degraded (the default stops a run at its first degraded level, as the thesis
and the poster sweeps do), --stop-at-first-split, --init kaiming_uniform (the law one older
version of the thesis's models.py drew for its "KAIMING_NORMAL"), --batch-order thesis (one
generator seeded with the data seed and shared by every model seed, continued over the levels,
as the thesis's global torch generator was re-seeded after the model was built; the property,
not the thesis's exact batches). Seeds are a comma list or an inclusive range
"a..b" (as in the sweep files: 0..7 is eight seeds).

Cross-check the project's graph code (no training):

    worker train SWEEP.yaml --task N --with-masks > levels.jsonl
    python bench/pytorch_imp.py --check-masks levels.jsonl --shape 4,410,410,2 [--levels 20]

recomputes every level's figures (remaining / active / zombie / inactive weights and neurons,
components, coverage, status) from its masks and reports every disagreement (exit status 1 on
one). The shape must be given (with --shape, or --base/--extension-rate/--extension-level): the
output does not carry it. With --levels (and --target) or the extension flags it also checks
each level's remaining count against the schedule; it always checks that every level's kept
weights are a subset of the previous level's.

    python bench/pytorch_imp.py --self-test

checks the schedule arithmetic (against the numbers in docs/PROTOCOL.md and
shared/src/schedule.rs's tests), the graph code on hand-made tickets, the pruning tie-break, the
outcome rules, --check-masks on a hand-written file, and a tiny masked training run.

Output: one JSON line per level (--out FILE.jsonl, else nothing is written) with the seed, the
level, the project's key names (remaining_weights, active_weights, zombie_weights,
inactive_weights, active_neurons, zombie_neurons, inactive_neurons, components, coverage,
status, test_accuracy per task, test_loss (the held-out loss at the end), train_loss, epochs,
seconds), and one summary line per run ("kind": "run": outcome, first_split_level,
first_degraded_level, active_at_first_split). Progress goes to stderr; the table of outcome
counts goes to stdout.

The protocol as implemented here
--------------------------------
* Schedule (shared/src/schedule.rs): W = sum of fan_in * fan_out (biases not counted);
  p = 1 - (T / W)^(1 / L); the count after level l < L is round(W (1-p)^l) (f64, round half away
  from zero as Rust's f64::round), clamped to [T, previous count]; level L keeps exactly T;
  L = 0 trains the dense network once. Extension width of level i: the positive root of
  (m-1) h^2 + (d_in + d_out) h = W_base / (1-p)^i, rounded (the project's formula, no search of
  the neighbours; a warning is printed if a neighbour's count were closer).
* Data (--data): the CSV as written by `worker data`, used as it is (already standardised).
  Problem j owns inputs x{2j}, x{2j+1} and output y{j}.
* Data (--sklearn): circles (noise 0.1, factor 0.35) and moons (noise 0.1), 2000 points each
  (--samples), concatenated column-wise (circles -> x0, x1, y0; moons -> x2, x3, y1), split
  50/50, every input column standardised with the train part's mean and population std
  (sklearn's StandardScaler). --split thesis (default) follows the thesis's code,
  maxburger4real/structure-of-lottery-tickets, project/training/datasets.py,
  __make_circles_and_moons (data seed from the run config, project/factory.py
  make_dataloaders): np.random.seed(S), then make_circles and make_moons drawing from that one
  global stream in turn, columns concatenated as float32, sklearn train_test_split(test_size=0.5,
  random_state=42), StandardScaler fitted on the train part. --split halves / permutation use
  make_circles(random_state=S) and make_moons(random_state=S) and take the first 1000 rows as
  train (halves) or the first 1000 of numpy default_rng(S).permutation(2000) (permutation).
  The project's own data (`worker data`) are drawn by its own generator (ChaCha8) and are not
  the same points as any of these.
* Model: MLP with ReLU between layers, none on the output. theta_0: torch.manual_seed(seed), the
  nn.Linear layers are built in order (their default init draws from the generator, as the
  thesis's model did), then every weight is re-drawn with kaiming_normal_(fan_in, relu) in layer
  order and every bias set to zero (project/training/models.py of the thesis). The project draws
  theta_0 from its own generator: the networks are not the same numbers, only the same law.
* Training: forward with w * mask (pruned weights are exactly zero and get no gradient, so a
  fresh Adam never moves them), BCE with logits averaged over outputs and rows of the batch,
  Adam(lr, betas (0.9, 0.999), eps 1e-8), fresh at every level; batch 64, the last batch smaller;
  the batch order is torch.randperm with a torch.Generator seeded with seed * 2^20 + level + 1.
  After every epoch the held-out loss (same loss over the whole test split, no grad, summed in
  float64); early stopping when it has not been strictly below the best so far for `patience`
  epochs, or at max_epochs; the last epoch's weights are kept (as worker/src/train.rs; the
  thesis's EarlyStopper in project/factory.py counted only epochs whose loss rose above the best,
  an equal loss counting neither way, which differs only on exact ties).
  A non-finite held-out loss stops the run with no outcome (the project fails such a task:
  "diverged").
* Pruning (worker/src/prune.rs): global, weights only; among the kept weights remove the
  (count before - count after) smallest by (|w| as float32, layer, flat index): ties go to the
  earlier layer and the smaller flat index first, as the project breaks them. Then every weight
  and bias is reset to theta_0; the masks stay.
* Graph (shared/src/graph/mod.rs, passes.rs): a neuron is fed if an input reaches it, useful if it
  reaches an output. Weight u -> v: active if u fed and v useful, zombie if v useful and u not fed,
  inactive if v not useful. Neuron: active if fed and useful, zombie if useful and not fed,
  inactive if not useful (inputs and outputs counted too). Components: connected components of
  the active weights (undirected), over the active neurons, numbered by smallest (layer, index).
  coverage[c][t] = (inputs of t in c / inputs of t) * (outputs of t in c / outputs of t).
  Status: degraded if components > tasks or some task has no component covering all its inputs
  and outputs; split if components == tasks and the tasks' covering components are distinct;
  connected otherwise.
* Outcome (shared/src/outcome.rs): separated if the last level run is split; separated_degraded
  if split at some level but not the last; degraded_unsplit if degraded and never split;
  interconnected otherwise.
"""

import argparse
import json
import math
import multiprocessing as mp
import os
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

OUTCOMES = ("separated", "separated_degraded", "interconnected", "degraded_unsplit")
MAX_LEVELS = 1000  # shared/src/schedule.rs MAX_LEVELS

# The widths of docs/PROTOCOL.md for base (4, 8, 8, 2), rate 0.32, extension levels 0..25.
POSTER_WIDTHS = [8, 10, 13, 16, 20, 25, 31, 38, 47, 57, 70, 85, 104, 127, 154, 188, 229, 278,
                 337, 410, 498, 604, 733, 890, 1080, 1310]


# --------------------------------------------------------------------------- schedule
# Every function here follows shared/src/schedule.rs, in float64 as the Rust code.


def round_half_away(x):
    """Rust's f64::round: the nearest integer, halves away from zero (Python's round() goes
    to even). Only used on non-negative numbers here."""
    if x < 0:
        return -round_half_away(-x)
    r = math.floor(x)
    return int(r + 1 if x - r >= 0.5 else r)


def weight_count(shape):
    """Weights (biases excluded) of a network of layer widths `shape` (schedule.rs
    weight_count)."""
    return sum(a * b for a, b in zip(shape[:-1], shape[1:]))


def rate_for(weights, levels, target):
    """p = 1 - (T/W)^(1/L); 0 when L == 0 or T >= W (schedule.rs rate_for)."""
    if levels == 0 or target >= weights or weights == 0:
        return 0.0
    return 1.0 - (target / weights) ** (1.0 / levels)


def count_at(weights, rate, level):
    """round(W (1-p)^l) (schedule.rs count_at: powf, then f64::round)."""
    x = weights * (1.0 - rate) ** float(level)
    if math.isfinite(x) and x > 0.0:
        return round_half_away(x)
    return 0


def remaining_counts(weights, rate, levels, target):
    """Weights remaining after each level 0..L (schedule.rs remaining_counts): [W] for L == 0;
    else W, round(W (1-p)^l) clamped to [T, previous] for 0 < l < L, and exactly T at L."""
    counts = [weights]
    if levels == 0:
        return counts
    target = min(target, weights)
    previous = weights
    for level in range(1, levels):
        c = min(max(count_at(weights, rate, level), target), previous)
        counts.append(c)
        previous = c
    counts.append(target)
    return counts


def levels_target_schedule(shape, levels, target):
    """The counts of --shape/--levels/--target, checked as schedule.rs resolve() checks
    levels + target."""
    w = weight_count(shape)
    if levels < 0 or levels > MAX_LEVELS:
        raise ValueError(f"{levels} levels: allowed are 0..={MAX_LEVELS}")
    if levels == 0:
        return [w], 0.0
    if target < 1:
        raise ValueError("target 0 leaves no weights; the target must be at least 1")
    if target > w:
        raise ValueError(f"target {target} is larger than the network's {w} weights")
    rate = rate_for(w, levels, target)
    return remaining_counts(w, rate, levels, target), rate


def _base_parts(base):
    """(hidden width, hidden layers m, d_in + d_out) of a base shape (schedule.rs base_parts)."""
    if len(base) < 3:
        raise ValueError(f"base shape {base} must have at least one hidden layer")
    hidden = base[1:-1]
    if hidden[0] == 0 or any(h != hidden[0] for h in hidden):
        raise ValueError(f"base shape {base} must have hidden layers all of one width")
    return hidden[0], len(hidden), base[0] + base[-1]


def _with_width(base, h):
    return [base[0]] + [h] * (len(base) - 2) + [base[-1]]


def extension_width(base, rate, level, warn=True):
    """Hidden width of extension level `level` (schedule.rs extension_width): the positive
    root of (m-1) h^2 + (d_in + d_out) h = W_base / (1-p)^level, in the stable form
    2 c / (b + sqrt(b^2 + 4 a c)), rounded half away from zero. Level 0 is the base width.

    The project rounds the root and searches no neighbours; so does this function. With `warn`
    it prints a warning if h - 1 or h + 1 had a weight count closer to the wanted one (never the
    case for the poster's bases, see the self-test)."""
    width, m, io = _base_parts(base)
    if not (0.0 < rate < 1.0):
        raise ValueError(f"rate {rate} is outside (0, 1)")
    if level == 0:
        return width
    wanted = weight_count(base) / (1.0 - rate) ** float(level)
    a, b = float(m - 1), float(io)
    h = round_half_away(2.0 * wanted / (b + math.sqrt(b * b + 4.0 * a * wanted)))
    if h < 1:
        raise ValueError(f"extension level {level} of {base} has no width")
    if warn:
        err = {k: abs(weight_count(_with_width(base, k)) - wanted)
               for k in (h - 1, h, h + 1) if k >= 1}
        best = min(err, key=lambda k: (err[k], k != h))
        if best != h:
            print(f"warning: extension level {level} of {base}: width {best} has a weight count "
                  f"closer to {wanted:.1f} than the rounded root {h}; using {h} as the project "
                  f"does", file=sys.stderr)
    return h


def extension_shape(base, rate, level):
    """The base's inputs and outputs with every hidden layer of the extension width."""
    return _with_width(base, extension_width(base, rate, level))


def trajectory_counts(base, rate, level):
    """The thesis's trajectory schedule (schedule.rs trajectory_counts): the dense counts of
    extension shapes level, level-1, ..., 0, each clamped to the one before."""
    counts = []
    for i in range(level, -1, -1):
        w = weight_count(extension_shape(base, rate, i))
        counts.append(min(w, counts[-1]) if counts else w)
    return counts


# --------------------------------------------------------------------------- graph
# shared/src/graph/mod.rs (analyze) and passes.rs, on boolean masks of shape [fan_out, fan_in].


def two_d_tasks(k):
    """k two-dimensional problems: problem j owns inputs 2j, 2j+1 and output j
    (graph/mod.rs TaskIo::two_d_problems)."""
    return [{"inputs": [2 * j, 2 * j + 1], "outputs": [j]} for j in range(k)]


def masks_from_indices(shape, kept_lists):
    """Boolean masks [fan_out, fan_in] from the exchange format: per matrix, input layer first,
    the sorted flat indices o * fan_in + i of the kept weights. Raises ValueError on a list that
    does not fit (graph/mod.rs validate_masks)."""
    if len(kept_lists) != len(shape) - 1:
        raise ValueError(f"shape {shape} has {len(shape) - 1} weight matrices but "
                         f"{len(kept_lists)} masks were given")
    masks = []
    for layer, (kept, fan_in, fan_out) in enumerate(zip(kept_lists, shape[:-1], shape[1:])):
        idx = np.asarray(kept, dtype=np.int64)
        n = fan_in * fan_out
        if idx.size:
            if np.any(np.diff(idx) <= 0):
                raise ValueError(f"layer {layer}: kept indices are not strictly increasing")
            if idx[0] < 0 or idx[-1] >= n:
                raise ValueError(f"layer {layer}: a kept index is out of range "
                                 f"(the layer has {n} weights)")
        m = np.zeros(n, dtype=bool)
        m[idx] = True
        masks.append(m.reshape(fan_out, fan_in))
    return masks


def indices_from_masks(masks):
    """The exchange format of boolean masks (sorted flat indices per matrix)."""
    return [np.flatnonzero(m.reshape(-1)).tolist() for m in masks]


def _components(n, u, v, nodes):
    """Connected components of the undirected edges (u[k], v[k]) over `nodes` (ids < n): the
    root of every node, which is the smallest id of its component. Union by hooking the larger
    root under the smaller one, then full path compression, until every edge is inside one
    component (numpy throughout, so a dense level of width 1310 takes about a second)."""
    parent = np.arange(n, dtype=np.int64)
    while u.size:
        pu, pv = parent[u], parent[v]
        diff = pu != pv
        if not diff.any():
            break
        lo = np.minimum(pu[diff], pv[diff])
        hi = np.maximum(pu[diff], pv[diff])
        np.minimum.at(parent, hi, lo)  # parent[x] <= x always: no cycles
        while True:
            pp = parent[parent]
            if np.array_equal(pp, parent):
                break
            parent = pp
    return parent[nodes]


def analyze(masks, tasks):
    """The figures of a ticket (graph/mod.rs analyze): counts of weights and neurons by class,
    components, coverage[c][t] and status. `masks`: boolean [fan_out, fan_in] per matrix, input
    layer first; `tasks`: dicts with the "inputs" (layer-0 neurons) and "outputs" (last-layer
    neurons) of each problem."""
    shape = [masks[0].shape[1]] + [m.shape[0] for m in masks]
    for l, m in enumerate(masks[1:], start=1):
        assert m.shape[1] == masks[l - 1].shape[0], f"layer {l}: widths disagree"
    offsets = np.concatenate([[0], np.cumsum(shape)]).astype(np.int64)
    n = int(offsets[-1])
    depth = len(masks)

    # Fed: forward sweep; useful: backward sweep (passes.rs Passes::new).
    fed = [np.ones(shape[0], dtype=bool)]
    for m in masks:
        fed.append(m[:, fed[-1]].any(axis=1))
    useful = [None] * (depth + 1)
    useful[depth] = np.ones(shape[-1], dtype=bool)
    for l in range(depth - 1, -1, -1):
        useful[l] = masks[l][useful[l + 1], :].any(axis=0)

    remaining = active_w = zombie_w = 0
    us, vs = [], []
    for l, m in enumerate(masks):
        remaining += int(m.sum())
        into_useful = m & useful[l + 1][:, None]
        act = into_useful & fed[l][None, :]
        active_w += int(act.sum())
        zombie_w += int((into_useful & ~fed[l][None, :]).sum())
        o, i = np.nonzero(act)
        us.append(offsets[l] + i)
        vs.append(offsets[l + 1] + o)
    inactive_w = remaining - active_w - zombie_w

    fed_all = np.concatenate(fed)
    useful_all = np.concatenate(useful)
    active_n = fed_all & useful_all
    zombie_n = useful_all & ~fed_all
    active_neurons = int(active_n.sum())
    zombie_neurons = int(zombie_n.sum())
    inactive_neurons = n - active_neurons - zombie_neurons

    nodes = np.flatnonzero(active_n)
    roots = _components(n, np.concatenate(us), np.concatenate(vs), nodes)
    # Numbered by smallest (layer, index) neuron, i.e. by root (the smallest id).
    order = np.unique(roots)
    components = int(order.size)
    label = np.full(n, -1, dtype=np.int64)
    label[nodes] = np.searchsorted(order, roots)

    out_start = int(offsets[depth])
    coverage = [[0.0] * len(tasks) for _ in range(components)]
    full = [None] * len(tasks)
    for t, task in enumerate(tasks):
        in_count = np.zeros(components, dtype=np.int64)
        out_count = np.zeros(components, dtype=np.int64)
        for i in task["inputs"]:
            assert 0 <= i < shape[0], f"task {t}: input {i} does not exist"
            if label[i] >= 0:
                in_count[label[i]] += 1
        for o in task["outputs"]:
            assert 0 <= o < shape[-1], f"task {t}: output {o} does not exist"
            if label[out_start + o] >= 0:
                out_count[label[out_start + o]] += 1
        ni, no = len(task["inputs"]), len(task["outputs"])
        if ni == 0 or no == 0:
            continue  # coverage 0 everywhere, never fully covered
        for c in range(components):
            coverage[c][t] = float((in_count[c] / ni) * (out_count[c] / no))
            if in_count[c] == ni and out_count[c] == no:
                full[t] = c

    if components > len(tasks) or any(c is None for c in full):
        status = "degraded"
    else:
        distinct = len(set(full)) == len(full)
        status = "split" if components == len(tasks) and distinct else "connected"

    return {
        "remaining_weights": remaining,
        "active_weights": active_w,
        "zombie_weights": zombie_w,
        "inactive_weights": inactive_w,
        "active_neurons": active_neurons,
        "zombie_neurons": zombie_neurons,
        "inactive_neurons": inactive_neurons,
        "components": components,
        "coverage": coverage,
        "status": status,
    }


def classify(statuses):
    """The outcome of a run from its levels' statuses in level order (outcome.rs classify):
    (outcome, first split level, first degraded level); None for no level."""
    if not statuses:
        return None
    first_split = next((l for l, s in enumerate(statuses) if s == "split"), None)
    first_degraded = next((l for l, s in enumerate(statuses) if s == "degraded"), None)
    if statuses[-1] == "split":
        outcome = "separated"
    elif first_split is not None:
        outcome = "separated_degraded"
    elif first_degraded is not None:
        outcome = "degraded_unsplit"
    else:
        outcome = "interconnected"
    return outcome, first_split, first_degraded


# --------------------------------------------------------------------------- pruning


def prune_global(weights, masks, remove):
    """Removes exactly `remove` kept weights, the smallest by (|w| as float32, layer, flat
    index), from the boolean masks in place (worker/src/prune.rs, global scope). `weights`:
    float32 numpy arrays [fan_out, fan_in]."""
    if remove == 0:
        return
    mags, where = [], []
    for l, (w, m) in enumerate(zip(weights, masks)):
        flat = np.flatnonzero(m.reshape(-1))  # increasing index: (layer, index) order overall
        mags.append(np.abs(w.reshape(-1)[flat].astype(np.float32)))
        where.append(np.stack([np.full(flat.size, l), flat], axis=1))
    mags = np.concatenate(mags)
    where = np.concatenate(where)
    if remove > mags.size:
        raise ValueError(f"cannot remove {remove} of {mags.size} weights")
    # A stable sort keeps (layer, index) order among equal magnitudes: ties go first to the
    # earlier layer and smaller index, as prune.rs's cut does.
    gone = where[np.argsort(mags, kind="stable")[:remove]]
    for l in range(len(masks)):
        sel = gone[gone[:, 0] == l, 1]
        masks[l].reshape(-1)[sel] = False


# --------------------------------------------------------------------------- data


def load_csv(path):
    """The CSV of `worker data`: header split,x0..x{2k-1},y0..y{k-1}; returns
    (x_train, y_train, x_test, y_test) as float32 arrays in the file's row order."""
    import csv

    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader)]
        if not header or header[0] != "split":
            raise ValueError(f"{path}: the header must start with 'split', got {header[:3]}")
        xcols = [j for j, h in enumerate(header) if h.startswith("x")]
        ycols = [j for j, h in enumerate(header) if h.startswith("y")]
        k = len(ycols)
        want = [f"x{j}" for j in range(2 * k)] + [f"y{j}" for j in range(k)]
        if [header[j] for j in xcols + ycols] != want or len(header) != 1 + 3 * k:
            raise ValueError(f"{path}: expected columns split,{','.join(want)}; "
                             f"got {','.join(header)}")
        rows = {"train": ([], []), "test": ([], [])}
        for line_no, row in enumerate(reader, start=2):
            if not row:
                continue
            split = row[0].strip()
            if split not in rows:
                raise ValueError(f"{path}:{line_no}: split must be train or test, got {split!r}")
            rows[split][0].append([float(row[j]) for j in xcols])
            rows[split][1].append([float(row[j]) for j in ycols])
    out = []
    for split in ("train", "test"):
        x, y = rows[split]
        if not x:
            raise ValueError(f"{path}: no {split} rows")
        out += [np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.float32)]
    ys = np.concatenate([out[1], out[3]])
    if not np.all((ys == 0.0) | (ys == 1.0)):
        raise ValueError(f"{path}: labels must be 0 or 1")
    return tuple(out)


def sklearn_data(seed, split="thesis", samples=2000, noise=0.1, factor=0.35):
    """Circles + moons as the thesis made them (see the module docstring, "Data")."""
    from sklearn.datasets import make_circles, make_moons
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    if split == "thesis":
        # project/training/datasets.py __make_circles_and_moons: np.random.seed(seed) and both
        # generators called without random_state, i.e. drawing in turn from one RandomState.
        rs = np.random.RandomState(seed)
        cx, cy = make_circles(samples, noise=noise, factor=factor, random_state=rs)
        mx, my = make_moons(samples, noise=noise, random_state=rs)
    else:
        cx, cy = make_circles(samples, noise=noise, factor=factor, random_state=seed)
        mx, my = make_moons(samples, noise=noise, random_state=seed)
    # As the thesis's __concat_datasets: float32 before splitting and scaling.
    x = np.concatenate([cx, mx], axis=1).astype(np.float32)
    y = np.stack([cy, my], axis=1).astype(np.float32)
    n_test = round_half_away(samples * 0.5)
    n_train = samples - n_test
    if split == "thesis":
        x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.5, random_state=42)
    elif split == "halves":
        x_tr, x_te, y_tr, y_te = x[:n_train], x[n_train:], y[:n_train], y[n_train:]
    elif split == "permutation":
        order = np.random.default_rng(seed).permutation(samples)
        tr, te = order[:n_train], order[n_train:]
        x_tr, x_te, y_tr, y_te = x[tr], x[te], y[tr], y[te]
    else:
        raise ValueError(f"unknown split {split!r}")
    scaler = StandardScaler().fit(x_tr)  # mean and population std of the train part
    x_tr = scaler.transform(x_tr).astype(np.float32)
    x_te = scaler.transform(x_te).astype(np.float32)
    return x_tr, y_tr.astype(np.float32), x_te, y_te.astype(np.float32)


# --------------------------------------------------------------------------- model and training


class Diverged(Exception):
    pass


def init_params(shape, seed, init="kaiming_normal"):
    """theta_0: torch.manual_seed(seed), nn.Linear layers built in order, then Kaiming-normal
    (or, with init="kaiming_uniform", Kaiming-uniform: same variance, bounded) weights (fan_in,
    relu gain) in layer order and zero biases (the thesis's models.py; one older version of its
    common/models.py drew "KAIMING_NORMAL" with kaiming_uniform_)."""
    torch.manual_seed(seed)
    layers = [torch.nn.Linear(a, b) for a, b in zip(shape[:-1], shape[1:])]
    draw = {"kaiming_normal": torch.nn.init.kaiming_normal_,
            "kaiming_uniform": torch.nn.init.kaiming_uniform_}[init]
    weights, biases = [], []
    with torch.no_grad():
        for layer in layers:
            draw(layer.weight, mode="fan_in", nonlinearity="relu")
            torch.nn.init.zeros_(layer.bias)
            weights.append(layer.weight.detach().clone())
            biases.append(layer.bias.detach().clone())
    return weights, biases


def forward(x, weights, biases, masks):
    """The masked MLP: ReLU between layers, none on the output; every weight multiplied by its
    mask, so pruned weights are exactly zero and get zero gradient."""
    h = x
    last = len(weights) - 1
    for l, (w, b, m) in enumerate(zip(weights, biases, masks)):
        h = F.linear(h, w * m, b)
        if l < last:
            h = torch.relu(h)
    return h


def evaluate(x, y, weights, biases, masks):
    """(mean BCE with logits over rows and outputs, summed in float64; accuracy per output:
    the fraction of rows whose logit has the label's sign, as worker/src/train.rs)."""
    with torch.no_grad():
        z = forward(x, weights, biases, masks).double()
        t = y.double()
        loss = F.binary_cross_entropy_with_logits(z, t, reduction="mean").item()
        acc = ((z > 0) == (t > 0.5)).double().mean(dim=0).tolist()
    return loss, acc


def batch_seed(seed, level):
    """The seed of the batch order of one level."""
    return seed * (1 << 20) + level + 1


def train_level(data, theta0, masks_bool, seed, level, cfg, gen=None):
    """Trains one level from theta_0 under the masks; returns (trained weights as float32 numpy
    arrays, figures). `gen`: the batch-order generator to continue (--batch-order thesis);
    by default a fresh one per seed and level."""
    started = time.perf_counter()
    x_tr, y_tr, x_te, y_te = data
    weights = [w.clone().requires_grad_(True) for w in theta0[0]]
    biases = [b.clone().requires_grad_(True) for b in theta0[1]]
    masks = [torch.from_numpy(m.astype(np.float32)) for m in masks_bool]
    opt = torch.optim.Adam(weights + biases, lr=cfg["lr"], betas=(0.9, 0.999), eps=1e-8)
    if gen is None:
        gen = torch.Generator().manual_seed(batch_seed(seed, level))
    n = x_tr.shape[0]
    bs = max(1, cfg["batch_size"])
    best, since_best, epochs = math.inf, 0, 0
    while epochs < cfg["max_epochs"]:
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, bs):
            idx = order[start:start + bs]
            logits = forward(x_tr[idx], weights, biases, masks)
            loss = F.binary_cross_entropy_with_logits(logits, y_tr[idx], reduction="mean")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        epochs += 1
        held_out, _ = evaluate(x_te, y_te, weights, biases, masks)
        if not math.isfinite(held_out):
            raise Diverged(f"seed {seed}, level {level}, epoch {epochs}: held-out loss {held_out}")
        if held_out < best:  # strictly below the best (min delta 0)
            best, since_best = held_out, 0
        else:
            since_best += 1
            if since_best >= cfg["patience"]:
                break
    test_loss, test_acc = evaluate(x_te, y_te, weights, biases, masks)
    train_loss, _ = evaluate(x_tr, y_tr, weights, biases, masks)
    trained = [(w * m).detach().numpy().astype(np.float32) for w, m in zip(weights, masks)]
    figures = {
        "test_accuracy": test_acc,
        "test_loss": test_loss,
        "train_loss": train_loss,
        "epochs": epochs,
        "seconds": round(time.perf_counter() - started, 3),
    }
    return trained, figures


def run_seed(job):
    """One IMP run; returns (level records, summary record). `job` is a dict (picklable for
    --jobs)."""
    torch.set_num_threads(1)
    seed, shape, counts, cfg = job["seed"], job["shape"], job["counts"], job["cfg"]
    data = tuple(torch.from_numpy(a) for a in job["data"])
    k = data[1].shape[1]
    tasks = two_d_tasks(k)
    theta0 = init_params(shape, seed, cfg.get("init", "kaiming_normal"))
    # --batch-order thesis: as the thesis's runs, the global torch generator re-seeded with the
    # data seed after the model was built (project/factory.py, make_dataloaders), continued
    # over every level: every model seed trains on the same sequence of batches.
    gen = None
    if cfg.get("batch_order") == "thesis":
        gen = torch.Generator().manual_seed(cfg.get("data_seed", 0))
    masks = [np.ones((b, a), dtype=bool) for a, b in zip(shape[:-1], shape[1:])]
    levels = len(counts) - 1
    records, statuses = [], []
    stopped = None
    for level in range(levels + 1):
        try:
            trained, figures = train_level(data, theta0, masks, seed, level, cfg, gen)
        except Diverged as e:
            stopped = f"diverged: {e}"
            print(f"seed {seed}: {stopped}", file=sys.stderr, flush=True)
            break
        graph = analyze(masks, tasks)
        assert graph["remaining_weights"] == counts[level], (graph, counts[level])
        rec = {"kind": "level", "seed": seed, "level": level, **graph, **figures}
        records.append(rec)
        statuses.append(graph["status"])
        acc = ", ".join(f"{a:.3f}" for a in figures["test_accuracy"])
        print(f"seed {seed} level {level}/{levels}: remaining {graph['remaining_weights']} "
              f"active {graph['active_weights']} zombie {graph['zombie_weights']} inactive "
              f"{graph['inactive_weights']} components {graph['components']} "
              f"{graph['status']}; acc [{acc}] held-out {figures['test_loss']:.4f} "
              f"epochs {figures['epochs']} ({figures['seconds']:.1f} s)",
              file=sys.stderr, flush=True)
        if graph["status"] == "degraded" and cfg["stop_at_first_degraded"]:
            stopped = "first degraded level"
            break
        if graph["status"] == "split" and cfg["stop_at_first_split"]:
            stopped = "first split level"
            break
        if level < levels:
            prune_global(trained, masks, int(sum(m.sum() for m in masks)) - counts[level + 1])
    summary = {"kind": "run", "seed": seed, "shape": shape, "levels_planned": levels,
               "levels_run": len(records), "stopped": stopped}
    # A diverged run is a failed task in the project (no outcome), whatever its levels showed.
    result = None if stopped and stopped.startswith("diverged") else classify(statuses)
    if result is None:
        summary.update(outcome=None, first_split_level=None, first_degraded_level=None,
                       active_at_first_split=None)
    else:
        outcome, first_split, first_degraded = result
        summary.update(
            outcome=outcome,
            first_split_level=first_split,
            first_degraded_level=first_degraded,
            active_at_first_split=(records[first_split]["active_weights"]
                                   if first_split is not None else None),
        )
    return records, summary


# --------------------------------------------------------------------------- check-masks


def check_masks(path, shape, counts=None, out=sys.stdout):
    """Recomputes every level of `worker train --with-masks` output from its masks and compares.
    Returns the number of disagreements."""
    keys = ("remaining_weights", "active_weights", "zombie_weights", "inactive_weights",
            "active_neurons", "zombie_neurons", "inactive_neurons", "components", "status")
    problems = 0
    levels_seen = 0
    previous = {}  # task key -> (level, masks)
    statuses = {}
    with open(path) as f:
        for line_no, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            rec = json.loads(line)
            where = f"{path}:{line_no} (task {rec.get('task')}, level {rec.get('level')})"
            if "masks" not in rec:
                print(f"{where}: no 'masks' key; run `worker train ... --with-masks`", file=out)
                problems += 1
                continue
            try:
                masks = masks_from_indices(shape, rec["masks"])
            except ValueError as e:
                print(f"{where}: masks do not fit shape {shape}: {e}", file=out)
                problems += 1
                continue
            k = len(rec.get("test_accuracy", [])) or shape[-1]
            if shape[0] != 2 * k or shape[-1] != k:
                print(f"{where}: shape {shape} does not fit {k} two-dimensional problems", file=out)
                problems += 1
                continue
            levels_seen += 1
            if rec.get("level") == 0 and any(len(kept) != a * b for kept, a, b
                                             in zip(rec["masks"], shape[:-1], shape[1:])):
                print(f"{where}: level 0 is not dense for shape {shape} (is the shape right?)",
                      file=out)
                problems += 1
            got = analyze(masks, two_d_tasks(k))
            bad = [f"{key}: file {rec.get(key)!r}, recomputed {got[key]!r}"
                   for key in keys if rec.get(key) != got[key]]
            cov = rec.get("coverage")
            if (cov is None or len(cov) != len(got["coverage"])
                    or any(len(a) != len(b) or any(abs(x - y) > 1e-12 for x, y in zip(a, b))
                           for a, b in zip(cov, got["coverage"]))):
                bad.append(f"coverage: file {cov!r}, recomputed {got['coverage']!r}")
            level = rec.get("level")
            if counts is not None and isinstance(level, int):
                want = counts[level] if 0 <= level < len(counts) else None
                if got["remaining_weights"] != want:
                    bad.append(f"kept weights {got['remaining_weights']}, the schedule says {want}")
            task = (rec.get("task"), rec.get("id"))
            if task in previous and isinstance(level, int):
                plevel, pmasks = previous[task]
                if level == plevel + 1 and any(np.any(m & ~p) for m, p in zip(masks, pmasks)):
                    bad.append(f"keeps weights that level {plevel} had pruned")
            previous[task] = (level, masks)
            statuses.setdefault(task, []).append((level, got["status"]))
            for b in bad:
                print(f"{where}: {b}", file=out)
            problems += len(bad)
    for task, levels in statuses.items():
        levels.sort(key=lambda x: (x[0] is None, x[0]))
        outcome, fs, fd = classify([s for _, s in levels])
        fs = None if fs is None else levels[fs][0]  # positions -> the file's level numbers
        fd = None if fd is None else levels[fd][0]
        print(f"task {task[0]} ({task[1]}): {len(levels)} levels, statuses "
              f"{' '.join(s[0] for _, s in levels)} -> {outcome} (first split {fs}, first "
              f"degraded {fd})", file=out)
    print(f"{levels_seen} levels checked, {problems} disagreement(s)", file=out)
    return problems


# --------------------------------------------------------------------------- self-test


def _mask(fan_in, fan_out, kept):
    return masks_from_indices([fan_in, fan_out], [kept])[0]


def self_test():
    # Rounding as Rust's f64::round.
    assert [round_half_away(x) for x in (0.5, 1.5, 2.5, 2.4999, 1e-9)] == [1, 2, 3, 2, 0]

    # Schedule: shared/src/schedule.rs's tests and docs/PROTOCOL.md's numbers.
    widths = [extension_width([4, 8, 8, 2], 0.32, i) for i in range(26)]
    assert widths == POSTER_WIDTHS, widths
    assert weight_count(extension_shape([4, 8, 8, 2], 0.32, 25)) == 1_723_960
    assert extension_width([4, 20, 2], 0.32, 0) == 20
    assert extension_width([4, 4, 4, 4, 2], 0.32, 0) == 4
    assert extension_width([4, 20, 2], 0.32, 1) == round_half_away(120.0 / 0.68 / 6.0)
    for base in ([4, 20, 2], [4, 4, 4, 4, 2], [4, 8, 8, 2]):
        for i in range(21):
            h = extension_width(base, 0.32, i, warn=False)
            wanted = weight_count(base) / 0.68 ** i
            err = lambda k: abs(weight_count(_with_width(base, k)) - wanted)  # noqa: E731
            assert err(h) <= err(h + 1) and err(h) <= err(h - 1), (base, i)
    counts = trajectory_counts([4, 8, 8, 2], 0.32, 25)
    assert len(counts) == 26 and counts[0] == 1_723_960 and counts[-1] == 112
    assert all(c == h * h + 6 * h for c, h in zip(counts, reversed(POSTER_WIDTHS)))
    assert all(a > b for a, b in zip(counts, counts[1:]))
    assert trajectory_counts([4, 8, 8, 2], 0.32, 0) == [112]
    assert trajectory_counts([4, 8, 8, 2], 0.32, 2) == [13 * 13 + 78, 160, 112]
    w = weight_count([4, 410, 410, 2])
    assert w == 170_560
    for levels in range(1, 21):
        c, p = levels_target_schedule([4, 410, 410, 2], levels, 112)
        assert len(c) == levels + 1 and c[0] == w and c[-1] == 112
        assert all(a > b for a, b in zip(c, c[1:])), (levels, c)
        assert all(c[l] == round_half_away(w * (1 - p) ** l) for l in range(levels))
    assert levels_target_schedule([4, 410, 410, 2], 0, 112) == ([170_560], 0.0)
    assert remaining_counts(1000, 0.5, 3, 125) == [1000, 500, 250, 125]
    assert remaining_counts(10, 0.01, 5, 9) == [10, 10, 10, 10, 10, 9]
    assert abs(rate_for(112 * 100, 2, 112) - 0.9) < 1e-12
    assert levels_target_schedule([4, 8, 8, 2], 20, 112)[0] == [112] * 21  # rate 0
    print("schedule: ok", file=sys.stderr)

    tasks = two_d_tasks(2)
    # Split (graph/ticket.rs split_ticket): (4, 3, 2); x1,x2 -> h1 -> y1; x3,x4 -> h2 -> y2;
    # x1 -> h3, which goes nowhere (one inactive weight, h3 an inactive neuron).
    split = [_mask(4, 3, [0, 1, 4 + 2, 4 + 3, 8]), _mask(3, 2, [0, 3 + 1])]
    g = analyze(split, tasks)
    assert (g["active_weights"], g["zombie_weights"], g["inactive_weights"]) == (6, 0, 1), g
    assert (g["active_neurons"], g["zombie_neurons"], g["inactive_neurons"]) == (8, 0, 1), g
    assert g["components"] == 2 and g["status"] == "split", g
    assert g["coverage"] == [[1.0, 0.0], [0.0, 1.0]], g
    # Zombie (ticket.rs): (4, 2, 2); x1,x2 -> h1 -> y1; h2 has no input but feeds y2.
    zombie = [_mask(4, 2, [0, 1]), _mask(2, 2, [0, 3])]
    g = analyze(zombie, tasks)
    assert (g["active_weights"], g["zombie_weights"], g["inactive_weights"]) == (3, 1, 0), g
    assert (g["active_neurons"], g["zombie_neurons"], g["inactive_neurons"]) == (4, 2, 2), g
    assert g["components"] == 1 and g["status"] == "degraded", g  # x3, x4 and y2 cut off
    # Connected: (4, 1, 2), one hidden unit joining every input and both outputs.
    g = analyze([_mask(4, 1, [0, 1, 2, 3]), _mask(1, 2, [0, 1])], tasks)
    assert g["components"] == 1 and g["status"] == "connected", g
    assert g["coverage"] == [[1.0, 1.0]] and g["active_weights"] == 6, g
    # Degraded, a task spread over two components: x1 -> h1 -> y1; x2, x3, x4 -> h2 -> y2.
    spread = [_mask(4, 2, [0, 4 + 1, 4 + 2, 4 + 3]), _mask(2, 2, [0, 3])]
    g = analyze(spread, tasks)
    assert g["components"] == 2 and g["status"] == "degraded", g
    assert g["coverage"] == [[0.5, 0.0], [0.0, 1.0]], g
    # More components than tasks (with a task that does not own every column).
    g = analyze(split, [{"inputs": [0, 1], "outputs": [0]}])
    assert g["components"] == 2 and g["status"] == "degraded", g
    # Inactive chain in a deeper net: (4, 2, 2, 2); the split ticket through two hidden layers
    # plus x1 -> a2 -> b2, where b2 -> nothing (two inactive weights, a zombie-free net).
    deep = [_mask(4, 2, [0, 1, 4 + 2, 4 + 3]), _mask(2, 2, [0, 3]), _mask(2, 2, [0, 3])]
    g = analyze(deep, tasks)
    assert g["status"] == "split" and g["inactive_weights"] == 0, g
    deep2 = [_mask(4, 3, [0, 1, 4 + 2, 4 + 3, 8]), _mask(3, 3, [0, 4, 8]), _mask(3, 2, [0, 4])]
    g = analyze(deep2, tasks)
    assert (g["active_weights"], g["zombie_weights"], g["inactive_weights"]) == (8, 0, 2), g
    assert g["status"] == "split" and g["inactive_neurons"] == 2, g
    # A zombie chain: (4, 2, 2, 2); every input -> h1 -> g1 -> y1; h2 has no input but feeds
    # g1 (active) and g2, and g2 feeds y2: three zombie weights, zombie neurons h2, g2, y2.
    zc = [_mask(4, 2, [0, 1, 2, 3]), _mask(2, 2, [0, 1, 2 + 1]), _mask(2, 2, [0, 3])]
    g = analyze(zc, tasks)
    assert (g["active_weights"], g["zombie_weights"], g["inactive_weights"]) == (6, 3, 0), g
    assert (g["active_neurons"], g["zombie_neurons"], g["inactive_neurons"]) == (7, 3, 0), g
    assert g["components"] == 1 and g["status"] == "degraded", g  # y2 in no component
    # Components numbered by smallest neuron; a big random net: union-find vs a plain BFS.
    rng = np.random.default_rng(3)
    for trial in range(30):
        shp = [4] + [int(rng.integers(1, 9)) for _ in range(int(rng.integers(1, 4)))] + [2]
        ms = [rng.random((b, a)) < rng.uniform(0.05, 0.6) for a, b in zip(shp[:-1], shp[1:])]
        g = analyze(ms, tasks)
        assert g["components"] == _bfs_components(ms), (trial, shp)
        assert (g["remaining_weights"] == g["active_weights"] + g["zombie_weights"]
                + g["inactive_weights"])
    print("graph: ok", file=sys.stderr)

    # Pruning (prune.rs tests).
    ms = [np.ones((1, 4), bool), np.ones((1, 2), bool)]
    prune_global([np.array([[0.5, -0.1, 0.3, 0.9]]), np.array([[-0.2, 0.05]])], ms, 3)
    assert [m.ravel().tolist() for m in ms] == [[True, False, True, True], [False, False]]
    ms = [np.array([[False, True, True, True]])]
    prune_global([np.array([[0.0, 0.4, 0.3, 0.9]])], ms, 1)
    assert ms[0].ravel().tolist() == [False, True, False, True]
    ms = [np.ones((1, 3), bool), np.ones((1, 1), bool)]
    prune_global([np.ones((1, 3)), np.ones((1, 1))], ms, 2)
    assert [m.ravel().tolist() for m in ms] == [[False, False, True], [True]]
    ms = [np.ones((2, 2), bool)]
    prune_global([np.array([[-0.25, 0.25], [0.0, -0.0]], np.float32)], ms, 3)
    assert ms[0].ravel().tolist() == [False, True, False, False]
    print("pruning: ok", file=sys.stderr)

    # Outcomes (outcome.rs tests).
    C, S, D = "connected", "split", "degraded"
    assert classify([C, C, S, S]) == ("separated", 2, None)
    assert classify([C, S, S, D, D]) == ("separated_degraded", 1, 3)
    assert classify([C, C, C]) == ("interconnected", None, None)
    assert classify([C, C, D, D]) == ("degraded_unsplit", None, 2)
    assert classify([C, C, S, D]) == ("separated_degraded", 2, 3)
    assert classify([S])[0] == "separated" and classify([D])[0] == "degraded_unsplit"
    assert classify([]) is None
    print("outcomes: ok", file=sys.stderr)

    # --check-masks on a hand-written file: the split ticket as level 1 after a dense level 0.
    shape = [4, 3, 2]
    dense = {"task": 0, "id": "t", "level": 0, "remaining_weights": 18, "active_weights": 18,
             "zombie_weights": 0, "inactive_weights": 0, "active_neurons": 9,
             "zombie_neurons": 0, "inactive_neurons": 0, "components": 1,
             "coverage": [[1.0, 1.0]], "status": "connected", "test_accuracy": [0.9, 0.9],
             "masks": [list(range(12)), list(range(6))]}
    lvl1 = {"task": 0, "id": "t", "level": 1, "remaining_weights": 7, "active_weights": 6,
            "zombie_weights": 0, "inactive_weights": 1, "active_neurons": 8,
            "zombie_neurons": 0, "inactive_neurons": 1, "components": 2,
            "coverage": [[1.0, 0.0], [0.0, 1.0]], "status": "split",
            "test_accuracy": [0.9, 0.9], "masks": [[0, 1, 6, 7, 8], [0, 4]]}
    sink = open(os.devnull, "w")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "levels.jsonl")
        with open(path, "w") as f:
            f.write(json.dumps(dense) + "\n" + json.dumps(lvl1) + "\n")
        assert check_masks(path, shape, counts=[18, 7], out=sink) == 0
        assert check_masks(path, shape, counts=[18, 8], out=sink) == 1
        with open(path, "w") as f:
            f.write(json.dumps(dense) + "\n" + json.dumps({**lvl1, "status": "connected",
                                                           "zombie_weights": 1}) + "\n")
        assert check_masks(path, shape, out=sink) == 2
        with open(path, "w") as f:  # level 1 keeps a weight level 0 had pruned
            f.write(json.dumps({**lvl1, "level": 0}) + "\n"
                    + json.dumps({**lvl1, "masks": [[0, 1, 6, 7, 9], [0, 4]]}) + "\n")
        assert check_masks(path, shape, out=sink) >= 1
        with open(path, "w") as f:  # indices out of range for the shape
            f.write(json.dumps({**lvl1, "masks": [[0, 12], [0]]}) + "\n")
        assert check_masks(path, shape, out=sink) == 1
    sink.close()
    print("check-masks: ok", file=sys.stderr)

    # A tiny masked IMP run on random data: pruned weights stay exactly zero, counts follow the
    # schedule, and every level starts again from theta_0.
    torch.set_num_threads(1)
    g = np.random.default_rng(0)
    x = g.standard_normal((96, 4)).astype(np.float32)
    y = np.stack([(x[:, 0] * x[:, 1] > 0), (x[:, 2] + x[:, 3] > 0)], 1).astype(np.float32)
    data = tuple(torch.from_numpy(a) for a in (x[:64], y[:64], x[64:], y[64:]))
    shp = [4, 6, 6, 2]
    counts, _ = levels_target_schedule(shp, 2, 20)
    theta0 = init_params(shp, 5)
    again = init_params(shp, 5)
    assert all(torch.equal(a, b) for a, b in zip(theta0[0] + theta0[1], again[0] + again[1]))
    assert all(torch.all(b == 0) for b in theta0[1])
    cfg = dict(lr=1e-3, batch_size=16, max_epochs=3, patience=30)
    masks = [np.ones((b, a), bool) for a, b in zip(shp[:-1], shp[1:])]
    for level in range(3):
        trained, fig = train_level(data, theta0, masks, 5, level, cfg)
        assert fig["epochs"] == 3 and math.isfinite(fig["test_loss"])
        assert all(np.all(t[~m] == 0) for t, m in zip(trained, masks))
        assert sum(int(m.sum()) for m in masks) == counts[level]
        if level < 2:
            prune_global(trained, masks, counts[level] - counts[level + 1])
    a, _ = train_level(data, theta0, masks, 5, 2, cfg)
    b, _ = train_level(data, theta0, masks, 5, 2, cfg)
    assert all(np.array_equal(p, q) for p, q in zip(a, b)), "training is not deterministic"
    print("training: ok", file=sys.stderr)
    print("self-test passed")


def _bfs_components(masks):
    """Components of the active weights by a plain breadth-first search (self-test only)."""
    shape = [masks[0].shape[1]] + [m.shape[0] for m in masks]
    off = np.concatenate([[0], np.cumsum(shape)])
    fwd = {(0, i) for i in range(shape[0])}
    for l, m in enumerate(masks):
        fwd |= {(l + 1, o) for o in range(shape[l + 1]) if any(m[o, i] and (l, i) in fwd
                                                               for i in range(shape[l]))}
    bwd = {(len(masks), o) for o in range(shape[-1])}
    for l in range(len(masks) - 1, -1, -1):
        bwd |= {(l, i) for i in range(shape[l]) if any(masks[l][o, i] and (l + 1, o) in bwd
                                                       for o in range(shape[l + 1]))}
    adj = {}
    for l, m in enumerate(masks):
        for o, i in zip(*np.nonzero(m)):
            if (l, i) in fwd and (l + 1, o) in bwd:
                u, v = int(off[l] + i), int(off[l + 1] + o)
                adj.setdefault(u, []).append(v)
                adj.setdefault(v, []).append(u)
    seen, count = set(), 0
    for s in adj:
        if s in seen:
            continue
        count += 1
        stack = [s]
        seen.add(s)
        while stack:
            for t in adj[stack.pop()]:
                if t not in seen:
                    seen.add(t)
                    stack.append(t)
    return count


# --------------------------------------------------------------------------- command line


def parse_ints(s, what):
    try:
        return [int(v) for v in s.split(",") if v.strip()]
    except ValueError:
        raise SystemExit(f"{what}: expected comma-separated integers, got {s!r}")


def parse_seeds(s):
    """A comma list, or an inclusive range a..b / a..=b (as the sweep files)."""
    s = s.strip()
    if ".." in s:
        a, b = s.replace("..=", "..").split("..", 1)
        lo, hi = int(a), int(b)
        if hi < lo:
            raise SystemExit(f"--seeds: empty range {s!r}")
        return list(range(lo, hi + 1))
    return parse_ints(s, "--seeds")


def resolve_schedule(args, p):
    """(shape, remaining counts, description) from --shape/--levels/--target or the extension
    flags."""
    ext = [args.base, args.extension_rate, args.extension_level]
    if any(v is not None for v in ext):
        if any(v is None for v in ext):
            p.error("--base, --extension-rate and --extension-level go together")
        if args.shape is not None or args.levels is not None:
            p.error("give either --shape/--levels/--target or "
                    "--base/--extension-rate/--extension-level")
        base = parse_ints(args.base, "--base")
        try:
            shape = extension_shape(base, args.extension_rate, args.extension_level)
            counts = trajectory_counts(base, args.extension_rate, args.extension_level)
        except ValueError as e:
            p.error(str(e))
        return shape, counts, (f"extension level {args.extension_level} of {base} at rate "
                               f"{args.extension_rate}")
    shape = parse_ints(args.shape or "4,410,410,2", "--shape")
    if len(shape) < 2 or 0 in shape:
        p.error(f"shape {shape} needs at least two non-zero layers")
    if args.levels is None:
        return shape, None, None
    try:
        counts, rate = levels_target_schedule(shape, args.levels, args.target)
    except ValueError as e:
        p.error(str(e))
    return shape, counts, f"{args.levels} levels to {counts[-1]} weights (rate {rate:.6f})"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="the CSV of `worker data SWEEP --task N`")
    p.add_argument("--sklearn", action="store_true", help="make circles + moons with scikit-learn")
    p.add_argument("--data-seed", type=int, default=0, help="data seed of --sklearn (default 0)")
    p.add_argument("--split", choices=("thesis", "halves", "permutation"), default="thesis",
                   help="train/test split of --sklearn (default thesis)")
    p.add_argument("--samples", type=int, default=2000, help="points per problem of --sklearn")
    p.add_argument("--shape", help="layer widths, e.g. 4,410,410,2")
    p.add_argument("--levels", type=int, help="pruning levels after the dense level 0")
    p.add_argument("--target", type=int, default=112, help="weights after the last level (112)")
    p.add_argument("--base", help="base shape of the extension trajectory, e.g. 4,8,8,2")
    p.add_argument("--extension-rate", type=float, help="extension rate, e.g. 0.32")
    p.add_argument("--extension-level", type=int, help="extension level, e.g. 19")
    p.add_argument("--seeds", default="0..7", help="model seeds: a..b (inclusive) or a list")
    p.add_argument("--stop-at-first-degraded", dest="stop_degraded", action="store_true",
                   default=True, help="end a run at its first degraded level (default)")
    p.add_argument("--no-stop-at-first-degraded", dest="stop_degraded", action="store_false")
    p.add_argument("--stop-at-first-split", action="store_true",
                   help="end a run at its first split level")
    p.add_argument("--jobs", type=int, default=1, help="processes, one thread each (default 1)")
    p.add_argument("--max-epochs", type=int, default=3000)
    p.add_argument("--patience", type=int, default=30)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--init", choices=("kaiming_normal", "kaiming_uniform"),
                   default="kaiming_normal", help="weight law of theta_0 (default kaiming_normal)")
    p.add_argument("--batch-order", choices=("run", "thesis"), default="run",
                   help="run: a generator per seed and level (default); thesis: one generator "
                        "seeded with the data seed, shared by every seed, continued over levels")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--out", help="write the level and run records here (JSON lines)")
    p.add_argument("--check-masks", metavar="FILE.jsonl",
                   help="recompute the levels of `worker train --with-masks` and compare")
    p.add_argument("--self-test", action="store_true", help="run the built-in checks")
    args = p.parse_args()

    if args.self_test:
        self_test()
        return 0

    if args.check_masks:
        if args.shape is None and args.base is None:
            p.error("--check-masks needs the shape: --shape (or --base, --extension-rate, "
                    "--extension-level); `worker train` output does not carry it")
        shape, counts, what = resolve_schedule(args, p)
        print(f"shape {shape}" + (f", schedule: {what}" if what else ""))
        return 1 if check_masks(args.check_masks, shape, counts) else 0

    if args.levels is None and args.base is None:
        p.error("give --levels (with --shape, --target) or "
                "--base/--extension-rate/--extension-level")
    shape, counts, what = resolve_schedule(args, p)
    if bool(args.data) == bool(args.sklearn):
        p.error("give exactly one of --data FILE.csv and --sklearn")
    if args.sklearn:
        data = sklearn_data(args.data_seed, args.split, args.samples)
        source = f"sklearn circles + moons, data seed {args.data_seed}, split {args.split}"
    else:
        data = load_csv(args.data)
        source = args.data
    k = data[1].shape[1]
    if shape[0] != 2 * k or shape[-1] != k:
        p.error(f"shape {shape} does not fit {k} two-dimensional problems "
                f"({2 * k} inputs, {k} outputs)")
    seeds = parse_seeds(args.seeds)
    cfg = dict(lr=args.lr, batch_size=args.batch_size, max_epochs=args.max_epochs,
               patience=args.patience, stop_at_first_degraded=args.stop_degraded,
               stop_at_first_split=args.stop_at_first_split, init=args.init,
               batch_order=args.batch_order, data_seed=args.data_seed)
    print(f"init {args.init}, batch order {args.batch_order}", file=sys.stderr)
    print(f"data: {source} ({data[0].shape[0]} train, {data[2].shape[0]} test, {k} problems)",
          file=sys.stderr)
    print(f"shape {shape}, {what}; counts {counts}", file=sys.stderr)

    jobs = [dict(seed=s, shape=shape, counts=counts, cfg=cfg, data=data) for s in seeds]
    out = open(args.out, "w") if args.out else None
    summaries = []

    def record(result):
        records, summary = result
        summaries.append(summary)
        if out:
            for r in records + [summary]:
                out.write(json.dumps(r) + "\n")
            out.flush()
        print(f"seed {summary['seed']}: {summary['outcome']} (first split "
              f"{summary['first_split_level']}, first degraded {summary['first_degraded_level']}, "
              f"active at first split {summary['active_at_first_split']})",
              file=sys.stderr, flush=True)

    torch.set_num_threads(1)
    if args.jobs <= 1 or len(jobs) == 1:
        for job in jobs:
            record(run_seed(job))
    else:
        with mp.get_context("spawn").Pool(min(args.jobs, len(jobs))) as pool:
            for result in pool.imap_unordered(run_seed, jobs):
                record(result)
    if out:
        out.close()

    summaries.sort(key=lambda s: s["seed"])
    print(f"shape {shape}, {what}; data: {source}")
    print(f"{'seed':>6} {'outcome':<20} {'levels':>6} {'1st split':>9} {'1st degr.':>9} "
          f"{'active@split':>12}")
    for s in summaries:
        fmt = lambda v: "-" if v is None else str(v)  # noqa: E731
        print(f"{s['seed']:>6} {fmt(s['outcome']):<20} {s['levels_run']:>6} "
              f"{fmt(s['first_split_level']):>9} {fmt(s['first_degraded_level']):>9} "
              f"{fmt(s['active_at_first_split']):>12}")
    n = len(summaries)
    print()
    print(f"{'outcome':<20} {'runs':>5} {'fraction':>9}")
    for o in OUTCOMES:
        c = sum(1 for s in summaries if s["outcome"] == o)
        print(f"{o:<20} {c:>5} {c / n if n else 0:>9.3f}")
    other = sum(1 for s in summaries if s["outcome"] not in OUTCOMES)
    if other:
        print(f"{'(diverged: none)':<20} {other:>5} {other / n:>9.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
