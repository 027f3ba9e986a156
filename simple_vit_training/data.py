"""Data: load the splits once, decode the images once into uint8 tensors on the device, then serve batches by index
(training: `DeviceBatches`, slices of a permutation drawn on the device; evaluation: a DataLoader of indices)."""

import math
import os
from dataclasses import dataclass

import datasets
import numpy as np
import torch
from accelerate.data_loader import DataLoaderStateMixin
from accelerate.state import GradientState
from torchvision.transforms import v2
from transformers import ViTImageProcessor
from transformers.image_utils import PILImageResampling, pil_torch_interpolation_mapping

from cli import CLIError, first_line


@dataclass
class Splits:
    """The training and evaluation `datasets.Dataset`s, their image and label columns and the class names."""

    train: datasets.Dataset
    evaluation: datasets.Dataset
    image_column: str
    label_column: str
    class_names: list
    eval_split: str  # which split is evaluated: "validation", "test", ... or "train[carved 15%]"
    dataset_name: str  # what was loaded: --dataset-name, or "imagefolder:<--train_dir>"


def _load_dataset_dict(args):
    """(name, DatasetDict) for --dataset-name (with --dataset_config_name), or --train_dir/--validation_dir as the
    example scripts load them: the `imagefolder` builder over every file below each folder."""
    if args.train_dir is not None:
        data_files = {"train": os.path.join(args.train_dir, "**")}
        if args.validation_dir is not None:
            data_files["validation"] = os.path.join(args.validation_dir, "**")
        name, load = f"imagefolder:{args.train_dir}", lambda: datasets.load_dataset("imagefolder", data_files=data_files)
    else:
        name, load = args.dataset_name, lambda: datasets.load_dataset(args.dataset_name, args.dataset_config_name)
    try:
        return name, load()
    except Exception as err:  # datasets raises several types (FileNotFoundError, DatasetNotFoundError, ...)
        raise CLIError(f"could not load dataset {name!r}: {first_line(err)}") from None


def load_splits(args) -> Splits:
    datasets.utils.logging.set_verbosity_error()
    name, dsd = _load_dataset_dict(args)
    if args.train_split not in dsd:
        raise CLIError(f"dataset {name!r} has no {args.train_split!r} split (splits: {', '.join(dsd)})")
    train = dsd[args.train_split]

    columns = train.column_names
    image_column = args.image_column or next((c for c in ("img", "image") if c in columns), None)
    label_column = args.label_column or next((c for c in ("label", "labels") if c in columns), None)
    if image_column not in columns:
        raise CLIError(f"no image column {image_column or '(img/image)'!r} in dataset; columns found: {', '.join(columns)}")
    if label_column not in columns:
        raise CLIError(f"no label column {label_column or '(label/labels)'!r} in dataset; columns found: {', '.join(columns)}")

    if args.eval_split is not None and args.eval_split not in dsd:
        raise CLIError(f"dataset {name!r} has no {args.eval_split!r} split to evaluate on (splits: {', '.join(dsd)})")
    # The dataset's own held-out split when it has one: validation first (test may be the final benchmark).
    eval_split = args.eval_split or next((s for s in ("validation", "test") if s in dsd and s != args.train_split), None)
    if eval_split is not None:
        evaluation = dsd[eval_split]
    else:
        # No held-out split: carve one from train with a fixed seed, so every run (and every process) agrees.
        parts = train.train_test_split(test_size=args.train_val_split, seed=args.seed)
        train, evaluation = parts["train"], parts["test"]
        eval_split = f"{args.train_split}[carved {args.train_val_split * 100:g}%]"

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
    return Splits(train, evaluation, image_column, label_column, class_names, eval_split, name)


def decode_images(dataset, image_column, label_column, image_size, num_proc=None):
    """Decode every image once into a uint8 tensor (N, 3, image_size, image_size) plus labels (N,).

    `datasets` decodes an Image column with PIL on *every* access; doing it once with `map` (whose result
    `datasets` caches on disk by fingerprint, so later runs skip it) and indexing tensors afterwards keeps the
    data pipeline from costing anything per epoch.
    """

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


