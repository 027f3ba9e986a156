"""Train SimpleViT on CIFAR-10 (or any image-classification dataset) with `accelerate`.

    accelerate launch run_train.py                              # CPU, one GPU, or what `accelerate config` says
    python run_train.py --dataset-name ../shared/datasets/cifar10 --epochs 5
    accelerate launch --multi_gpu --num_processes 2 run_train.py  # two processes (gloo DDP on a CPU machine)

The script reads top to bottom as the steps of training:
    1. arguments  2. accelerator  3. data  4. model  5. optimizer and schedule  6. loop  7. evaluate  8. save
The defaults are the tutorial's recipe (AdamW lr 1e-2, wd 1e-2, constant LR, batch 256, 100 epochs, random
flip + RandomResizedCrop(0.8-1.0)); `--recipe improved` selects a better one for the same model, and
`--recipe improved-40` one for 40 epochs (a 6-layer model with mean pooling, still under 0.2M parameters), and
`--recipe improved-100` one for 100 epochs (that model with TrivialAugment and the small-dataset options SPT + LSA).
"""

import argparse
import inspect
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cli import OneLineArgumentParser

ROOT = Path(__file__).resolve().parent
_UMASK = os.umask(0o022)  # read the process umask once (setting it is the only way to read it), then restore it
os.umask(_UMASK)
ACCURACY_METRIC = ROOT / "metrics" / "accuracy"  # a local `evaluate` module: evaluate.load("accuracy") needs the Hub

# Presets: each sets defaults that explicit flags still override. "tutorial" is the argparse defaults themselves.
RECIPES = {
    # The tutorial's model (no final LayerNorm before the classifier) and its training settings (the argparse defaults).
    "tutorial": {"model_config": "configs/tutorial.json"},
    # Same model and augmentation; a schedule that anneals to zero, more and smaller steps, label smoothing,
    # and no decay on biases, norms and embeddings.
    # Stronger augmentation (--augmentation trivialaugment|randaugment) stays an option: see README "Results".
    "improved": {
        "lr": 2e-3,
        "weight_decay": 5e-2,
        "lr_scheduler": "cosine",
        "warmup_epochs": 5,
        "label_smoothing": 0.1,
        "batch_size": 128,
        "weight_decay_scope": "weights",
    },
}
# The 40-epoch preset: at 40 epochs the tutorial's model underfits, so it spends the 0.2M-parameter budget on
# capacity (6 layers, classifier on the mean patch token) and takes twice the steps (batch 64) at twice the peak LR
# (3e-3 gave 75.30%, 4e-3 75.60%: README "Results").
# A recipe may name a model file under configs/ (explicit --model-config still wins).
RECIPES["improved-40"] = {**RECIPES["improved"], "epochs": 40, "batch_size": 64, "lr": 4e-3,
                          "model_config": "configs/six-layers-mean-pooling.json"}
# The 100-epoch preset: the improved-40 settings over 100 epochs with TrivialAugment, on the same 6-layer
# model with the two small-dataset options (Shifted Patch Tokenization, Locality Self-Attention): README
# "Results" (its one run reached 80%).
RECIPES["improved-100"] = {**RECIPES["improved-40"], "epochs": 100, "augmentation": "trivialaugment",
                           "model_config": "configs/six-layers-mean-pooling-spt-lsa.json"}
AUGMENTATIONS = ("tutorial", "pad-crop", "none", "trivialaugment", "randaugment")


class CLIError(Exception):
    """A mistake in how the script was called: reported as one line, no traceback."""


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


