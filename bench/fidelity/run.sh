#!/usr/bin/env bash
# The fidelity study of issue 20 (docs/reproduction.md, "Fidelity") and then the poster's three
# experiments, in two lanes of one core each at nice 19: the engine (`coordinator run`, one
# local worker) and plain PyTorch (bench/pytorch_imp.py, one process). Resumable: the
# engine's sweeps resume from their databases (the poster's in $POSTER_DIR, default
# OUT_DIR/../poster), and a PyTorch run whose output file exists is skipped.
#
#   [BIN=DIR] setsid nohup bash bench/fidelity/run.sh [OUT_DIR [engine|pytorch]] &
#   (default /work/runs/fidelity, both lanes)
#
# Needs `cargo build` (the optimised dev profile) and Python with torch, numpy and
# scikit-learn (`pip install -r bench/requirements.txt`).
set -euo pipefail
cd "$(dirname "$0")/../.."
# Under autogroup scheduling (Linux's default) nice acts only within a session: started as
# its own session (`setsid`), the study lowers its whole session's group too, so that it
# yields the cores to everything else on the machine.
if [ "$(ps -o sid= -p $$ | tr -d ' ')" = "$$" ] && [ -w /proc/self/autogroup ]; then
  echo 19 > /proc/self/autogroup 2>/dev/null || true
fi
out="${1:-/work/runs/fidelity}"
lanes="${2:-engine pytorch}"
poster="${POSTER_DIR:-$(dirname "$out")/poster}"
mkdir -p "$out" "$poster"
# The binaries (BIN, default target/debug): a copy elsewhere keeps a long run apart from the
# builds of the same tree.
coordinator="${BIN:-target/debug}/coordinator"
worker="${BIN:-target/debug}/worker"
python="${PYTHON:-python3}"

# The engine's fidelity sweeps, then the poster's three experiments (issue 20), each into its
# own database: experiment 3 first (it holds the cases compared here), then experiment 1
# (whose seeds 0-3 at widths 410 and 498 the extension study reads), then experiment 2.
engine() {
  for name in levels-6-8 levels-6-8-uniform data-seeds; do
    run_sweep "bench/fidelity/$name.yaml" "$out/$name"
  done
  run_sweep sweeps/poster-levels.yaml "$poster/poster-levels"
  run_sweep sweeps/poster-extension.yaml "$poster/poster-extension"
  run_sweep bench/fidelity/extension-410-498.yaml "$out/extension-410-498"
  run_sweep sweeps/poster-20-levels.yaml "$poster/poster-20-levels"
}

# One sweep with one local worker at nice 19: SWEEP.yaml, then the database path without .db.
run_sweep() {
  nice -n 19 "$coordinator" run "$1" --workers 1 --db "$2.db" --format csv > "$2-results.csv"
}

# One PyTorch run: OUTPUT.jsonl, the seed, then the script's arguments; one file per case and
# seed, skipped once complete, so an interruption loses at most the run in progress.
torch_run() {
  local file="$out/$1" seed="$2"; shift 2
  if [ -f "$file" ]; then
    return 0
  fi
  nice -n 19 "$python" bench/pytorch_imp.py "$@" --seeds "$seed" --out "$file.part" \
    > "$file.txt" 2> "$file.log"
  mv "$file.part" "$file"
}

# First the thesis's own runs as closely as the code allows (its data, its seeds 1-3, one batch
# sequence shared by every run); then seed by seed over every case, so that an interrupted
# study has comparable counts everywhere.
pytorch() {
  "$worker" data sweeps/poster-levels.yaml > "$out/data-seed-0.csv"
  local project=(--data "$out/data-seed-0.csv") thesis=(--sklearn --data-seed 0 --split thesis)
  for seed in 1 2 3; do
    for levels in 6 7 8; do
      torch_run "torch-thesis-L$levels-s$seed.jsonl" "$seed" "${thesis[@]}" --batch-order thesis \
        --shape 4,410,410,2 --levels "$levels" --target 112
    done
  done
  for seed in 0 1 2 3 4 5 6 7; do
    for levels in 6 7 8; do
      local case=(--shape 4,410,410,2 --levels "$levels" --target 112)
      torch_run "torch-project-L$levels-s$seed.jsonl" "$seed" "${project[@]}" "${case[@]}"
      torch_run "torch-sklearn-L$levels-s$seed.jsonl" "$seed" "${thesis[@]}" "${case[@]}"
    done
  done
  for seed in 0 1 2 3 4 5 6 7; do
    for ext in 19 20; do
      torch_run "torch-project-ext$ext-s$seed.jsonl" "$seed" "${project[@]}" \
        --base 4,8,8,2 --extension-rate 0.32 --extension-level "$ext"
    done
  done
}

for lane in $lanes; do
  "$lane" > "$out/$lane.log" 2>&1 &
done
wait
