"""What the training augmentation costs per batch: `BatchAugment` for each --augmentation kind, against the old
per-image torchvision policies (v2.TrivialAugmentWide / v2.RandAugment called image by image, then the same crop +
flip), on uint8 CIFAR-sized batches.

    python benchmarks/augmentation_cost.py                        # CPU, 1 thread, batches of 256 and 64, 32x32
    python benchmarks/augmentation_cost.py --step                 # plus one training step of the tutorial model
    python benchmarks/augmentation_cost.py --grouping mask gather # the batched policies' two groupings
    python benchmarks/augmentation_cost.py --device cuda --threads 4

Each row is the median over `--rounds` rounds, the kinds interleaved within a round so that machine noise hits all
alike; "wall" is elapsed time, "cpu" the thread's CPU time (on a loaded machine wall time also counts the time the
thread waited for a core: read cpu there, and the ratios). With --step, the table adds the cost above "tutorial" as a
share of a training step (forward + backward + AdamW) of the tutorial model at the same batch size: issue 23's goal
is at most 10% for trivialaugment at batch 64. On a GPU the timings synchronise after each call.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from torchvision.transforms import v2  # noqa: E402

from simple_vit_training.augmentation import AUGMENTATIONS, BatchAugment  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 64])
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1, as a loader worker)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--grouping", nargs="+", default=["auto"], choices=["auto", "mask", "gather"],
                        help="the batched policies' grouping(s) to time")
    parser.add_argument("--no-per-image", action="store_true", help="skip the (slow) per-image torchvision rows")
    parser.add_argument("--step", action="store_true", help="also time a training step of the tutorial model")
    args = parser.parse_args(argv)
    if min(args.batch_sizes) < 1 or args.rounds < 1 or args.threads < 1 or args.image_size < 3:
        parser.error("--batch-sizes, --rounds and --threads must be >= 1, --image-size >= 3")
    return args


class PerImagePolicy:
    """The path the batched policies replace: torchvision's policy per image (as the DataLoader ran it), then the
    batch's crop + flip."""

    def __init__(self, policy, image_size):
        self.policy, self.crop = policy, BatchAugment("tutorial", image_size)

    def __call__(self, images):
        # (batch, 3, H, W) uint8 -> (batch, 3, image_size, image_size) float
        return self.crop(torch.stack([self.policy(image) for image in images]))


def candidates(args):
    rows = {}
    for kind in AUGMENTATIONS:
        groupings = args.grouping if kind in ("trivialaugment", "randaugment") else ["auto"]
        for grouping in groupings:
            augment = BatchAugment(kind, args.image_size)
            if augment.batch_policy is not None:
                augment.batch_policy.grouping = grouping
            rows[kind if grouping == "auto" else f"{kind} ({grouping})"] = augment
    if not args.no_per_image:
        rows["trivialaugment per image (old)"] = PerImagePolicy(v2.TrivialAugmentWide(), args.image_size)
        rows["randaugment per image (old)"] = PerImagePolicy(v2.RandAugment(), args.image_size)
    return rows


def training_step(args, batch_size):
    """One optimizer step of the tutorial model on a float batch: the cost the augmentation is compared with."""
    from configuration_simple_vit import SimpleViTConfig
    from modeling_simple_vit import SimpleViTForImageClassification
    from simple_vit_training.optim import make_optimizer

    model = SimpleViTForImageClassification(SimpleViTConfig(image_size=args.image_size)).to(args.device)
    optimizer = make_optimizer(model, lr=1e-3, weight_decay=1e-2)
    pixels = torch.randn(batch_size, 3, args.image_size, args.image_size, device=args.device)
    labels = torch.randint(0, model.config.num_labels, (batch_size,), device=args.device)

    def step(_images):
        loss = model(pixel_values=pixels, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def timed(fn, images, device):
    wall, cpu = time.perf_counter(), time.thread_time()
    fn(images)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - wall, time.thread_time() - cpu


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"machine: nproc {os.cpu_count()}, torch {torch.__version__}, {args.threads} thread(s), device {device}, "
          f"load average {load} (1/5/15 min)")
    torch.manual_seed(0)
    for batch_size in args.batch_sizes:
        images = torch.randint(0, 256, (batch_size, 3, args.image_size, args.image_size), dtype=torch.uint8,
                               device=device)
        rows = candidates(args)
        if args.step:
            rows["(training step, tutorial model)"] = training_step(args, batch_size)
        for fn in rows.values():  # warm-up: parameter tables, allocator, kernels
            fn(images)
        times = {name: [] for name in rows}
        for _ in range(args.rounds):
            for name, fn in rows.items():
                times[name].append(timed(fn, images, device))
        wall = {name: statistics.median(t[0] for t in ts) for name, ts in times.items()}
        cpu = {name: statistics.median(t[1] for t in ts) for name, ts in times.items()}
        step = cpu.get("(training step, tutorial model)")
        print(f"\nbatch {batch_size}, {args.image_size}x{args.image_size}, median of {args.rounds} rounds")
        header = f"{'augmentation':<34}{'wall ms/batch':>14}{'cpu ms/batch':>14}{'cpu s/10k img':>15}"
        print(header + (f"{'vs tutorial, % of step':>24}" if step else ""))
        for name in rows:
            line = (f"{name:<34}{wall[name] * 1e3:>14.2f}{cpu[name] * 1e3:>14.2f}"
                    f"{cpu[name] * 10_000 / batch_size:>15.2f}")
            if step and not name.startswith("("):
                line += f"{(cpu[name] - cpu['tutorial']) / step * 100:>+23.1f}%"
            print(line)
    print(f"\nload average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