# ----------------------------------------------------------------------------------------------------------------
# 1. Arguments
# ----------------------------------------------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    parser = OneLineArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = parser.add_argument
    add("--recipe", choices=sorted(RECIPES), default="tutorial", help="preset of training hyper-parameters (improved-40 and improved-100 also pick the model config)")
    # Data
    add("--dataset-name", default="uoft-cs/cifar10", help="Hub dataset id, a local copy in Hub layout, or an image folder")
    add("--image-column", default=None, help="image column (default: detect 'img' or 'image')")
    add("--label-column", default=None, help="label column (default: detect 'label' or 'labels')")
    add("--train-split", default="train")
    add("--eval-split", default="test")
    add("--validation-split-percentage", type=float, default=10.0,
        help="percentage of train held out for evaluation when the dataset has no eval split")
    add("--max-train-samples", type=_positive_int, default=None, help="use only the first N training rows")
    add("--max-eval-samples", type=_positive_int, default=None, help="use only the first N evaluation rows")
    add("--augmentation", choices=AUGMENTATIONS, default="tutorial")
    add("--num-workers", type=_non_negative_int, default=0,
        help="processes for the one-time image decoding, and DataLoader workers that apply "
             "--augmentation trivialaugment/randaugment (default 0: both in the main process)")
    # Run
    add("--exp-name", default="simple-vit")
    add("--output-dir", default=None, help="default: experiments/<exp-name>")
    add("--seed", type=int, default=42)
    add("--epochs", type=_positive_int, default=100)
    add("--batch-size", type=_positive_int, default=256, help="per process")
    add("--lr", type=float, default=1e-2)
    add("--weight-decay", type=float, default=1e-2)
    add("--weight-decay-scope", choices=("all", "weights"), default="all",
        help="all: every parameter (the tutorial); weights: weight matrices only")
    add("--lr-scheduler", choices=("constant", "cosine"), default="constant")
    add("--warmup-epochs", type=float, default=0.0)
    add("--label-smoothing", type=float, default=0.0)
    add("--gradient-accumulation-steps", type=_positive_int, default=1)
    add("--max-grad-norm", type=float, default=None,
        help="clip the gradients' total norm to this before each optimizer step (default: no clipping, the tutorial)")
    add("--mixed-precision", choices=("no", "fp16", "bf16"), default=None,
        help="default: accelerate's config, else bf16 on a GPU that supports it, else no")
    add("--compile", action="store_true", help="torch.compile the model (through accelerate's dynamo plugin)")
    add("--model-config", default=None, help="JSON file overriding SimpleViTConfig fields")
    add("--save-model-every", type=_non_negative_int, default=0,
        help="write a resumable checkpoint every N epochs (0: only the final model)")
    add("--resume-from-checkpoint", default=None, help="a checkpoint folder, or 'latest' in the output dir")
    add("--report-to", default="none", help="accelerate trackers (e.g. tensorboard, wandb, all), or none")
    add("--eval-batch-size", type=_positive_int, default=None, help="default: 2 x batch size")

    # The recipe is read first so that its values become defaults and explicit flags still win.
    known, _ = parser.parse_known_args(argv)
    parser.set_defaults(**RECIPES[known.recipe])
    args = parser.parse_args(argv)
    if args.output_dir is None:
        args.output_dir = os.path.join("experiments", args.exp_name)
    if not 0 <= args.label_smoothing < 1:
        raise CLIError(f"--label-smoothing must be in [0, 1), got {args.label_smoothing}")
    if args.max_grad_norm is not None and not args.max_grad_norm > 0:
        raise CLIError(f"--max-grad-norm must be greater than 0, got {args.max_grad_norm}")
    if not 0 < args.validation_split_percentage < 100:
        raise CLIError(f"--validation-split-percentage must be in (0, 100), got {args.validation_split_percentage}")
    return args


def load_model_config_overrides(path) -> dict:
    """Read --model-config and reject any key that is not a SimpleViTConfig field (a typo must not pass silently)."""
    from configuration_simple_vit import SimpleViTConfig

    if path is None:
        return {}
    # A relative path is looked up in the working directory first, then in the project folder, so that the shipped
    # configs/ (which recipes name) work from wherever the script is run.
    path = Path(path)
    if not path.is_absolute() and not path.exists() and (ROOT / path).exists():
        path = ROOT / path
    try:
        overrides = json.loads(path.read_text())
    except FileNotFoundError:
        raise CLIError(f"--model-config file not found: {path}") from None
    except json.JSONDecodeError as err:
        raise CLIError(f"--model-config {path} is not valid JSON: {err}") from None
    if not isinstance(overrides, dict):
        raise CLIError(f"--model-config {path} must hold a JSON object of SimpleViTConfig fields")
    fields = set(inspect.signature(SimpleViTConfig.__init__).parameters) - {"self", "kwargs"}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise CLIError(f"unknown field(s) in --model-config {path}: {', '.join(unknown)}; known: {', '.join(sorted(fields))}")
    # Validate now, before minutes of data loading (and its progress bars) come between the call and the error.
    try:
        SimpleViTConfig(**overrides)
    except ValueError as err:
        raise CLIError(f"invalid model config in {path}: {err}") from None
    return overrides


