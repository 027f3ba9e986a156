#!/usr/bin/env bash
# One prepared check for a lent GPU machine (<= 8 minutes of device time in all), runnable on a CPU too.
#
#     bash benchmarks/gpu_check.sh              # GPU if there is one, else the CPU smoke mode below
#     bash benchmarks/gpu_check.sh --cpu-smoke  # force the reduced CPU mode (512 images, 1 epoch)
#
# It prints
#   1. training throughput, SimpleViT vs transformers' ViTForImageClassification (SDPA), same config and
#      optimizer, interleaved rounds (benchmarks/throughput.py; on a GPU under bf16 autocast);
#   2. timed run_train.py runs on the CIFAR-10 copy, for the tutorial recipe and --recipe improved-100, each on the
#      ordinary path (--cuda-graph off) and the fast path (--cuda-graph auto: the training step as one captured
#      CUDA graph), then a --compile run of the tutorial recipe if the time budget allows; each run's per-epoch
#      times from metrics.json; and
#   3. the table the README shows: hardware and versions; per recipe and path the steady s/epoch (epochs after the
#      first: the one-time capture or compile is excluded, and reported in its own column), the 100-epoch total
#      projected from it, and the accuracy the short run reached (a 3-epoch schedule: not the 100-epoch accuracy).
#
# Python: the project's .venv if it has torch, else a `python3` that has torch and transformers (the GPU image's),
# else a fresh .venv with `pip install -e .`. The dataset: $CIFAR10_DIR, else ../shared/datasets/cifar10,
# shared/datasets/cifar10 or .gpu_data/cifar10 (a folder ignored by git that can be sent along with the tree).
# run_train.py needs `datasets` and `evaluate`; where they are missing the training part says so and is skipped.
# Time limits (GPU): throughput 60 s; each training run 100 s; a run is not started after 380 s in all.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false

MODE=auto
for arg in "$@"; do
    case "$arg" in
        --cpu-smoke) MODE=cpu ;;
        --gpu) MODE=gpu ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
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

OUT_DIR="$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")"
trap 'rm -rf "$OUT_DIR"' EXIT
echo "== gpu_check.sh: mode $MODE, python $("$PY" -c 'import sys; print(sys.executable)'), $(date -u +%FT%TZ)"
"$PY" - "$MODE" > "$OUT_DIR/hardware.txt" <<'EOF'
import importlib.metadata as md, importlib.util, os, platform, sys
import torch
gpu = torch.cuda.get_device_name(0) if sys.argv[1] == "gpu" and torch.cuda.is_available() else None
versions = ", ".join(f"{name} {md.version(name)}" for name in ("torch", "transformers", "accelerate", "datasets")
                     if importlib.util.find_spec(name) is not None)
cuda = f"CUDA {torch.version.cuda}, " if gpu else ""
cpu = platform.processor() or platform.machine()
print(f"{gpu or 'no GPU'} ({cuda}{os.cpu_count()} CPUs {cpu}); python {platform.python_version()}, {versions}")
EOF
cat "$OUT_DIR/hardware.txt"
[ "$MODE" = gpu ] && command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
# (getconf, not nproc: nproc reports OMP_NUM_THREADS when that is set)
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(getconf _NPROCESSORS_ONLN) CPUs"

STATUS=0
START=$SECONDS

# ---- 1. throughput ------------------------------------------------------------------------------------------
echo
echo "== 1. training throughput: SimpleViT vs transformers ViT (SDPA), same config, optimizer and batch"
if [ "$MODE" = gpu ]; then
    THROUGHPUT=(--device cuda --bf16 --steps 20 --rounds 3); THROUGHPUT_LIMIT=60
else
    THROUGHPUT=(--device cpu --steps 1 --rounds 2 --configs tutorial); THROUGHPUT_LIMIT=150
fi
timeout "$THROUGHPUT_LIMIT" "$PY" benchmarks/throughput.py "${THROUGHPUT[@]}" || { echo "FAILED: throughput (exit $?)"; STATUS=1; }

