"""--model-config files: JSON objects of SimpleViTConfig fields that override the defaults."""

import inspect
import json
from pathlib import Path

from cli import CLIError
from configuration_simple_vit import SimpleViTConfig
from modeling_simple_vit import SimpleViTForImageClassification

from . import PROJECT_ROOT
from .pretrained import load_pretrained_model, pretrained_model_config

# Every field SimpleViTConfig takes by name (anything else in a file is a typo that must not pass silently).
CONFIG_FIELDS = frozenset(inspect.signature(SimpleViTConfig.__init__).parameters) - {"self", "kwargs"}


def resolve_project_path(path) -> Path:
    """A relative path is looked up in the working directory first, then in the project folder, so that the shipped
    configs/ (which recipes name) work from wherever the script is run."""
    path = Path(path)
    if not path.is_absolute() and not path.exists() and (PROJECT_ROOT / path).exists():
        return PROJECT_ROOT / path
    return path


def load_model_config_overrides(path) -> dict:
    """Read --model-config and reject any key that is not a SimpleViTConfig field. None: no overrides."""
    if path is None:
        return {}
    path = resolve_project_path(path)
    try:
        overrides = json.loads(path.read_text())
    except FileNotFoundError:
        raise CLIError(f"--model-config file not found: {path}") from None
    except json.JSONDecodeError as err:
        raise CLIError(f"--model-config {path} is not valid JSON: {err}") from None
    if not isinstance(overrides, dict):
        raise CLIError(f"--model-config {path} must hold a JSON object of SimpleViTConfig fields")
    unknown = sorted(set(overrides) - CONFIG_FIELDS)
    if unknown:
        raise CLIError(f"unknown field(s) in --model-config {path}: {', '.join(unknown)}; "
                       f"known: {', '.join(sorted(CONFIG_FIELDS))}")
    # Validate now, before minutes of data loading (and its progress bars) come between the call and the error.
    try:
        SimpleViTConfig(**overrides)
    except ValueError as err:
        raise CLIError(f"invalid model config in {path}: {err}") from None
    return overrides


def resolved_settings(args, overrides: dict) -> dict:
    """What a run will use: every argument (a recipe's values and the flags over them) and every model field (with
    --model_name_or_path the checkpoint's config replaces these model fields)."""
    config = SimpleViTConfig(**overrides)
    return {"args": vars(args), "model_config": {field: getattr(config, field) for field in sorted(CONFIG_FIELDS)}}


def build_model_config(overrides: dict, class_names, pretrained=None, ignore_mismatched_sizes=False) -> SimpleViTConfig:
    """The model's config: the overrides plus the dataset's class names (id2label / label2id); with
    --model_name_or_path, the checkpoint's config plus the dataset's class names."""
    if pretrained is not None:
        return pretrained_model_config(pretrained, class_names, ignore_mismatched_sizes)
    try:
        return SimpleViTConfig(**{
            **overrides,
            "id2label": dict(enumerate(class_names)),
            "label2id": {name: i for i, name in enumerate(class_names)},
        })
    except ValueError as err:
        raise CLIError(f"invalid model config: {err}") from None


def build_model(config: SimpleViTConfig, pretrained=None, ignore_mismatched_sizes=False):
    """A SimpleViTForImageClassification: randomly initialised, or holding --model_name_or_path's weights."""
    if pretrained is None:
        return SimpleViTForImageClassification(config)
    return load_pretrained_model(pretrained, config, ignore_mismatched_sizes)
