#!/usr/bin/env bash
# Controlled runs for "--recipe tutorial is the tutorial": the same model (SimpleViT with the tutorial's
# architecture) trained by the tutorial's own loop and pipeline, and by run_train.py, for the same seeds.
#   bash benchmarks/tutorial_fidelity.sh EPOCHS "SEEDS" [OUT]      e.g. bash benchmarks/tutorial_fidelity.sh 3 "0 1"
# With TUTORIAL_MODEL=1 it also trains the tutorial's own vit.py (its model) for the same seeds, the target curve.
# Needs ../shared (the tutorial's code, its harness and the local CIFAR-10 copy). One JSON line per epoch and run.
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS=${1:-3}; SEEDS=${2:-"0 1"}; OUT=${3:-experiments/tutorial-fidelity}
PY=${PYTHON:-.venv/bin/python}
SHARED=$(cd ../shared && pwd)
mkdir -p "$OUT"
for seed in $SEEDS; do
  [ "${TUTORIAL_MODEL:-0}" != 1 ] || [ -s "$OUT/tutorial-model-seed$seed.jsonl" ] ||
    "$PY" "$SHARED/tools/tutorial_on_local_copy.py" "$EPOCHS" "$seed" > "$OUT/tutorial-model-seed$seed.jsonl"
  [ -s "$OUT/tutorial-loop-seed$seed.jsonl" ] ||
    TUTORIAL_DIR=benchmarks/tutorial_loop "$PY" "$SHARED/tools/tutorial_on_local_copy.py" "$EPOCHS" "$seed" \
      > "$OUT/tutorial-loop-seed$seed.jsonl"
  if [ ! -s "$OUT/run_train-seed$seed.jsonl" ]; then
    "$PY" run_train.py --recipe tutorial --epochs "$EPOCHS" --seed "$seed" --dataset-name "$SHARED/datasets/cifar10" \
      --output-dir "$OUT/run_train-seed$seed" > "$OUT/run_train-seed$seed.log" 2>&1
    "$PY" - "$OUT/run_train-seed$seed/metrics.json" > "$OUT/run_train-seed$seed.jsonl" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
for i, epoch in enumerate(m["epoch"]):
    print(json.dumps({"epoch": epoch, "train_loss": m["train_loss"][i], "eval_loss": m["eval_loss"][i],
                      "acc": m["eval_accuracy"][i], "s": m["epoch_seconds"][i]}))
PY
  fi
done
# The table: test accuracy per epoch, each pipeline and seed.
for f in "$OUT"/*.jsonl; do
  printf '%-28s %s\n' "$(basename "$f" .jsonl)" \
    "$("$PY" -c 'import json,sys; print(" ".join("%.1f" % (100 * json.loads(l)["acc"]) for l in open(sys.argv[1])))' "$f")"
done
