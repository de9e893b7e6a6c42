"""The project's epoch against PyTorch's, side by side in one run on one machine.

For every width (and density), runs `worker bench` and `bench/pytorch_epoch.py` one after
the other (alternating which goes first, so that drift of a shared machine hits both) and
prints one markdown table with both medians and their ratio. Both measure the same epoch:
16 Adam steps of batch 64 on 1000 points and the 1000-point held-out loss.

    python bench/compare.py [--widths 8,38,104,410,1310] [--densities 1.0] [--threads 1]
        [--epochs 3] [--repeats 5] [--worker target/debug/worker]

The Python that runs this script must have torch (`pip install -r bench/requirements.txt`);
the worker binary comes from `cargo build -p worker` (the optimised dev profile).
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--widths", default="8,38,104,410,1310")
    p.add_argument("--densities", default="1.0")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--worker", default=os.path.join(HERE, "..", "target", "debug", "worker"))
    args = p.parse_args()

    common = ["--epochs", str(args.epochs), "--repeats", str(args.repeats),
              "--threads", str(args.threads), "--json"]
    rows = []
    for i, width in enumerate(args.widths.split(",")):
        for density in args.densities.split(","):
            sel = ["--widths", width, "--densities", density]
            ours = [args.worker, "bench", *sel, *common]
            torch = [sys.executable, os.path.join(HERE, "pytorch_epoch.py"), *sel, *common]
            first, second = (ours, torch) if i % 2 == 0 else (torch, ours)
            a = run_json(first)[0]
            b = run_json(second)[0]
            mine, theirs = (a, b) if first is ours else (b, a)
            rows.append((mine, theirs))
            print(f"measured width {width} density {density}", file=sys.stderr)

    print(f"threads: {args.threads}; torch {rows[0][1].get('torch_version', '?')}; "
          f"medians of {args.repeats} x {args.epochs} epochs")
    print()
    print("| width | density | weights | kept | paths | project s/epoch | PyTorch s/epoch "
          "| PyTorch / project | project GFLOP/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for mine, theirs in rows:
        ratio = theirs["seconds_per_epoch"] / mine["seconds_per_epoch"]
        print(f"| {mine['width']} | {mine['density']:g} | {mine['weights']:,} | {mine['kept']:,} "
              f"| {','.join(mine['paths'])} | {mine['seconds_per_epoch']:.4f} "
              f"| {theirs['seconds_per_epoch']:.4f} | {ratio:.2f} | {mine['gflops']:.1f} |")


if __name__ == "__main__":
    main()