# ---- 2. timed training on CIFAR-10 --------------------------------------------------------------------------
echo
echo "== 2. timed training: run_train.py on CIFAR-10, ordinary path vs fast path"
DATA=""
for candidate in "${CIFAR10_DIR:-}" ../shared/datasets/cifar10 shared/datasets/cifar10 .gpu_data/cifar10; do
    if [ -n "$candidate" ] && [ -d "$candidate" ]; then DATA="$candidate"; break; fi
done
MISSING="$("$PY" -c "
import importlib.util
print(' '.join(m for m in ('datasets', 'evaluate', 'accelerate', 'torchvision') if importlib.util.find_spec(m) is None))")"
# The fast path needs run_train.py's --cuda-graph flag: without it (a tree from before issue 23) the CPU smoke mode
# runs the ordinary path only; a GPU run would measure nothing new, so it fails.
HAS_CUDA_GRAPH_FLAG=0
"$PY" run_train.py --help 2>/dev/null | grep -q -- "--cuda-graph" && HAS_CUDA_GRAPH_FLAG=1
if [ -z "$DATA" ]; then
    echo "SKIPPED: no CIFAR-10 copy (set CIFAR10_DIR, or put it at ../shared/datasets/cifar10 or .gpu_data/cifar10)"
    STATUS=1
elif [ -n "$MISSING" ]; then
    echo "SKIPPED: run_train.py needs Python packages missing here: $MISSING (carry them as wheels)"
    STATUS=1
else
    if [ "$MODE" = gpu ]; then
        EPOCHS=3; RUN_LIMIT=100; DEADLINE=380
        COMMON="--epochs $EPOCHS --num-workers 8"  # workers: the one-time decoding (the policies run batched on the GPU)
        RUNS=("tutorial|ordinary|--recipe tutorial --cuda-graph off" "tutorial|cuda-graph|--recipe tutorial --cuda-graph auto"
              "improved-100|ordinary|--recipe improved-100 --cuda-graph off"
              "improved-100|cuda-graph|--recipe improved-100 --cuda-graph auto"
              "tutorial|compile|--recipe tutorial --cuda-graph off --compile")
        if [ "$HAS_CUDA_GRAPH_FLAG" = 0 ]; then
            echo "FAILED: run_train.py has no --cuda-graph flag: the fast path cannot be measured"; STATUS=1; RUNS=()
        fi
    else
        EPOCHS=1; RUN_LIMIT=150; DEADLINE=100000
        COMMON="--epochs $EPOCHS --max-train-samples 512 --max-eval-samples 256"
        RUNS=("tutorial|ordinary|--recipe tutorial")
        if [ "$HAS_CUDA_GRAPH_FLAG" = 1 ]; then
            # On a CPU --cuda-graph auto must say why it takes the ordinary step, and train as it.
            RUNS=("tutorial|ordinary|--recipe tutorial --cuda-graph off" "tutorial|cuda-graph|--recipe tutorial --cuda-graph auto")
        else
            echo "note: run_train.py has no --cuda-graph flag yet: only the ordinary path runs (check after the merge)"
        fi
    fi
    for run in "${RUNS[@]}"; do
        IFS='|' read -r recipe path flags <<< "$run"
        name="$recipe-$path"
        if [ $((SECONDS - START)) -gt "$DEADLINE" ]; then
            echo "-- $name: SKIPPED (time budget: $((SECONDS - START)) s used)"; continue
        fi
        echo "-- $name: run_train.py --dataset-name $DATA $flags $COMMON"
        t0=$SECONDS
        # shellcheck disable=SC2086  # flags are words on purpose
        if timeout "$RUN_LIMIT" "$PY" run_train.py --dataset-name "$DATA" $flags $COMMON --output-dir "$OUT_DIR/$name" \
                > "$OUT_DIR/$name.log" 2>&1; then
            grep -i "cuda graph" "$OUT_DIR/$name.log" | head -n 2 | sed 's/^/   /'
            "$PY" - "$OUT_DIR/$name/metrics.json" "$((SECONDS - t0))" "$recipe" "$path" "$OUT_DIR/results.jsonl" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
