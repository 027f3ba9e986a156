"""run_train.py --model_name_or_path: fine-tuning a SimpleViT or a transformers ViT checkpoint (local folders only).

Every checkpoint here is made on the spot with random weights and saved with save_pretrained into tmp_path, in a
deliberately odd tiny shape (30 px images, patch 5, hidden 36, 6 heads, MLP 37); no Hub is contacted.
"""

import json

import pytest
import torch
from safetensors.torch import load_file
from test_train import ROOT, run_train  # noqa: F401  (ROOT: the project; run_train: the script in a subprocess)
from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor, ViTModel

from cli import CLIError
from configuration_simple_vit import SimpleViTConfig
from modeling_simple_vit import SimpleViTForImageClassification
from simple_vit_training.arguments import parse_args
from simple_vit_training.data import make_image_processor, make_normalizer
from simple_vit_training.model_config import build_model, build_model_config
from simple_vit_training.pretrained import open_pretrained
from synthetic_data import CLASS_NAMES, write_hub_layout

SHAPE = {"image_size": 30, "patch_size": 5, "hidden_size": 36, "num_hidden_layers": 2, "num_attention_heads": 6,
         "intermediate_size": 37}
# Not the defaults (0.5): a run that ignored the checkpoint's preprocessor would save other numbers.
MEAN, STD = [0.2, 0.3, 0.4], [0.5, 0.6, 0.7]


def labels(n):
    names = list(CLASS_NAMES) if n == len(CLASS_NAMES) else [f"class_{i}" for i in range(n)]
    return {"id2label": dict(enumerate(names)), "label2id": {name: i for i, name in enumerate(names)}}


def save_processor(folder, size=30):
    ViTImageProcessor(size={"height": size, "width": size}, image_mean=MEAN, image_std=STD).save_pretrained(folder)


def simple_vit_checkpoint(folder, num_labels=3, processor=True):
    torch.manual_seed(1)
    model = SimpleViTForImageClassification(SimpleViTConfig(**SHAPE, **labels(num_labels))).eval()
    model.save_pretrained(folder)
    if processor:
        save_processor(folder)
    return model


def vit_checkpoint(folder, num_labels=3, bare=False):
    torch.manual_seed(2)
    config = ViTConfig(**SHAPE, **labels(num_labels))
    model = (ViTModel(config, add_pooling_layer=False) if bare else ViTForImageClassification(config)).eval()
    model.save_pretrained(folder)
    save_processor(folder)
    return model


def pixels(n=2):
    return torch.randn(n, 3, 30, 30, generator=torch.Generator().manual_seed(0))


def fine_tune_start(folder, num_classes=3, ignore=False):
    """What run_train.py's steps 1, 3 and 4 build from --model_name_or_path (before any training)."""
    pretrained = open_pretrained(str(folder))
    config = build_model_config({}, [f"c{i}" for i in range(num_classes)], pretrained, ignore)
    return build_model(config, pretrained, ignore).eval(), make_image_processor(config, pretrained)


@pytest.fixture(scope="module")
def hub_dataset(tmp_path_factory):
    return write_hub_layout(tmp_path_factory.mktemp("hub_dataset"), n_train=32, n_test=16, size=16)


def train_args(dataset, checkpoint, output_dir, *extra):
    return ["--dataset-name", dataset, "--model_name_or_path", checkpoint, "--output-dir", output_dir,
            "--epochs", "1", "--batch-size", "16", "--seed", "3", *extra]


# ---------------------------------------------------------------------------------------------------------------
# Loading (in process)
# ---------------------------------------------------------------------------------------------------------------


def test_simple_vit_folder_loads_its_weights(tmp_path):
    original = simple_vit_checkpoint(tmp_path / "ckpt")
    model, _ = fine_tune_start(tmp_path / "ckpt")
    with torch.no_grad():
        torch.testing.assert_close(model(pixel_values=pixels()).logits, original(pixel_values=pixels()).logits,
                                   rtol=0, atol=0)
    assert model.config.id2label == {0: "c0", 1: "c1", 2: "c2"}  # the dataset's labels, not the checkpoint's


