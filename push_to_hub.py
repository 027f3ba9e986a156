"""Share a trained SimpleViT on the Hugging Face Hub, exactly as any `transformers` model is shared.

    python push_to_hub.py --checkpoint results/seed-config --repo-id USER/NAME [--private] [--revision BRANCH]
    python push_to_hub.py --checkpoint results/seed-config --dry-run --local-dir staged/   [--repo-id USER/NAME]

The script works in two steps, so that what is uploaded can be inspected first:

1. *Stage*: copy what a user of the model needs out of the training output folder into a clean folder (the
   weights, `config.json` with its `auto_map`, the two code files that `trust_remote_code=True` loads, the image
   processor, the metrics and figures) and write a model card (`README.md`) from `metrics.json`. Training
   state (the `checkpoints/` folder) stays behind. `--dry-run` stops here and sends nothing.
2. *Upload*: `create_repo(exist_ok=True)`, then ONE commit of the staged folder with `huggingface_hub`.

Every check that can fail (missing files, malformed repo id, no token) runs before anything is sent.
The token comes from `--token`, the `HF_TOKEN` environment variable or a saved `hf auth login`, and is never
printed.
"""

import argparse
import json
import math
import re
import shutil
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path


# What a user needs to load and run the model: `from_pretrained(..., trust_remote_code=True)` reads the config,
# its `auto_map` names the two code files, the weights fill the model, and the image processor config is what
# lets `AutoImageProcessor` and `pipeline("image-classification")` prepare images.
MODEL_FILES = (
    "model.safetensors",
    "config.json",
    "configuration_simple_vit.py",
    "modeling_simple_vit.py",
    "preprocessor_config.json",
)
# The model card's results come from here.
METRICS_FILE = "metrics.json"
REQUIRED_FILES = MODEL_FILES + (METRICS_FILE,)
# Figures are shared when the checkpoint folder has them (attention.png is made by attention_maps.py).
FIGURES = {
    "metrics.png": ("Training curves", "Loss and accuracy per epoch."),
    "attention.png": (
        "Attention maps",
        "Attention rollout on test images, titled predicted / true label (made by attention_maps.py).",
    ),
}
# run_train.py arguments left out of the model card: they describe the machine, not the training recipe.
MACHINE_ARGS = {
    "output_dir", "resume_from_checkpoint", "save_model_every", "num_workers", "report_to", "exp_name",
    "with_tracking", "print_config",
}  # fmt: skip
# Arguments that only matter when no evaluation split existed and one was carved out of train: listed in the card
# only then (a run that evaluated on the dataset's own `test` split never used them).
CARVE_ARGS = {"validation_split_percentage", "train_val_split"}
# How a SimpleViT config can differ from `transformers`' ViT: field -> (the value that matches ViT, which is also
# what a config saved before the option existed means; what the model does instead, or, for a field with several
# such values, a dict of what each does). A model with any of them computes something `ViTForImageClassification`
# cannot, so convert_vit_checkpoint.py refuses to convert it.
NON_VIT_OPTIONS = {
    "classifier_pooling": (
        "cls",
        {
            "mean": "the classifier reads the **mean of the final patch tokens** (`classifier_pooling=\"mean\"`), not "
            "the CLS token",
            "sequence": "the classifier reads a **weighted mean of the final patch tokens**, each weighted by the "
            "softmax of a learned score (`classifier_pooling=\"sequence\"`, sequence pooling from Compact "
            "Convolutional Transformers), not the CLS token",
        },
    ),
    "position_embedding_type": (
        "learned",
        "**fixed 2-D sine-cosine position embeddings** (`position_embedding_type=\"sincos\"`), not learned ones",
    ),
    "shifted_patch_tokenization": (
        False,
        "**Shifted Patch Tokenization** (`shifted_patch_tokenization=True`): each patch is embedded together with "
        "its four diagonal shifts by half a patch",
    ),
    "convolutional_tokenization": (
        False,
        "**a convolutional tokenizer** (`convolutional_tokenization=True`, from Compact Convolutional Transformers): "
        "the tokens come from 3x3 convolutions, ReLU and max-pooling, not from one projection per patch",
    ),
    "locality_self_attention": (
        False,
        "**Locality Self-Attention** (`locality_self_attention=True`): no token attends to itself, and each layer "
        "learns the scale of its attention scores",
    ),
    "final_layernorm": (
        True,
        "**no LayerNorm after the last layer** (`final_layernorm=False`, the tutorial's architecture): the "
        "classifier reads the last layer's output directly",
    ),
}
# Fields that only size a part that a NON_VIT_OPTIONS option adds (field -> that option): they make no difference
# of their own, since a model with the option off has no such part (the config refuses them there).
NON_VIT_OPTION_SIZES = {"tokenizer_channels": "convolutional_tokenization"}
# Hub datasets that a local folder is recognised as a copy of (see `dataset_source`): the folder names a copy
# goes by, the class names in label-id order (the model's id2label, which training took from the dataset), and
# the size of each split, to say "first 500 of 10,000" when only part of a split was evaluated.
KNOWN_HUB_DATASETS = {
    "uoft-cs/cifar10": {
        "folder_names": ("cifar10", "cifar-10", "cifar_10"),
        "labels": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        "split_sizes": {"train": 50_000, "test": 10_000},
    },
}
# The repository name used in the card when a dry run is given no --repo-id.
PLACEHOLDER_NAMESPACE = "USER"
# Facts about the run that metrics.json records beside the per-epoch numbers, with their names in the card.
RUN_FACTS = {
    "num_parameters": "parameters",
    "train_samples": "training images",
    "eval_samples": "evaluation images",
    "world_size": "processes",
    "device": "device",
    "wall_time_seconds": "wall time (s)",
}


