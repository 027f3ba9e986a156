"""Convert checkpoints between `transformers`' ViT and SimpleViT, in both directions.

SimpleViT computes exactly what `transformers.ViTForImageClassification` computes, and its config has the same
field names, so a conversion is mostly a renaming. The one real change is attention: ViT has separate query, key
and value projections, SimpleViT one fused projection whose output is [queries; keys; values] (concatenated along
the output dimension, in that order). Everything else keeps its name, except that SimpleViT's layers sit under
`encoder.`:

    transformers ViT                              SimpleViT
    vit.embeddings.*                              vit.embeddings.*            (cls token, positions, patch conv)
    vit.layers.N.attention.{q,k,v}_proj.*         vit.encoder.layers.N.attention.qkv_proj.*   (stacked q, k, v)
    vit.layers.N.attention.o_proj.*               vit.encoder.layers.N.attention.o_proj.*
    vit.layers.N.{layernorm_before,layernorm_after,mlp.fc1,mlp.fc2}.*   vit.encoder.layers.N.<same>.*
    vit.layernorm.*                               vit.layernorm.*
    classifier.*                                  classifier.*
    vit.pooler.* (ViTModel only)                  -- dropped: SimpleViT pools by taking the CLS state

A checkpoint of the bare `ViTModel` (no `vit.` prefix, no classifier) becomes a bare `SimpleViTModel` and back.

Command line (SRC is a folder written by `save_pretrained`, or a Hub model id when online):

    python convert_vit_checkpoint.py --from-transformers SRC DST   # transformers ViT -> SimpleViT
    python convert_vit_checkpoint.py --to-transformers SRC DST     # SimpleViT -> transformers ViT

DST is written with `save_pretrained` (model.safetensors + config.json; for SimpleViT also the two code files and
an `auto_map`, so `AutoModelForImageClassification.from_pretrained(DST, trust_remote_code=True)` works). A
`preprocessor_config.json` in SRC is copied across. After converting, both models are run on one random image and
the conversion is refused if their outputs disagree.
"""

import argparse
import contextlib
import logging
import os
import re
import shutil
import sys
from collections.abc import Mapping

import torch
import transformers
from huggingface_hub.errors import StrictDataclassError
from transformers import ViTConfig, ViTForImageClassification, ViTModel
from transformers.utils import cached_file

# The project's modules are imported as top-level modules (not `from .modeling_simple_vit`): this script lives
# beside them in the repository root and is run as a script, so there is no package to be relative to.
# Importing them this way also makes `save_pretrained` copy exactly these two files next to the weights.
from cli import OneLineArgumentParser
from configuration_simple_vit import SimpleViTConfig
from modeling_simple_vit import SimpleViTForImageClassification, SimpleViTModel


logger = logging.getLogger("convert_vit_checkpoint")

# Architecture fields that ViTConfig and SimpleViTConfig share, with the same names and meanings.
ARCHITECTURE_FIELDS = (
    "image_size",
    "patch_size",
    "num_channels",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "initializer_range",
    "layer_norm_eps",
    "qkv_bias",
)
# Task fields of every `transformers` config that must survive the trip (the class names and the loss type).
TASK_FIELDS = ("id2label", "label2id", "problem_type")

# Parameters outside the layers: same name on both sides (the base model's, i.e. without the `vit.` prefix).
BASE_KEYS = (
    "embeddings.cls_token",
    "embeddings.position_embeddings",
    "embeddings.patch_embeddings.projection.weight",
    "embeddings.patch_embeddings.projection.bias",
    "layernorm.weight",
    "layernorm.bias",
)
# Parameters of each layer that keep their name; only the layer prefix changes (`layers.N.` <-> `encoder.layers.N.`).
LAYER_KEYS = (
    "layernorm_before.weight",
    "layernorm_before.bias",
    "attention.o_proj.weight",
    "attention.o_proj.bias",
    "layernorm_after.weight",
    "layernorm_after.bias",
    "mlp.fc1.weight",
    "mlp.fc1.bias",
    "mlp.fc2.weight",
    "mlp.fc2.bias",
)
HEAD_KEYS = ("classifier.weight", "classifier.bias")
# ViT weights SimpleViT has no use for: the optional pooler (Linear + tanh on the CLS state, unused by
# ViTForImageClassification), the mask token and the decoder of ViTForMaskedImageModeling.
DROPPABLE_PREFIXES = ("pooler.", "embeddings.mask_token", "decoder.")

