"""SimpleViTConfig: the tutorial defaults, validation of every field, and a faithful save/load round trip."""

import json
import re

import pytest
import torch

from configuration_simple_vit import SimpleViTConfig


SIZE_FIELDS = (
    "image_size",
    "patch_size",
    "num_channels",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
)


def test_defaults_are_the_tutorial_model():
    config = SimpleViTConfig()
    assert config.model_type == "simple_vit"
    assert (config.image_size, config.patch_size, config.num_channels) == (32, 4, 3)
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (48, 4, 4)
    assert config.intermediate_size == 192
    assert config.hidden_act == "gelu_new"
    assert config.layer_norm_eps == 1e-5
    assert config.hidden_dropout_prob == 0.0 and config.attention_probs_dropout_prob == 0.0
    assert config.qkv_bias is True
    assert config.num_labels == 10


@pytest.mark.parametrize("labels", [{"num_labels": 3}, {"id2label": {0: "cat", 1: "dog"}}])
def test_explicit_labels_win_over_the_cifar_default(labels):
    config = SimpleViTConfig(**labels)
    expected = labels.get("num_labels") or len(labels["id2label"])
    assert config.num_labels == expected
    assert len(config.id2label) == expected


@pytest.mark.parametrize("field", SIZE_FIELDS)
@pytest.mark.parametrize("value", [0, -4, 2.0, True, None])
def test_sizes_must_be_positive_integers(field, value):
    with pytest.raises(ValueError, match=field):
        SimpleViTConfig(**{field: value})


def test_heads_must_divide_hidden_size():
    with pytest.raises(ValueError, match="num_attention_heads") as error:
        SimpleViTConfig(hidden_size=48, num_attention_heads=5)
    assert "hidden_size" in str(error.value)


def test_patch_must_divide_image():
    with pytest.raises(ValueError, match="patch_size") as error:
        SimpleViTConfig(image_size=30, patch_size=4)
    assert "image_size" in str(error.value)


@pytest.mark.parametrize("field", ["hidden_dropout_prob", "attention_probs_dropout_prob"])
@pytest.mark.parametrize("value", [-0.1, 1.0, 1.5, "0.1"])
def test_dropout_probabilities_must_be_in_0_1(field, value):
    with pytest.raises(ValueError, match=field):
        SimpleViTConfig(**{field: value})


@pytest.mark.parametrize("field", ["hidden_dropout_prob", "attention_probs_dropout_prob"])
@pytest.mark.parametrize("value", [0, 0.0, 0.5, 0.999])
def test_valid_dropout_probabilities_are_accepted(field, value):
    assert getattr(SimpleViTConfig(**{field: value}), field) == value


def test_unknown_activation_is_rejected():
    with pytest.raises(ValueError, match="hidden_act"):
        SimpleViTConfig(hidden_act="not_an_activation")


@pytest.mark.parametrize("field", ["initializer_range", "layer_norm_eps"])
@pytest.mark.parametrize("value", [0.0, -1e-5])
def test_non_positive_scales_are_rejected(field, value):
    with pytest.raises(ValueError, match=field):
        SimpleViTConfig(**{field: value})


@pytest.mark.parametrize("value", ["CLS", "max", "seqpool", None, ""])
def test_unknown_classifier_pooling_is_rejected(value):
    with pytest.raises(ValueError, match="classifier_pooling"):
        SimpleViTConfig(classifier_pooling=value)


@pytest.mark.parametrize("pooling", ["mean", "sequence"])
def test_classifier_pooling_defaults_to_cls_and_survives_a_round_trip(tmp_path, pooling):
    assert SimpleViTConfig().classifier_pooling == "cls"
    SimpleViTConfig(classifier_pooling=pooling).save_pretrained(tmp_path)
    assert SimpleViTConfig.from_pretrained(tmp_path).classifier_pooling == pooling


@pytest.mark.parametrize("value", ["sin-cos", "absolute", None])
def test_unknown_position_embedding_type_is_rejected(value):
    with pytest.raises(ValueError, match="position_embedding_type"):
        SimpleViTConfig(position_embedding_type=value)


