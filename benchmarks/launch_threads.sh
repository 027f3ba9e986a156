#!/usr/bin/env bash
# Does `accelerate launch` train a CPU run as fast as plain `python`? One epoch of run_train.py each way, with no
# accelerate config and no OMP_NUM_THREADS (accelerate's own default would otherwise pin the run to one thread):
#
#     bash benchmarks/launch_threads.sh [DATASET] [run_train.py options ...]
#     ROUNDS=3 bash benchmarks/launch_threads.sh ../shared/datasets/cifar10
#
# Prints one row per run: the launcher, the CPU threads the run used (metrics.json: cpu_threads) and its timed
# epoch (train_seconds, epoch_seconds); ROUNDS (default 1) alternates the two launchers. Times are only comparable
# on an otherwise idle machine. DATASET defaults to ../shared/datasets/cifar10; PYTHON to .venv/bin/python, else
# python3.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
DATASET="${1:-$ROOT/../shared/datasets/cifar10}"
[ $# -gt 0 ] && shift
ROUNDS="${ROUNDS:-1}"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
# "No accelerate config": accelerate reads its default config under HF_HOME, so point HF_HOME at an empty folder,
# and keep the datasets cache where it is (the one-time image decoding is cached there).
DATASETS_CACHE="$("$PYTHON" -c 'import datasets.config as c; print(c.HF_DATASETS_CACHE)')"
export HF_HOME="$WORK/hf_home" HF_DATASETS_CACHE="$DATASETS_CACHE" HF_HUB_OFFLINE=1 PYTHONWARNINGS=ignore
unset OMP_NUM_THREADS

run() {  # run NAME LAUNCHER...: one epoch, then its row
    local name=$1 out="$WORK/$1-$round"
    shift
    "$@" "$ROOT/run_train.py" --dataset-name "$DATASET" --epochs 1 --output-dir "$out" "${EXTRA[@]}" \
        > "$out.log" 2>&1 || { echo "$name failed:" >&2; tail -20 "$out.log" >&2; exit 1; }
    "$PYTHON" - "$name" "$out/metrics.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[2]))
print(f"{sys.argv[1]:<18} cpu_threads {m['cpu_threads']:>3}  train_seconds {m['train_seconds'][0]:8.3f}"
      f"  epoch_seconds {m['epoch_seconds'][0]:8.3f}  train_samples {m['train_samples']}")
PY
}

EXTRA=("$@")
echo "one epoch of run_train.py on $DATASET ${EXTRA[*]:-} ($(nproc) CPUs)"
for round in $(seq 1 "$ROUNDS"); do
    run python "$PYTHON"
    run accelerate-launch "$PYTHON" -m accelerate.commands.launch
done
