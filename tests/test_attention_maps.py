"""attention_maps.py: the maps' shapes and maths (rollout above all), the CLI's figure, and the notebook."""

import os
import sys

import numpy as np
import pytest
import torch
from helpers_checkpoint import CLASS_NAMES, ROOT, checkpoint, synthetic_dataset  # noqa: F401 (fixtures)
from PIL import Image

import attention_maps as am
from configuration_simple_vit import SimpleViTConfig
from modeling_simple_vit import SimpleViTForImageClassification

sys.path.insert(0, str(ROOT / "tools"))  # tools/execute_notebook.py (tools/ is not a package)


def random_attention(batch, layers, heads, tokens, seed=0):
    """Row-stochastic attention probabilities, shaped like the stacked `outputs.attentions`."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, layers, heads, tokens, tokens, generator=generator).softmax(dim=-1)


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    config = SimpleViTConfig(
        image_size=16, patch_size=4, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
        intermediate_size=32, id2label={0: "a", 1: "b", 2: "c"},
    )  # fmt: skip
    config._attn_implementation = "eager"
    return SimpleViTForImageClassification(config).eval()


# ---------------------------------------------------------------------------------------------------------------
# Rollout
# ---------------------------------------------------------------------------------------------------------------


def test_rollout_of_one_layer_is_the_residual_augmented_attention():
    attention = random_attention(batch=2, layers=1, heads=3, tokens=5)
    expected = 0.5 * attention[:, 0].mean(dim=1) + 0.5 * torch.eye(5)
    expected = expected / expected.sum(dim=-1, keepdim=True)
    torch.testing.assert_close(am.attention_rollout(attention), expected)


def test_rollout_multiplies_later_layers_onto_earlier_ones():
    # Hand-built, one head, three tokens (CLS, p1, p2). Layer 0: p1 copies p2, the others attend to themselves.
    # Layer 1: CLS reads only p1. So through the stack, CLS's information from p2 arrives via p1.
    layer0 = torch.tensor([[1.0, 0, 0], [0, 0, 1], [0, 0, 1]])
    layer1 = torch.tensor([[0, 1.0, 0], [0, 1, 0], [0, 0, 1]])
    attention = torch.stack([layer0, layer1])[None, :, None]  # (batch 1, layers 2, heads 1, 3, 3)
    residual = [0.5 * layer + 0.5 * torch.eye(3) for layer in (layer0, layer1)]
    torch.testing.assert_close(am.attention_rollout(attention)[0], residual[1] @ residual[0])
    # CLS row: half itself, and the half it read from p1 is itself half p1, half p2.
    torch.testing.assert_close(am.attention_rollout(attention)[0, 0], torch.tensor([0.5, 0.25, 0.25]))


def test_rollout_rows_are_distributions_and_identity_attention_stays_home():
    rollout = am.attention_rollout(random_attention(batch=2, layers=4, heads=2, tokens=7))
    assert (rollout >= 0).all()
    torch.testing.assert_close(rollout.sum(dim=-1), torch.ones(2, 7))
    # Tokens that only ever attend to themselves never mix: CLS gets nothing from the patches.
    identity = torch.eye(4).expand(1, 3, 2, 4, 4)
    torch.testing.assert_close(am.attention_rollout(identity), torch.eye(4).expand(1, 4, 4))


def test_patches_are_laid_out_row_by_row():
    # Patch k of a (2 rows x 3 cols) grid is row k // 3, column k % 3, as Conv2d + flatten numbered them.
    values = torch.zeros(6)
    values[4] = 1.0  # row 1, column 1
    image = am.patches_to_image(values, grid=(2, 3), size=(20, 30))
    assert image.shape == (20, 30)
    row, col = divmod(int(image.argmax()), 30)
    assert 10 <= row < 20 and 10 <= col < 20


# ---------------------------------------------------------------------------------------------------------------
# Maps from a model
# ---------------------------------------------------------------------------------------------------------------


def test_maps_shapes_and_agreement_with_the_raw_attentions(tiny_model):
    pixel_values = torch.randn(2, 3, 16, 16)
    maps = am.compute_attention_maps(tiny_model, pixel_values)
    assert maps.logits.shape == (2, 3)
    assert maps.per_head.shape == (2, 3, 2, 16, 16)  # (batch, layers, heads, height, width)
    assert maps.per_layer.shape == (2, 3, 16, 16)
    assert maps.rollout.shape == (2, 16, 16)
    torch.testing.assert_close(maps.per_layer, maps.per_head.mean(dim=2))

    with torch.no_grad():
        attentions = tiny_model(pixel_values, output_attentions=True).attentions
    stacked = torch.stack(attentions, dim=1)
    # Layer 2's CLS row over the 4 x 4 patch grid, upsampled, is what the module reports for layer 2.
    expected = am.patches_to_image(stacked[:, 2, :, 0, 1:].mean(dim=1), (4, 4), (16, 16))
    torch.testing.assert_close(maps.select(2), expected)
    torch.testing.assert_close(maps.select("last"), expected)
    rollout = am.patches_to_image(am.attention_rollout(stacked)[:, 0, 1:], (4, 4), (16, 16))
    torch.testing.assert_close(maps.select("rollout"), rollout)
    with pytest.raises(ValueError, match="layers 0 to 2"):
        maps.select(3)


def test_mean_pooling_models_map_the_patch_tokens_average_row(tiny_model):
    # The classifier of a mean-pooling model reads the patch tokens' average, so that is whose attention is mapped.
    config = tiny_model.config.__class__(**{**tiny_model.config.to_dict(), "classifier_pooling": "mean"})
    config._attn_implementation = "eager"
    model = SimpleViTForImageClassification(config).eval()
    model.load_state_dict(tiny_model.state_dict())
    pixel_values = torch.randn(2, 3, 16, 16)
    maps = am.compute_attention_maps(model, pixel_values)
    with torch.no_grad():
        stacked = torch.stack(model(pixel_values, output_attentions=True).attentions, dim=1)
    expected = am.patches_to_image(stacked[:, 1, :, 1:, 1:].mean(dim=(1, 2)), (4, 4), (16, 16))
    torch.testing.assert_close(maps.select(1), expected)
    rollout = am.patches_to_image(am.attention_rollout(stacked)[:, 1:, 1:].mean(dim=1), (4, 4), (16, 16))
    torch.testing.assert_close(maps.select("rollout"), rollout)
    # Not the CLS maps of the same weights.
    assert not torch.allclose(maps.rollout, am.compute_attention_maps(tiny_model, pixel_values).rollout)


def test_sequence_pooling_models_map_the_patch_tokens_rows_weighted_by_the_pooler(tiny_model):
    # The classifier of a sequence-pooling model reads the patch tokens weighted by its pooler, image by image: the
    # maps weight the patch tokens' rows the same way.
    config = tiny_model.config.__class__(**{**tiny_model.config.to_dict(), "classifier_pooling": "sequence"})
    config._attn_implementation = "eager"
    model = SimpleViTForImageClassification(config).eval()
    keys = model.load_state_dict(tiny_model.state_dict(), strict=False)  # all but the pooler's scoring layer
    assert (keys.missing_keys, keys.unexpected_keys) == (["vit.pooler.attention_pool.weight"], [])
    with torch.no_grad():  # scores far from even, so the weighting shows
        model.vit.pooler.attention_pool.weight.copy_(torch.randn(1, 16, generator=torch.Generator().manual_seed(3)))
    pixel_values = torch.randn(2, 3, 16, 16)
    maps = am.compute_attention_maps(model, pixel_values)
    with torch.no_grad():
        out = model(pixel_values, output_attentions=True, output_hidden_states=True)
        final = model.vit.layernorm(out.hidden_states[-1])[:, 1:]  # (batch, patches, hidden)
        weights = (final @ model.vit.pooler.attention_pool.weight[0]).softmax(dim=1)  # (batch, patches)
    stacked = torch.stack(out.attentions, dim=1)  # (batch, layers, heads, tokens, tokens)
    rows = (weights[:, None, None, :, None] * stacked[..., 1:, 1:]).sum(dim=-2)  # (batch, layers, heads, patches)
    torch.testing.assert_close(maps.select(1), am.patches_to_image(rows[:, 1].mean(dim=1), (4, 4), (16, 16)))
    rollout = (weights[..., None] * am.attention_rollout(stacked)[:, 1:, 1:]).sum(dim=1)
    torch.testing.assert_close(maps.select("rollout"), am.patches_to_image(rollout, (4, 4), (16, 16)))
    # Not the mean-pooling maps of the same attentions.
    even = am.patches_to_image(stacked[:, 1, :, 1:, 1:].mean(dim=(1, 2)), (4, 4), (16, 16))
    assert not torch.allclose(maps.select(1), even, atol=1e-4)
    torch.testing.assert_close(maps.logits, out.logits)


def test_an_unknown_pooling_is_refused_by_name(tiny_model):
    config = tiny_model.config.__class__(**tiny_model.config.to_dict())
    config._attn_implementation = "eager"
    model = SimpleViTForImageClassification(config).eval()
    model.config.classifier_pooling = "max"  # set after construction, past the config's own check
    with pytest.raises(ValueError, match="classifier_pooling.*'max'"):
        am.compute_attention_maps(model, torch.randn(1, 3, 16, 16))


def test_explicit_attention_path_predicts_like_sdpa(tiny_model):
    pixel_values = torch.randn(3, 3, 16, 16)
    maps = am.compute_attention_maps(tiny_model, pixel_values)
    tiny_model.config._attn_implementation = "sdpa"
    try:
        with torch.no_grad():
            logits = tiny_model(pixel_values).logits
    finally:
        tiny_model.config._attn_implementation = "eager"
    torch.testing.assert_close(maps.logits, logits, rtol=1e-4, atol=1e-5)


def test_hub_layout_dataset_columns(tmp_path):
    """A dataset with CIFAR-10's schema (`img`, `label` as ClassLabel) yields its images and class names."""
    import datasets

    features = datasets.Features({"img": datasets.Image(), "label": datasets.ClassLabel(names=["x", "y"])})
    images = [Image.fromarray(np.full((8, 8, 3), 40 * i, dtype=np.uint8)) for i in range(5)]
    rows = datasets.Dataset.from_dict({"img": images, "label": [0, 1, 0, 1, 1]}, features=features)
    (tmp_path / "data").mkdir()
    rows.to_parquet(str(tmp_path / "data" / "test-00000-of-00001.parquet"))
    loaded, labels, names = am.load_examples(str(tmp_path), split="test", num_images=3)
    assert len(loaded) == 3 and loaded[0].mode == "RGB"
    assert labels == [0, 1, 0] and names == ["x", "y"]


