"""convert_vit_checkpoint: SimpleViT on converted weights computes what transformers' ViT computes (to 1e-5 in
fp32), conversions invert each other, configs map field for field, and the CLI converts folders on disk and
fails cleanly on misuse."""

import copy
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor, ViTModel

import convert_vit_checkpoint as convert
from configuration_simple_vit import SimpleViTConfig
from modeling_simple_vit import SimpleViTForImageClassification, SimpleViTModel
from model_configs import ARCHITECTURE_FIELDS, CONFIGS, DEFAULT, ODD


ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "convert_vit_checkpoint.py"
ATOL = 1e-5  # fp32 agreement required between SimpleViT and ViT


def randomize_(model, seed=0, scale=0.1):
    """Give every parameter random values (LayerNorm gains around 1, everything else around 0), so that no
    parameter can be mis-mapped without changing the outputs."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator) * scale
            is_gain = ".layernorm" in f".{name}" and name.endswith(".weight")
            parameter.copy_(noise + 1.0 if is_gain else noise)
    return model


def random_vit(kwargs, seed=0, model_class=ViTForImageClassification, **model_kwargs):
    torch.manual_seed(seed)
    model = model_class._from_config(ViTConfig(**kwargs), attn_implementation="eager", **model_kwargs)
    return randomize_(model, seed).eval()


def to_simple_vit(vit, model_class=SimpleViTForImageClassification):
    """Convert an in-memory ViT with the library functions; eager attention so attention maps can be compared."""
    config = convert.vit_config_to_simple_vit(vit.config)
    model = model_class._from_config(config, attn_implementation="eager")
    model.load_state_dict(convert.vit_state_dict_to_simple_vit(vit.state_dict(), config), strict=True)
    return model.eval()


def pixels(kwargs, batch=3, height=None, width=None, seed=1):
    height = height or kwargs["image_size"]
    width = width or height
    return torch.randn(batch, 3, height, width, generator=torch.Generator().manual_seed(seed))


def max_diff(a, b) -> float:
    return (a - b).abs().max().item()


# ------------------------------------------------------------------------------------------------------------------
# Numerical parity on converted weights
# ------------------------------------------------------------------------------------------------------------------


@CONFIGS
def test_converted_weights_reproduce_vit(kwargs):
    vit = random_vit(kwargs)
    simple = to_simple_vit(vit)
    x = pixels(kwargs)
    labels = torch.arange(3) % kwargs["num_labels"]
    with torch.no_grad():
        theirs = vit(x, labels=labels, output_hidden_states=True, output_attentions=True)
        ours = simple(x, labels=labels, output_hidden_states=True, output_attentions=True)
        their_last, our_last = vit.vit(x).last_hidden_state, simple.vit(x).last_hidden_state

    assert max_diff(ours.logits, theirs.logits) <= ATOL
    assert max_diff(ours.loss, theirs.loss) <= ATOL
    assert max_diff(our_last, their_last) <= ATOL
    assert len(ours.hidden_states) == len(theirs.hidden_states) == kwargs["num_hidden_layers"] + 1
    for ours_h, theirs_h in zip(ours.hidden_states, theirs.hidden_states):
        assert max_diff(ours_h, theirs_h) <= ATOL
    assert len(ours.attentions) == len(theirs.attentions) == kwargs["num_hidden_layers"]
    for ours_a, theirs_a in zip(ours.attentions, theirs.attentions):
        assert max_diff(ours_a, theirs_a) <= ATOL
    # The comparison means something: the maps are far from uniform and the outputs far from constant.
    seq_len = theirs.attentions[0].shape[-1]
    assert all(a.max() > 2 / seq_len for a in theirs.attentions)
    assert theirs.logits.std() > 0.1


@CONFIGS
@pytest.mark.parametrize("grow", [(2, 2), (2, 1)], ids=["square", "non-square"])
def test_interpolated_positions_match_vit(kwargs, grow):
    vit = random_vit(kwargs)
    simple = to_simple_vit(vit)
    patch = kwargs["patch_size"]
    height, width = kwargs["image_size"] + grow[0] * patch, kwargs["image_size"] + grow[1] * patch
    x = pixels(kwargs, batch=2, height=height, width=width)
    with torch.no_grad():
        theirs = vit(x, interpolate_pos_encoding=True, output_hidden_states=True)
        ours = simple(x, interpolate_pos_encoding=True, output_hidden_states=True)
        unresized = simple(pixels(kwargs, batch=2)).logits
    assert max_diff(ours.logits, theirs.logits) <= ATOL
    for ours_h, theirs_h in zip(ours.hidden_states, theirs.hidden_states):
        assert max_diff(ours_h, theirs_h) <= ATOL
    assert ours.hidden_states[0].shape[1] == (height // patch) * (width // patch) + 1
    assert max_diff(ours.logits, unresized) > 1e-3


@CONFIGS
def test_reverse_conversion_restores_vit(kwargs):
    vit = random_vit(kwargs)
    simple = to_simple_vit(vit)
    back_config = convert.simple_vit_config_to_vit(simple.config)
    back_state = convert.simple_vit_state_dict_to_vit(simple.state_dict(), simple.config)
    original = vit.state_dict()
    assert back_state.keys() == original.keys()
    for key in original:
        assert torch.equal(back_state[key], original[key]), key

    back = ViTForImageClassification._from_config(back_config, attn_implementation="eager").eval()
    back.load_state_dict(back_state, strict=True)
    x = pixels(kwargs)
    with torch.no_grad():
        assert max_diff(back(x).logits, vit(x).logits) <= 1e-6


def test_qkv_is_fused_in_q_k_v_order():
    vit = random_vit(dict(ODD, qkv_bias=True))
    fused = convert.vit_state_dict_to_simple_vit(vit.state_dict(), vit.config)
    attention = vit.vit.layers[1].attention
    for kind in ("weight", "bias"):
        expected = torch.cat([getattr(getattr(attention, f"{w}_proj"), kind) for w in "qkv"])
        assert torch.equal(fused[f"vit.encoder.layers.1.attention.qkv_proj.{kind}"], expected)


def test_state_dicts_read_from_files_use_legacy_names_and_convert_too(vit_folder):
    # transformers v5 writes ViT's v4 names (encoder.layer.N.attention.attention.query...) to disk.
    from_file = load_file(vit_folder / "model.safetensors")
    assert any(".attention.attention.query." in key for key in from_file)
    vit = ViTForImageClassification.from_pretrained(vit_folder)
    expected = convert.vit_state_dict_to_simple_vit(vit.state_dict(), vit.config)
    converted = convert.vit_state_dict_to_simple_vit(from_file, vit.config)
    assert converted.keys() == expected.keys()
    for key in expected:
        assert torch.equal(converted[key], expected[key]), key


def test_bare_vit_model_drops_the_pooler_with_a_warning(caplog):
    vit = random_vit(ODD, model_class=ViTModel)  # ViTModel has a pooler by default
    assert any(key.startswith("pooler.") for key in vit.state_dict())
    config = convert.vit_config_to_simple_vit(vit.config)
    with caplog.at_level(logging.WARNING, logger="convert_vit_checkpoint"):
        state = convert.vit_state_dict_to_simple_vit(vit.state_dict(), config)
    assert "pooler" in caplog.text
    simple = SimpleViTModel._from_config(config, attn_implementation="eager").eval()
    simple.load_state_dict(state, strict=True)
    x = pixels(ODD)
    with torch.no_grad():
        assert max_diff(simple(x).last_hidden_state, vit(x).last_hidden_state) <= ATOL


def test_unknown_or_incomplete_state_dicts_are_rejected():
    vit = random_vit(ODD)
    state = vit.state_dict()
    with pytest.raises(convert.ConversionError, match="vit.extra.weight"):
        convert.vit_state_dict_to_simple_vit({**state, "vit.extra.weight": torch.zeros(1)}, vit.config)
    without_k = {k: v for k, v in state.items() if k != "vit.layers.2.attention.k_proj.weight"}
    with pytest.raises(convert.ConversionError, match="layer 2"):
        convert.vit_state_dict_to_simple_vit(without_k, vit.config)
    fewer_layers = copy.deepcopy(vit.config)
    fewer_layers.num_hidden_layers = 2
    with pytest.raises(convert.ConversionError, match="num_hidden_layers"):
        convert.vit_state_dict_to_simple_vit(state, fewer_layers)
    with pytest.raises(convert.ConversionError, match="unknown keys"):
        convert.simple_vit_state_dict_to_vit(state, vit.config)  # a ViT state dict is not a SimpleViT one


# ------------------------------------------------------------------------------------------------------------------
# Configs
# ------------------------------------------------------------------------------------------------------------------

MAPPED_FIELDS = ARCHITECTURE_FIELDS + ("hidden_dropout_prob", "attention_probs_dropout_prob", "initializer_range")


def test_config_fields_and_labels_map_both_ways():
    labels = {0: "cat", 1: "dog", 2: "ship"}
    vit_config = ViTConfig(
        **dict(ODD, num_labels=3),
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.2,
        initializer_range=0.05,
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
        problem_type="single_label_classification",
    )
    simple = convert.vit_config_to_simple_vit(vit_config)
    assert isinstance(simple, SimpleViTConfig)
    back = convert.simple_vit_config_to_vit(simple)
    assert isinstance(back, ViTConfig)
    for field in MAPPED_FIELDS:
        assert getattr(simple, field) == getattr(vit_config, field) == getattr(back, field), field
    for config in (simple, back):
        assert config.id2label == labels
        assert config.label2id == {"cat": 0, "dog": 1, "ship": 2}
        assert config.problem_type == "single_label_classification"


def test_square_tuple_sizes_are_accepted():
    simple = convert.vit_config_to_simple_vit(ViTConfig(**dict(ODD, image_size=(30, 30), patch_size=[5, 5])))
    assert (simple.image_size, simple.patch_size) == (30, 5)


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"image_size": (30, 20)}, "image_size"),
        ({"patch_size": (5, 10)}, "patch_size"),
        ({"head_dim": 4}, "head_dim"),
        ({"hidden_act": "not_an_activation"}, "hidden_act"),
        ({"image_size": 32}, "patch_size"),  # patch 5 does not divide 32
    ],
)
def test_unrepresentable_vit_configs_are_rejected(overrides, field):
    vit_config = ViTConfig(**{**ODD, **overrides})
    with pytest.raises(convert.ConversionError, match=field):
        convert.vit_config_to_simple_vit(vit_config)


@pytest.mark.parametrize("pooling", ["mean", "sequence"])
def test_patch_pooling_models_do_not_convert_to_vit(pooling):
    # ViT's classifier reads the CLS token, so a model that pools the patch tokens has no ViT equivalent: refuse,
    # do not silently write a model that computes something else.
    with pytest.raises(convert.ConversionError, match=f"classifier_pooling='{pooling}'"):
        convert.simple_vit_config_to_vit(SimpleViTConfig(**ODD, classifier_pooling=pooling))
    assert convert.simple_vit_config_to_vit(SimpleViTConfig(**ODD, classifier_pooling="cls")).model_type == "vit"


def test_sincos_position_models_do_not_convert_to_vit():
    with pytest.raises(convert.ConversionError, match="position_embedding_type='sincos'"):
        convert.simple_vit_config_to_vit(SimpleViTConfig(**ODD, position_embedding_type="sincos"))


@pytest.mark.parametrize("option", ["shifted_patch_tokenization", "locality_self_attention"])
def test_small_dataset_option_models_do_not_convert_to_vit(option):
    with pytest.raises(convert.ConversionError, match=f"{option}=True"):
        convert.simple_vit_config_to_vit(SimpleViTConfig(**ODD, **{option: True}))


def test_convolutional_tokenization_models_do_not_convert_to_vit():
    config = SimpleViTConfig(**{**ODD, "image_size": 24, "patch_size": 4}, convolutional_tokenization=True)
    with pytest.raises(convert.ConversionError, match="convolutional_tokenization=True"):
        convert.simple_vit_config_to_vit(config)


def test_config_model_types_are_checked():
    with pytest.raises(convert.ConversionError, match="simple_vit"):
        convert.simple_vit_config_to_vit(ViTConfig(**ODD))
    with pytest.raises(convert.ConversionError, match="vit"):
        convert.vit_config_to_simple_vit(SimpleViTConfig(**ODD))


# ------------------------------------------------------------------------------------------------------------------
# Folders on disk: the functions and the command line
# ------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vit_folder(tmp_path_factory):
    """A random ViT classifier saved by transformers, with custom labels and a preprocessor config."""
    folder = tmp_path_factory.mktemp("vit")
    labels = {i: f"label_{i}" for i in range(7)}
    vit = random_vit(dict(ODD, id2label=labels, label2id={v: k for k, v in labels.items()}), seed=3)
    vit.save_pretrained(folder)
    ViTImageProcessor(size={"height": 30, "width": 30}, image_mean=[0.4, 0.5, 0.6]).save_pretrained(folder)
    return folder


def run_cli(*args, cwd=None):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        cwd=cwd or ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_cli_converts_both_ways_on_disk(vit_folder, tmp_path):
    simple_dir, back_dir = tmp_path / "simple", tmp_path / "back"
    x = pixels(ODD)
    vit = ViTForImageClassification.from_pretrained(vit_folder, attn_implementation="eager").eval()

    result = run_cli("--from-transformers", vit_folder, simple_dir, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    files = set(os.listdir(simple_dir))
    assert {"model.safetensors", "config.json", "modeling_simple_vit.py", "configuration_simple_vit.py"} <= files
    assert not any(name.endswith(".bin") for name in files)
    saved = json.loads((simple_dir / "config.json").read_text())
    assert saved["model_type"] == "simple_vit"
    assert {"AutoConfig", "AutoModel", "AutoModelForImageClassification"} <= set(saved["auto_map"])
    processor = (vit_folder / "preprocessor_config.json").read_text()
    assert (simple_dir / "preprocessor_config.json").read_text() == processor

    simple = SimpleViTForImageClassification.from_pretrained(simple_dir, attn_implementation="eager").eval()
    assert simple.config.id2label[6] == "label_6" and simple.config.layer_norm_eps == 1e-6
    with torch.no_grad():
        assert max_diff(simple(x).logits, vit(x).logits) <= ATOL

    result = run_cli("--to-transformers", simple_dir, back_dir, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (back_dir / "preprocessor_config.json").read_text() == processor
    back = ViTForImageClassification.from_pretrained(back_dir, attn_implementation="eager").eval()
    assert back.config.id2label[6] == "label_6" and back.config.qkv_bias is False
    with torch.no_grad():
        assert max_diff(back(x).logits, vit(x).logits) <= 1e-6


def test_bare_vit_model_folder_converts_to_simple_vit_model_and_back(tmp_path):
    vit = random_vit(ODD, model_class=ViTModel)  # with a pooler
    vit.save_pretrained(tmp_path / "vit")
    model = convert.convert_from_transformers(str(tmp_path / "vit"), str(tmp_path / "simple"))
    assert isinstance(model, SimpleViTModel)
    assert json.loads((tmp_path / "simple" / "config.json").read_text())["architectures"] == ["SimpleViTModel"]
    assert not (tmp_path / "simple" / "preprocessor_config.json").exists()

    simple = SimpleViTModel.from_pretrained(tmp_path / "simple", attn_implementation="eager").eval()
    back = convert.convert_to_transformers(str(tmp_path / "simple"), str(tmp_path / "back"))
    assert isinstance(back, ViTModel) and back.pooler is None
    reloaded = ViTModel.from_pretrained(tmp_path / "back", attn_implementation="eager", add_pooling_layer=False)
    x = pixels(ODD)
    with torch.no_grad():
        expected = vit(x).last_hidden_state
        assert max_diff(simple(x).last_hidden_state, expected) <= ATOL
        assert max_diff(reloaded.eval()(x).last_hidden_state, expected) <= ATOL


def _misuse(tmp_path, vit_folder):
    not_vit = tmp_path / "bert"
    not_vit.mkdir()
    (not_vit / "config.json").write_text(json.dumps({"model_type": "bert"}))
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    return {
        "no arguments": ([], "required"),
        "no direction": ([str(vit_folder), str(out)], "required"),
        "no DST": (["--from-transformers", str(vit_folder)], "DST"),
        "both directions": (["--from-transformers", "--to-transformers", str(vit_folder), str(out)], "not allowed"),
        "missing SRC": (["--from-transformers", str(tmp_path / "nowhere"), str(out)], "no such folder"),
        "not a ViT": (["--from-transformers", str(not_vit), str(out)], "model_type 'bert'"),
        "no config.json": (["--from-transformers", str(empty), str(out)], "config.json"),
        "ViT given as SimpleViT": (["--to-transformers", str(vit_folder), str(out)], "not a SimpleViT"),
        "SRC is a file": (["--from-transformers", str(vit_folder / "config.json"), str(out)], "is a file"),
    }


@pytest.mark.parametrize(
    "case",
    ["no arguments", "no direction", "no DST", "both directions", "missing SRC", "not a ViT", "no config.json",
     "ViT given as SimpleViT", "SRC is a file"],
)  # fmt: skip
def test_cli_misuse_is_one_line_on_stderr(case, vit_folder, tmp_path, capsys):
    argv, expected = _misuse(tmp_path, vit_folder)[case]
    with pytest.raises(SystemExit) as exit_info:
        convert.main(argv)
    assert exit_info.value.code not in (0, None)
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert expected in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_cli_misuse_in_a_real_process(tmp_path):
    result = run_cli("--from-transformers", tmp_path / "nowhere", tmp_path / "out")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "no such folder" in result.stderr


def test_half_precision_checkpoints_keep_their_dtype(tmp_path):
    vit = random_vit(ODD).to(torch.bfloat16)
    vit.save_pretrained(tmp_path / "vit")
    simple = convert.convert_from_transformers(str(tmp_path / "vit"), str(tmp_path / "simple"))
    assert simple.dtype == torch.bfloat16
    stored = load_file(tmp_path / "simple" / "model.safetensors")
    assert {tensor.dtype for tensor in stored.values()} == {torch.bfloat16}
    convert.convert_to_transformers(str(tmp_path / "simple"), str(tmp_path / "back"))
    # (transformers v5 saves ViT under its legacy key names; from_pretrained renames them back.)
    back = ViTForImageClassification.from_pretrained(tmp_path / "back", dtype="auto")
    assert back.dtype == torch.bfloat16
    original = vit.state_dict()
    for key, tensor in back.state_dict().items():
        assert torch.equal(tensor, original[key]), key