def test_sincos_positions_need_a_hidden_size_divisible_by_four():
    with pytest.raises(ValueError, match=r"hidden_size divisible by 4, got 42"):
        SimpleViTConfig(position_embedding_type="sincos", hidden_size=42, num_attention_heads=6)
    SimpleViTConfig(position_embedding_type="learned", hidden_size=42, num_attention_heads=6)  # no such need


def test_position_embedding_type_defaults_to_learned_and_survives_a_round_trip(tmp_path):
    assert SimpleViTConfig().position_embedding_type == "learned"
    SimpleViTConfig(position_embedding_type="sincos").save_pretrained(tmp_path)
    assert SimpleViTConfig.from_pretrained(tmp_path).position_embedding_type == "sincos"
    # A config.json saved before the option existed describes a learned-position model.
    saved = json.loads((tmp_path / "config.json").read_text())
    del saved["position_embedding_type"]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    assert SimpleViTConfig.from_pretrained(tmp_path).position_embedding_type == "learned"


@pytest.mark.parametrize(
    "field", ["shifted_patch_tokenization", "convolutional_tokenization", "locality_self_attention"]
)
@pytest.mark.parametrize("value", [1, "yes", None])
def test_small_dataset_options_must_be_booleans(field, value):
    with pytest.raises(ValueError, match=f"{field} must be True or False, got {value!r}"):
        SimpleViTConfig(**{field: value})


def test_shifted_patch_tokenization_needs_half_a_patch_to_shift_by():
    with pytest.raises(ValueError, match="shifted_patch_tokenization needs patch_size of at least 2, got 1"):
        SimpleViTConfig(shifted_patch_tokenization=True, patch_size=1)
    SimpleViTConfig(shifted_patch_tokenization=True, patch_size=2)
    SimpleViTConfig(patch_size=1)  # no such need without it


@pytest.mark.parametrize("patch_size", [1, 3, 6, 12])
def test_convolutional_tokenization_needs_a_power_of_2_patch(patch_size):
    # Each of its blocks halves the grid, so only a number of halvings can stand for a patch.
    with pytest.raises(
        ValueError, match=f"convolutional_tokenization needs patch_size a power of 2 \\(at least 2\\), got {patch_size}"
    ):
        SimpleViTConfig(convolutional_tokenization=True, patch_size=patch_size, image_size=12 * patch_size)
    SimpleViTConfig(patch_size=patch_size, image_size=12 * patch_size)  # no such need without it


@pytest.mark.parametrize("patch_size", [2, 4, 8])
def test_convolutional_tokenization_takes_powers_of_2_and_survives_a_round_trip(patch_size, tmp_path):
    assert SimpleViTConfig().convolutional_tokenization is False
    SimpleViTConfig(convolutional_tokenization=True, patch_size=patch_size).save_pretrained(tmp_path)
    assert SimpleViTConfig.from_pretrained(tmp_path).convolutional_tokenization is True
    # A config.json saved before the option existed describes a model without it.
    saved = json.loads((tmp_path / "config.json").read_text())
    del saved["convolutional_tokenization"]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    assert SimpleViTConfig.from_pretrained(tmp_path).convolutional_tokenization is False


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"tokenizer_channels": 0}, "tokenizer_channels must be a positive integer, got 0"),
        ({"tokenizer_channels": 8.0}, "tokenizer_channels must be a positive integer, got 8.0"),
        ({"tokenizer_channels": True}, "tokenizer_channels must be a positive integer, got True"),
        ({"tokenizer_channels": "64"}, "tokenizer_channels must be a positive integer, got '64'"),
        ({"tokenizer_channels": -8}, "tokenizer_channels must be a positive integer, got -8"),
        ({"tokenizer_channels": 8, "convolutional_tokenization": False}, "tokenizer_channels is for "
         "convolutional_tokenization=True"),
        ({"tokenizer_channels": 8, "patch_size": 2}, "tokenizer_channels needs patch_size of at least 4, got 2"),
    ],
)
def test_tokenizer_channels_are_checked(overrides, message):
    settings = {"convolutional_tokenization": True, "patch_size": 4, **overrides}
    with pytest.raises(ValueError, match=re.escape(message)):
        SimpleViTConfig(**settings)


