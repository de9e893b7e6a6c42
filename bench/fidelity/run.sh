#!/usr/bin/env bash
# The fidelity study of issue 20 (docs/reproduction.md, "Fidelity"), in two lanes of one core
# each at nice 19: the engine (`coordinator run`, one local worker) and plain PyTorch
# (bench/pytorch_imp.py, one process). Resumable: the engine's sweeps resume from their
# databases, and a PyTorch case whose output holds every seed's run record is skipped.
#
#   bash bench/fidelity/run.sh [OUT_DIR]      (default /work/runs/fidelity)
#
# Needs `cargo build` (the optimised dev profile) and Python with torch, numpy and
# scikit-learn (`pip install -r bench/requirements.txt`).
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-/work/runs/fidelity}"
mkdir -p "$out"
coordinator=target/debug/coordinator
worker=target/debug/worker
python="${PYTHON:-python3}"

engine() {
  for name in levels-6-8 levels-6-8-uniform data-seeds extension-410-498; do
    nice -n 19 "$coordinator" run "bench/fidelity/$name.yaml" --workers 1 \
      --db "$out/$name.db" --format csv > "$out/$name-results.csv"
  done
}

# One PyTorch case: OUTPUT.jsonl then the script's arguments; skipped once complete (8 seeds).
torch_case() {
  local file="$out/$1"; shift
  if [ -f "$file" ] && [ "$(grep -c '"kind": "run"' "$file")" -ge 8 ]; then
    return 0
  fi
  nice -n 19 "$python" bench/pytorch_imp.py "$@" --seeds 0..7 --out "$file.part" \
    > "$file.txt" 2> "$file.log"
  mv "$file.part" "$file"
}

pytorch() {
  "$worker" data sweeps/poster-levels.yaml > "$out/data-seed-0.csv"
  for levels in 6 7 8; do
    torch_case "torch-project-L$levels.jsonl" --data "$out/data-seed-0.csv" \
      --shape 4,410,410,2 --levels "$levels" --target 112
  done
  for levels in 6 7 8; do
    torch_case "torch-sklearn-L$levels.jsonl" --sklearn --data-seed 0 --split thesis \
      --shape 4,410,410,2 --levels "$levels" --target 112
  done
  for ext in 19 20; do
    torch_case "torch-project-ext$ext.jsonl" --data "$out/data-seed-0.csv" \
      --base 4,8,8,2 --extension-rate 0.32 --extension-level "$ext"
  done
}

engine > "$out/engine.log" 2>&1 &
pytorch > "$out/pytorch.log" 2>&1 &
wait
