"""Share a trained SimpleViT on the Hugging Face Hub, exactly as any `transformers` model is shared.

    python push_to_hub.py --checkpoint results/seed-config --repo-id USER/NAME [--private] [--revision BRANCH]
    python push_to_hub.py --checkpoint results/seed-config --repo-id USER/NAME --dry-run --local-dir staged/

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
import re
import shutil
import sys
import tempfile
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
MACHINE_ARGS = {"output_dir", "resume_from_checkpoint", "save_model_every", "num_workers", "report_to", "exp_name"}
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
    staged beside the card, `dataset_id` the Hub dataset the model was trained on (defaults to the training
    run's --dataset-name when that is a Hub id rather than a local folder). Returns a `huggingface_hub.ModelCard`.
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    args = metrics.get("args", {})
    dataset_name = args.get("dataset_name")
    dataset_id = dataset_id or hub_dataset_id(dataset_name)
    # The card shows the dataset's Hub id; a local folder is described by its name only.
    dataset_label = dataset_id or (Path(dataset_name).name if dataset_name else "an image folder")
    eval_split = args.get("eval_split", "test")
    final_accuracy = float(metrics["eval_accuracy"][-1])  # the model being shared is the final epoch's
    model_name = repo_id.split("/")[-1]
    labels = [config["id2label"][key] for key in sorted(config.get("id2label", {}), key=int)]

    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag="image-classification",
        license=license,
        # "custom_code" is the Hub's tag for models that load with trust_remote_code=True.
        tags=["image-classification", "vision", "vit", "simple-vit", "custom_code"],
        datasets=[dataset_id] if dataset_id else None,
        metrics=["accuracy"],
        model_name=model_name,
        eval_results=[
            EvalResult(
                task_type="image-classification",
                task_name="Image Classification",
                # model-index wants a dataset type; "imagefolder" is the loader that read a local folder.
                dataset_type=dataset_id or "imagefolder",
                dataset_name=dataset_label,
                dataset_split=eval_split,
                metric_type="accuracy",
                metric_name="Accuracy",
                metric_value=final_accuracy,
            )
        ],
    )

    architecture = "\n".join(
        f"| {name} | {config.get(key, default)} |"
        for name, key, default in (
            ("Image size", "image_size", "?"),
            ("Patch size", "patch_size", "?"),
            ("Hidden size", "hidden_size", "?"),
            ("Layers", "num_hidden_layers", "?"),
            ("Attention heads", "num_attention_heads", "?"),
            ("MLP size", "intermediate_size", "?"),
            ("Classifier pooling", "classifier_pooling", "cls"),  # configs saved before the option read "cls"
            ("Position embeddings", "position_embedding_type", "learned"),  # likewise "learned"
            ("Shifted patch tokenization", "shifted_patch_tokenization", False),  # likewise off
            ("Locality self-attention", "locality_self_attention", False),
            ("Final LayerNorm", "final_layernorm", True),  # configs saved before the option had it
        )
    )
    # The run's command-line arguments, minus unset ones and those that only describe the training machine
    # (paths, worker counts, loggers); a local dataset path is shown by its folder name.
    shown_args = {key: value for key, value in args.items() if value is not None and key not in MACHINE_ARGS}
    if "dataset_name" in shown_args:
        shown_args["dataset_name"] = dataset_label
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

A small Vision Transformer (**SimpleViT**) written from scratch and trained on **{dataset_label}**. The code
(`configuration_simple_vit.py`, `modeling_simple_vit.py`) ships in this repository and follows `transformers`'
ViT exactly (pre-norm layers, a CLS token, learned position embeddings), so it loads through the usual
`Auto` classes with `trust_remote_code=True`. Read the two files before running them: that is the code
`trust_remote_code` executes.

It reaches **{final_accuracy:.2%}** accuracy on the `{eval_split}` split after the final epoch.

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

    `local_dir` must be new or empty: whatever is in it gets uploaded, so stale files would be shared too.
    """
    checkpoint, local_dir = Path(checkpoint), Path(local_dir)
    check_repo_id(repo_id)
    metrics = check_checkpoint(checkpoint)
    if local_dir.resolve() == checkpoint.resolve():
        raise PushError("--local-dir must not be the checkpoint folder itself")
    if local_dir.exists() and (not local_dir.is_dir() or any(local_dir.iterdir())):
        raise PushError(f"staging folder {local_dir} already exists and is not empty; pick a new --local-dir")
    local_dir.mkdir(parents=True, exist_ok=True)

    for name in REQUIRED_FILES:
        shutil.copy2(checkpoint / name, local_dir / name)
    figures = [name for name in FIGURES if (checkpoint / name).is_file()]
    for name in figures:
        shutil.copy2(checkpoint / name, local_dir / name)

    config = _read_json(checkpoint / "config.json")
    card = render_model_card(repo_id, config, metrics, figures, dataset_id=dataset_id, license=license)
    card.save(local_dir / "README.md")
    return local_dir


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
    parser.add_argument("--repo-id", required=True, help="Hub repository, USER/NAME")
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
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            # Everything that can be wrong with the input is checked before a single request is made.
            check_repo_id(args.repo_id)
            check_checkpoint(args.checkpoint)
            token = None if args.dry_run else resolve_token(args.token)
            if not args.dry_run:
                from huggingface_hub import constants

                if constants.HF_HUB_OFFLINE:
                    raise PushError("HF_HUB_OFFLINE is set, so nothing can be uploaded; unset it (or use --dry-run)")
            local_dir = args.local_dir or Path(tmp) / "repo"
            stage_repo(args.checkpoint, local_dir, args.repo_id, dataset_id=args.dataset_id, license=args.license)
        except PushError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1

        staged = sorted(path.name for path in local_dir.iterdir())
        print(f"Staged {len(staged)} files in {local_dir}: {', '.join(staged)}")
        if args.dry_run:
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
