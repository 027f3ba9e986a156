"""--model_name_or_path: start training from a checkpoint (SimpleViT, or transformers' ViT converted on the fly).

A SimpleViT folder or Hub id is loaded as it is. A `transformers` ViT checkpoint (ViTForImageClassification or
the bare ViTModel) is first converted by convert_vit_checkpoint.py into a temporary SimpleViT folder: the
converter refuses a conversion whose outputs differ from the original, so what trains is the checkpoint's function.

The checkpoint fixes the architecture (image size, patch size, widths) and, through its preprocessor_config.json
when it has one, the normalisation; the dataset fixes the labels. A classification head whose label count differs
from the dataset's is re-initialised with --ignore_mismatched_sizes, and refused without it.
"""

import copy
import json
import tempfile
from dataclasses import dataclass, field

import torch
from transformers import ViTImageProcessor
from transformers.utils import cached_file

from cli import CLIError, first_line
from configuration_simple_vit import SimpleViTConfig
from convert_vit_checkpoint import ConversionError, _quiet_transformers, convert_from_transformers
from modeling_simple_vit import SimpleViTForImageClassification


@dataclass
class Pretrained:
    """A checkpoint to start from, resolved to a SimpleViT folder (the original or its converted copy)."""

    name: str  # what --model_name_or_path said
    folder: str  # a SimpleViT checkpoint folder or Hub id that from_pretrained reads
    config: SimpleViTConfig  # the checkpoint's own config
    has_classifier: bool  # a SimpleViTForImageClassification (False: a bare encoder, the head starts fresh)
    processor: ViTImageProcessor | None  # its preprocessor_config.json, when it has one
    # Holds the converted copy of a transformers checkpoint; the folder is deleted when this object goes.
    _converted: tempfile.TemporaryDirectory | None = field(default=None, repr=False)

    @property
    def num_labels(self) -> int:
        return self.config.num_labels


def _optional_file(folder: str, name: str):
    """The local path of `name` in a folder or Hub repo, or None when it has none."""
    return cached_file(folder, name, _raise_exceptions_for_missing_entries=False,
                       _raise_exceptions_for_connection_errors=False)


def _read_config(name: str) -> dict:
    try:
        with open(cached_file(name, "config.json")) as f:
            return json.load(f)
    except (OSError, ValueError) as err:  # missing folder/file, invalid repo id (HFValidationError), bad JSON
        raise CLIError(f"--model_name_or_path {name}: no checkpoint there (no readable config.json in a folder "
                       f"of that name, nor a Hub model of that name: {first_line(err)})") from None


def open_pretrained(name: str | None) -> Pretrained | None:
    """Resolve --model_name_or_path (None: train from scratch); converts a transformers ViT checkpoint.
    Runs before any data is loaded, so a wrong path fails at once with one line."""
    if name is None:
        return None
    model_type = _read_config(name).get("model_type")
    converted = None
    folder = name
    if model_type == "vit":
        converted = tempfile.TemporaryDirectory(prefix="simple-vit-converted-")
        try:
            convert_from_transformers(name, converted.name)
        except (ConversionError, OSError) as err:
            raise CLIError(f"--model_name_or_path {name}: cannot convert this ViT checkpoint: {first_line(err)}") from None
        folder = converted.name
    elif model_type != "simple_vit":
        raise CLIError(f"--model_name_or_path {name}: model_type {model_type!r} is neither 'simple_vit' nor 'vit' "
                       "(a transformers ViTForImageClassification / ViTModel)")
    config_dict = _read_config(folder)
    try:
        config = SimpleViTConfig.from_dict(config_dict)
    except ValueError as err:
        raise CLIError(f"--model_name_or_path {name}: invalid SimpleViT config ({first_line(err)})") from None
    has_classifier = "SimpleViTModel" not in (config_dict.get("architectures") or [])
    processor = None
    if _optional_file(folder, "preprocessor_config.json") is not None:
        processor = ViTImageProcessor.from_pretrained(folder)
        size = processor.size
        if processor.do_resize and (size.get("height"), size.get("width")) != (config.image_size, config.image_size):
            raise CLIError(f"--model_name_or_path {name}: its preprocessor_config.json resizes to {dict(size)} but "
                           f"the model takes {config.image_size}x{config.image_size} images")
    return Pretrained(name, folder, config, has_classifier, processor, converted)


def pretrained_model_config(pretrained: Pretrained, class_names, ignore_mismatched_sizes: bool) -> SimpleViTConfig:
    """The checkpoint's config with the dataset's labels; a head of another size needs --ignore_mismatched_sizes."""
    if pretrained.has_classifier and pretrained.num_labels != len(class_names) and not ignore_mismatched_sizes:
        hidden = pretrained.config.hidden_size
        raise CLIError(f"--model_name_or_path {pretrained.name} has a {pretrained.num_labels}-class head "
                       f"(classifier.weight {pretrained.num_labels}x{hidden}) but the dataset has {len(class_names)} "
                       f"classes (classifier.weight {len(class_names)}x{hidden}); pass --ignore_mismatched_sizes "
                       "to train a new head")
    config = copy.deepcopy(pretrained.config)
    config.id2label = dict(enumerate(class_names))
    config.label2id = {name: i for i, name in enumerate(class_names)}
    return config


def load_pretrained_model(pretrained: Pretrained, config: SimpleViTConfig, ignore_mismatched_sizes: bool):
    """The checkpoint's weights in a SimpleViTForImageClassification of `config` (float32, for training); only
    the classifier may be left to initialise (a bare encoder's checkpoint, or a re-sized head)."""
    with _quiet_transformers():
        model, info = SimpleViTForImageClassification.from_pretrained(
            pretrained.folder, config=config, dtype=torch.float32, output_loading_info=True,
            ignore_mismatched_sizes=ignore_mismatched_sizes,
        )
    mismatched = [str(key[0] if isinstance(key, tuple) else key) for key in info["mismatched_keys"]]
    missing = sorted(key for key in info["missing_keys"] if not key.startswith("classifier."))
    missing += [key for key in mismatched if not key.startswith("classifier.")]
    if missing:
        raise CLIError(f"--model_name_or_path {pretrained.name} lacks or mis-sizes weights: {', '.join(missing)}")
    return model