class PushError(Exception):
    """A problem with the user's input, reported as one line (no traceback) before anything is sent."""


# --------------------------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------------------------


def check_repo_id(repo_id: str) -> str:
    """Return `repo_id` if it is a valid "USER/NAME", else raise PushError saying what is wrong."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    # huggingface_hub accepts a bare "NAME" (it then means the token's own namespace); asking for the namespace
    # explicitly avoids pushing to a surprising place.
    if repo_id.count("/") != 1:
        raise PushError(f"malformed repo id {repo_id!r}: expected USER/NAME (e.g. my-name/simple-vit-cifar10)")
    try:
        # The Hub's own rules: letters, digits, '-', '_', '.', no '--' or '..', at most 96 characters per part.
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise PushError(f"malformed repo id {repo_id!r}: {str(error).splitlines()[0]}") from None
    return repo_id


def check_checkpoint(checkpoint: Path) -> dict:
    """Check that `checkpoint` holds a complete, loadable model; return its parsed metrics.json."""
    if not checkpoint.is_dir():
        raise PushError(f"checkpoint folder {checkpoint} does not exist")
    missing = [name for name in REQUIRED_FILES if not (checkpoint / name).is_file()]
    if missing:
        raise PushError(f"checkpoint folder {checkpoint} is missing {', '.join(missing)}")

    config = _read_json(checkpoint / "config.json")
    # Without auto_map, trust_remote_code has nothing to load and the Hub copy would be unusable.
    if "AutoModelForImageClassification" not in config.get("auto_map", {}):
        raise PushError(
            f"{checkpoint / 'config.json'} has no auto_map entry for AutoModelForImageClassification; "
            "save the model with SimpleViTForImageClassification.save_pretrained"
        )
    metrics = _read_json(checkpoint / METRICS_FILE)
    accuracies = metrics.get("eval_accuracy")
    if not isinstance(accuracies, list) or not accuracies:
        raise PushError(f"{checkpoint / METRICS_FILE} has no per-epoch 'eval_accuracy' list")
    return metrics


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise PushError(f"cannot read {path}: {error}") from None


def resolve_token(token: str | None) -> str:
    """The token from --token, else HF_TOKEN, else a saved login (`hf auth login`); PushError if none."""
    from huggingface_hub import get_token

    token = token or get_token()
    if not token:
        raise PushError(
            "no Hugging Face token: pass --token, set HF_TOKEN, or log in once with `hf auth login`"
        )
    return token


# --------------------------------------------------------------------------------------------------------------
# The model card
# --------------------------------------------------------------------------------------------------------------


def hub_dataset_id(dataset_name: str | None) -> str | None:
    """`dataset_name` if it can be a Hub dataset id ("name" or "owner/name"), None for a local folder."""
    if not dataset_name or Path(dataset_name).expanduser().exists():
        return None
    return dataset_name if re.fullmatch(r"[\w.-]+(/[\w.-]+)?", dataset_name) else None


@dataclass
class DatasetSource:
    """What the model was trained on, as the card names it."""

    hub_id: str | None  # the Hub dataset (linked in the metadata), None for an unrecognised local folder
    local_folder: str | None  # the folder's name when training read a local folder (a copy or not)

    @property
    def label(self) -> str:
        if self.hub_id and self.local_folder:
            return f"{self.hub_id} (local copy)"
        return self.hub_id or self.local_folder or "a dataset metrics.json does not name"


def dataset_source(dataset_name: str | None, labels, dataset_id: str | None = None) -> DatasetSource:
    """Name the training dataset: a Hub id when there is one, with a note when a local copy was read.

    The rule, in order: an explicit `dataset_id` (push_to_hub.py --dataset-id) wins; a `dataset_name` that is a Hub
    id is used as is; a local folder is taken for a copy of a dataset in KNOWN_HUB_DATASETS only when BOTH its
    name is one such a copy goes by (e.g. `cifar10`) AND the model's class names, in label-id order, are that
    dataset's (training reads them from the dataset's ClassLabel). Any other local folder is just a folder.
    """
    local = dataset_name if dataset_name and not hub_dataset_id(dataset_name) else None
    local_folder = (Path(local).expanduser().name or local) if local else None
    if dataset_id:
        return DatasetSource(dataset_id, local_folder)
    if not local:
        return DatasetSource(dataset_name, None)
    for hub_id, known in KNOWN_HUB_DATASETS.items():
        if local_folder.lower() in known["folder_names"] and tuple(labels) == known["labels"]:
            return DatasetSource(hub_id, local_folder)
    return DatasetSource(None, local_folder)


@dataclass
class Evaluation:
    """Which images the reported accuracy was measured on."""

    split: str  # for the model-index: the split's name, or a description of one carved from train
    where: str  # "the `test` split"
    count: str  # "all 10,000 images", "first 500 of 10,000 images"
    subset: bool  # only the first `samples` images of the split (--max-eval-samples)
    carved: bool | None  # held out of train because the dataset had no eval split; None: not recorded
    samples: int | None

    @property
    def description(self) -> str:
        return f"{self.where}, {self.count}"


def describe_evaluation(metrics: dict, hub_id: str | None = None) -> Evaluation:
    """Read from metrics.json which split was evaluated and on how many of its images.

    run_train.py records the split it evaluated in `metrics["eval_split"]` (a split's name, or a description
    of a part carved from train, which is anything that is not a plain name such as `train[carved 15%]`). A
    metrics.json from before that key only has the requested `--eval-split`, which was carved from train when
    the dataset lacked it: that is decided here from the image counts where they allow it (see `_was_carved`),
    and the card says it is not recorded where they do not.
    """
    args = metrics.get("args", {})
    samples = metrics.get("eval_samples")
    recorded = metrics.get("eval_split")
    train_split = args.get("train_split", "train")
    if recorded is not None:
        split, carved = str(recorded), not re.fullmatch(r"[\w.-]+", str(recorded))
    else:
        split, carved = args.get("eval_split", "test"), _was_carved(metrics, hub_id)
    percentage = args.get("validation_split_percentage")
    if percentage is None and args.get("train_val_split") is not None:
        percentage = 100 * args["train_val_split"]

    if carved:
        where = f"`{split}` (held out of the training data for evaluation)"
    elif carved is None:
        held_out = f"{percentage:g}% of `{train_split}`" if percentage is not None else f"a part of `{train_split}`"
        where = (
            f"the `{split}` split (or, had the dataset no `{split}` split, {held_out} held out: this metrics.json "
            "predates the record of which)"
        )
    else:
        where = f"the `{split}` split"

    limit = args.get("max_eval_samples")
    # The size of the whole split, where it is known (a recognised Hub dataset's own split).
    total = KNOWN_HUB_DATASETS.get(hub_id, {}).get("split_sizes", {}).get(split) if carved is False else None
    # --max-eval-samples N keeps the first N images; a split of at most N images was evaluated whole.
    subset = limit is not None and samples is not None and samples >= limit and total != samples
    if samples is None:
        count = "number of images not recorded"
    elif not subset:
        count = f"all {samples:,} images"
    elif total and total > samples:
        count = f"first {samples:,} of {total:,} images"
    else:
        count = f"first {samples:,} images only (--max-eval-samples {limit})"
    return Evaluation(split, where, count, subset, carved, samples)


def _was_carved(metrics: dict, hub_id: str | None = None) -> bool | None:
    """For a metrics.json without `eval_split`: was the evaluation split carved out of train? None: can't tell.

    Carving takes ceil(p * N) of the N training rows for evaluation and trains on the rest
    (`datasets.Dataset.train_test_split`, the same expression). So counts not cut by --max-*-samples prove that
    nothing was carved when they do not fit it, or when training saw a recognised dataset's whole train split.
    Counts that fit are no proof (a dataset can ship a 10% test split), and cut counts say nothing.
    """
    args = metrics.get("args", {})
    train, evaluation = metrics.get("train_samples"), metrics.get("eval_samples")
    percentage = args.get("validation_split_percentage")
    cut = {
        name: count is None or (limit is not None and count >= limit)
        for name, count, limit in (
            ("train", train, args.get("max_train_samples")), ("eval", evaluation, args.get("max_eval_samples"))
        )
    }  # fmt: skip
    train_size = KNOWN_HUB_DATASETS.get(hub_id, {}).get("split_sizes", {}).get(args.get("train_split", "train"))
    if not cut["train"] and train_size is not None and train == train_size:
        return False
    if cut["train"] or cut["eval"] or percentage is None:
        return None
    return False if evaluation != math.ceil(percentage / 100 * (train + evaluation)) else None


def architecture_differences(config: dict) -> list[str]:
    """How this model differs from `transformers`' ViT (see NON_VIT_OPTIONS); empty for a plain ViT."""
    differences = []
    for key, (vit_value, text) in NON_VIT_OPTIONS.items():
        value = config.get(key, vit_value)
        if value != vit_value and isinstance(text, dict) and value not in text:
            # A config from a newer SimpleViT: say nothing rather than something false about the model.
            raise ValueError(f"{key}={value!r} is not a value this version can describe; choose one of {sorted(text)}")
        if value != vit_value:
            differences.append(text[value] if isinstance(text, dict) else text)
    return differences