# ----------------------------------------------------------------------------------------------------------------
# 3. Data helpers: load once, decode once, then serve tensors by index
# ----------------------------------------------------------------------------------------------------------------
def load_splits(args):
    """Return (train, eval) `datasets.Dataset`s, the image and label column names and the class names."""
    import datasets

    datasets.utils.logging.set_verbosity_error()
    try:
        dsd = datasets.load_dataset(args.dataset_name)
    except Exception as err:  # datasets raises several types (FileNotFoundError, DatasetNotFoundError, ...)
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CLIError(f"could not load dataset {args.dataset_name!r}: {first_line}") from None
    if args.train_split not in dsd:
        raise CLIError(f"dataset {args.dataset_name!r} has no {args.train_split!r} split (splits: {', '.join(dsd)})")
    train = dsd[args.train_split]

    columns = train.column_names
    image_column = args.image_column or next((c for c in ("img", "image") if c in columns), None)
    label_column = args.label_column or next((c for c in ("label", "labels") if c in columns), None)
    if image_column not in columns:
        raise CLIError(f"no image column {image_column or '(img/image)'!r} in dataset; columns found: {', '.join(columns)}")
    if label_column not in columns:
        raise CLIError(f"no label column {label_column or '(label/labels)'!r} in dataset; columns found: {', '.join(columns)}")

    if args.eval_split in dsd:
        evaluation = dsd[args.eval_split]
    else:
        # No held-out split: carve one from train with a fixed seed, so every run (and every process) agrees.
        parts = train.train_test_split(test_size=args.validation_split_percentage / 100, seed=args.seed)
        train, evaluation = parts["train"], parts["test"]

    # The first N rows, before any shuffling, so a quick run always sees the same samples.
    if args.max_train_samples is not None:
        train = train.select(range(min(args.max_train_samples, len(train))))
    if args.max_eval_samples is not None:
        evaluation = evaluation.select(range(min(args.max_eval_samples, len(evaluation))))

    feature = train.features[label_column]
    if isinstance(feature, datasets.ClassLabel):
        class_names = list(feature.names)
    else:
        num_classes = int(max(max(train[label_column]), max(evaluation[label_column]))) + 1
        class_names = [str(i) for i in range(num_classes)]
    return train, evaluation, image_column, label_column, class_names


def decode_images(dataset, image_column, label_column, image_size, num_proc=None):
    """Decode every image once into a uint8 tensor (N, 3, image_size, image_size) plus labels (N,).

    `datasets` decodes an Image column with PIL on *every* access; doing it once with `map` (whose result
    `datasets` caches on disk by fingerprint, so later runs skip it) and indexing tensors afterwards keeps the
    data pipeline from costing anything per epoch.
    """
    import datasets
    from torchvision.transforms import v2

    def to_arrays(batch):
        pixels = []
        for image in batch[image_column]:
            tensor = v2.functional.pil_to_tensor(image.convert("RGB"))  # (3, H, W) uint8
            if tensor.shape[-2:] != (image_size, image_size):
                # Same resize as the saved image processor (bilinear, antialiased, on uint8).
                tensor = v2.functional.resize(tensor, [image_size, image_size], antialias=True)
            pixels.append(tensor.numpy())
        return {"pixels": pixels, "labels": batch[label_column]}

    features = datasets.Features(
        {"pixels": datasets.Array3D((3, image_size, image_size), "uint8"), "labels": datasets.Value("int64")}
    )
    decoded = dataset.map(
        to_arrays, batched=True, batch_size=1000, remove_columns=dataset.column_names, features=features,
        num_proc=num_proc or None, desc="Decoding images (once)",
    )
    # One read of each column as a numpy array. datasets' numpy format turns every integer array into int64
    # unless told otherwise: pixels would take 8x the memory and the v2 policies would see int64 images.
    pixels = decoded.with_format("numpy", columns=["pixels"], dtype=np.uint8)[:]["pixels"]
    labels = decoded.with_format("numpy", columns=["labels"])[:]["labels"]
    return torch.from_numpy(np.ascontiguousarray(pixels)), torch.from_numpy(labels)


def make_image_processor(config):
    """The `transformers` image processor saved with the model: exactly the evaluation transform."""
    from transformers import ViTImageProcessor

    return ViTImageProcessor(
        do_resize=True,
        size={"height": config.image_size, "width": config.image_size},
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )


