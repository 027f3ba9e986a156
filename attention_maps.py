"""Where does a trained SimpleViT look? Attention maps and attention rollout, and the tutorial's figure.

    python attention_maps.py --checkpoint results/seed-config --dataset-name uoft-cs/cifar10 --num-images 30 \
        --output attention.png [--split test] [--layer rollout|last|N]

A ViT classifies from the final state of its CLS token, and the only way information reaches that token is
through attention. So the CLS token's attention row, restricted to the patches, says which parts of the image
the token read in that layer: one map per head, and their average per layer. (A model with
`classifier_pooling="mean"` classifies the average patch token instead; its maps average the patch tokens' rows,
and with `"sequence"` weight them as its pooler weights the tokens, image by image.)

One layer's map is only part of the story: layer 2's CLS token attends to *mixtures* of patches made by layer 1,
and the residual connections carry every token's own state past each attention block. Attention rollout
(Abnar & Zuidema, 2020, "Quantifying Attention Flow in Transformers") tracks that mixing through the stack:

    for each layer:   A = mean over heads of the attention      (tokens x tokens, rows sum to 1)
                      A = 0.5 * A + 0.5 * I                      (the residual path, as an identity "attention")
                      A = A / A.sum(rows)                        (rows are distributions again)
    rollout = A_last @ ... @ A_2 @ A_1,  and the map is rollout[CLS, patches]

Maps need the attention probabilities, which the fused SDPA kernel never forms: the model is loaded with
`attn_implementation="eager"` and called with `output_attentions=True`. Images go through the checkpoint's own
image processor, exactly as in training and in `pipeline("image-classification")`.
"""

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class AttentionMaps:
    """Attention to the patches (from the CLS token, or the patch tokens' plain or weighted average with mean or
    sequence pooling) for a batch of images, upsampled to the image size (height x width)."""

    logits: torch.Tensor  # (batch, num_labels)
    per_head: torch.Tensor  # (batch, layers, heads, height, width): every head of every layer
    per_layer: torch.Tensor  # (batch, layers, height, width): averaged over the heads
    rollout: torch.Tensor  # (batch, height, width): attention rollout through all layers

    def select(self, layer: str | int = "rollout") -> torch.Tensor:
        """(batch, height, width) maps: "rollout", "last" (layer), or a layer index (0 = first, -1 = last)."""
        if layer == "rollout":
            return self.rollout
        if layer == "last":
            layer = -1
        num_layers = self.per_layer.shape[1]
        if not -num_layers <= int(layer) < num_layers:
            raise ValueError(f"layer {layer} does not exist: the model has layers 0 to {num_layers - 1}")
        return self.per_layer[:, int(layer)]


# --------------------------------------------------------------------------------------------------------------
# The maps
# --------------------------------------------------------------------------------------------------------------


# Whose attention the maps of one layer show, by classifier_pooling: the tokens the classifier reads.
READERS = {"cls": "CLS", "mean": "patch-average", "sequence": "weighted patch-average"}