VIT_QKV = re.compile(r"layers\.(\d+)\.attention\.([qkv])_proj\.(weight|bias)")
VIT_LAYER = re.compile(r"layers\.(\d+)\.(.+)")
SIMPLE_QKV = re.compile(r"encoder\.layers\.(\d+)\.attention\.qkv_proj\.(weight|bias)")
SIMPLE_LAYER = re.compile(r"encoder\.layers\.(\d+)\.(.+)")
# transformers v4 named ViT's layers differently, and v5 still *writes* those names to disk (renaming them on load):
# a state dict read straight from a model.safetensors has them. Applied in this order, to the part after `vit.`.
LEGACY_VIT_RENAMES = (
    (re.compile(r"^encoder\.layer\.(\d+)\."), r"layers.\1."),
    (re.compile(r"\.attention\.attention\.query\."), ".attention.q_proj."),
    (re.compile(r"\.attention\.attention\.key\."), ".attention.k_proj."),
    (re.compile(r"\.attention\.attention\.value\."), ".attention.v_proj."),
    (re.compile(r"\.attention\.output\.dense\."), ".attention.o_proj."),
    (re.compile(r"\.intermediate\.dense\."), ".mlp.fc1."),
    (re.compile(r"\.output\.dense\."), ".mlp.fc2."),
)


class ConversionError(ValueError):
    """A checkpoint or config that cannot be converted; the message says why, in one line."""


# ----------------------------------------------------------------------------------------------------------------
# Configs
# ----------------------------------------------------------------------------------------------------------------


def _square_size(name: str, value) -> int:
    """ViT accepts (height, width) pairs for image and patch sizes; SimpleViT only squares, given as one int."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or value[0] != value[1]:
            raise ConversionError(f"SimpleViT supports square sizes only, but the ViT config has {name}={value!r}")
        value = value[0]
    return value


def vit_config_to_simple_vit(vit_config: ViTConfig) -> SimpleViTConfig:
    """The SimpleViTConfig describing the same model as a `transformers.ViTConfig`.

    The fields map one to one. `encoder_stride` (masked image modeling only) and `pooler_output_size` /
    `pooler_act` (the pooler is dropped) have no SimpleViT counterpart and are ignored. Raises ConversionError
    for what SimpleViT cannot represent: non-square image/patch sizes, a `head_dim` other than
    hidden_size / num_attention_heads, or any value SimpleViTConfig rejects.
    """
    if getattr(vit_config, "model_type", None) != "vit":
        model_type = getattr(vit_config, "model_type", None)
        raise ConversionError(f"expected a ViT config (model_type 'vit'), got {model_type!r}")
    fields = {name: getattr(vit_config, name) for name in ARCHITECTURE_FIELDS}
    fields["image_size"] = _square_size("image_size", fields["image_size"])
    fields["patch_size"] = _square_size("patch_size", fields["patch_size"])

    # ViTAttention reads an optional `head_dim`; SimpleViT always splits hidden_size evenly across the heads.
    head_dim = getattr(vit_config, "head_dim", None)
    if head_dim is not None and head_dim * fields["num_attention_heads"] != fields["hidden_size"]:
        raise ConversionError(
            "SimpleViT needs head_dim == hidden_size / num_attention_heads, but the ViT config has "
            f"head_dim={head_dim}, hidden_size={fields['hidden_size']}, "
            f"num_attention_heads={fields['num_attention_heads']}"
        )
    task = {name: getattr(vit_config, name, None) for name in TASK_FIELDS}
    try:
        return SimpleViTConfig(**fields, **task)
    except ValueError as error:  # SimpleViTConfig's own validation, e.g. an activation it does not know
        raise ConversionError(f"SimpleViT cannot represent this ViT config: {error}") from error


def simple_vit_config_to_vit(config: SimpleViTConfig) -> ViTConfig:
    """The `transformers.ViTConfig` describing the same model as a SimpleViTConfig.

    Every SimpleViT with the default CLS pooling and learned positions (and neither of the small-dataset options)
    is a ViT; `classifier_pooling="mean"` or `"sequence"`, `position_embedding_type="sincos"`,
    `shifted_patch_tokenization`, `convolutional_tokenization`, `locality_self_attention` and
    `final_layernorm=False` have no ViT counterpart.
    """
    if getattr(config, "model_type", None) != "simple_vit":
        raise ConversionError(
            f"expected a SimpleViT config (model_type 'simple_vit'), got {getattr(config, 'model_type', None)!r}"
        )
    if getattr(config, "classifier_pooling", "cls") != "cls":
        raise ConversionError(
            f"transformers' ViT classifies the CLS token; this model has classifier_pooling="
            f"{config.classifier_pooling!r}, which it cannot represent"
        )
    if getattr(config, "position_embedding_type", "learned") != "learned":
        raise ConversionError(
            f"transformers' ViT learns its position embeddings; this model has position_embedding_type="
            f"{config.position_embedding_type!r}, which it cannot represent"
        )
    for option in ("shifted_patch_tokenization", "convolutional_tokenization", "locality_self_attention"):
        if getattr(config, option, False):
            raise ConversionError(f"transformers' ViT has no {option}; this model has {option}=True")
    if not getattr(config, "final_layernorm", True):
        raise ConversionError(
            "transformers' ViT layer-normalises the encoder's output before the classifier; this model has "
            "final_layernorm=False (the tutorial's architecture), which it cannot represent"
        )
    fields = {name: getattr(config, name) for name in ARCHITECTURE_FIELDS}
    task = {name: getattr(config, name, None) for name in TASK_FIELDS}
    return ViTConfig(**fields, **task)


# ----------------------------------------------------------------------------------------------------------------
# State dicts
# ----------------------------------------------------------------------------------------------------------------


def _split_prefix(key: str) -> tuple[str, str]:
    """("vit.", rest) for a key of the classifier's base model, ("", key) for everything else."""
    return ("vit.", key[len("vit.") :]) if key.startswith("vit.") else ("", key)


