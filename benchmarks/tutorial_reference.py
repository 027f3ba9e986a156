"""The tutorial's own code trained on the local CIFAR-10 copy, resumable across sessions: the reference curve.

    python benchmarks/tutorial_reference.py --epochs 100 --seed 0 --output-dir results/tutorial-code-seed-0

It runs what `../shared/tools/tutorial_on_local_copy.py EPOCHS SEED` runs (the tutorial's `vit.py`, imported from
`../shared/reference/tutorial/`, never copied here; its torchvision pipeline, DataLoader and AdamW loop, in the same
order of random draws, so the same seed gives the same epochs), and adds what a run of hours needs on a 2-core box:
after every epoch it saves a checkpoint (weights, AdamW state, the random state the next epoch draws from) and
rewrites `metrics.json` and `metrics.png` in `run_train.py`'s format, each written whole or not at all; started again
with the same arguments it continues from the last saved epoch as if it had never stopped (the same numbers on the
same kind of CPU and thread count: floating-point order differs between CPUs). `--stop-after-epoch N` ends this
invocation cleanly once epoch N is saved, to fit a session's time. The checkpoint goes to OUTPUT_DIR/checkpoints/,
which git ignores under results/.

Why the tutorial's loop and not `run_train.py`: this is the original to compare `--recipe tutorial` against on the
same data (docs/experiments.md, "The tutorial's loop against run_train.py").
"""

import glob
import importlib.util
import json
import os
import signal
import sys
import time
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.path.join(ROOT, "..", "shared")
sys.path.insert(0, ROOT)

from cli import CLIError, OneLineArgumentParser, run_cli  # noqa: E402  (the project root, put on the path above)


def parse_args(argv=None):
    parser = OneLineArgumentParser(prog="tutorial_reference.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", required=True, help="metrics.json, metrics.png and checkpoints/ go here")
    parser.add_argument("--dataset-name", default=os.path.join(SHARED, "datasets", "cifar10"),
                        help="a local copy of uoft-cs/cifar10 (img, label)")
    # The tutorial's own code only: the harness's TUTORIAL_DIR also points at SimpleViT (benchmarks/tutorial_loop).
    parser.add_argument("--tutorial-dir", default=os.path.join(SHARED, "reference", "tutorial"))
    parser.add_argument("--max-train-samples", type=int, default=None, help="first N training images (checks only)")
    parser.add_argument("--max-eval-samples", type=int, default=None, help="first N test images (checks only)")
    parser.add_argument("--stop-after-epoch", type=int, default=None,
                        help="end this invocation once epoch N is saved; the same command continues the run")
    args = parser.parse_args(argv)
    for name in ("epochs", "max_train_samples", "max_eval_samples", "stop_after_epoch"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if not os.path.isfile(os.path.join(args.tutorial_dir, "vit.py")):
        parser.error(f"no vit.py in --tutorial-dir {args.tutorial_dir} (the tutorial's code lives in ../shared)")
    if not os.path.isdir(args.dataset_name):
        parser.error(f"--dataset-name {args.dataset_name} is not a folder (a local copy of uoft-cs/cifar10)")
    return args


# The tutorial's model config (its train.py's), used as its vit.py reads it: a dict.
TUTORIAL_CONFIG = {"patch_size": 4, "hidden_size": 48, "num_hidden_layers": 4, "num_attention_heads": 4,
                   "intermediate_size": 192, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
                   "initializer_range": 0.02, "image_size": 32, "num_classes": 10, "num_channels": 3,
                   "qkv_bias": True, "use_faster_attention": True}


def tutorial_model_and_optimizer(tutorial_dir):
    """The tutorial's own ViTForClassfication (its spelling) and its AdamW, as its training script builds them.
    vit.py is loaded by its path, not as a `vit` module on sys.path, where benchmarks/tutorial_loop has another."""
    import torch

    spec = importlib.util.spec_from_file_location("tutorial_vit", os.path.join(tutorial_dir, "vit.py"))
    vit = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(vit)
    model = vit.ViTForClassfication(TUTORIAL_CONFIG)
    return model, torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-2)