def test_transformers_vit_folder_is_converted_with_the_same_logits(tmp_path):
    vit = vit_checkpoint(tmp_path / "vit")
    model, _ = fine_tune_start(tmp_path / "vit")
    assert isinstance(model, SimpleViTForImageClassification)
    with torch.no_grad():
        torch.testing.assert_close(model(pixel_values=pixels()).logits, vit(pixel_values=pixels()).logits,
                                   rtol=1e-5, atol=1e-5)


def test_bare_vit_model_gives_the_body_and_a_new_head(tmp_path):
    vit = vit_checkpoint(tmp_path / "vit", bare=True)
    model, _ = fine_tune_start(tmp_path / "vit", num_classes=3)
    assert model.classifier.weight.shape == (3, 36)
    with torch.no_grad():
        torch.testing.assert_close(model.vit(pixel_values=pixels()).last_hidden_state,
                                   vit(pixel_values=pixels()).last_hidden_state, rtol=1e-5, atol=1e-5)


def test_ignore_mismatched_sizes_reinitialises_only_the_head(tmp_path):
    original = simple_vit_checkpoint(tmp_path / "ckpt", num_labels=5)
    model, _ = fine_tune_start(tmp_path / "ckpt", num_classes=3, ignore=True)
    assert model.classifier.weight.shape == (3, 36) and model.config.num_labels == 3
    body, loaded = original.vit.state_dict(), model.vit.state_dict()
    assert body.keys() == loaded.keys()
    for key in body:
        assert torch.equal(body[key], loaded[key]), key
    # The new head is initialised as a new model's is, not left at zeros or garbage.
    assert 0 < model.classifier.weight.std() < 0.1


def test_mismatched_head_without_the_flag_names_the_mismatch(tmp_path):
    simple_vit_checkpoint(tmp_path / "ckpt", num_labels=5)
    with pytest.raises(CLIError, match=r"5-class head .*5x36.* 3 classes .*3x36.*--ignore_mismatched_sizes"):
        fine_tune_start(tmp_path / "ckpt", num_classes=3)


