"""What a policy costs in a real epoch: run_train.py with --augmentation trivialaugment (or randaugment) against
--augmentation tutorial, same model, same batch, rounds interleaved so machine noise hits both.

    python benchmarks/augmentation_epoch.py [--max-train-samples 10000] [--batch-size 64] [--rounds 3]

Issue 23's CPU goal: an epoch with trivialaugment costs at most 10% more training time than with tutorial
(batch 64, 10,000 images). Each run is one epoch of `run_train.py` in a subprocess, timed by the script's own
per-epoch timer (metrics.json `train_seconds`: training only, evaluation excluded); the medians are reported.
"""

import argparse
import os
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from epoch import ROOT, real_epoch  # noqa: E402  (the same subprocess run and timer)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset-name", default=str(ROOT.parent / "shared" / "datasets" / "cifar10"))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-train-samples", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--policies", nargs="+", default=["trivialaugment"], choices=["trivialaugment", "randaugment"])
    args = parser.parse_args()

    kinds = ["tutorial", *args.policies]
    seconds = {kind: [] for kind in kinds}
    for round_ in range(args.rounds):
        for kind in kinds:
            extra = ["--augmentation", kind, "--max-train-samples", str(args.max_train_samples),
                     "--max-eval-samples", "512"]
            seconds[kind].append(real_epoch(args.dataset_name, args.batch_size, extra)[0])
            print(f"round {round_ + 1}: {kind:15s} {seconds[kind][-1]:.2f} s", flush=True)

    print(f"\nmachine: {os.cpu_count()} CPUs, torch {torch.__version__}, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; {args.max_train_samples:,} images, batch "
          f"{args.batch_size}, {args.rounds} rounds (median training seconds of one epoch)")
    base = statistics.median(seconds["tutorial"])
    print("| --augmentation | training s/epoch | vs tutorial |\n| --- | --- | --- |")
    for kind in kinds:
        median = statistics.median(seconds[kind])
        print(f"| {kind} | {median:.2f} | {100 * (median / base - 1):+.1f}% |")


if __name__ == "__main__":
    main()
