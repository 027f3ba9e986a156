"""Peak memory of fine-tuning at 224 px: run_train.py --model_name_or_path on CIFAR-10 (32-px images).

A transformers ViTForImageClassification checkpoint with random weights and a 1000-class head is made on the spot
(save_pretrained, plus a 224-px preprocessor_config.json), then run_train.py fine-tunes it with
--ignore_mismatched_sizes on a few CIFAR-10 rows; the figure is the peak resident memory of that child process
(resource.getrusage(RUSAGE_CHILDREN).ru_maxrss). The images are held decoded at 32 px and resized per batch, so
the figure does not grow with the dataset the way a 224-px copy of it would (50,000 x 3 x 224 x 224 uint8 = 7.5 GB,
plus 10,000 float eval images = 6.0 GB).

    python benchmarks/finetune_memory.py                        # ViT-Tiny shape (hidden 192, 12 layers), 256 rows
    python benchmarks/finetune_memory.py --shape base --max-train-samples 512
"""

import argparse
import os
import resource
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHAPES = {  # ViT-Tiny/16 and ViT-B/16 at 224 px
    "tiny": {"hidden_size": 192, "num_hidden_layers": 12, "num_attention_heads": 3, "intermediate_size": 768},
    "base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072},
}


def make_checkpoint(folder: Path, shape: str) -> None:
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    config = ViTConfig(image_size=224, patch_size=16, num_labels=1000, **SHAPES[shape])
    ViTForImageClassification(config).save_pretrained(folder)
    ViTImageProcessor(size={"height": 224, "width": 224}).save_pretrained(folder)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset-name", default=str(ROOT.parent / "shared" / "datasets" / "cifar10"))
    parser.add_argument("--shape", choices=SHAPES, default="tiny")
    parser.add_argument("--max-train-samples", type=int, default=256)
    parser.add_argument("--max-eval-samples", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    if not Path(args.dataset_name).exists():
        sys.exit(f"finetune_memory.py: error: no dataset at {args.dataset_name}")

    with tempfile.TemporaryDirectory(prefix="finetune-memory-") as tmp:
        checkpoint = Path(tmp) / "vit"
        make_checkpoint(checkpoint, args.shape)
        command = [sys.executable, str(ROOT / "run_train.py"), "--dataset-name", args.dataset_name,
                   "--model_name_or_path", str(checkpoint), "--ignore_mismatched_sizes",
                   "--max-train-samples", str(args.max_train_samples), "--max-eval-samples", str(args.max_eval_samples),
                   "--epochs", "1", "--batch-size", str(args.batch_size), "--lr", "1e-4",
                   "--output-dir", str(Path(tmp) / "out")]
        print("command:", shlex.join(command), flush=True)
        env = dict(os.environ, HF_HUB_OFFLINE="1")
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # Linux reports KiB
    rows = args.max_train_samples + args.max_eval_samples
    print(f"peak RSS of run_train.py ({args.shape} ViT/16 at 224 px, {args.max_train_samples} train + "
          f"{args.max_eval_samples} eval CIFAR-10 rows, batch {args.batch_size}): {peak_mib:,.0f} MiB")
    print(f"held images: {rows * 3 * 32 * 32 / 2**20:.1f} MiB uint8 at 32 px; resized to 224 px once they would be "
          f"{rows * 3 * 224 * 224 / 2**20:,.0f} MiB uint8 (+ {args.max_eval_samples * 3 * 224 * 224 * 4 / 2**20:,.0f} "
          "MiB float eval); all of CIFAR-10: 7.5 GB + 6.0 GB")


if __name__ == "__main__":
    main()
