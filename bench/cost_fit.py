#!/usr/bin/env python3
"""Fits the coordinator's cost model (shared/src/cost.rs) to measured seconds.

Reads long CSVs (`coordinator export SWEEP --format csv`) and fits seconds per epoch of each
stored level as  a + b * dense_trained + c * sparse_trained  (a level at 40% density or more
trains its whole network dense, a sparser one only its kept weights), least squares on the
relative error. Prints the fixed part and the sparse weight's cost in dense weights, which are
shared::cost's FIXED_PER_EPOCH and SPARSE_PER_WEIGHT, and how well the model and the constants
in use predict the seconds. Levels trained on more than one thread should be left out (the
runs it was fitted on used one thread a task).

    python3 bench/cost_fit.py LONG.csv [LONG.csv ...]
"""
import csv
import sys

import numpy as np

DENSE_FROM = 0.4


def levels(paths):
    for path in paths:
        for row in csv.DictReader(open(path)):
            if not row["epochs"] or not row["seconds"] or int(row["epochs"]) == 0:
                continue
            dense, remaining = int(row["weights"]), int(row["remaining_weights"])
            trained_dense = dense if remaining / dense >= DENSE_FROM else 0
            trained_sparse = 0 if trained_dense else remaining
            yield trained_dense, trained_sparse, float(row["seconds"]) / int(row["epochs"])


def errors(model, y):
    rel = np.abs(model - y) / y
    return f"median {np.median(rel):.0%}, 90th percentile {np.percentile(rel, 90):.0%}"


def main():
    d, s, y = (np.array(c, float) for c in zip(*levels(sys.argv[1:])))
    a = np.vstack([np.ones_like(d), d, s]).T
    (fixed, dense, sparse), *_ = np.linalg.lstsq(a / y[:, None], np.ones_like(y), rcond=None)
    print(f"{len(y)} levels: {fixed * 1e3:.3f} ms an epoch fixed, {dense * 1e9:.1f} ns a dense "
          f"weight, {sparse * 1e9:.1f} ns a sparse weight")
    print(f"FIXED_PER_EPOCH ~ {fixed / dense:.0f} weights, SPARSE_PER_WEIGHT ~ {sparse / dense:.2f}")
    print(f"the fitted model's relative error: {errors(a @ [fixed, dense, sparse], y)}")
    for name, f, sp in [("one constant 44,000 (before)", 44_000.0, 1.0), ("1,100 and 1.35", 1_100.0, 1.35)]:
        cost = f + d + sp * s
        scale = np.median(y / cost)
        print(f"cost model {name}, one scale: {errors(scale * cost, y)}")


if __name__ == "__main__":
    main()
