"""The two model configs every parity and shape test runs on."""

import pytest

from configuration_simple_vit import SimpleViTConfig

# Deliberately odd: nothing is a power of two, heads are narrow (6 of width 6), the MLP width is prime, no qkv bias.
ODD = dict(
    image_size=30,
    patch_size=5,
    hidden_size=36,
    num_attention_heads=6,
    intermediate_size=37,
    num_hidden_layers=3,
    qkv_bias=False,
    hidden_act="gelu_new",
    layer_norm_eps=1e-6,
    num_labels=7,
)
ARCHITECTURE_FIELDS = (
    "image_size", "patch_size", "num_channels", "hidden_size", "num_hidden_layers", "num_attention_heads",
    "intermediate_size", "hidden_act", "layer_norm_eps", "qkv_bias", "num_labels",
)  # fmt: skip
# The tutorial model, i.e. SimpleViTConfig's defaults, spelled out so the same values can build a ViTConfig.
DEFAULT = {name: getattr(SimpleViTConfig(), name) for name in ARCHITECTURE_FIELDS}
CONFIGS = pytest.mark.parametrize("kwargs", [ODD, DEFAULT], ids=["odd", "default"])
