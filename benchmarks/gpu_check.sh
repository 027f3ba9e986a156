#!/usr/bin/env bash
# One prepared check for a lent GPU machine (at most 150 s per part, so <= 8 minutes on one H100), runnable on a CPU too.
#
#     bash benchmarks/gpu_check.sh              # GPU if there is one, else the CPU smoke mode below
#     bash benchmarks/gpu_check.sh --cpu-smoke  # force the reduced CPU mode (a few steps, 1024 images, 1 epoch)
#
# It prints
#   1. training throughput, SimpleViT vs transformers' ViTForImageClassification (SDPA), same config and
#      optimizer, interleaved rounds (benchmarks/throughput.py; on a GPU under bf16 autocast);
#   2. a timed multi-epoch run of run_train.py on the CIFAR-10 copy (5 epochs on a GPU, plus 5 with --compile),
#      and the per-epoch times it recorded in metrics.json (train_seconds, epoch_seconds).
#
# Python: the project's .venv if it has torch, else a `python3` that has torch and transformers (the GPU image's),
# else a fresh .venv with `pip install -e .`. The dataset: $CIFAR10_DIR, else ../shared/datasets/cifar10,
# shared/datasets/cifar10 or .gpu_data/cifar10 (a folder ignored by git that can be sent along with the tree).
# run_train.py needs `datasets` and `evaluate`; where they are missing the training part says so and is skipped.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false

MODE=auto
for arg in "$@"; do
    case "$arg" in
        --cpu-smoke) MODE=cpu ;;
        --gpu) MODE=gpu ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg (use --cpu-smoke or --gpu)" >&2; exit 2 ;;
    esac
done

# ---- Python -------------------------------------------------------------------------------------------------
if [ -x .venv/bin/python ] && .venv/bin/python -c "import torch, transformers" 2>/dev/null; then
    PY=.venv/bin/python
elif command -v python3 >/dev/null && python3 -c "import torch, transformers" 2>/dev/null; then
    PY=python3
else
    echo "== no Python with torch and transformers: creating .venv (pip install -e .)"
    python3 -m venv .venv && .venv/bin/python -m pip install --quiet -e . || { echo "FAILED: venv setup"; exit 1; }
    PY=.venv/bin/python
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"  # the project's modules, also without `pip install -e .`

if [ "$MODE" = auto ]; then
    if "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then MODE=gpu; else MODE=cpu; fi
fi

echo "== gpu_check.sh: mode $MODE, python $("$PY" -c 'import sys; print(sys.executable)'), $(date -u +%FT%TZ)"
"$PY" -c "import torch, transformers; print('torch', torch.__version__, '| transformers', transformers.__version__, '| cuda', torch.cuda.is_available() and torch.cuda.get_device_name(0))"
[ "$MODE" = gpu ] && command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"

STATUS=0
START=$SECONDS

# ---- 1. throughput ------------------------------------------------------------------------------------------
echo
echo "== 1. training throughput: SimpleViT vs transformers ViT (SDPA), same config, optimizer and batch"
if [ "$MODE" = gpu ]; then
    THROUGHPUT=(--device cuda --bf16 --steps 30 --rounds 5)
else
    THROUGHPUT=(--device cpu --steps 1 --rounds 2 --configs tutorial)
fi
timeout 150 "$PY" benchmarks/throughput.py "${THROUGHPUT[@]}" || { echo "FAILED: throughput (exit $?)"; STATUS=1; }

# ---- 2. timed training on CIFAR-10 --------------------------------------------------------------------------
echo
echo "== 2. timed training: run_train.py on CIFAR-10"
DATA=""
for candidate in "${CIFAR10_DIR:-}" ../shared/datasets/cifar10 shared/datasets/cifar10 .gpu_data/cifar10; do
    if [ -n "$candidate" ] && [ -d "$candidate" ]; then DATA="$candidate"; break; fi
done
MISSING="$("$PY" -c "
import importlib.util
print(' '.join(m for m in ('datasets', 'evaluate', 'accelerate', 'torchvision') if importlib.util.find_spec(m) is None))")"
if [ -z "$DATA" ]; then
    echo "SKIPPED: no CIFAR-10 copy (set CIFAR10_DIR, or put it at ../shared/datasets/cifar10 or .gpu_data/cifar10)"
    STATUS=1
elif [ -n "$MISSING" ]; then
    echo "SKIPPED: run_train.py needs Python packages missing here: $MISSING (carry them as wheels)"
    STATUS=1
else
    OUT_DIR="$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")"
    trap 'rm -rf "$OUT_DIR"' EXIT
    if [ "$MODE" = gpu ]; then
        RUNS=("eager:--epochs 5" "compile:--epochs 5 --compile")
    else
        RUNS=("smoke:--epochs 1 --max-train-samples 1024 --max-eval-samples 512")
    fi
    for run in "${RUNS[@]}"; do
        name="${run%%:*}"; flags="${run#*:}"
        echo "-- $name: run_train.py --dataset-name $DATA $flags"
        t0=$SECONDS
        # shellcheck disable=SC2086  # flags are words on purpose
        if timeout 150 "$PY" run_train.py --dataset-name "$DATA" $flags --output-dir "$OUT_DIR/$name" \
                > "$OUT_DIR/$name.log" 2>&1; then
            "$PY" - "$OUT_DIR/$name/metrics.json" "$((SECONDS - t0))" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
train, epoch = m["train_seconds"], m["epoch_seconds"]
for i, (t, e) in enumerate(zip(train, epoch), 1):
    print(f"   epoch {i}: train {t:7.2f} s, epoch (with evaluation) {e:7.2f} s")
steady = epoch[1:] or epoch
extra = {k: (m[k][-1] if isinstance(m[k], list) else m[k]) for k in ("train_samples", "eval_samples", "eval_accuracy", "device", "mixed_precision") if k in m}
print(f"   epochs after the first: mean {sum(steady) / len(steady):.2f} s/epoch; whole process {sys.argv[2]} s; {extra}")
EOF
        else
            echo "FAILED: $name (exit $?); last lines of its log:"; tail -n 15 "$OUT_DIR/$name.log"; STATUS=1
        fi
    done
fi

echo
echo "== gpu_check.sh done in $((SECONDS - START)) s, status $STATUS"
exit $STATUS