def classifier_token_weights(model, hidden_states: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """(batch, tokens): how much of each token's final state the classifier reads, from the model's
    `output_hidden_states`: the CLS token alone; the patch tokens equally (classifier_pooling="mean"); or each patch
    token by the weight sequence pooling gives it in that image (classifier_pooling="sequence")."""
    last = hidden_states[-1]  # (batch, tokens, hidden_size), before the final LayerNorm
    weights = torch.zeros(last.shape[:2], dtype=torch.float32, device=last.device)
    pooling = getattr(model.config, "classifier_pooling", "cls")
    if pooling == "cls":
        weights[:, 0] = 1.0
    elif pooling == "mean":
        weights[:, 1:] = 1.0 / (last.shape[1] - 1)
    elif pooling == "sequence":  # the pooler's own weights, computed from what it reads: the normalised final states
        weights[:, 1:] = model.vit.pooler.token_weights(model.vit.layernorm(last)).float()
    else:
        raise ValueError(f"classifier_pooling must be one of {tuple(READERS)}, got {pooling!r}")
    return weights


def attention_rollout(attentions: torch.Tensor, residual_weight: float = 0.5) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema, 2020) of stacked attentions (batch, layers, heads, tokens, tokens).

    Returns the (batch, tokens, tokens) product of the per-layer, head-averaged, residual-augmented attention
    matrices: entry [i, j] is how much of input token j flows into token i at the output of the last layer.
    """
    batch, num_layers, _, tokens, _ = attentions.shape
    identity = torch.eye(tokens, dtype=attentions.dtype, device=attentions.device)
    rollout = identity.expand(batch, tokens, tokens)
    for layer in range(num_layers):
        mixed = attentions[:, layer].mean(dim=1)  # average the heads: (batch, tokens, tokens)
        mixed = residual_weight * identity + (1 - residual_weight) * mixed  # x + Attention(x)
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)  # each row a distribution again
        rollout = mixed @ rollout  # later layers act on what earlier layers produced
    return rollout


def patches_to_image(patch_values: torch.Tensor, grid: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """Lay (..., num_patches) values out on the (rows, cols) patch grid and upsample them to `size` (bilinear)."""
    leading = patch_values.shape[:-1]
    grid_maps = patch_values.reshape(-1, 1, *grid)  # patches are numbered row by row, as Conv2d + flatten made them
    images = F.interpolate(grid_maps.float(), size=size, mode="bilinear", align_corners=False)
    return images.reshape(*leading, *size)


@torch.no_grad()
def compute_attention_maps(model, pixel_values: torch.Tensor) -> AttentionMaps:
    """Run `model` on (batch, channels, height, width) pixels and return its attention maps and logits."""
    model.eval()  # no dropout on the attention probabilities
    outputs = model(pixel_values=pixel_values, output_attentions=True, output_hidden_states=True)
    if not outputs.attentions:
        # transformers' own attention integrations return nothing under SDPA / flash attention.
        raise ValueError('the model returned no attention probabilities; load it with attn_implementation="eager"')
    attentions = torch.stack(outputs.attentions, dim=1).float()  # (batch, layers, heads, tokens, tokens)

    height, width = pixel_values.shape[-2:]
    patch = model.config.patch_size
    grid = (height // patch, width // patch)
    # Map the rows of the tokens the classifier reads, over the patch columns, each row weighted as the classifier
    # weights its token: the CLS token's row alone, or the patch tokens' rows averaged (mean or sequence pooling).
    weights = classifier_token_weights(model, outputs.hidden_states)  # (batch, tokens)
    to_patches = torch.einsum("bt,blhtp->blhp", weights, attentions[..., 1:])  # (batch, layers, heads, patches)
    rollout = torch.einsum("bt,btp->bp", weights, attention_rollout(attentions)[..., 1:])  # (batch, patches)
    return AttentionMaps(
        logits=outputs.logits,
        per_head=patches_to_image(to_patches, grid, (height, width)),
        per_layer=patches_to_image(to_patches.mean(dim=2), grid, (height, width)),
        rollout=patches_to_image(rollout, grid, (height, width)),
    )


# --------------------------------------------------------------------------------------------------------------
# Model, processor and images
# --------------------------------------------------------------------------------------------------------------


def load_model(checkpoint: str | Path):
    """The classifier (explicit attention path) and its image processor, from a folder or Hub repo."""
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(
        checkpoint, trust_remote_code=True, attn_implementation="eager"
    )
    return model.eval(), AutoImageProcessor.from_pretrained(checkpoint)


def load_examples(dataset_name: str, split: str = "test", num_images: int = 30):
    """The first `num_images` rows of a split: (PIL images, label ids, label names or None).

    `dataset_name` is anything `datasets.load_dataset` takes: a Hub id (e.g. uoft-cs/cifar10) or a local folder
    (an image folder `train/<class>/*.png`, `test/<class>/*.png`, or a saved Hub dataset).
    """
    from datasets import ClassLabel, load_dataset

    dataset = load_dataset(dataset_name, split=split)
    image_column = next((c for c in ("img", "image") if c in dataset.column_names), None)
    label_column = next((c for c in ("label", "labels") if c in dataset.column_names), None)
    if image_column is None or label_column is None:
        raise ValueError(
            f"dataset {dataset_name!r} needs an 'img' or 'image' column and a 'label' or 'labels' column; "
            f"it has {dataset.column_names}"
        )
    feature = dataset.features[label_column]
    names = feature.names if isinstance(feature, ClassLabel) else None
    rows = dataset.select(range(min(num_images, len(dataset))))
    images = [image.convert("RGB") for image in rows[image_column]]
    return images, list(rows[label_column]), names


def preprocess(processor, images) -> tuple[torch.Tensor, np.ndarray]:
    """Pixel values for the model, and the same images as the model sees them, (n, height, width, 3) in [0, 1]."""
    pixel_values = processor(images=images, return_tensors="pt")["pixel_values"]
    shown = pixel_values.float()
    if getattr(processor, "do_normalize", False):  # undo (x - mean) / std to display the image
        mean = torch.tensor(processor.image_mean).view(1, -1, 1, 1)
        std = torch.tensor(processor.image_std).view(1, -1, 1, 1)
        shown = shown * std + mean
    return pixel_values, shown.clamp(0, 1).permute(0, 2, 3, 1).numpy()


def maps_for_images(model, processor, images, batch_size: int = 64) -> tuple[AttentionMaps, np.ndarray]:
    """Attention maps for a list of PIL images, in batches; also returns the images as displayed."""
    pixel_values, shown = preprocess(processor, images)
    parts = [compute_attention_maps(model, pixel_values[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    maps = AttentionMaps(*(torch.cat([getattr(p, name) for p in parts]) for name in AttentionMaps.__dataclass_fields__))
    return maps, shown


# --------------------------------------------------------------------------------------------------------------
# Figures (matplotlib's object API: no global pyplot state, works headless and inline in a notebook)
# --------------------------------------------------------------------------------------------------------------


def _normalise(attention_map) -> np.ndarray:
    """Stretch a map to [0, 1] so that each overlay uses the whole colour range."""
    attention_map = np.asarray(attention_map, dtype=np.float32)
    low, high = attention_map.min(), attention_map.max()
    return (attention_map - low) / (high - low) if high > low else np.zeros_like(attention_map)


def _overlay(ax, image, attention_map, alpha: float, cmap: str):
    ax.imshow(image)
    ax.imshow(_normalise(attention_map), cmap=cmap, alpha=alpha, vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_attention_grid(
    images: np.ndarray,
    attention_maps,
    predicted: list[str],
    true: list[str] | None = None,
    ncols: int = 6,
    alpha: float = 0.5,
    cmap: str = "jet",
    title: str | None = None,
):
    """The tutorial's figure: each image with its map overlaid, titled "pred / true" (green right, red wrong)."""
    from matplotlib.figure import Figure

    count = len(images)
    ncols = max(1, min(ncols, count))
    nrows = math.ceil(count / ncols)
    figure = Figure(figsize=(2.0 * ncols, 2.2 * nrows + (0.4 if title else 0)), layout="constrained")
    axes = figure.subplots(nrows, ncols, squeeze=False).ravel()
    for index, ax in enumerate(axes):
        if index >= count:
            ax.set_axis_off()
            continue
        _overlay(ax, images[index], attention_maps[index], alpha, cmap)
        if true is None:
            ax.set_title(predicted[index], fontsize=9)
        else:
            correct = predicted[index] == true[index]
            ax.set_title(f"{predicted[index]} / {true[index]}", fontsize=9, color="tab:green" if correct else "tab:red")
    if title:
        figure.suptitle(title)
    return figure