def test_tokenizer_channels_default_to_unset_and_survive_a_round_trip(tmp_path):
    assert SimpleViTConfig(convolutional_tokenization=True).tokenizer_channels is None  # hidden_size // 2
    SimpleViTConfig(convolutional_tokenization=True, patch_size=8, tokenizer_channels=56).save_pretrained(tmp_path)
    assert SimpleViTConfig.from_pretrained(tmp_path).tokenizer_channels == 56
    # A config.json saved before the field existed means the default width.
    saved = json.loads((tmp_path / "config.json").read_text())
    del saved["tokenizer_channels"]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    old = SimpleViTConfig.from_pretrained(tmp_path)
    assert old.tokenizer_channels is None
    # ... the width the tokenizer had before the field existed: hidden_size // 2 between its three convolutions.
    from modeling_simple_vit import SimpleViTModel

    projection = SimpleViTModel(old).embeddings.patch_embeddings.projection
    widths = [layer.out_channels for layer in projection if isinstance(layer, torch.nn.Conv2d)]
    assert widths == [old.hidden_size // 2, old.hidden_size // 2, old.hidden_size]


def test_convolutional_and_shifted_patch_tokenization_exclude_each_other():
    with pytest.raises(ValueError, match="convolutional_tokenization and shifted_patch_tokenization .* choose one"):
        SimpleViTConfig(convolutional_tokenization=True, shifted_patch_tokenization=True)


def test_small_dataset_options_default_off_and_survive_a_round_trip(tmp_path):
    config = SimpleViTConfig()
    assert (config.shifted_patch_tokenization, config.locality_self_attention) == (False, False)
    SimpleViTConfig(shifted_patch_tokenization=True, locality_self_attention=True).save_pretrained(tmp_path)
    loaded = SimpleViTConfig.from_pretrained(tmp_path)
    assert (loaded.shifted_patch_tokenization, loaded.locality_self_attention) == (True, True)
    # A config.json saved before the options existed describes a model without them.
    saved = json.loads((tmp_path / "config.json").read_text())
    del saved["shifted_patch_tokenization"], saved["locality_self_attention"]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    loaded = SimpleViTConfig.from_pretrained(tmp_path)
    assert (loaded.shifted_patch_tokenization, loaded.locality_self_attention) == (False, False)


def test_zero_labels_are_rejected():
    with pytest.raises(ValueError, match="num_labels"):
        SimpleViTConfig(num_labels=0)


def test_save_and_load_round_trip(tmp_path):
    config = SimpleViTConfig(
        image_size=30,
        patch_size=5,
        hidden_size=36,
        num_hidden_layers=3,
        num_attention_heads=6,
        intermediate_size=37,
        hidden_act="gelu",
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.2,
        layer_norm_eps=1e-6,
        qkv_bias=False,
        id2label={0: "cat", 1: "dog", 2: "bird"},
        label2id={"cat": 0, "dog": 1, "bird": 2},  # transformers v5 does not derive it from id2label
        problem_type="multi_label_classification",
    )
    config.save_pretrained(tmp_path)
    loaded = SimpleViTConfig.from_pretrained(tmp_path)
    for field in SIZE_FIELDS + (
        "hidden_act",
        "hidden_dropout_prob",
        "attention_probs_dropout_prob",
        "layer_norm_eps",
        "qkv_bias",
        "initializer_range",
        "problem_type",
    ):
        assert getattr(loaded, field) == getattr(config, field), field
    assert loaded.id2label == {0: "cat", 1: "dog", 2: "bird"}
    assert loaded.label2id == {"cat": 0, "dog": 1, "bird": 2}
    assert loaded.num_labels == 3
