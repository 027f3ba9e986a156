"""The training data path alone: one epoch of index batches and the uint8 gather they drive, the DataLoader the loop
used before (`DataLoader(torch.arange(N), shuffle=True)`, prepared by accelerate) vs DeviceBatches (slices of a
permutation drawn on the device).

    python benchmarks/train_batches.py                          # CIFAR-10's size: 50,000 images of 32 px, batch 256
    python benchmarks/train_batches.py --device cuda --processes 2   # on a GPU; rank 0's shard of 2 processes

No model, no augmentation: what is timed is exactly the part that changed, so that "on CPU nothing gets slower" is
checked without the noise of whole training epochs on a shared machine. Both sides gather `images[index]` and
`labels[index]` for every batch (what the training step does with them). Rounds alternate the two paths; the medians
are reported, with the load average (on a shared machine read the ratio, not the absolute times). On a GPU the time
includes a final synchronisation, and the DataLoader's index batches are pinned and copied without blocking, as the
training script did.
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

from simple_vit_training.data import DeviceBatches  # noqa: E402


def dataloader_batches(n, batch_size, device, processes, seed):
    """The previous path: accelerate's sharding of a shuffled DataLoader of indices (rank 0 of `processes`)."""
    from accelerate.data_loader import prepare_data_loader

    loader = torch.utils.data.DataLoader(torch.arange(n), batch_size=batch_size, shuffle=True,
                                         pin_memory=device.type == "cuda")
    return prepare_data_loader(loader, device=device, num_processes=processes, process_index=0,
                               put_on_device=True, use_seedable_sampler=True, data_seed=seed,
                               non_blocking=device.type == "cuda")


def time_epoch(batches, epoch, images, labels, device):
    batches.set_epoch(epoch)
    start = time.perf_counter()
    checksum = torch.zeros((), dtype=torch.int64, device=device)
    for index in batches:
        x, y = images[index], labels[index]  # (batch, 3, S, S) uint8, (batch,)
        checksum += y[0]  # use the gathered batch without reading it back
        del x
    checksum.item()  # waits for the device (a GPU runs ahead of the host)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=50_000)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--processes", type=int, default=1, help="shard as rank 0 of this many processes")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    images = torch.randint(0, 256, (args.samples, 3, args.image_size, args.image_size), dtype=torch.uint8,
                           device=device)
    labels = torch.randint(0, 10, (args.samples,), device=device)
    paths = {
        "DataLoader": dataloader_batches(args.samples, args.batch_size, device, args.processes, seed=0),
        "DeviceBatches": DeviceBatches(args.samples, args.batch_size, 0, device, 0, args.processes),
    }
    for name, batches in paths.items():  # warm-up: first-call costs (allocator, CUDA context) are not timed
        time_epoch(batches, 0, images, labels, device)
    times = {name: [] for name in paths}
    load_before = os.getloadavg()[0]
    for r in range(args.rounds):
        order = list(paths) if r % 2 == 0 else list(reversed(paths))
        for name in order:
            times[name].append(time_epoch(paths[name], r + 1, images, labels, device))
    med = {name: statistics.median(t) for name, t in times.items()}
    print(f"{args.samples} samples of {args.image_size} px, batch {args.batch_size}, rank 0 of {args.processes}, "
          f"{device}, torch threads {torch.get_num_threads()}, load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}")
    for name, t in times.items():
        print(f"{name:>13}: median {med[name] * 1e3:8.1f} ms per epoch  (rounds: {', '.join(f'{x * 1e3:.0f}' for x in t)})")
    print(f"DeviceBatches / DataLoader: {med['DeviceBatches'] / med['DataLoader']:.3f}x")


if __name__ == "__main__":
    main()