def decode_size(dataset, image_column, image_size) -> int:
    """The side length the images are decoded (and held) at: the model's size, unless the dataset's images are
    smaller (the first image's longer side): then their own. Upsampling CIFAR-10 to 224 px for a ViT-B checkpoint
    once would hold 7.5 GB of uint8 (and 6 GB of float eval inputs); held at 32 px it is 150 MB, and each batch
    is resized on the training device instead (the crop outputs the model's size; EvalPixels resizes eval batches).
    """
    if len(dataset) == 0:
        return image_size
    return min(image_size, max(dataset[0][image_column].size))


def make_image_processor(config, pretrained=None):
    """The `transformers` image processor saved with the model: exactly the evaluation transform. Fine-tuning a
    checkpoint that has one keeps it (its mean/std are what the weights were trained with)."""
    if pretrained is not None and pretrained.processor is not None:
        return pretrained.processor
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
    # A checkpoint's processor may switch either step off; it then leaves the values as they are.
    mean = torch.tensor(processor.image_mean if processor.do_normalize else 0.0, device=device).view(1, -1, 1, 1)
    std = torch.tensor(processor.image_std if processor.do_normalize else 1.0, device=device).view(1, -1, 1, 1)
    rescale = processor.rescale_factor if processor.do_rescale else 1.0
    return lambda images: (images * rescale - mean) / std


@dataclass
class TrainingData:
    """Everything the loop reads: decoded tensors on the device, the training batches and the eval loader."""

    train_images: torch.Tensor  # (N, 3, S, S) uint8, on the device
    train_labels: torch.Tensor  # (N,) int64, on the device
    eval_pixels: "EvalPixels"  # [index] -> (batch, 3, S, S) float, what the saved image processor produces
    eval_labels: torch.Tensor  # (M,) int64, on the device
    train_batches: "DeviceBatches"  # this process's index batches of an epoch, on the device
    eval_loader: torch.utils.data.DataLoader


class DeviceBatches(DataLoaderStateMixin):
    """One process's training batches: index tensors on the device, slices of a permutation drawn on the device.

    Epoch e's order is `torch.randperm(N)` drawn on the training device from a generator of its own, seeded by
    (seed, e): every process computes the same order without exchanging anything, a resumed run recomputes it (so
    checkpoints hold no loader state), and the global random streams (the augmentation's) are not touched.
    `iter_from(k)` starts the epoch at batch k (mid-epoch resume); `set_epoch(e)` picks the epoch.

    Sharding (process r of W, batch size B; k = ceil(N / B) batches of the whole set, `unsharded_batches`):
    - one process: batch t is order[t B : (t + 1) B]; the last one may be short (a DataLoader with drop_last=False);
    - W > 1: every process takes `len(self)` = ceil(k / W) batches, all of B samples, so that every process runs the
      same number of steps (a DDP process with a step fewer would leave the others waiting forever). For that the
      order is extended to W * len(self) * B samples by repeating it from its start; global batch j goes to
      process j % W, i.e. process r's batch t is global batch t W + r. Every sample is thus seen once per epoch
      across the processes, plus the W * len(self) * B - N padding samples (the order's first ones) once more
      (exactly once each when N is divisible by W * B; the shards are then disjoint).
      This is the layout of accelerate's prepared DataLoader (BatchSamplerShard, even_batches=True), which this
      replaces; the processes together walk the order a single process walks.

    Iterating registers with accelerate's GradientState as its prepared loaders do: the last batch of the epoch
    is marked, so `accelerator.accumulate` steps the optimizer there even if the epoch's batches are not a multiple
    of --gradient-accumulation-steps.
    """

    _drop_last = True  # for DataLoaderStateMixin.begin: no "remainder" (only gather_for_metrics reads it)

    def __init__(self, num_samples, batch_size, seed, device, process_index=0, num_processes=1):
        if num_samples < 0 or batch_size < 1 or num_processes < 1:
            raise ValueError(f"DeviceBatches needs num_samples >= 0, batch_size >= 1 and num_processes >= 1, got "
                             f"{num_samples}, {batch_size} and {num_processes}")
        if not 0 <= process_index < num_processes:
            raise ValueError(f"process_index must be in 0..{num_processes - 1}, got {process_index}")
        self.num_samples, self.batch_size, self.seed = num_samples, batch_size, seed
        self.device = torch.device(device)
        self.process_index, self.num_processes = process_index, num_processes
        self.unsharded_batches = math.ceil(num_samples / batch_size)
        self.epoch = 0
        self.gradient_state = GradientState()  # DataLoaderStateMixin reports the epoch's end to it

    def __len__(self):
        """Batches per epoch on this process (the same on every process)."""
        return math.ceil(self.unsharded_batches / self.num_processes)

    def set_epoch(self, epoch):
        self.epoch = epoch

    def generator(self, epoch):
        """The generator of epoch `epoch`'s order, on the device. Seeded by (seed, epoch) through numpy's
        SeedSequence: well-mixed, and the same in every process and on every platform."""
        state = np.random.SeedSequence([self.seed & (2**64 - 1), epoch]).generate_state(1, np.uint64)[0]
        return torch.Generator(device=self.device).manual_seed(int(state) >> 1)  # 63 bits: any generator takes it

    def order(self, epoch=None):
        """This process's sample indices of an epoch, batch after batch: (N,) for one process, else
        (len(self) * batch_size,); int64 on the device."""
        epoch = self.epoch if epoch is None else epoch
        order = torch.randperm(self.num_samples, generator=self.generator(epoch), device=self.device)
        if self.num_processes == 1:
            return order
        total = len(self) * self.num_processes * self.batch_size
        if total > self.num_samples:  # repeat the order from its start (cycling, for a set smaller than W * B)
            order = order.repeat(math.ceil(total / self.num_samples))[:total]
        # (batches, process, batch_size): this process's column, batch after batch.
        return order.view(len(self), self.num_processes, self.batch_size)[:, self.process_index].reshape(-1)

    def __iter__(self):
        return self.iter_from(0)

    def iter_from(self, start):
        """The epoch's batches from batch `start` on, each an index tensor (batch,) on the device (a slice of
        `order()`: no copy, nothing read back to the host)."""
        order = self.order()
        self.begin()
        try:
            for t in range(start, len(self)):
                self.end_of_dataloader = t == len(self) - 1  # read by accelerator.accumulate on entering the step
                yield order[t * self.batch_size:(t + 1) * self.batch_size]
        finally:
            self.end()