# ---------------------------------------------------------------------------------------------------------------
# The command line and the notebook, on a checkpoint from a short training run
# ---------------------------------------------------------------------------------------------------------------


def test_cli_draws_the_figure(checkpoint, synthetic_dataset, tmp_path, capsys):
    output = tmp_path / "figures" / "attention.png"
    argv = ["--checkpoint", str(checkpoint), "--dataset-name", str(synthetic_dataset), "--num-images", "7"]
    assert am.main(argv + ["--output", str(output), "--ncols", "4"]) == 0
    assert "7 images" in capsys.readouterr().out
    with Image.open(output) as figure:
        assert figure.format == "PNG" and figure.width > 300 and figure.height > 300

    assert am.main(argv + ["--output", str(tmp_path / "layer0.png"), "--layer", "0"]) == 0
    assert (tmp_path / "layer0.png").stat().st_size > 0


@pytest.mark.parametrize(
    "case, expected",
    [("no-checkpoint", "not a saved model folder"), ("no-dataset", "cannot load dataset"), ("bad-layer", "layer 9")],
)
def test_cli_errors_are_one_line(checkpoint, synthetic_dataset, tmp_path, capsys, case, expected):
    argv = {
        "no-checkpoint": ["--checkpoint", str(tmp_path / "missing"), "--dataset-name", str(synthetic_dataset)],
        "no-dataset": ["--checkpoint", str(checkpoint), "--dataset-name", str(tmp_path / "missing")],
        "bad-layer": ["--checkpoint", str(checkpoint), "--dataset-name", str(synthetic_dataset), "--layer", "9"],
    }[case]
    assert am.main(argv + ["--output", str(tmp_path / "out.png")]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert error and error[-1].startswith("error: ") and expected in error[-1]
    assert not (tmp_path / "out.png").exists()


NOTEBOOK = ROOT / "notebooks" / "attention_maps.ipynb"
# The local CIFAR-10 copy the committed notebook's outputs were made from, as the notebook (run in notebooks/) names it.
CIFAR10_COPY = ROOT.parent / "shared" / "datasets" / "cifar10"


def execute_notebook_copy(monkeypatch, tmp_path, dataset, checkpoint=None):
    """Run a copy of the committed notebook, its saved outputs stripped first, in notebooks/; return it run.

    Stripping means every output checked afterwards was made by this run; running a copy leaves the committed
    file, outputs and all, exactly as it is (checked here too).
    """
    from execute_notebook import execute  # tools/execute_notebook.py: how the committed outputs are made

    committed = NOTEBOOK.read_bytes()
    copy = tmp_path / NOTEBOOK.name
    copy.write_bytes(committed)
    # The kernel inherits this environment: the checkpoint and dataset to use, and the offline Hub.
    if checkpoint is None:
        monkeypatch.delenv("SIMPLE_VIT_CHECKPOINT", raising=False)  # the notebook's default: results/seed-config
    else:
        monkeypatch.setenv("SIMPLE_VIT_CHECKPOINT", str(checkpoint))
    monkeypatch.setenv("SIMPLE_VIT_DATASET", str(dataset))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)
    # Only this environment's own "python3" kernel (ipykernel ships it; its "python" means this interpreter):
    # hide any user-level kernel of the same name that may point at another Python.
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))
    monkeypatch.delenv("JUPYTER_PATH", raising=False)
    # Run in notebooks/ (not beside the copy): the notebook finds attention_maps.py from its folder upwards.
    notebook = execute(copy, timeout=180)  # raises CellExecutionError if any cell fails
    assert NOTEBOOK.read_bytes() == committed
    return notebook


