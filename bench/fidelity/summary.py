"""The fidelity study's tables (docs/reproduction.md, "Fidelity"), from what bench/fidelity/run.sh
stored: the four outcomes per case for the engine (its databases, through `coordinator
results --by ... --format json`) and for plain PyTorch (bench/pytorch_imp.py's run records),
side by side, with the thesis's counts where the issue quotes them and Fisher's exact test of
"ever split" (separated + separated-then-degraded) against them.

    python bench/fidelity/summary.py [OUT_DIR] [--coordinator target/debug/coordinator]

Finished runs only; a case still running shows what is stored so far (n says how many).
"""

import argparse
import csv
import glob
import io
import json
import math
import os
import subprocess

OUTCOMES = ("separated", "separated_degraded", "interconnected", "degraded_unsplit")

# The thesis's poster, experiment 3 at 6, 7 and 8 levels: 3 seeds each (SEEDS_123 in its
# experiment file), all split and none degraded (read from the poster's figure; its logging
# dropped the degraded level, so it cannot tell separated from separated-then-degraded).
THESIS = {("levels", 6): (3, 3), ("levels", 7): (3, 3), ("levels", 8): (3, 3)}


def engine_counts(coordinator, db, sweep, by, keep=None):
    """{(axis, value): [counts of the four outcomes]} of a sweep's finished tasks."""
    if not os.path.exists(db):
        return {}
    out = subprocess.run([coordinator, "results", sweep, "--db", db, "--by", by,
                          "--format", "json"], check=True, capture_output=True, text=True)
    rows = json.loads(out.stdout)
    result = {}
    for row in rows:
        key = (by, row[by])
        if keep and key not in keep:
            continue
        counts = [row[o] for o in OUTCOMES]
        result[key] = [a + b for a, b in zip(result.get(key, [0] * 4), counts)]
    return result


def torch_counts(out_dir, pattern, key):
    """[counts of the four outcomes] over the run records of PyTorch files matching pattern."""
    counts = [0, 0, 0, 0]
    for path in sorted(glob.glob(os.path.join(out_dir, pattern))):
        for line in open(path):
            record = json.loads(line)
            if record.get("kind") == "run" and record.get("outcome") in OUTCOMES:
                counts[OUTCOMES.index(record["outcome"])] += 1
    return {key: counts}


def fisher(a, b, c, d):
    """Two-sided Fisher exact p of the table [[a, b], [c, d]] (sum of the tables no more
    likely than the observed one)."""
    n1, n2, k = a + b, c + d, a + c
    n = n1 + n2

    def p(x):
        return math.comb(n1, x) * math.comb(n2, k - x) / math.comb(n, k)

    observed = p(a)
    lo, hi = max(0, k - n2), min(k, n1)
    return min(1.0, sum(p(x) for x in range(lo, hi + 1) if p(x) <= observed * (1 + 1e-9)))