class EvalPixels:
    """The evaluation inputs, made one batch at a time from the uint8 images held at decode size on the device:
    resized as the saved image processor resizes (its interpolation, antialiased, on uint8), then rescaled and
    normalised as it does. `eval_pixels[index]` is a (batch, 3, S, S) float batch; the whole float set (6 GB for
    CIFAR-10's test split at 224 px) is never held."""

    def __init__(self, images, processor, image_size, normalize):
        self.images, self.image_size, self.normalize = images, image_size, normalize
        self.resize = processor.do_resize
        self.interpolation = pil_torch_interpolation_mapping[PILImageResampling(processor.resample)]

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        images = self.images[index]  # (batch, 3, s, s) uint8 at decode size
        if self.resize and images.shape[-2:] != (self.image_size, self.image_size):
            images = v2.functional.resize(images, [self.image_size, self.image_size],
                                          interpolation=self.interpolation, antialias=True)
        return self.normalize(images.float())  # (batch, 3, image_size, image_size)


def build_training_data(splits: Splits, image_size, processor, accelerator, args) -> TrainingData:
    """Decode both splits (one process per machine first: it fills the datasets cache) at `decode_size`, place them
    on the device, and make this process's training batches and the eval loader of indices."""
    size = decode_size(splits.train, splits.image_column, image_size)
    with accelerator.local_main_process_first():
        train_images, train_labels = decode_images(splits.train, splits.image_column, splits.label_column,
                                                   size, args.num_workers)
        eval_images, eval_labels = decode_images(splits.evaluation, splits.image_column, splits.label_column,
                                                 size, args.num_workers)
    device = accelerator.device
    eval_pixels = EvalPixels(eval_images.to(device), processor, image_size, make_normalizer(processor, device))
    # Not a DataLoader and not passed to accelerator.prepare: it shards itself (see DeviceBatches).
    train_batches = DeviceBatches(len(train_labels), args.batch_size, args.seed, device,
                                  accelerator.process_index, accelerator.num_processes)
    # accelerate shards this loader across processes (and pads its last batch, which `gather_for_metrics` drops
    # again).
    eval_loader = torch.utils.data.DataLoader(torch.arange(len(eval_labels)),
                                              batch_size=args.eval_batch_size or 2 * args.batch_size,
                                              pin_memory=device.type == "cuda")
    return TrainingData(train_images.to(device), train_labels.to(device), eval_pixels, eval_labels.to(device),
                        train_batches, eval_loader)