def main(argv=None):
    args = parse_args(argv)
    import torch
    import torchvision.transforms as transforms  # the tutorial's (v1) transforms, as its data code uses them
    from datasets import load_dataset
    from torch import nn

    from simple_vit_training.atomic_files import write_atomically
    from simple_vit_training.metrics import TrainingHistory, plot_metrics, write_metrics

    # 1. Seed first: the model's initialisation, the batch order and the workers' augmentation all draw from it.
    torch.manual_seed(args.seed)
    torch.set_flush_denormal(True)  # as the harness does: AdamW's state turns denormal on a CPU and slows it ~3x

    # 2. The tutorial's pipeline: per-image torchvision transforms in 2 DataLoader workers, batch 256.
    normalize = transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    train_transform = transforms.Compose([
        transforms.ToTensor(), transforms.Resize((32, 32)), transforms.RandomHorizontalFlip(p=0.5),
        transforms.RandomResizedCrop((32, 32), scale=(0.8, 1.0), ratio=(0.75, 4 / 3), interpolation=2), normalize])
    test_transform = transforms.Compose([transforms.ToTensor(), transforms.Resize((32, 32)), normalize])

    class Images(torch.utils.data.Dataset):
        def __init__(self, split, transform, limit):
            rows = load_dataset(args.dataset_name, split=split)
            if limit is not None:
                rows = rows.select(range(min(limit, len(rows))))
            self.images = [image.convert("RGB") for image in rows["img"]]  # decoded once, kept as PIL images
            self.labels = rows["label"]
            self.transform = transform

        def __len__(self):
            return len(self.labels)

        def __getitem__(self, i):
            return self.transform(self.images[i]), self.labels[i]

    train = Images("train", train_transform, args.max_train_samples)
    test = Images("test", test_transform, args.max_eval_samples)
    train_loader = torch.utils.data.DataLoader(train, batch_size=256, shuffle=True, num_workers=2)
    test_loader = torch.utils.data.DataLoader(test, batch_size=256, shuffle=False, num_workers=2)

    # 3. The tutorial's model and optimizer: AdamW 1e-2, weight decay 1e-2 on every parameter, no schedule.
    model, optimizer = tutorial_model_and_optimizer(args.tutorial_dir)
    loss_fn = nn.CrossEntropyLoss()

    # 4. Resume: the checkpoint holds the history so far, and the random state the next epoch starts from.
    output_dir = Path(args.output_dir)
    checkpoint_path = output_dir / "checkpoints" / "state.pt"
    # Paths as seen from the project root, so that a clone elsewhere (beside its own ../shared) resumes the same run.
    args.dataset_name, args.tutorial_dir = (os.path.relpath(os.path.abspath(path), ROOT)
                                            for path in (args.dataset_name, args.tutorial_dir))
    run = {"epochs": args.epochs, "seed": args.seed, "dataset_name": args.dataset_name,
           "max_train_samples": args.max_train_samples, "max_eval_samples": args.max_eval_samples,
           "tutorial_dir": args.tutorial_dir}
    history = TrainingHistory()
    if checkpoint_path.exists():
        state = torch.load(checkpoint_path, weights_only=False)
        if state["run"] != run:
            raise CLIError(f"{checkpoint_path} belongs to another run ({state['run']}), not {run}")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        history.load_state_dict(state["history"])
        print(f"resumed after epoch {history.epochs_done} from {checkpoint_path}", file=sys.stderr)
    elif (output_dir / "metrics.json").exists():  # a finished run keeps its metrics, not its checkpoint
        raise CLIError(f"{output_dir} holds a metrics.json but no checkpoint to continue from; "
                       "choose another --output-dir")
    checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
    for stale in glob.glob(str(output_dir / ".*.tmp")) + glob.glob(str(checkpoint_path.parent / ".*.tmp")):
        os.remove(stale)  # a temporary file a SIGKILL left: never the real, whole file
    facts = {"num_parameters": sum(p.numel() for p in model.parameters()), "train_samples": len(train),
             "eval_samples": len(test), "eval_split": "test", "dataset_name": args.dataset_name,
             "cpu_threads": torch.get_num_threads(), "device": "cpu",
             "code": "the tutorial's vit.py, loop and pipeline", "args": vars(args)}

    def save_metrics():
        write_metrics(output_dir / "metrics.json", history, **facts)
        plot_metrics(history.metrics, output_dir / "metrics.png")

    if history.epochs_done:  # a crash between the checkpoint and the metrics is mended here
        save_metrics()
    # SIGTERM (a session's or scheduler's end) as an exception: a write in progress cleans up its temporary file.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))

    # 5. The tutorial's loop: train an epoch, evaluate on the test split, record the epoch.
    last = min(args.epochs, args.stop_after_epoch or args.epochs)
    for epoch in range(history.epochs_done, last):
        began = time.perf_counter()
        model.train()
        train_loss = 0.0
        for images, labels in train_loader:  # (256, 3, 32, 32), (256,)
            optimizer.zero_grad()
            loss = loss_fn(model(images)[0], labels)
            loss.backward()
            optimizer.step()
            train_loss += loss.item() * len(images)
        train_seconds = time.perf_counter() - began
        model.eval()
        correct, eval_loss = 0, 0.0
        with torch.no_grad():
            for images, labels in test_loader:
                logits, _ = model(images)  # (batch, 10)
                eval_loss += loss_fn(logits, labels).item() * len(images)
                correct += (logits.argmax(1) == labels).sum().item()
        history.record(epoch + 1, train_loss / len(train), eval_loss / len(test), correct / len(test), train_seconds,
                       time.perf_counter() - began)
        # The checkpoint first, then the metrics it describes; a crash between the two is mended by the resume.
        state = {"run": run, "history": history.state_dict(), "model": model.state_dict(),
                 "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state()}
        write_atomically(checkpoint_path, lambda tmp: torch.save(state, tmp))
        save_metrics()
        print(json.dumps({key: values[-1] for key, values in history.metrics.items()}), flush=True)
    if history.epochs_done < args.epochs:
        print(f"stopped after epoch {history.epochs_done} of {args.epochs}; the same command without "
              "--stop-after-epoch continues", file=sys.stderr)


if __name__ == "__main__":
    run_cli(main, "tutorial_reference.py")