def make_normalizer(processor, device):
    """A function that rescales and normalises float images in [0, 255] exactly as `processor` does:
    (x * rescale_factor - mean) / std. The constants go to the device once: building them every step would be a
    host-to-GPU copy that makes the host wait for the GPU."""
    mean = torch.tensor(processor.image_mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(processor.image_std, device=device).view(1, -1, 1, 1)
    rescale = processor.rescale_factor
    return lambda images: (images * rescale - mean) / std


class BatchAugment:
    """The training augmentation, applied to a whole uint8 batch on its device; returns float in [0, 255].

    torchvision's v2 transforms draw *one* set of random parameters per call, so a batch passed to them would be
    cropped and flipped identically. Per-sample calls cost ~35 ms per 256 images on this CPU (10% of a training
    step), so the tutorial's crop + flip draw per-sample parameters (same distribution as
    `v2.RandomResizedCrop`) and apply them in one `torchvision.ops.roi_align` call, which resamples each image's
    own box bilinearly, on CPU or GPU alike. (Inside the box the result equals `v2.functional.resized_crop`
    without antialiasing; on the box's outermost pixels roi_align interpolates with the pixels just outside the box
    instead of repeating the edge: a difference of no consequence for training.) "pad-crop" is
    `v2.RandomCrop(size, padding=4)` + flip, the usual CIFAR augmentation: zero-pad, then a random window of the
    original size, i.e. a shift of up to 4 pixels each way; its windows sit on whole pixels, so roi_align copies
    them exactly (images arrive already resized to `image_size`). The stronger policies (TrivialAugment /
    RandAugment, `self.policy`) are torchvision v2 transforms that must run per image: `PolicyImages` applies them
    in the training loader, and the batch arrives here for the tutorial's crop + flip.
    """

    def __init__(self, kind, image_size, scale=(0.8, 1.0), ratio=(3 / 4, 4 / 3), padding=4):
        from torchvision.transforms import v2

        self.kind = kind
        self.image_size = image_size
        self.padding = padding
        self.scale = scale
        self.log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        self.policy = {"trivialaugment": v2.TrivialAugmentWide(), "randaugment": v2.RandAugment()}.get(kind)

    def crop_boxes(self, n, size, device, tries=10):
        """Per-sample RandomResizedCrop boxes (index, x1, y1, x2, y2), drawn as v2.RandomResizedCrop draws them:
        area fraction uniform in `scale`, aspect ratio log-uniform in `ratio`, first of 10 tries that fits,
        else the whole image."""
        area = torch.empty(n, tries, device=device).uniform_(*self.scale) * size * size
        aspect = torch.exp(torch.empty(n, tries, device=device).uniform_(*self.log_ratio))
        width, height = torch.sqrt(area * aspect).round(), torch.sqrt(area / aspect).round()
        fits = (width <= size) & (height <= size) & (width > 0) & (height > 0)
        choice = fits.to(torch.uint8).argmax(dim=1, keepdim=True)  # first try that fits
        width, height = width.gather(1, choice).squeeze(1), height.gather(1, choice).squeeze(1)
        none_fit = ~fits.any(dim=1)
        width, height = width.masked_fill(none_fit, size), height.masked_fill(none_fit, size)
        top = torch.floor(torch.rand(n, device=device) * (size - height + 1))
        left = torch.floor(torch.rand(n, device=device) * (size - width + 1))
        index = torch.arange(n, device=device, dtype=width.dtype)
        return torch.stack([index, left, top, left + width, top + height], dim=1)

    def shift_boxes(self, n, size, device):
        """Per-sample RandomCrop windows on the zero-padded image (index, x1, y1, x2, y2): a size x size window at
        an offset uniform in 0..2*padding each way, as v2.RandomCrop(size, padding) draws it."""
        offsets = torch.randint(0, 2 * self.padding + 1, (n, 2), device=device).float()
        left, top = offsets.unbind(dim=1)
        index = torch.arange(n, device=device, dtype=left.dtype)
        return torch.stack([index, left, top, left + size, top + size], dim=1)

    def __call__(self, images):
        # images: (batch, 3, H, W) uint8 -> (batch, 3, image_size, image_size) float in [0, 255]
        if self.kind == "none":
            return images.float()
        from torchvision.ops import roi_align

        n, size = images.shape[0], images.shape[-1]
        if self.kind == "pad-crop":
            images = F.pad(images, [self.padding] * 4)  # zeros, as v2.RandomCrop(padding=...) fills by default
            boxes = self.shift_boxes(n, size, images.device)
        else:
            boxes = self.crop_boxes(n, size, images.device)
        # sampling_ratio=1, aligned=True: one bilinear sample at each output pixel centre (a plain resize).
        out = roi_align(images.float(), boxes, output_size=self.image_size, spatial_scale=1.0, sampling_ratio=1,
                        aligned=True)
        flip = torch.rand(n, device=images.device) < 0.5
        return torch.where(flip.view(-1, 1, 1, 1), out.flip(-1), out)


class PolicyImages(torch.utils.data.Dataset):
    """Training images with a per-image policy (TrivialAugment / RandAugment) applied as they are fetched: item i is
    `(i, policy(images[i]))`, uint8 on the CPU.

    Fetching through a DataLoader puts the 50,000 policy calls an epoch into its `num_workers` processes, so on a GPU
    the training process does not spend its time on them; with no workers they run in the training process. Either
    way each image gets its own draw of operation and magnitude.
    """

    def __init__(self, images, policy):
        self.images, self.policy = images, policy

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return i, self.policy(self.images[i])


# ----------------------------------------------------------------------------------------------------------------
# Training state that is not a model/optimizer/scheduler: saved and restored with accelerate's checkpoints
# ----------------------------------------------------------------------------------------------------------------
class TrainingHistory:
    """Per-epoch metrics and elapsed training time; registered with `accelerator.register_for_checkpointing`."""

    def __init__(self):
        self.metrics = {"epoch": [], "train_loss": [], "eval_loss": [], "eval_accuracy": []}
        self.wall_time_seconds = 0.0
        self.timings = {"train_seconds": [], "epoch_seconds": []}  # per epoch: training steps, and with evaluation

    @property
    def epochs_done(self):
        return len(self.metrics["epoch"])

    def state_dict(self):
        return {"metrics": self.metrics, "wall_time_seconds": self.wall_time_seconds, "timings": self.timings}

    def load_state_dict(self, state):
        self.metrics = state["metrics"]
        self.wall_time_seconds = state["wall_time_seconds"]
        self.timings = state["timings"]


def finish_files(path):
    """Make a file, or a folder with everything under it, ready to be renamed into place: give the files the
    permissions open() would (mkstemp and safetensors create them 0600) and flush them to disk. A rename is only
    as durable as the data it points at: without the flush, a power loss right after it can leave an empty file."""
    path = Path(path)
    for item in [*sorted(path.rglob("*")), path] if path.is_dir() else [path]:
        if item.is_file():
            os.chmod(item, 0o666 & ~_UMASK)
        elif os.name == "nt":  # Windows cannot open a folder to flush it
            continue
        fd = os.open(item, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomically(path: Path, write):
    """Write a file through a temporary sibling and rename it over `path`: a crash leaves the old file whole."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        finish_files(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def plot_metrics(metrics, path):
    """The tutorial's figure: train and test loss, and test accuracy, per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    ax1.plot(metrics["epoch"], metrics["train_loss"], label="train loss")
    ax1.plot(metrics["epoch"], metrics["eval_loss"], label="test loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.legend()
    ax2.plot(metrics["epoch"], metrics["eval_accuracy"], color="tab:green")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("test accuracy")
    fig.tight_layout()
    write_atomically(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)


def make_optimizer(model, lr, weight_decay, scope="all"):
    """AdamW. scope "all" decays every parameter (the tutorial's `AdamW(model.parameters())`); "weights" decays only
    the weight matrices, not biases, LayerNorms, the CLS token or position embeddings (the usual ViT practice).
    Neither decays the learned attention scales of `locality_self_attention`: pulling a temperature towards zero
    would flatten every attention map (the tutorial's model has none, so "all" is still its optimizer)."""
    def temperature(name):
        return name.endswith("attention.scaling")

    if scope == "all":
        named = list(model.named_parameters())
        groups = [{"params": [p for n, p in named if not temperature(n)], "weight_decay": weight_decay},
                  {"params": [p for n, p in named if temperature(n)], "weight_decay": 0.0}]
        groups = [group for group in groups if group["params"]]
    else:
        def decayed(name, p):
            return p.ndim >= 2 and not name.endswith(("cls_token", "position_embeddings"))

        named = list(model.named_parameters())
        groups = [{"params": [p for n, p in named if decayed(n, p)], "weight_decay": weight_decay},
                  {"params": [p for n, p in named if not decayed(n, p)], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, foreach=True)  # foreach: one kernel per op over all tensors


def find_latest_checkpoint(output_dir: Path):
    checkpoints = [p for p in (output_dir / "checkpoints").glob("epoch_*") if p.name.split("_")[1].isdigit()]
    return max(checkpoints, key=lambda p: int(p.name.split("_")[1]), default=None)


def save_checkpoint(accelerator, output_dir: Path, epoch: int):
    """accelerate state (model, optimizer, scheduler, RNGs, history) into checkpoints/epoch_N, atomically:
    everything is written into a temporary folder first and renamed into place only once complete."""
    final = output_dir / "checkpoints" / f"epoch_{epoch}"
    staging = output_dir / "checkpoints" / f".epoch_{epoch}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)  # debris of a save that crashed
        staging.parent.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(staging))  # every process writes its own RNG state
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        finish_files(staging)
        if final.exists():  # a rerun into the same folder: replace the old checkpoint of this epoch
            old = final.with_name(f".epoch_{epoch}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(staging, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, final)
    accelerator.wait_for_everyone()


def save_final_model(model, processor, output_dir: Path):
    """save_pretrained into a temporary folder, then move each file into the output folder."""
    staging = Path(tempfile.mkdtemp(dir=output_dir, prefix=".final-model."))
    try:
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
        finish_files(staging)
        for item in staging.iterdir():
            os.replace(item, output_dir / item.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def main(argv=None):
    args = parse_args(argv)
    model_overrides = load_model_config_overrides(args.model_config)
    output_dir = Path(args.output_dir)

    from accelerate import Accelerator, DataLoaderConfiguration
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm
    from transformers import get_scheduler

    from configuration_simple_vit import SimpleViTConfig
    from modeling_simple_vit import SimpleViTForImageClassification

    # ------------------------------------------------------------------------------------------------------------
    # 2. Accelerator
    # ------------------------------------------------------------------------------------------------------------
    # A GPU is used when there is one, unless accelerate was told to stay on the CPU (--cpu / ACCELERATE_USE_CPU).
    on_gpu = torch.cuda.is_available() and os.environ.get("ACCELERATE_USE_CPU", "").lower() not in ("1", "true", "yes")
    # The flag wins; then a precision chosen in accelerate's config; else bf16 on a GPU that has it. (`accelerate
    # launch` without a config exports "no", which is its default rather than a choice, so it does not count.)
    mixed_precision = args.mixed_precision or os.environ.get("ACCELERATE_MIXED_PRECISION", "no")
    if mixed_precision == "no" and args.mixed_precision is None and on_gpu and torch.cuda.is_bf16_supported():
        mixed_precision = "bf16"
    accelerator = Accelerator(
        # Without a GPU, cpu=True is what turns `accelerate launch --multi_gpu --num_processes N` into one
        # gloo DDP group; without it each process would silently train alone.
        cpu=not on_gpu,
        mixed_precision=mixed_precision,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        log_with=None if args.report_to == "none" else args.report_to,
        project_dir=str(output_dir),
        dynamo_backend="inductor" if args.compile else None,
        # Shuffle with seed + epoch: the data order of any epoch is known without replaying the ones before,
        # which is what makes a resumed run see the same batches as an uninterrupted one.
        # non_blocking (with pinned index batches): moving each batch's indices to the GPU does not make the
        # host wait for the GPU, so there is no per-step synchronisation.
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=args.seed,
                                                  non_blocking=on_gpu),
    )
    if not on_gpu:
        # Adam's state decays into denormal floats that x86 CPUs process ~100x slower; flush them to zero.
        torch.set_flush_denormal(True)
        if accelerator.num_processes > 1 and "OMP_NUM_THREADS" not in os.environ:
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // accelerator.num_processes))
    # Each process gets its own random stream (augmentation); DDP copies rank 0's initial weights to the others.
    set_seed(args.seed, device_specific=True)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)

    resume_from = None
    if args.resume_from_checkpoint is not None:
        if args.resume_from_checkpoint == "latest":
            resume_from = find_latest_checkpoint(output_dir)
            if resume_from is None:
                raise CLIError(f"--resume-from-checkpoint latest: no checkpoint in {output_dir / 'checkpoints'}")
        else:
            resume_from = Path(args.resume_from_checkpoint)
            if not resume_from.is_dir():
                raise CLIError(f"--resume-from-checkpoint: no checkpoint folder at {resume_from}")

    # ------------------------------------------------------------------------------------------------------------
    # 3. Data: decode once into uint8 tensors on the training device; batches are drawn by index
    # ------------------------------------------------------------------------------------------------------------
    with accelerator.local_main_process_first():  # one process per machine fills the datasets cache first
        train_set, eval_set, image_column, label_column, class_names = load_splits(args)
    try:
        config = SimpleViTConfig(
            **{
                **model_overrides,
                "id2label": dict(enumerate(class_names)),
                "label2id": {name: i for i, name in enumerate(class_names)},
            }
        )
    except ValueError as err:
        raise CLIError(f"invalid model config: {err}") from None
    processor = make_image_processor(config)
    with accelerator.local_main_process_first():
        train_images, train_labels = decode_images(train_set, image_column, label_column, config.image_size,
                                                   args.num_workers)
        eval_images, eval_labels = decode_images(eval_set, image_column, label_column, config.image_size,
                                                 args.num_workers)
    device = accelerator.device
    augment = BatchAugment(args.augmentation, config.image_size)
    # Per-image policies run on the CPU copy (see PolicyImages); otherwise the whole uint8 set lives on the device.
    if augment.policy is None:
        train_images = train_images.to(device)
    train_labels = train_labels.to(device)
    # The evaluation inputs are exactly what the saved image processor produces, computed once.
    eval_pixels = torch.cat(
        [processor(images=chunk, return_tensors="pt")["pixel_values"] for chunk in eval_images.split(1024)]
    ).to(device)
    eval_labels = eval_labels.to(device)
    normalize = make_normalizer(processor, device)

    # The loaders yield indices (and, with a per-image policy, the policy's images); accelerate shards them across
    # processes (and pads the last eval batch, which `gather_for_metrics` drops again).
    eval_batch_size = args.eval_batch_size or 2 * args.batch_size
    if augment.policy is None:
        train_loader = torch.utils.data.DataLoader(torch.arange(len(train_labels)), batch_size=args.batch_size,
                                                   shuffle=True, pin_memory=on_gpu)
    else:
        # Workers start afresh each epoch (one fork each), seeded from the training process's random state at that moment,
        # which checkpoints restore: a run resumed with the same --num-workers repeats the policy's draws (which
        # worker draws for which batch depends on that number). Persistent workers would keep streams seeded in
        # the first epoch, which a resumed run cannot repeat.
        train_loader = torch.utils.data.DataLoader(PolicyImages(train_images, augment.policy),
                                                   batch_size=args.batch_size, shuffle=True, pin_memory=on_gpu,
                                                   num_workers=args.num_workers)
    eval_loader = torch.utils.data.DataLoader(torch.arange(len(eval_labels)), batch_size=eval_batch_size,
                                              pin_memory=on_gpu)

    # ------------------------------------------------------------------------------------------------------------
    # 4. Model
    # ------------------------------------------------------------------------------------------------------------
    model = SimpleViTForImageClassification(config)
    num_parameters = sum(p.numel() for p in model.parameters())

    # ------------------------------------------------------------------------------------------------------------
    # 5. Optimizer and schedule
    # ------------------------------------------------------------------------------------------------------------
    optimizer = make_optimizer(model, args.lr, args.weight_decay, args.weight_decay_scope)
    # Counted on the unsharded loader: accelerate's scheduler advances num_processes steps per optimizer step.
    steps_per_epoch = math.ceil(len(train_loader) / args.gradient_accumulation_steps)
    scheduler_name = args.lr_scheduler
    if scheduler_name == "constant" and args.warmup_epochs > 0:
        scheduler_name = "constant_with_warmup"
    scheduler = get_scheduler(
        scheduler_name,
        optimizer,
        num_warmup_steps=round(args.warmup_epochs * steps_per_epoch),
        num_training_steps=args.epochs * steps_per_epoch,
    )

    model, optimizer, train_loader, eval_loader, scheduler = accelerator.prepare(
        model, optimizer, train_loader, eval_loader, scheduler
    )
    history = TrainingHistory()
    accelerator.register_for_checkpointing(history)
    if resume_from is not None:
        try:
            accelerator.load_state(str(resume_from))
        except (RuntimeError, KeyError, ValueError, FileNotFoundError) as err:
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise CLIError(f"cannot resume from {resume_from} (resume with the same model config, batch layout, "
                           f"launcher and --compile setting): {first_line}") from None
        accelerator.print(f"Resumed from {resume_from} after epoch {history.epochs_done}")

    import evaluate

    accuracy_metric = evaluate.load(str(ACCURACY_METRIC))
    if args.report_to != "none":
        accelerator.init_trackers(args.exp_name, config={k: v for k, v in vars(args).items() if v is not None})

    accelerator.print(
        f"SimpleViT: device={device} world_size={accelerator.num_processes} "
        f"precision={accelerator.mixed_precision} parameters={num_parameters:,} "
        f"train={len(train_labels):,} eval={len(eval_labels):,} classes={len(class_names)} "
        f"epochs={args.epochs} batch_size={args.batch_size}x{accelerator.num_processes}"
    )

    # ------------------------------------------------------------------------------------------------------------
    # 7. Evaluate: loss and accuracy over the whole eval set, each sample counted exactly once across processes
    # ------------------------------------------------------------------------------------------------------------
    def evaluate_model():
        model.eval()
        losses, predictions, references = [], [], []
        with torch.no_grad():
            for index in eval_loader:
                logits = model(pixel_values=eval_pixels[index]).logits
                labels = eval_labels[index]
                loss = F.cross_entropy(logits.float(), labels, reduction="none")
                loss, preds, labels = accelerator.gather_for_metrics((loss, logits.argmax(-1), labels))
                losses.append(loss)
                predictions.append(preds)
                references.append(labels)
        model.train()
        predictions = torch.cat(predictions).cpu().numpy()
        references = torch.cat(references).cpu().numpy()
        accuracy = accuracy_metric.compute(predictions=predictions, references=references)["accuracy"]
        return torch.cat(losses).mean().item(), accuracy

    # ------------------------------------------------------------------------------------------------------------
    # 6. Training loop
    # ------------------------------------------------------------------------------------------------------------
    model.train()
    for epoch in range(history.epochs_done + 1, args.epochs + 1):
        start = time.perf_counter()
        train_loader.set_epoch(epoch)
        # Summed on the device and read once per epoch: a .item() per step would stall a GPU every step.
        loss_sum = torch.zeros((), device=device)
        steps = 0
        for batch in tqdm(train_loader, desc=f"epoch {epoch}/{args.epochs}", leave=False,
                          disable=not accelerator.is_local_main_process):
            index, images = batch if augment.policy is not None else (batch, train_images[batch])
            with accelerator.accumulate(model):
                pixel_values = normalize(augment(images))
                logits = model(pixel_values=pixel_values).logits
                loss = F.cross_entropy(logits.float(), train_labels[index], label_smoothing=args.label_smoothing)
                accelerator.backward(loss)
                # Clip only on the step that updates (accelerate syncs and unscales the gradients first).
                if args.max_grad_norm is not None and accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            loss_sum += loss.detach()
            steps += 1
        train_loss = accelerator.reduce(loss_sum / max(steps, 1), reduction="mean").item()
        train_seconds = time.perf_counter() - start
        eval_loss, eval_accuracy = evaluate_model()
        epoch_seconds = time.perf_counter() - start
        history.wall_time_seconds += epoch_seconds
        history.timings["train_seconds"].append(train_seconds)
        history.timings["epoch_seconds"].append(epoch_seconds)

        for key, value in zip(history.metrics, (epoch, train_loss, eval_loss, eval_accuracy)):
            history.metrics[key].append(value)
        accelerator.print(
            f"epoch {epoch}/{args.epochs}: train_loss={train_loss:.4f} eval_loss={eval_loss:.4f} "
            f"eval_accuracy={eval_accuracy:.4f} ({epoch_seconds:.1f}s)"
        )
        accelerator.log({"train_loss": train_loss, "eval_loss": eval_loss, "eval_accuracy": eval_accuracy},
                        step=epoch)

        # --------------------------------------------------------------------------------------------------------
        # 8. Save: metrics every epoch (atomically), resumable checkpoints every --save-model-every epochs
        # --------------------------------------------------------------------------------------------------------
        if accelerator.is_main_process:
            summary = {
                **history.metrics,
                "world_size": accelerator.num_processes,
                "wall_time_seconds": history.wall_time_seconds,
                **history.timings,
                "num_parameters": num_parameters,
                "train_samples": len(train_labels),
                "eval_samples": len(eval_labels),
                "device": str(device),
                "mixed_precision": accelerator.mixed_precision,
                "args": vars(args),
            }
            write_atomically(output_dir / "metrics.json",
                             lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=2)))
            if epoch == args.epochs or (args.save_model_every and epoch % args.save_model_every == 0):
                plot_metrics(history.metrics, output_dir / "metrics.png")  # ~0.3 s: not every epoch of a GPU run
        if args.save_model_every and epoch % args.save_model_every == 0:
            save_checkpoint(accelerator, output_dir, epoch)

    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        save_final_model(accelerator.unwrap_model(model), processor, output_dir)
        accelerator.print(f"Saved the model, image processor and metrics to {output_dir}")
    accelerator.end_training()


if __name__ == "__main__":
    try:
        main()
    except CLIError as err:
        print(f"run_train.py: error: {err}", file=sys.stderr)
        sys.exit(2)
