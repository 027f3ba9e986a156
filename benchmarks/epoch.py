"""Is the data pipeline the bottleneck? One epoch through run_train.py vs the pure compute of the same steps.

    python benchmarks/epoch.py --dataset-name ../shared/datasets/cifar10 [--rounds 2]

"Real" is run_train.py itself (a subprocess, 1 epoch, default tutorial recipe), timed by the script's own
per-epoch timers (metrics.json: train_seconds, epoch_seconds). "Pure compute" repeats the same number of
optimizer steps with the same batch sizes, model, optimizer and loss on tensors that are already normalised
in memory (no indexing, augmentation or normalisation), plus the same evaluation forward passes. Rounds
alternate real and pure so that machine noise hits both; the medians are reported. The one-time image
decoding happens before the first epoch and is not inside the timed epoch.
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from configuration_simple_vit import SimpleViTConfig  # noqa: E402
from modeling_simple_vit import SimpleViTForImageClassification  # noqa: E402
from run_train import make_optimizer  # noqa: E402


def real_epoch(dataset, batch_size, extra):
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, str(ROOT / "run_train.py"), "--dataset-name", dataset, "--epochs", "1",
               "--batch-size", str(batch_size), "--output-dir", out, *extra]
        subprocess.run(cmd, check=True, env=dict(os.environ, HF_HUB_OFFLINE="1"), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        metrics = json.loads(Path(out, "metrics.json").read_text())
    return metrics["train_seconds"][0], metrics["epoch_seconds"][0], metrics["train_samples"], metrics["eval_samples"]


def pure_compute(n_train, n_eval, batch_size, lr=1e-2, weight_decay=1e-2):
    torch.set_flush_denormal(True)
    torch.manual_seed(0)
    config = SimpleViTConfig()
    model = SimpleViTForImageClassification(config).train()
    optimizer = make_optimizer(model, lr, weight_decay)
    size = config.image_size
    # Every batch already normalised and in memory: nothing but the model's work is left.
    train_batches = [torch.randn(min(batch_size, n_train - i), 3, size, size) for i in range(0, n_train, batch_size)]
    labels = [torch.randint(0, 10, (len(x),)) for x in train_batches]
    eval_batches = [torch.randn(min(2 * batch_size, n_eval - i), 3, size, size) for i in range(0, n_eval, 2 * batch_size)]
    start = time.perf_counter()
    loss_sum = torch.zeros(())
    for x, y in zip(train_batches, labels):
        loss = F.cross_entropy(model(pixel_values=x).logits, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss_sum += loss.detach()
    loss_sum.item()
    train_seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        for x in eval_batches:
            model(pixel_values=x).logits.argmax(-1)
    return train_seconds, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset-name", default=str(ROOT.parent / "shared" / "datasets" / "cifar10"))
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-train-samples", type=int, default=None)
    args = parser.parse_args()
    extra = ["--max-train-samples", str(args.max_train_samples)] if args.max_train_samples else []

    real_train, real_total, pure_train, pure_total = [], [], [], []
    for r in range(args.rounds):
        rt, re, n_train, n_eval = real_epoch(args.dataset_name, args.batch_size, extra)
        pt, pe = pure_compute(n_train, n_eval, args.batch_size)
        real_train.append(rt), real_total.append(re), pure_train.append(pt), pure_total.append(pe)
        print(f"round {r + 1}: real train {rt:.1f}s / epoch {re:.1f}s; pure train {pt:.1f}s / epoch {pe:.1f}s",
              flush=True)
    med = statistics.median
    print(f"\nsteps per epoch: {math.ceil(n_train / args.batch_size)} (train {n_train}, eval {n_eval}), "
          f"torch threads {torch.get_num_threads()}")
    print(f"training steps: real {med(real_train):.1f}s vs pure {med(pure_train):.1f}s "
          f"-> {med(real_train) / med(pure_train):.3f}x")
    print(f"whole epoch (with evaluation): real {med(real_total):.1f}s vs pure {med(pure_total):.1f}s "
          f"-> {med(real_total) / med(pure_total):.3f}x (goal <= 1.15x)")


if __name__ == "__main__":
    main()