def _check_layer_indices(found: set[int], num_layers: int) -> None:
    if found != set(range(num_layers)):
        raise ConversionError(
            f"the state dict has layers {sorted(found)}, but the config has num_hidden_layers={num_layers}"
        )


def vit_state_dict_to_simple_vit(state_dict: Mapping[str, torch.Tensor], config) -> dict[str, torch.Tensor]:
    """Rename (and fuse the q/k/v projections of) a `transformers` ViT state dict for SimpleViT.

    `state_dict` is that of a ViTForImageClassification (keys `vit.…` and `classifier.…`) or of a bare ViTModel
    (no prefix); the result has the matching SimpleViT keys. Both the in-memory names of transformers v5
    (`layers.N.attention.q_proj`) and the legacy ones found in files (`encoder.layer.N.attention.attention.query`)
    are understood.
    `config` (a ViTConfig or SimpleViTConfig) gives the number of layers. Pooler, mask-token and decoder weights
    are dropped with a warning; any other key SimpleViT does not know raises ConversionError.
    """
    converted, dropped, unknown = {}, [], []
    qkv_parts: dict[tuple[str, int, str], dict[str, torch.Tensor]] = {}  # (prefix, layer, weight|bias) -> q/k/v
    layers_seen = set()
    for key, tensor in state_dict.items():
        prefix, name = _split_prefix(key)
        if name.startswith("encoder.layer."):
            for pattern, replacement in LEGACY_VIT_RENAMES:
                name = pattern.sub(replacement, name)
        if name.startswith(DROPPABLE_PREFIXES):
            dropped.append(key)
        elif match := VIT_QKV.fullmatch(name):
            layer, which, kind = int(match[1]), match[2], match[3]
            qkv_parts.setdefault((prefix, layer, kind), {})[which] = tensor
            layers_seen.add(layer)
        elif (match := VIT_LAYER.fullmatch(name)) and match[2] in LAYER_KEYS:
            converted[f"{prefix}encoder.layers.{match[1]}.{match[2]}"] = tensor
            layers_seen.add(int(match[1]))
        elif name in BASE_KEYS or (prefix == "" and name in HEAD_KEYS):
            converted[key] = tensor
        else:
            unknown.append(key)
    if unknown:
        unknown = ", ".join(sorted(unknown))
        raise ConversionError(f"not a ViT state dict SimpleViT can represent; unknown keys: {unknown}")
    if dropped:
        logger.warning("Dropping ViT weights SimpleViT does not use: %s", ", ".join(sorted(dropped)))
    _check_layer_indices(layers_seen, config.num_hidden_layers)

    # The fused projection computes [q; k; v] = [W_q; W_k; W_v] x + [b_q; b_k; b_v]: stack along the output dim.
    for (prefix, layer, kind), parts in sorted(qkv_parts.items()):
        if set(parts) != {"q", "k", "v"}:
            raise ConversionError(f"layer {layer} has {kind}s for only {sorted(parts)} of the q/k/v projections")
        fused_key = f"{prefix}encoder.layers.{layer}.attention.qkv_proj.{kind}"
        converted[fused_key] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
    return converted