def shown_training_args(args: dict, evaluation: Evaluation, dataset_label: str) -> dict:
    """The run's command-line arguments that shaped the result, for the card's training table.

    Left out: unset ones, those that only describe the training machine (paths, worker counts, loggers), the
    carving percentage when nothing was carved, and the requested --eval-split when it was absent and train was
    carved instead. A local dataset path is shown as the dataset's label.
    """
    shown = {key: value for key, value in args.items() if value is not None and key not in MACHINE_ARGS}
    if evaluation.carved is False:
        shown = {key: value for key, value in shown.items() if key not in CARVE_ARGS}
    if evaluation.carved:
        shown.pop("eval_split", None)
    if "dataset_name" in shown:
        shown["dataset_name"] = dataset_label
    return shown


def render_model_card(
    repo_id: str,
    config: dict,
    metrics: dict,
    figures: list[str] = (),
    dataset_id: str | None = None,
    license: str = "mit",
):
    """Build the model card: YAML metadata (incl. a model-index with the measured accuracy) and a body.

    `config` is the parsed config.json, `metrics` the parsed metrics.json, `figures` the image files that are
    staged beside the card, `dataset_id` the Hub dataset the model was trained on (default: see
    `dataset_source`). Everything the card says about the model and its evaluation comes from these two files:
    the architecture from the config (and how it differs from `transformers`' ViT), the split and the number of
    images behind the accuracy from metrics.json. Returns a `huggingface_hub.ModelCard`.
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    args = metrics.get("args", {})
    labels = [config["id2label"][key] for key in sorted(config.get("id2label", {}), key=int)]
    # run_train.py records the dataset it read in metrics.json; older runs only have it among their args.
    source = dataset_source(metrics.get("dataset_name", args.get("dataset_name")), labels, dataset_id)
    evaluation = describe_evaluation(metrics, source.hub_id)
    final_accuracy = float(metrics["eval_accuracy"][-1])  # the model being shared is the final epoch's
    model_name = repo_id.split("/")[-1]

    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag="image-classification",
        license=license,
        # "custom_code" is the Hub's tag for models that load with trust_remote_code=True.
        tags=["image-classification", "vision", "vit", "simple-vit", "custom_code"],
        datasets=[source.hub_id] if source.hub_id else None,
        metrics=["accuracy"],
        model_name=model_name,
        eval_results=[
            EvalResult(
                task_type="image-classification",
                task_name="Image Classification",
                # model-index wants a dataset type; "imagefolder" is the loader that read an unrecognised folder.
                dataset_type=source.hub_id or "imagefolder",
                # Shown beside the number on the Hub: which images it was measured on, in so many words.
                dataset_name=f"{source.label}, {evaluation.split} split, {evaluation.count}",
                dataset_split=evaluation.split,
                metric_type="accuracy",
                metric_name=f"Accuracy (first {evaluation.samples:,} images)" if evaluation.subset else "Accuracy",
                metric_value=final_accuracy,
            )
        ],
    )

    rows = [
        (name, config.get(key, default))
        for name, key, default in (
            ("Image size", "image_size", "?"),
            ("Patch size", "patch_size", "?"),
            ("Hidden size", "hidden_size", "?"),
            ("Layers", "num_hidden_layers", "?"),
            ("Attention heads", "num_attention_heads", "?"),
            ("MLP size", "intermediate_size", "?"),
            # A config saved before an option existed has the ViT value (NON_VIT_OPTIONS).
            ("Classifier pooling", "classifier_pooling", NON_VIT_OPTIONS["classifier_pooling"][0]),
            ("Position embeddings", "position_embedding_type", NON_VIT_OPTIONS["position_embedding_type"][0]),
            ("Shifted patch tokenization", "shifted_patch_tokenization", False),
            ("Convolutional tokenization", "convolutional_tokenization", False),
            ("Locality self-attention", "locality_self_attention", False),
            ("Final LayerNorm", "final_layernorm", True),
        )
    ]
    if config.get("convolutional_tokenization") and config.get("patch_size", 0) >= 4:
        # Only a tokenizer of two blocks or more has a width between its convolutions; null means the default.
        channels = config.get("tokenizer_channels")
        hidden_size = config.get("hidden_size")
        default = max(1, hidden_size // 2) if isinstance(hidden_size, int) else "?"
        rows.insert(rows.index(("Convolutional tokenization", True)) + 1,
                    ("Tokenizer channels", default if channels is None else channels))
    architecture = "\n".join(f"| {name} | {value} |" for name, value in rows)
    differences = architecture_differences(config)
    if differences:
        relation = (
            "It is a pre-norm Vision Transformer like `transformers`' ViT, **except** that it has\n\n"
            + "\n".join(f"- {text}" for text in differences)
            + "\n\n`transformers`' `ViTForImageClassification` has no counterpart for "
            + ("this" if len(differences) == 1 else "these")
            + ", so this model cannot be converted to a ViT checkpoint: it runs with its own code only."
        )
    else:
        relation = (
            "For its config it computes exactly what `transformers`' `ViTForImageClassification` computes (pre-norm "
            "layers, a CLS token that the classifier reads after a final LayerNorm, learned position embeddings), "
            "so it also converts to a plain ViT checkpoint (the SimpleViT project's `convert_vit_checkpoint.py`)."
        )
    dataset_note = ""
    if source.hub_id and source.local_folder:
        dataset_note = (
            f"\n\nTraining and evaluation read a local copy of [`{source.hub_id}`]"
            f"(https://huggingface.co/datasets/{source.hub_id}) (folder `{source.local_folder}`), not the files on "
            "the Hub; a copy can differ from them (re-encoded images, another row order)."
        )
    subset_note = (
        " Only part of the split was evaluated, so the accuracy on the whole split may differ." if evaluation.subset
        else ""
    )
    shown_args = shown_training_args(args, evaluation, source.label)
    training = "\n".join(f"| `{key}` | `{value}` |" for key, value in shown_args.items())
    for key, name in RUN_FACTS.items():
        if key in metrics:
            value = round(metrics[key], 1) if isinstance(metrics[key], float) else metrics[key]
            training += f"\n| {name} | `{value}` |"
    results = "\n".join(
        f"| {epoch} | {_fmt(train_loss)} | {_fmt(eval_loss)} | {_fmt(accuracy)} |"
        for epoch, train_loss, eval_loss, accuracy in zip(
            metrics.get("epoch", range(1, len(metrics["eval_accuracy"]) + 1)),
            metrics.get("train_loss", [None] * len(metrics["eval_accuracy"])),
            metrics.get("eval_loss", [None] * len(metrics["eval_accuracy"])),
            metrics["eval_accuracy"],
        )
    )
    figure_lines = "\n\n".join(f"![{FIGURES[name][0]}]({name})\n\n*{FIGURES[name][1]}*" for name in figures)

    body = f"""