def test_image_size_and_normalisation_come_from_the_checkpoint(tmp_path):
    vit_checkpoint(tmp_path / "vit")
    model, processor = fine_tune_start(tmp_path / "vit")
    assert (model.config.image_size, model.config.patch_size) == (30, 5)
    assert (list(processor.image_mean), list(processor.image_std)) == (MEAN, STD)
    # The training normaliser does what that processor does.
    image = torch.randint(0, 256, (1, 3, 30, 30), dtype=torch.uint8)
    expected = processor(images=image, return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(make_normalizer(processor, "cpu")(image.float()), expected, rtol=1e-6, atol=1e-6)


def test_checkpoint_without_preprocessor_gets_the_default_processor(tmp_path):
    simple_vit_checkpoint(tmp_path / "ckpt", processor=False)
    _, processor = fine_tune_start(tmp_path / "ckpt")
    assert (list(processor.image_mean), processor.size["height"]) == ([0.5] * 3, 30)


def test_preprocessor_of_another_size_is_refused(tmp_path):
    simple_vit_checkpoint(tmp_path / "ckpt", processor=False)
    save_processor(tmp_path / "ckpt", size=32)
    with pytest.raises(CLIError, match="resizes to .*32.* takes 30x30"):
        open_pretrained(str(tmp_path / "ckpt"))


def test_other_model_types_are_refused(tmp_path):
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(CLIError, match="model_type 'bert' is neither"):
        open_pretrained(str(tmp_path / "bert"))


# ---------------------------------------------------------------------------------------------------------------
# run_train.py end to end
# ---------------------------------------------------------------------------------------------------------------


def test_run_train_starts_from_the_checkpoint_and_saves_its_processor(hub_dataset, tmp_path):
    """lr 0: AdamW changes nothing (decoupled decay is lr * wd), so the saved weights are exactly the checkpoint's
    if and only if they were loaded; the saved image processor is the checkpoint's."""
    original = simple_vit_checkpoint(tmp_path / "ckpt")
    out = tmp_path / "out"
    run_train(*train_args(hub_dataset, tmp_path / "ckpt", out, "--lr", "0"))
    saved, expected = load_file(out / "model.safetensors"), original.state_dict()
    assert saved.keys() == expected.keys()
    for key in saved:
        assert torch.equal(saved[key], expected[key]), key
    processor = json.loads((out / "preprocessor_config.json").read_text())
    assert (processor["image_mean"], processor["image_std"], processor["size"]) == (
        MEAN, STD, {"height": 30, "width": 30})
    config = json.loads((out / "config.json").read_text())
    assert (config["image_size"], config["patch_size"], config["hidden_size"]) == (30, 5, 36)
    assert [config["id2label"][str(i)] for i in range(3)] == list(CLASS_NAMES)


def test_run_train_fine_tunes_a_vit_checkpoint_with_a_new_head(hub_dataset, tmp_path):
    vit_checkpoint(tmp_path / "vit", num_labels=7)
    out = tmp_path / "out"
    result = run_train(*train_args(hub_dataset, tmp_path / "vit", out, "--ignore-mismatched-sizes"))
    assert "epoch 1/1" in result.stdout
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "simple_vit" and len(config["id2label"]) == 3
    assert [config["id2label"][str(i)] for i in range(3)] == list(CLASS_NAMES)
    assert load_file(out / "model.safetensors")["classifier.weight"].shape == (3, 36)


@pytest.mark.parametrize("make, flag, expected", [
    (None, "--model_name_or_path", "no checkpoint there"),
    (lambda folder: simple_vit_checkpoint(folder, num_labels=5), "--model-name-or-path", "5-class head"),
])
def test_bad_checkpoint_is_one_line(hub_dataset, tmp_path, make, flag, expected):
    folder = tmp_path / "missing"
    if make is not None:
        make(folder)
    args = train_args(hub_dataset, folder, tmp_path / "out")
    args[args.index("--model_name_or_path")] = flag
    result = run_train(*args, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in result.stderr, result.stderr[-2000:]


def test_explicit_model_config_conflicts_with_a_checkpoint(hub_dataset, tmp_path):
    simple_vit_checkpoint(tmp_path / "ckpt")
    args = train_args(hub_dataset, tmp_path / "ckpt", tmp_path / "out", "--model-config", ROOT / "configs/mean-pooling.json")
    result = run_train(*args, check=False)
    assert result.returncode == 2 and "exclude each other" in result.stderr


# ---------------------------------------------------------------------------------------------------------------
# Other image sizes: decoded once at native size, resized per batch
# ---------------------------------------------------------------------------------------------------------------


def test_images_are_held_at_native_size_and_eval_batches_equal_the_image_processor(hub_dataset):
    """A 30-px model on 16-px images: the decoded set stays 16 px; each eval batch, resized on the device, is what
    the saved image processor makes of the dataset's own images (within float tolerance)."""
    from accelerate import Accelerator

    from simple_vit_training.augmentation import BatchAugment
    from simple_vit_training.data import build_training_data, load_splits

    args = parse_args(["--dataset-name", str(hub_dataset), "--eval-split", "test", "--seed", "0", "--batch-size", "8"])
    splits = load_splits(args)
    processor = ViTImageProcessor(size={"height": 30, "width": 30}, image_mean=MEAN, image_std=STD)
    data = build_training_data(splits, 30, processor, Accelerator(cpu=True), args)
    assert data.train_images.shape == (32, 3, 16, 16) and data.train_images.dtype == torch.uint8
    index = torch.tensor([0, 5, 11])
    expected = processor(images=[splits.evaluation[i]["img"] for i in index.tolist()],
                         return_tensors="pt")["pixel_values"]
    got = data.eval_pixels[index]
    assert got.shape == (3, 3, 30, 30)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    # Training batches come out at the model's size for every augmentation that does not run per image.
    for kind in ("tutorial", "pad-crop", "none"):
        assert BatchAugment(kind, 30)(data.train_images[:4]).shape == (4, 3, 30, 30), kind