def simple_vit_state_dict_to_vit(state_dict: Mapping[str, torch.Tensor], config) -> dict[str, torch.Tensor]:
    """The inverse of `vit_state_dict_to_simple_vit`: SimpleViT keys to `transformers` ViT (v5) keys.

    The fused qkv projection is cut back into three equal parts along the output dimension (q, k, v in that
    order). Works for SimpleViTForImageClassification (`vit.…`, `classifier.…`) and bare SimpleViTModel keys.
    """
    converted, unknown = {}, []
    layers_seen = set()
    for key, tensor in state_dict.items():
        prefix, name = _split_prefix(key)
        if match := SIMPLE_QKV.fullmatch(name):
            layer, kind = match[1], match[2]
            # .clone(): chunk() returns views of one storage, which safetensors refuses to save as separate tensors.
            for which, part in zip("qkv", tensor.chunk(3, dim=0)):
                converted[f"{prefix}layers.{layer}.attention.{which}_proj.{kind}"] = part.clone()
            layers_seen.add(int(layer))
        elif (match := SIMPLE_LAYER.fullmatch(name)) and match[2] in LAYER_KEYS:
            converted[f"{prefix}layers.{match[1]}.{match[2]}"] = tensor
            layers_seen.add(int(match[1]))
        elif name in BASE_KEYS or (prefix == "" and name in HEAD_KEYS):
            converted[key] = tensor
        else:
            unknown.append(key)
    if unknown:
        raise ConversionError(f"not a SimpleViT state dict; unknown keys: {', '.join(sorted(unknown))}")
    _check_layer_indices(layers_seen, config.num_hidden_layers)
    return converted


# ----------------------------------------------------------------------------------------------------------------
# Whole checkpoints (folders or Hub ids)
# ----------------------------------------------------------------------------------------------------------------


def _one_line(text) -> str:
    return " ".join(str(text).split())