# {model_name}

A small Vision Transformer (**SimpleViT**) written from scratch and trained on **{source.label}**. The code
(`configuration_simple_vit.py`, `modeling_simple_vit.py`) ships in this repository and loads through the usual
`Auto` classes with `trust_remote_code=True`. Read the two files before running them: that is the code
`trust_remote_code` executes.

{relation}{dataset_note}

After the final epoch it reaches **{final_accuracy:.2%}** accuracy on {evaluation.description}.{subset_note}

| Architecture | |
|---|---|
{architecture}

Labels: {", ".join(f"`{label}`" for label in labels)}.

## How to use

```python
from transformers import AutoImageProcessor, AutoModelForImageClassification
from PIL import Image

model = AutoModelForImageClassification.from_pretrained("{repo_id}", trust_remote_code=True)
processor = AutoImageProcessor.from_pretrained("{repo_id}")

image = Image.open("example.png").convert("RGB")
logits = model(**processor(images=image, return_tensors="pt")).logits
print(model.config.id2label[logits.argmax(-1).item()])
```

or, in one line, with a pipeline:

```python
from transformers import pipeline

classifier = pipeline("image-classification", model="{repo_id}", trust_remote_code=True)
classifier("example.png")
```

To look at what the model attends to, load it with `attn_implementation="eager"` and pass
`output_attentions=True` (this is what the project's `attention_maps.py` does).

## Training configuration

| Setting | Value |
|---|---|
{training}

## Results

Evaluated on {evaluation.description}, after every epoch.

| Epoch | Train loss | Eval loss | Eval accuracy |
|---|---|---|---|
{results}

Full per-epoch numbers are in `metrics.json`.

{figure_lines}
"""
    # ModelCard parses the YAML header back into `card.data`, which is how the tests (and the Hub) read it.
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n{body}")


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


# --------------------------------------------------------------------------------------------------------------
# Staging and uploading
# --------------------------------------------------------------------------------------------------------------


def stage_repo(
    checkpoint: str | Path,
    local_dir: str | Path,
    repo_id: str,
    dataset_id: str | None = None,
    license: str = "mit",
) -> Path:
    """Copy the shareable files of `checkpoint` into `local_dir` and write the model card; return `local_dir`.

    `local_dir` must be new or empty: whatever is in it gets uploaded, so stale files would be shared too. The
    files are staged in a hidden sibling folder that is renamed to `local_dir` once complete, so an interrupted
    run leaves no half-staged folder that a later upload would share.
    """
    checkpoint, local_dir = Path(checkpoint), Path(local_dir)
    check_repo_id(repo_id)
    metrics = check_checkpoint(checkpoint)
    if local_dir.resolve() == checkpoint.resolve():
        raise PushError("--local-dir must not be the checkpoint folder itself")
    if local_dir.exists() and (not local_dir.is_dir() or any(local_dir.iterdir())):
        raise PushError(f"staging folder {local_dir} already exists and is not empty; pick a new --local-dir")
    config = _read_json(checkpoint / "config.json")
    figures = [name for name in FIGURES if (checkpoint / name).is_file()]
    card = render_model_card(repo_id, config, metrics, figures, dataset_id=dataset_id, license=license)

    local_dir.parent.mkdir(parents=True, exist_ok=True)
    partial = local_dir.parent / f".{local_dir.name}.partial-{uuid.uuid4().hex[:8]}"
    partial.mkdir()  # not tempfile.mkdtemp: its folder is private (0700), the staged one should not be
    try:
        for name in (*REQUIRED_FILES, *figures):
            shutil.copy2(checkpoint / name, partial / name)
        card.save(partial / "README.md")
        if local_dir.exists():
            local_dir.rmdir()  # checked empty above
        partial.rename(local_dir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return local_dir


def placeholder_repo_id(checkpoint: Path) -> str:
    """The repo id a dry run without --repo-id writes into the card: USER/<checkpoint folder name>."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    # The checkpoint folder (e.g. results/seed-config) usually names the model; made a valid repo name if needed.
    name = re.sub(r"-{2,}", "-", re.sub(r"[^\w.-]+", "-", checkpoint.resolve().name)).strip("-.")[:96]
    repo_id = f"{PLACEHOLDER_NAMESPACE}/{name}"
    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        return f"{PLACEHOLDER_NAMESPACE}/simple-vit"
    return repo_id


def push(
    local_dir: str | Path,
    repo_id: str,
    token: str,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
):
    """Create the repo (if needed) and upload the staged folder as one commit; return the `CommitInfo`."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    # exist_ok: pushing a retrained model to the same repo is the normal case, not an error.
    api.create_repo(repo_id, private=private, exist_ok=True, token=token)
    if revision and revision != "main":
        # A commit goes to an existing branch; start the branch from main the first time.
        api.create_branch(repo_id, branch=revision, exist_ok=True, token=token)
    return api.upload_folder(
        repo_id=repo_id,
        folder_path=local_dir,
        revision=revision,
        commit_message=commit_message or "Upload SimpleViT image classifier",
        token=token,
    )


# --------------------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    from cli import OneLineArgumentParser

    parser = OneLineArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--checkpoint", required=True, type=Path, help="output folder of run_train.py")
    parser.add_argument(
        "--repo-id", default=None,
        help=f"Hub repository, USER/NAME (required unless --dry-run; a dry run without it names the repository "
        f"{PLACEHOLDER_NAMESPACE}/<checkpoint folder name> in the card)",
    )
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument("--revision", default=None, help="branch to commit to (created if needed); default main")
    parser.add_argument("--commit-message", default=None, help="message of the upload commit")
    parser.add_argument(
        "--token", default=None, help="Hub token with write access (prefer HF_TOKEN or `hf auth login`: "
        "a command-line token is visible to other users of the machine)"
    )
    parser.add_argument(
        "--dataset-id", default=None,
        help="Hub id of the training dataset, for the model card (e.g. uoft-cs/cifar10 when training read a "
        "local copy); default: the run's --dataset-name if it is a Hub id",
    )
    parser.add_argument("--license", default="mit", help="license of the shared model (default: mit)")
    parser.add_argument("--dry-run", action="store_true", help="only stage the repository in --local-dir")
    parser.add_argument("--local-dir", type=Path, default=None, help="where to stage the repository")
    args = parser.parse_args(argv)
    if args.dry_run and args.local_dir is None:
        parser.error("--dry-run needs --local-dir to know where to stage the repository")
    if args.repo_id is None and not args.dry_run:
        parser.error("--repo-id is required to upload (only a --dry-run can do without it)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            # Everything that can be wrong with the input is checked before a single request is made.
            repo_id = args.repo_id or placeholder_repo_id(args.checkpoint)
            check_repo_id(repo_id)
            check_checkpoint(args.checkpoint)
            token = None if args.dry_run else resolve_token(args.token)
            if not args.dry_run:
                from huggingface_hub import constants

                if constants.HF_HUB_OFFLINE:
                    raise PushError("HF_HUB_OFFLINE is set, so nothing can be uploaded; unset it (or use --dry-run)")
            local_dir = args.local_dir or Path(tmp) / "repo"
            stage_repo(args.checkpoint, local_dir, repo_id, dataset_id=args.dataset_id, license=args.license)
        except PushError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1

        staged = sorted(path.name for path in local_dir.iterdir())
        print(f"Staged {len(staged)} files in {local_dir}: {', '.join(staged)}")
        if args.dry_run:
            if args.repo_id is None:
                print(f"No --repo-id: the model card names the placeholder {repo_id}; stage again with --repo-id "
                      "to name the real repository.")
            print("Dry run: nothing was sent to the Hub.")
            return 0
        try:
            commit = push(local_dir, args.repo_id, token, args.private, args.revision, args.commit_message)
        except Exception as error:  # refused by the server or not reachable: one line rather than a traceback
            message = str(error).strip().splitlines()[0] if str(error).strip() else ""
            print(f"error: upload to {args.repo_id} failed: {type(error).__name__}: {message}", file=sys.stderr)
            return 1
    print(f"Uploaded to {commit.repo_url} ({args.revision or 'main'}): {commit.commit_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
