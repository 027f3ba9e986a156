"""The top-level model code loads every committed model under results/ as the code it was trained with does.

Each finished run folder carries its weights (`model.safetensors`, `config.json`) and a copy of the modeling code of
its day. The current classes must load those weights with no missing or unexpected key, hold the parameters in the
same order (optimizer states and training checkpoints are stored in that order), and give the logits of the folder's
own code, imported from the folder by path, on a fixed random batch. No dataset is needed (accuracy on CIFAR-10 is
tests/test_results.py's job).
"""

import importlib
import sys
import types
from pathlib import Path

import pytest
import torch

from modeling_simple_vit import SimpleViTForImageClassification, SimpleViTModel

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = sorted(p.parent for p in (ROOT / "results").glob("*/model.safetensors"))


def folder_code(folder: Path):
    """The folder's own modeling_simple_vit.py, imported as a package so that its relative import of the config
    finds the folder's configuration_simple_vit.py, not the project's."""
    name = "committed_" + "".join(c if c.isalnum() else "_" for c in folder.name)
    if name not in sys.modules:
        package = types.ModuleType(name)
        package.__path__ = [str(folder)]
        sys.modules[name] = package
    return importlib.import_module(f"{name}.modeling_simple_vit")


@pytest.mark.skipif(not FOLDERS, reason="no committed model under results/")
@pytest.mark.parametrize("folder", FOLDERS, ids=[p.name for p in FOLDERS])
def test_committed_model_loads_with_the_new_code_and_gives_the_old_codes_logits(folder):
    if not (folder / "modeling_simple_vit.py").is_file():
        pytest.skip(f"{folder.name} carries no copy of the code it was trained with")
    old_module = folder_code(folder)
    assert Path(old_module.__file__).resolve() == (folder / "modeling_simple_vit.py").resolve()
    old = old_module.SimpleViTForImageClassification.from_pretrained(folder, attn_implementation="eager").eval()
    new, info = SimpleViTForImageClassification.from_pretrained(
        folder, attn_implementation="sdpa", output_loading_info=True
    )
    new.eval()
    assert type(new).__module__ == "modeling_simple_vit"  # the top-level code, not the folder's copy
    for problem in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        assert not info[problem], (problem, info[problem])
    assert list(new.state_dict()) == list(old.state_dict())
    assert [name for name, _ in new.named_parameters()] == [name for name, _ in old.named_parameters()]

    size = new.config.image_size
    x = torch.randn(8, new.config.num_channels, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = old(x).logits
        torch.testing.assert_close(new(x).logits, expected, atol=1e-5, rtol=0)
        new.cls_only_last_layer = False  # the full last layer too (a no-op with mean pooling)
        torch.testing.assert_close(new(x).logits, expected, atol=1e-5, rtol=0)
        new.set_attn_implementation("eager")  # the explicit attention path
        torch.testing.assert_close(new(x).logits, expected, atol=1e-5, rtol=0)
        # The bare model loads the same folder (its `vit.` prefix stripped, the classifier left out) and gives the
        # same final states (of size ~10 here, hence a relative tolerance as well: eager vs SDPA rounding).
        base = SimpleViTModel.from_pretrained(folder, attn_implementation="sdpa").eval()
        torch.testing.assert_close(base(x).last_hidden_state, old.vit(x).last_hidden_state, atol=1e-5, rtol=1e-5)