def chi2_sf(x, df):
    """P(X >= x) for a chi-square variable with df degrees of freedom (closed forms)."""
    if df % 2 == 0:
        return math.exp(-x / 2) * sum((x / 2) ** i / math.factorial(i) for i in range(df // 2))
    term, total = math.sqrt(2 * x / math.pi) * math.exp(-x / 2), 0.0
    for i in range(1, (df - 1) // 2 + 1):
        total += term
        term *= x / (2 * i + 1)
    return math.erfc(math.sqrt(x / 2)) + total


def homogeneity(rows):
    """The chi-square test p that the (split, not split) counts of rows share one rate."""
    split, n = sum(r[0] for r in rows), sum(r[0] + r[1] for r in rows)
    if split in (0, n) or len(rows) < 2:
        return 1.0
    x = 0.0
    for a, b in rows:
        for observed, share in ((a, split / n), (b, 1 - split / n)):
            expected = (a + b) * share
            x += (observed - expected) ** 2 / expected
    return chi2_sf(x, len(rows) - 1)


def cell(counts):
    """`sep / sep>deg / inter / deg (n)` and ever split k/n."""
    if counts is None or sum(counts) == 0:
        return "-"
    n = sum(counts)
    return f"{counts[0]} / {counts[1]} / {counts[2]} / {counts[3]} (n {n}); split {counts[0] + counts[1]}/{n}"


def degraded_runs(coordinator, db, sweep):
    """The runs of a sweep that degraded without a split: for each, the problems its ticket
    lost (not fully covered by one component) and their test accuracy at the level before,
    from the long export (`coordinator export --format csv`)."""
    if not os.path.exists(db):
        return []
    out = subprocess.run([coordinator, "export", sweep, "--db", db, "--format", "csv"],
                         check=True, capture_output=True, text=True).stdout
    tasks = {}
    for row in csv.DictReader(io.StringIO(out)):
        tasks.setdefault(row["task_id"], []).append(row)
    runs = []
    for levels in tasks.values():
        levels.sort(key=lambda r: int(r["level"]))
        last = levels[-1]
        if last["outcome"] != "degraded_unsplit" or len(levels) < 2:
            continue
        coverage = json.loads(last["coverage"])
        problems = len(coverage[0]) if coverage else 2
        lost = [t for t in range(problems) if not any(c[t] == 1.0 for c in coverage)]
        before = levels[-2]
        runs.append({"lost": [(t, float(before[f"test_accuracy_{t + 1}"])) for t in lost]})
    return runs


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", nargs="?", default="/work/runs/fidelity")
    p.add_argument("--coordinator", default="target/debug/coordinator")
    args = p.parse_args()
    out, c = args.out, args.coordinator
    poster = os.path.join(os.path.dirname(out), "poster")

    columns = {
        "engine, its data": {},
        "engine, Kaiming uniform": {},
        "PyTorch, engine's data": {},
        "PyTorch, thesis's data": {},
        "PyTorch, as the thesis ran": {},
    }
    columns["engine, its data"].update(
        engine_counts(c, f"{out}/levels-6-8.db", "fidelity-levels", "levels"))
    columns["engine, Kaiming uniform"].update(
        engine_counts(c, f"{out}/levels-6-8-uniform.db", "fidelity-levels-uniform", "levels"))
    ext = {("extension_level", 19), ("extension_level", 20)}
    for db, sweep in ((f"{poster}/poster-extension.db", "poster-extension"),
                      (f"{out}/extension-410-498.db", "fidelity-extension")):
        for key, counts in engine_counts(c, db, sweep, "extension_level", ext).items():
            have = columns["engine, its data"].get(key, [0] * 4)
            columns["engine, its data"][key] = [a + b for a, b in zip(have, counts)]
    for levels in (6, 7, 8):
        key = ("levels", levels)
        columns["PyTorch, engine's data"].update(
            torch_counts(out, f"torch-project-L{levels}-s*.jsonl", key))
        columns["PyTorch, thesis's data"].update(
            torch_counts(out, f"torch-sklearn-L{levels}-s*.jsonl", key))
        columns["PyTorch, as the thesis ran"].update(
            torch_counts(out, f"torch-thesis-L{levels}-s*.jsonl", key))
    for ext_level in (19, 20):
        key = ("extension_level", ext_level)
        columns["PyTorch, engine's data"].update(
            torch_counts(out, f"torch-project-ext{ext_level}-s*.jsonl", key))

    print("Four outcomes: separated / separated then degraded / interconnected / degraded "
          "without a split (n finished runs); split: ever split.\n")
    names = list(columns)
    print("| case | " + " | ".join(names) + " | thesis (split/n) |")
    print("|---" * (len(names) + 2) + "|")
    cases = [("levels", l) for l in (6, 7, 8)] + [("extension_level", e) for e in (19, 20)]
    for key in cases:
        label = f"exp 3, {key[1]} levels" if key[0] == "levels" else \
            f"exp 1, extension level {key[1]} (width {410 if key[1] == 19 else 498})"
        thesis = THESIS.get(key)
        cells = [cell(columns[name].get(key)) for name in names]
        t = f"{thesis[0]}/{thesis[1]}" if thesis else "-"
        print(f"| {label} | " + " | ".join(cells) + f" | {t} |")

    print("\nPooled over 6-8 levels, ever split against the thesis's 9 of 9 (Fisher, two-sided):\n")
    for name in names:
        pooled = [0] * 4
        for levels in (6, 7, 8):
            got = columns[name].get(("levels", levels))
            if got:
                pooled = [a + b for a, b in zip(pooled, got)]
        n = sum(pooled)
        if n == 0:
            continue
        split = pooled[0] + pooled[1]
        print(f"- {name}: {split} of {n} split, {pooled[3]} degraded without a split; "
              f"p = {fisher(split, n - split, 9, 0):.3g}")

    seeds = engine_counts(c, f"{out}/data-seeds.db", "fidelity-data-seeds", "data_seed")
    base = engine_counts(c, f"{out}/levels-6-8.db", "fidelity-levels", "seed")
    if seeds:
        print("\nEngine, 6-8 levels pooled, by data seed (4 model seeds x 3 level counts each; "
              "data seed 0: model seeds 0-3 of fidelity-levels):\n")
        zero = [0] * 4
        for s in range(4):
            zero = [a + b for a, b in zip(zero, base.get(("seed", s), [0] * 4))]
        rows = [(0, zero)] + [(k[1], v) for k, v in sorted(seeds.items())]
        print("| data seed | outcomes |")
        print("|---|---|")
        for s, counts in rows:
            print(f"| {s} | {cell(counts)} |")
        table = [(c[0] + c[1], c[2] + c[3]) for _, c in rows if sum(c) > 0]
        split, n = sum(a for a, _ in table), sum(a + b for a, b in table)
        print(f"\nEver split: {split} of {n} over the data sets; that the data sets share one "
              f"rate: chi-square p = {homogeneity(table):.2g}. At that pooled rate "
              f"({split / n:.2f}), 9 independent runs all split with probability "
              f"{(split / n) ** 9:.2g}; 3 (if each level count's runs were one run, as the "
              f"thesis's seeds shared data and batch order) with {(split / n) ** 3:.2g}.")
    print_degraded(c, out)


def print_degraded(c, out):
    """Which problem the degraded runs lose, and whether it had already failed to train."""
    runs = []
    for db, sweep in (("levels-6-8", "fidelity-levels"), ("levels-6-8-uniform",
                      "fidelity-levels-uniform"), ("data-seeds", "fidelity-data-seeds")):
        runs += degraded_runs(c, f"{out}/{db}.db", sweep)
    if not runs:
        return
    names = ("circles", "moons")
    lost = [t for run in runs for t, _ in run["lost"]]
    at_chance = sum(1 for run in runs if any(acc < 0.6 for _, acc in run["lost"]))
    print(f"\nThe engine's {len(runs)} runs that degraded without a split (6-8 levels, every "
          f"study above): the ticket lost "
          + ", ".join(f"{names[t]} {lost.count(t)} times" for t in sorted(set(lost)))
          + f"; in {at_chance} of them a lost problem's test accuracy at the level before was "
          f"already below 0.6 (it had failed to train before it lost its inputs or output).")


if __name__ == "__main__":
    main()