def plot_layer_maps(images: np.ndarray, maps: AttentionMaps, indices=range(4), alpha: float = 0.5, cmap: str = "jet"):
    """One row per image: the image, the head-averaged map of every layer, then the rollout."""
    from matplotlib.figure import Figure

    indices = list(indices)
    num_layers = maps.per_layer.shape[1]
    columns = ["image"] + [f"layer {layer}" for layer in range(num_layers)] + ["rollout"]
    figure = Figure(figsize=(1.8 * len(columns), 1.9 * len(indices)), layout="constrained")
    axes = figure.subplots(len(indices), len(columns), squeeze=False)
    for row, index in enumerate(indices):
        axes[row, 0].imshow(images[index])
        axes[row, 0].set_axis_off()
        for layer in range(num_layers):
            _overlay(axes[row, 1 + layer], images[index], maps.per_layer[index, layer], alpha, cmap)
        _overlay(axes[row, -1], images[index], maps.rollout[index], alpha, cmap)
    for ax, name in zip(axes[0], columns):
        ax.set_title(name, fontsize=10)
    return figure


def plot_head_maps(image: np.ndarray, per_head: torch.Tensor, alpha: float = 0.5, cmap: str = "jet"):
    """Every head of every layer for one image: `per_head` is (layers, heads, height, width)."""
    from matplotlib.figure import Figure

    num_layers, num_heads = per_head.shape[:2]
    figure = Figure(figsize=(1.8 * num_heads, 1.9 * num_layers), layout="constrained")
    axes = figure.subplots(num_layers, num_heads, squeeze=False)
    for layer in range(num_layers):
        for head in range(num_heads):
            _overlay(axes[layer, head], image, per_head[layer, head], alpha, cmap)
            axes[layer, head].set_title(f"layer {layer}, head {head}", fontsize=8)
    return figure