train, epoch = m["train_seconds"], m["epoch_seconds"]
for i, (t, e) in enumerate(zip(train, epoch), 1):
    print(f"   epoch {i}: train {t:7.2f} s, epoch (with evaluation) {e:7.2f} s")
steady_train, steady_epoch = train[1:] or train, epoch[1:] or epoch
result = {"recipe": sys.argv[3], "path": sys.argv[4], "epochs": len(epoch), "process_seconds": int(sys.argv[2]),
          "train_s": sum(steady_train) / len(steady_train), "epoch_s": sum(steady_epoch) / len(steady_epoch),
          # What the first epoch cost beyond a steady one: capture, compile, warm-up, allocator growth.
          "first_epoch_extra_s": train[0] - sum(steady_train) / len(steady_train) if len(train) > 1 else None,
          "capture_s": m.get("cuda_graph_capture_seconds"), "captured": m.get("cuda_graph"),
          "reason": m.get("cuda_graph_reason"), "accuracy": m["eval_accuracy"][-1],
          "device": m.get("device"), "mixed_precision": m.get("mixed_precision")}
print(f"   epochs after the first: {result['epoch_s']:.2f} s/epoch; whole process {sys.argv[2]} s; "
      f"captured: {result['captured']}; {m.get('device')}, {m.get('mixed_precision')}")
open(sys.argv[5], "a").write(json.dumps(result) + "\n")
EOF
        else
            echo "FAILED: $name (exit $?); last lines of its log:"; tail -n 15 "$OUT_DIR/$name.log"; STATUS=1
        fi
    done

    # ---- 3. the README's table ------------------------------------------------------------------------------
    echo
    echo "== 3. summary (steady epochs exclude the one-time capture/compile; 100 epochs = one-time + 100 x s/epoch)"
    if [ -s "$OUT_DIR/results.jsonl" ]; then
        "$PY" - "$OUT_DIR/results.jsonl" "$OUT_DIR/hardware.txt" <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
print(f"Hardware: {open(sys.argv[2]).read().strip()}")
print()
print("| recipe | path | s/epoch (train) | s/epoch (with eval) | 100 epochs | one-time (capture / compile) | "
      "accuracy after the run | captured |")
print("|---|---|---:|---:|---:|---:|---:|---|")
ordinary = {r["recipe"]: r for r in rows if r["path"] == "ordinary"}
for r in rows:
    one_time = r["capture_s"] if r["capture_s"] is not None else r["first_epoch_extra_s"]
    label = "capture" if r["capture_s"] is not None else "first-epoch extra"
    total = (max(one_time or 0.0, 0.0) + 100 * r["epoch_s"]) / 60
    base = ordinary.get(r["recipe"])
    # A speed-up only where the fast path really ran (a CPU's --cuda-graph auto is the ordinary step again).
    fast = r["captured"] is True or r["path"] == "compile"
    speedup = f" ({base['train_s'] / r['train_s']:.2f}x)" if base and fast and r["train_s"] > 0 else ""
    one = f"{one_time:.1f} s {label}" if one_time is not None else "n/a (one epoch)"
    captured = {True: "yes", False: "no", None: "n/a"}[r["captured"]]
    print(f"| {r['recipe']} | {r['path']} | {r['train_s']:.2f}{speedup} | {r['epoch_s']:.2f} | {total:.1f} min | "
          f"{one} | {r['accuracy']:.4f} ({r['epochs']} ep) | {captured} |")
reasons = {r["reason"] for r in rows if r["reason"]}
for reason in sorted(reasons):
    print(f"cuda graph: {reason}")
EOF
    else
        echo "no finished runs"
    fi
fi

echo
echo "== gpu_check.sh done in $((SECONDS - START)) s, status $STATUS"
exit $STATUS