def _read_config_dict(src: str, expected_model_type: str, what: str) -> dict:
    """SRC's config.json as a dict, with a clear error when SRC is missing or holds another kind of model."""
    if os.path.isfile(src):
        raise ConversionError(f"{src} is a file; expected a checkpoint folder written by save_pretrained (or a Hub id)")
    if not os.path.isdir(src) and (os.path.isabs(src) or src.startswith((".", "~")) or src.count("/") > 1):
        raise ConversionError(f"{src}: no such folder")
    try:
        # Finds config.json in a local folder, or downloads it when SRC is a Hub id.
        config_dict, _ = transformers.PretrainedConfig.get_config_dict(cached_file(src, "config.json"))
    except (OSError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if os.path.isdir(src):
            raise ConversionError(f"{src} has no readable config.json ({reason})") from error
        message = f"{src}: no such folder, and no Hub model of that name could be fetched ({reason})"
        raise ConversionError(message) from error
    model_type = config_dict.get("model_type")
    if model_type != expected_model_type:
        raise ConversionError(
            f"{src} is not a {what} checkpoint: its config has model_type {model_type!r}, "
            f"expected {expected_model_type!r}"
        )
    return config_dict


@contextlib.contextmanager
def _quiet_transformers():
    """Silence transformers' own load report and progress bars; the converter reports what matters itself."""
    verbosity = transformers.utils.logging.get_verbosity()
    bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers.utils.logging.set_verbosity(verbosity)
        if bars:
            transformers.utils.logging.enable_progress_bar()


def _load_source(model_class, src: str, **kwargs):
    """`model_class.from_pretrained(src)`, refusing a checkpoint that leaves any weight uninitialised."""
    with _quiet_transformers():
        # dtype="auto": keep the checkpoint's dtype rather than upcasting a half-precision model to float32.
        model, info = model_class.from_pretrained(src, dtype="auto", output_loading_info=True, **kwargs)
    problems = sorted(info["missing_keys"]) + [str(key) for key in info["mismatched_keys"]]
    if problems:
        raise ConversionError(f"{src} lacks or mis-sizes weights of {model_class.__name__}: {', '.join(problems)}")
    if info["unexpected_keys"]:
        unused = ", ".join(sorted(info["unexpected_keys"]))
        logger.warning("Dropping weights the converted model has no place for: %s", unused)
    return model.eval()


def _build(model_class, config, state_dict: dict[str, torch.Tensor], dtype: torch.dtype, **kwargs):
    """An instance of `model_class(config, **kwargs)` holding exactly `state_dict` (every key, nothing random),
    in `dtype` (the source's: a bfloat16 checkpoint stays bfloat16)."""
    model = model_class(config, **kwargs)
    try:
        model.load_state_dict(state_dict, strict=True)  # strict: a missing key would stay randomly initialised
    except RuntimeError as error:  # missing/unexpected keys or wrong shapes
        raise ConversionError(f"weights do not fit {model_class.__name__}: {_one_line(error)}") from error
    return model.to(dtype).eval()


@torch.no_grad()
def max_output_difference(model_a, model_b, config) -> float:
    """Largest absolute difference between the two models' outputs (logits, or last hidden states for bare models)
    on one random image; `config` gives the image shape. Used to refuse a conversion that changed the function."""
    generator = torch.Generator().manual_seed(0)
    dtype = next(model_a.parameters()).dtype
    pixels = torch.randn(1, config.num_channels, config.image_size, config.image_size, generator=generator).to(dtype)
    out_a, out_b = model_a(pixel_values=pixels), model_b(pixel_values=pixels)
    name = "logits" if "logits" in out_a else "last_hidden_state"
    return (out_a[name].float() - out_b[name].float()).abs().max().item()


def _check_same_function(source, target, config) -> float:
    difference = max_output_difference(source, target, config)
    # fp32 conversions agree to ~1e-6; half precision (different op order, SDPA vs explicit) to ~1e-2.
    tolerance = 1e-4 if next(source.parameters()).dtype == torch.float32 else 1e-1
    if not difference <= tolerance:  # also catches NaN
        raise ConversionError(f"converted model disagrees with the original (max abs difference {difference:.3g})")
    return difference


def _prepare_destination(src: str, dst: str) -> None:
    if os.path.isfile(dst):
        raise ConversionError(f"{dst} is a file; DST must be a folder (it is created if missing)")
    if os.path.isdir(src) and os.path.isdir(dst) and os.path.samefile(src, dst):
        raise ConversionError("DST must differ from SRC (converting in place would overwrite the original)")
    os.makedirs(dst, exist_ok=True)


def _copy_preprocessor_config(src: str, dst: str) -> bool:
    """Copy SRC's preprocessor_config.json (if any) to DST: the model's inputs do not change with its code, and
    that file is what lets `AutoImageProcessor` and the image-classification pipeline load DST."""
    path = cached_file(
        src,
        "preprocessor_config.json",
        _raise_exceptions_for_missing_entries=False,
        _raise_exceptions_for_connection_errors=False,
    )
    if path is None:
        return False
    shutil.copyfile(path, os.path.join(dst, "preprocessor_config.json"))
    return True


def _check_and_save(source, target, config, src: str, dst: str) -> None:
    """Refuse a conversion that changed the model's outputs; then write DST (weights, config, preprocessor)."""
    difference = _check_same_function(source, target, config)
    with _quiet_transformers():
        target.save_pretrained(dst)
    copied = _copy_preprocessor_config(src, dst)
    logger.info(
        "Converted %s (%s) to %s at %s; max abs output difference %.2g%s",
        src, type(source).__name__, type(target).__name__, dst, difference,
        "; copied preprocessor_config.json" if copied else "",
    )  # fmt: skip


def convert_from_transformers(src: str, dst: str) -> SimpleViTModel | SimpleViTForImageClassification:
    """Convert a `transformers` ViT checkpoint (folder or Hub id) into a SimpleViT folder at `dst`.

    A ViTForImageClassification becomes a SimpleViTForImageClassification; any other ViT checkpoint (ViTModel,
    ViTForMaskedImageModeling) a bare SimpleViTModel, its pooler/decoder weights dropped with a warning.
    Returns the converted model.
    """
    config_dict = _read_config_dict(src, "vit", "transformers ViT")
    try:
        vit_config = ViTConfig.from_dict(config_dict)
    except (TypeError, ValueError, StrictDataclassError) as error:  # ViTConfig type-checks its fields
        raise ConversionError(f"{src}: invalid ViT config ({_one_line(error)})") from error
    config = vit_config_to_simple_vit(vit_config)
    _prepare_destination(src, dst)

    if "ViTForImageClassification" in (config_dict.get("architectures") or []):
        source = _load_source(ViTForImageClassification, src)
        target_class = SimpleViTForImageClassification
    else:
        # Loaded without the pooler: its weights, if present, are reported as unused and dropped.
        source = _load_source(ViTModel, src, add_pooling_layer=False)
        target_class = SimpleViTModel
    state_dict = vit_state_dict_to_simple_vit(source.state_dict(), config)
    target = _build(target_class, config, state_dict, source.dtype)

    _check_and_save(source, target, config, src, dst)
    return target


def convert_to_transformers(src: str, dst: str) -> ViTModel | ViTForImageClassification:
    """Convert a SimpleViT folder (or Hub id) into a `transformers` ViT folder at `dst`.

    A SimpleViTForImageClassification becomes a ViTForImageClassification, a bare SimpleViTModel a ViTModel
    (without the pooler, which SimpleViT does not have: `ViTModel.from_pretrained(dst)` initialises one at
    random, as for any ViT checkpoint saved without it). Returns the converted model.
    """
    config_dict = _read_config_dict(src, "simple_vit", "SimpleViT")
    try:
        config = SimpleViTConfig.from_dict(config_dict)
    except (TypeError, ValueError) as error:
        raise ConversionError(f"{src}: invalid SimpleViT config ({_one_line(error)})") from error
    vit_config = simple_vit_config_to_vit(config)
    _prepare_destination(src, dst)

    if "SimpleViTModel" in (config_dict.get("architectures") or []):
        source, target_class = _load_source(SimpleViTModel, src), ViTModel
    else:
        source, target_class = _load_source(SimpleViTForImageClassification, src), ViTForImageClassification
    state_dict = simple_vit_state_dict_to_vit(source.state_dict(), config)
    extra = {"add_pooling_layer": False} if target_class is ViTModel else {}
    target = _build(target_class, vit_config, state_dict, source.dtype, **extra)

    _check_and_save(source, target, config, src, dst)
    return target


# ----------------------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(
        prog="convert_vit_checkpoint.py",
        description="Convert a checkpoint between transformers' ViT and SimpleViT (both directions).",
    )
    direction = parser.add_mutually_exclusive_group(required=True)
    direction.add_argument(
        "--from-transformers", action="store_true", help="SRC is a transformers ViT checkpoint; write SimpleViT."
    )
    direction.add_argument(
        "--to-transformers", action="store_true", help="SRC is a SimpleViT checkpoint; write transformers ViT."
    )
    parser.add_argument("src", metavar="SRC", help="checkpoint folder written by save_pretrained, or a Hub model id")
    parser.add_argument("dst", metavar="DST", help="output folder (created if missing)")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    convert = convert_from_transformers if args.from_transformers else convert_to_transformers
    try:
        convert(args.src, args.dst)
    except (ConversionError, OSError) as error:  # the user's input, not a bug: one line, no traceback
        parser.exit(1, f"{parser.prog}: error: {_one_line(error)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