def predict_and_plot(model, processor, images, labels, label_names=None, layer="rollout", ncols: int = 6):
    """The tutorial's figure for PIL `images` with label ids `labels`; returns (figure, predicted, true names).

    True labels are named by the dataset's `label_names` when given, else by the model's `id2label`.
    """
    maps, shown = maps_for_images(model, processor, images)
    selected = maps.select(layer)  # raises ValueError for a layer the model does not have
    id2label = model.config.id2label
    predicted = [id2label[i] for i in maps.logits.argmax(-1).tolist()]
    true = [label_names[i] if label_names else id2label[i] for i in labels]
    reader = READERS[getattr(model.config, "classifier_pooling", "cls")]
    where = "attention rollout" if layer == "rollout" else f"{reader} attention of layer {layer} (heads averaged)"
    figure = plot_attention_grid(shown, selected, predicted, true, ncols=ncols, title=f"{where}: predicted / true")
    return figure, predicted, true


# --------------------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------------------


def parse_layer(value: str) -> str | int:
    if value in ("rollout", "last"):
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected rollout, last or a layer number, got {value!r}") from None


def parse_args(argv=None) -> argparse.Namespace:
    from cli import OneLineArgumentParser

    parser = OneLineArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a saved SimpleViT (run_train.py output) or Hub repo")
    parser.add_argument("--dataset-name", required=True, help="Hub dataset id or local folder (datasets.load_dataset)")
    parser.add_argument("--split", default="test", help="split to draw the images from (default: test)")
    parser.add_argument("--num-images", type=int, default=30, help="how many images (default: 30)")
    parser.add_argument(
        "--output", type=Path, default=Path("attention.png"), help="figure file (default: attention.png)"
    )
    parser.add_argument(
        "--layer", type=parse_layer, default="rollout",
        help="map to overlay: rollout (default), last, or a layer index (0 = first)",
    )  # fmt: skip
    parser.add_argument("--ncols", type=int, default=6, help="images per row of the figure (default: 6)")
    args = parser.parse_args(argv)
    if args.num_images < 1:
        parser.error("--num-images must be at least 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    checkpoint = Path(args.checkpoint).expanduser()
    # A local path that is not a model folder is the common mistake; anything else is tried as a Hub repo id.
    looks_local = checkpoint.exists() or args.checkpoint.startswith((".", "/", "~")) or args.checkpoint.count("/") > 1
    if looks_local and not (checkpoint / "config.json").is_file():
        print(f"error: {checkpoint} is not a saved model folder (no config.json)", file=sys.stderr)
        return 1
    try:
        model, processor = load_model(checkpoint if looks_local else args.checkpoint)
    except (OSError, ValueError) as error:
        where = "" if looks_local else " (no such local folder, so it was tried as a Hub repo id)"
        print(f"error: cannot load the model from {args.checkpoint}{where}: {_first_line(error)}", file=sys.stderr)
        return 1
    try:
        images, labels, label_names = load_examples(args.dataset_name, args.split, args.num_images)
    except Exception as error:  # datasets raises many types (not found, offline, bad split): report, don't trace
        where = f"dataset {args.dataset_name!r} split {args.split!r}"
        print(f"error: cannot load {where}: {_first_line(error)}", file=sys.stderr)
        return 1

    try:
        figure, predicted, true = predict_and_plot(
            model, processor, images, labels, label_names, args.layer, args.ncols
        )
    except ValueError as error:  # e.g. --layer 7 on a 4-layer model
        print(f"error: {error}", file=sys.stderr)
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.output, dpi=120)
    correct = sum(p == t for p, t in zip(predicted, true))
    print(f"Wrote {args.output}: {len(images)} images, {correct} predicted correctly")
    return 0


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
