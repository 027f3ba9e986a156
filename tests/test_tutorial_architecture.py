"""`--recipe tutorial` trains the tutorial's own architecture: with the tutorial's weights copied in, SimpleViT under
the recipe's model config computes the tutorial's `ViTForClassfication` logits (its classifier reads the last
layer's CLS output, with no final LayerNorm). Needs the tutorial's code in ../shared; skipped without it."""

import importlib.util
from pathlib import Path

import pytest
import torch

from configuration_simple_vit import SimpleViTConfig
from modeling_simple_vit import SimpleViTForImageClassification
from run_train import load_model_config_overrides, parse_args

TUTORIAL_VIT = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "tutorial" / "vit.py"
pytestmark = pytest.mark.skipif(not TUTORIAL_VIT.exists(), reason=f"the tutorial's code is not at {TUTORIAL_VIT}")

# Deliberately odd sizes (no two equal), plus the tutorial's own.
SIZES = [
    dict(image_size=30, patch_size=5, hidden_size=36, num_hidden_layers=3, num_attention_heads=6, intermediate_size=37,
         num_classes=7),
    dict(image_size=32, patch_size=4, hidden_size=48, num_hidden_layers=4, num_attention_heads=4, intermediate_size=192,
         num_classes=10),
]


def load_tutorial_module():
    spec = importlib.util.spec_from_file_location("tutorial_vit", TUTORIAL_VIT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tutorial_state_dict_as_simple_vit(tutorial_model, num_layers):
    """The tutorial's parameters under SimpleViT's names. Its fused `qkv_projection` already holds q, k, v in that
    order, each heads * head_dim wide, as SimpleViT's `qkv_proj` does."""
    t = tutorial_model.state_dict()
    out = {
        "vit.embeddings.cls_token": t["embedding.cls_token"],
        "vit.embeddings.position_embeddings": t["embedding.position_embeddings"],
        "vit.embeddings.patch_embeddings.projection.weight": t["embedding.patch_embeddings.projection.weight"],
        "vit.embeddings.patch_embeddings.projection.bias": t["embedding.patch_embeddings.projection.bias"],
        "classifier.weight": t["classifier.weight"],
        "classifier.bias": t["classifier.bias"],
    }
    names = {"layernorm_1": "layernorm_before", "attention.qkv_projection": "attention.qkv_proj",
             "attention.output_projection": "attention.o_proj", "layernorm_2": "layernorm_after",
             "mlp.dense_1": "mlp.fc1", "mlp.dense_2": "mlp.fc2"}
    for i in range(num_layers):
        for theirs, ours in names.items():
            for kind in ("weight", "bias"):
                out[f"vit.encoder.layers.{i}.{ours}.{kind}"] = t[f"encoder.blocks.{i}.{theirs}.{kind}"]
    return out


def recipe_model(sizes):
    """SimpleViT as `--recipe tutorial` configures it, at the given sizes."""
    overrides = load_model_config_overrides(parse_args(["--recipe", "tutorial"]).model_config)
    fields = {k: v for k, v in sizes.items() if k != "num_classes"}
    return SimpleViTForImageClassification(SimpleViTConfig(**fields, **overrides, num_labels=sizes["num_classes"]))


@pytest.mark.parametrize("sizes", SIZES, ids=["odd", "tutorial"])
def test_tutorial_recipe_model_computes_the_tutorials_logits(sizes):
    vit = load_tutorial_module()
    torch.manual_seed(0)
    tutorial = vit.ViTForClassfication({**sizes, "num_channels": 3, "hidden_dropout_prob": 0.0,
                                        "attention_probs_dropout_prob": 0.0, "initializer_range": 0.02,
                                        "qkv_bias": True, "use_faster_attention": True}).eval()
    # Move every tensor off its initial value, so that a zero bias or a unit LayerNorm cannot hide a mismatch.
    with torch.no_grad():
        for p in tutorial.parameters():
            p.add_(0.1 * torch.randn_like(p))
    ours = recipe_model(sizes).eval()
    missing, unexpected = ours.load_state_dict(
        tutorial_state_dict_as_simple_vit(tutorial, sizes["num_hidden_layers"]), strict=True
    )
    assert not missing and not unexpected
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in tutorial.parameters())

    pixels = torch.randn(3, 3, sizes["image_size"], sizes["image_size"])
    with torch.no_grad():
        expected, _ = tutorial(pixels)
        got = ours(pixel_values=pixels).logits
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_default_config_keeps_the_final_layernorm():
    # transformers parity: only the tutorial recipe drops it.
    model = SimpleViTForImageClassification(SimpleViTConfig(**{k: v for k, v in SIZES[0].items() if k != "num_classes"}))
    assert isinstance(model.vit.layernorm, torch.nn.LayerNorm)
    assert isinstance(recipe_model(SIZES[0]).vit.layernorm, torch.nn.Identity)