def code_outputs(notebook) -> list:
    return [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]


def printed_lines(notebook) -> list[list[str]]:
    """What each code cell printed on stdout (not stderr: warnings and progress bars vary between setups)."""
    return [
        "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stdout").splitlines()
        for cell in notebook.cells
        if cell.cell_type == "code"
    ]


def figure_counts(notebook) -> list[int]:
    return [sum("image/png" in o.get("data", {}) for o in cell.outputs) for cell in notebook.cells
            if cell.cell_type == "code"]  # fmt: skip


def test_notebook_runs_headless_and_draws(checkpoint, synthetic_dataset, monkeypatch, tmp_path):
    """CI's notebook check: every cell runs on the tiny checkpoint, and figures come out as PNG outputs."""
    notebook = execute_notebook_copy(monkeypatch, tmp_path, synthetic_dataset, checkpoint=checkpoint)

    outputs = code_outputs(notebook)
    assert not [o for o in outputs if o.output_type == "error"]
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pngs) >= 3, "expected the prediction grid, the per-layer maps and the per-head maps"
    printed = "".join(output.get("text", "") for output in outputs)
    assert any(name in printed for name in CLASS_NAMES)  # the model's classes are the dataset's names


def test_committed_notebook_shows_its_maps():
    """Opened on GitHub or the Hub, the notebook shows its figures: committed run, small, no errors."""
    import nbformat

    assert NOTEBOOK.stat().st_size < 1_000_000  # readable in a browser, and a small diff when re-run
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    # Run top to bottom in one kernel: every code cell, in order (no cell left unrun or run twice).
    assert [cell.execution_count for cell in code_cells] == list(range(1, len(code_cells) + 1))
    outputs = code_outputs(notebook)
    assert not [o for o in outputs if o.output_type == "error"]
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pngs) >= 3  # the prediction grid, the per-layer maps and the per-head maps
    text = "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)
    assert "model: results/seed-config" in text and str(ROOT) not in text  # the committed model, no local path


@pytest.mark.skipif(not CIFAR10_COPY.is_dir(), reason=f"needs the local CIFAR-10 copy at {CIFAR10_COPY}")
def test_committed_notebook_outputs_are_those_of_the_committed_model(monkeypatch, tmp_path):
    """Run again on results/seed-config and the local CIFAR-10 copy, the notebook prints what it has saved."""
    import nbformat

    dataset = os.path.relpath(CIFAR10_COPY, NOTEBOOK.parent)  # as the committed run named it
    notebook = execute_notebook_copy(monkeypatch, tmp_path, dataset)
    committed = nbformat.read(NOTEBOOK, as_version=4)
    assert printed_lines(notebook) == printed_lines(committed)
    assert any("predicted correctly" in line for lines in printed_lines(committed) for line in lines)
    assert figure_counts(notebook) == figure_counts(committed)
