"""SimpleViT under the tutorial's class name, so the tutorial's own training loop trains it unchanged.

    TUTORIAL_DIR=benchmarks/tutorial_loop python ../shared/tools/tutorial_on_local_copy.py EPOCHS SEED

The loop builds `ViTForClassfication(config)` from its dict config and reads `(logits, attentions)` from each call;
this module answers both with SimpleViT's tutorial architecture (`--recipe tutorial`'s model config), so the only
thing that differs from `run_train.py` is the pipeline and loop around the model (benchmarks/tutorial_fidelity.sh).
"""

import json
import os
import sys

from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from configuration_simple_vit import SimpleViTConfig  # noqa: E402
from modeling_simple_vit import SimpleViTForImageClassification  # noqa: E402

# The tutorial's dict keys that are SimpleViTConfig fields under the same name.
SHARED_KEYS = ("image_size", "patch_size", "num_channels", "hidden_size", "num_hidden_layers", "num_attention_heads",
               "intermediate_size", "hidden_dropout_prob", "attention_probs_dropout_prob", "initializer_range",
               "qkv_bias")
MODEL_CONFIG = os.environ.get("SIMPLE_VIT_MODEL_CONFIG", os.path.join(ROOT, "configs", "tutorial.json"))


class ViTForClassfication(nn.Module):  # the tutorial's spelling
    def __init__(self, config):
        super().__init__()
        with open(MODEL_CONFIG) as f:
            overrides = json.load(f)
        fields = {key: config[key] for key in SHARED_KEYS}
        self.model = SimpleViTForImageClassification(
            SimpleViTConfig(**fields, **overrides, num_labels=config["num_classes"])
        )

    def forward(self, x, output_attentions=False):
        # (batch, 3, 32, 32) -> ((batch, num_classes) logits, attentions or None), as the tutorial's model returns
        out = self.model(pixel_values=x, output_attentions=output_attentions)
        return out.logits, out.attentions
