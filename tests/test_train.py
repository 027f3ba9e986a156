"""run_train.py end to end on small synthetic datasets (and on the CIFAR-10 copy when it is present)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from synthetic_data import CLASS_NAMES, write_hub_layout, write_image_folder

ROOT = Path(__file__).resolve().parents[1]
CIFAR10 = ROOT.parent / "shared" / "datasets" / "cifar10"
# A deliberately odd tiny model: 16x16 images, patch 4, hidden 24, 3 heads, MLP 37.
TINY_MODEL = {"image_size": 16, "patch_size": 4, "hidden_size": 24, "num_hidden_layers": 2,
              "num_attention_heads": 3, "intermediate_size": 37}


def _env():
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONWARNINGS="ignore")
    env.pop("PYTHONPATH", None)
    return env


def run_train(*args, check=True, launcher=None, cwd=ROOT):
    command = (launcher or [sys.executable]) + [str(ROOT / "run_train.py"), *map(str, args)]
    result = subprocess.run(command, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"run_train failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


@pytest.fixture(scope="module")
def hub_dataset(tmp_path_factory):
    return write_hub_layout(tmp_path_factory.mktemp("hub_dataset"), n_train=96, n_test=48, size=16)


@pytest.fixture(scope="module")
def tiny_model_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "tiny.json"
    path.write_text(json.dumps(TINY_MODEL))
    return path


def common_args(dataset, model_config, output_dir, **overrides):
    args = {"--dataset-name": dataset, "--model-config": model_config, "--output-dir": output_dir,
            "--batch-size": 16, "--lr": 3e-3, "--seed": 7}
    args.update(overrides)
    return [str(x) for kv in args.items() for x in kv]


@pytest.fixture(scope="module")
def trained(hub_dataset, tiny_model_config, tmp_path_factory):
    """One 2-epoch run shared by the end-to-end tests."""
    out = tmp_path_factory.mktemp("run") / "out"
    result = run_train(*common_args(hub_dataset, tiny_model_config, out, **{"--epochs": 2}))
    return out, result


def test_outputs_exist_and_metrics_are_complete(trained, hub_dataset):
    out, result = trained
    for name in ("model.safetensors", "config.json", "modeling_simple_vit.py", "configuration_simple_vit.py",
                 "preprocessor_config.json", "metrics.json", "metrics.png"):
        assert (out / name).is_file(), name
    assert not list(out.glob("*.bin"))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epoch"] == [1, 2]
    for key in ("train_loss", "eval_loss", "eval_accuracy"):
        assert len(metrics[key]) == 2 and all(v == v for v in metrics[key])  # no NaN
    assert metrics["world_size"] == 1
    assert metrics["wall_time_seconds"] > 0
    assert metrics["args"]["epochs"] == 2 and metrics["eval_samples"] == 48
    # train + test splits and no --eval-split: the test split is evaluated, and the record says so
    assert (metrics["eval_split"], metrics["dataset_name"]) == ("test", str(hub_dataset))
    assert metrics["cpu_threads"] >= 1
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {str(i): name for i, name in enumerate(CLASS_NAMES)}
    assert config["hidden_size"] == TINY_MODEL["hidden_size"]
    # the one-line start summary
    assert "world_size=1" in result.stdout and "parameters=" in result.stdout


def test_reloaded_model_reproduces_reported_accuracy(trained, hub_dataset, tmp_path):
    """A clean process (project not importable) evaluates through AutoImageProcessor + the reloaded model."""
    out, _ = trained
    script = textwrap.dedent(f"""
        import json, sys, torch, datasets
        assert "modeling_simple_vit" not in sys.modules
        from transformers import AutoImageProcessor, AutoModelForImageClassification
        model = AutoModelForImageClassification.from_pretrained({str(out)!r}, trust_remote_code=True).eval()
        processor = AutoImageProcessor.from_pretrained({str(out)!r})
        test = datasets.load_dataset({str(hub_dataset)!r}, split="test")
        with torch.no_grad():
            pixels = processor(images=[im.convert("RGB") for im in test["img"]], return_tensors="pt")["pixel_values"]
            preds = model(pixel_values=pixels).logits.argmax(-1)
        labels = torch.tensor(list(test["label"]))
        print(json.dumps({{"accuracy": (preds == labels).float().mean().item(),
                           "module": type(model).__module__}}))
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured["module"].startswith("transformers_modules")  # came from the folder, not the project
    reported = json.loads((out / "metrics.json").read_text())["eval_accuracy"][-1]
    assert measured["accuracy"] == pytest.approx(reported, abs=1e-9)


def test_it_learns_an_easy_task(hub_dataset, tiny_model_config, tmp_path):
    out = tmp_path / "out"
    run_train(*common_args(hub_dataset, tiny_model_config, out, **{"--epochs": 6, "--batch-size": 8}))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["eval_accuracy"][-1] >= 0.9  # chance is 1/3
    assert metrics["train_loss"][-1] < metrics["train_loss"][0]


def test_two_process_ddp_equals_one_process_with_double_batch(hub_dataset, tiny_model_config, tmp_path):
    """2 CPU processes x batch 8 (gloo DDP) == 1 process x batch 16, augmentation off."""
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    run_train(*common_args(hub_dataset, tiny_model_config, single, **{"--epochs": 2, "--batch-size": 16,
                                                                     "--augmentation": "none"}))
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    run_train(*common_args(hub_dataset, tiny_model_config, ddp, **{"--epochs": 2, "--batch-size": 8,
                                                                  "--augmentation": "none"}), launcher=launcher)
    assert json.loads((ddp / "metrics.json").read_text())["world_size"] == 2
    a, b = load_file(single / "model.safetensors"), load_file(ddp / "model.safetensors")
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst < 1e-4, worst
    # and training did move the weights (the comparison is not between two untouched initialisations)
    assert any((a[k] != 0).any() for k in a)
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (single, ddp))
    assert ma["eval_accuracy"] == pytest.approx(mb["eval_accuracy"], abs=1e-9)  # whole eval set, counted once


def test_max_grad_norm_clips_the_update(trained, hub_dataset, tiny_model_config, tmp_path):
    # Adam's update does not depend on the gradient's scale, except through eps (1e-8): gradients clipped to a
    # total norm of 1e-12 give updates ~1e-5 of the unclipped ones, so the weights stay at their initial values
    # (weight decay off for that run: it alone would move them ~4e-4).
    initial, clipped = tmp_path / "initial", tmp_path / "clipped"
    run_train(*common_args(hub_dataset, tiny_model_config, initial, **{"--epochs": 2, "--lr": 0.0}))
    run_train(*common_args(hub_dataset, tiny_model_config, clipped, **{"--epochs": 2, "--max-grad-norm": 1e-12,
                                                                    "--weight-decay": 0.0}))
    unclipped, _ = trained
    start = load_file(initial / "model.safetensors")
    moved = {name: load_file(folder / "model.safetensors") for name, folder in
             (("clipped", clipped), ("unclipped", unclipped))}
    change = {name: max((weights[k] - start[k]).abs().max().item() for k in start) for name, weights in moved.items()}
    assert change["unclipped"] > 1e-3, change
    assert change["clipped"] < 1e-5, change
    assert json.loads((clipped / "metrics.json").read_text())["args"]["max_grad_norm"] == 1e-12


def test_gradient_accumulation_equals_the_larger_batch(hub_dataset, tiny_model_config, tmp_path):
    """batch 8 x 2 accumulation steps == batch 16 (same samples per optimizer step, same schedule position)."""
    accumulated, large = tmp_path / "accumulated", tmp_path / "large"
    args = {"--epochs": 2, "--augmentation": "none", "--lr-scheduler": "cosine", "--warmup-epochs": 1}
    run_train(*common_args(hub_dataset, tiny_model_config, large, **{"--batch-size": 16, **args}))
    run_train(*common_args(hub_dataset, tiny_model_config, accumulated,
                           **{"--batch-size": 8, "--gradient-accumulation-steps": 2, **args}))
    a, b = load_file(large / "model.safetensors"), load_file(accumulated / "model.safetensors")
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst < 1e-4, worst  # float rounding, amplified by Adam on near-zero gradients; a wrong step count is ~1e-2


@pytest.mark.parametrize("augmentation, workers", [("tutorial", 0), ("trivialaugment", 2)])
def test_resume_equals_uninterrupted(hub_dataset, tiny_model_config, tmp_path, augmentation, workers):
    """2 epochs + resume to 3 == 3 uninterrupted epochs, with augmentation on (its randomness is restored too,
    also with a policy and decode workers; the data order is recomputed from (seed, epoch)) and a warmup in progress
    (the scheduler's position is restored). A schedule that depends on the total (cosine) legitimately changes when --epochs changes, so the
    warmup is followed by a constant rate here."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    args = {"--lr-scheduler": "constant", "--warmup-epochs": 2.5, "--augmentation": augmentation,
            "--num-workers": workers}
    run_train(*common_args(hub_dataset, tiny_model_config, straight, **{"--epochs": 3, **args}))
    run_train(*common_args(hub_dataset, tiny_model_config, resumed, **{"--epochs": 2, "--save-model-every": 1,
                                                                      **args}))
    assert sorted(p.name for p in (resumed / "checkpoints").iterdir()) == ["epoch_1", "epoch_2"]
    result = run_train(*common_args(hub_dataset, tiny_model_config, resumed,
                                    **{"--epochs": 3, "--resume-from-checkpoint": "latest", **args}))
    assert "Resumed" in result.stdout
    a, b = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst < 1e-6, worst
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (straight, resumed))
    assert mb["epoch"] == [1, 2, 3]
    for key in ("train_loss", "eval_loss", "eval_accuracy"):
        assert mb[key] == pytest.approx(ma[key], abs=1e-6), key


def test_image_folder_without_eval_split_is_carved_from_train(tiny_model_config, tmp_path):
    folder = write_image_folder(tmp_path / "images", n_train=60, splits=("train",))
    out = tmp_path / "out"
    run_train(*common_args(folder, tiny_model_config, out, **{"--epochs": 1, "--validation-split-percentage": 20,
                                                              "--save-model-every": 1}))
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["train_samples"], metrics["eval_samples"]) == (48, 12)
    assert metrics["eval_split"] == "train[carved 20%]" and metrics["args"]["train_val_split"] == 0.2
    assert json.loads((out / "config.json").read_text())["label2id"] == {n: i for i, n in enumerate(CLASS_NAMES)}
    assert not list((out / "checkpoints").glob(".*"))  # no staging debris next to the checkpoint


def test_max_samples_and_column_overrides(tiny_model_config, tmp_path):
    data = write_hub_layout(tmp_path / "data", n_train=40, n_test=20, size=16, image_column="picture",
                            label_column="category")
    out = tmp_path / "out"
    run_train(*common_args(data, tiny_model_config, out, **{"--epochs": 1, "--image-column": "picture",
                                                            "--label-column": "category",
                                                            "--max-train-samples": 32, "--max-eval-samples": 10}))
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["train_samples"], metrics["eval_samples"]) == (32, 10)


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--dataset-name", "/nonexistent/dataset/folder"], "could not load dataset"),
        (["--batch-size", "0"], "--batch-size"),
        (["--epochs", "0"], "--epochs"),
        (["--max-grad-norm", "0"], "--max-grad-norm"),
        (["--resume-from-checkpoint", "latest"], "no checkpoint"),
    ],
)
def test_bad_input_is_one_line_without_traceback(hub_dataset, tmp_path, extra, expected):
    args = ["--dataset-name", hub_dataset, "--output-dir", tmp_path / "out", "--epochs", "1", *extra]
    result = run_train(*args, check=False)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], result.stderr


def test_resume_with_another_model_is_one_line(hub_dataset, tiny_model_config, tmp_path):
    out = tmp_path / "out"
    run_train(*common_args(hub_dataset, tiny_model_config, out, **{"--epochs": 1, "--save-model-every": 1,
                                                                  "--max-train-samples": 16}))
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**TINY_MODEL, "hidden_size": 30}))
    result = run_train(*common_args(hub_dataset, other, out, **{"--epochs": 2, "--max-train-samples": 16,
                                                                "--resume-from-checkpoint": "latest"}), check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot resume" in lines[0], result.stderr[-2000:]


def test_missing_label_column_names_the_columns(tmp_path):
    data = write_hub_layout(tmp_path / "data", n_train=8, n_test=4, label_column="target")
    result = run_train("--dataset-name", data, "--output-dir", tmp_path / "out", check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "no label column" in result.stderr and "img" in result.stderr and "target" in result.stderr


def test_unknown_model_config_field(hub_dataset, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"hidden_size": 24, "num_attention_heads": 3, "hiden_layers": 2}))
    result = run_train("--dataset-name", hub_dataset, "--model-config", bad, "--output-dir", tmp_path / "o",
                       check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "hiden_layers" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_invalid_model_config_value_is_one_line(hub_dataset, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"hidden_size": 24, "num_attention_heads": 5}))
    result = run_train("--dataset-name", hub_dataset, "--model-config", bad, "--output-dir", tmp_path / "o",
                       check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "num_attention_heads" in result.stderr


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.json")), ids=lambda p: p.name)
def test_shipped_model_configs_are_valid(path):
    # Every file under configs/ is passed to --model-config in the README; each must name only real fields and
    # build a model within the size budget for a better recipe (0.2M parameters).
    sys.path.insert(0, str(ROOT))
    from configuration_simple_vit import SimpleViTConfig
    from modeling_simple_vit import SimpleViTForImageClassification
    from simple_vit_training.model_config import load_model_config_overrides

    overrides = load_model_config_overrides(path)
    assert overrides, f"{path.name} overrides nothing"
    config = SimpleViTConfig(**overrides)
    assert all(getattr(config, key) == value for key, value in overrides.items())
    assert SimpleViTForImageClassification(config).num_parameters() <= 200_000


def test_weight_decay_scope():
    sys.path.insert(0, str(ROOT))
    from configuration_simple_vit import SimpleViTConfig
    from modeling_simple_vit import SimpleViTForImageClassification
    from simple_vit_training.optim import make_optimizer

    model = SimpleViTForImageClassification(SimpleViTConfig(**TINY_MODEL))
    names = {id(p): n for n, p in model.named_parameters()}
    everything = make_optimizer(model, 1e-3, 0.1, "all").param_groups
    assert len(everything) == 1 and everything[0]["weight_decay"] == 0.1
    assert len(everything[0]["params"]) == len(names)
    decayed, plain = make_optimizer(model, 1e-3, 0.1, "weights").param_groups
    decayed_names = {names[id(p)] for p in decayed["params"]}
    plain_names = {names[id(p)] for p in plain["params"]}
    assert plain["weight_decay"] == 0.0 and decayed_names | plain_names == set(names.values())
    assert "vit.embeddings.cls_token" in plain_names and "vit.embeddings.position_embeddings" in plain_names
    assert not any(n.endswith("bias") or "layernorm" in n for n in decayed_names)
    assert "classifier.weight" in decayed_names
    # Locality self-attention's learned scales are never decayed, whatever the scope.
    lsa = SimpleViTForImageClassification(SimpleViTConfig(**TINY_MODEL, locality_self_attention=True))
    names = {id(p): n for n, p in lsa.named_parameters()}
    for scope in ("all", "weights"):
        groups = make_optimizer(lsa, 1e-3, 0.1, scope).param_groups
        undecayed = {names[id(p)] for group in groups if group["weight_decay"] == 0.0 for p in group["params"]}
        scales = {n for n in names.values() if n.endswith("attention.scaling")}
        assert len(scales) == 2 and scales <= undecayed, scope
        assert sum(len(group["params"]) for group in groups) == len(names)
    assert "vit.encoder.layers.0.mlp.fc1.weight" not in undecayed


class _RecordingFS:
    """Wraps os.open/os.fsync/os.replace so a test can see which paths were flushed before each rename."""

    def __init__(self, monkeypatch):
        self.open_fds, self.synced, self.renames = {}, set(), []
        real_open, real_fsync, real_replace = os.open, os.fsync, os.replace

        def recording_open(path, flags, *args, **kwargs):
            fd = real_open(path, flags, *args, **kwargs)
            self.open_fds[fd] = Path(path).resolve()
            return fd

        def recording_fsync(fd):
            real_fsync(fd)
            self.synced.add(self.open_fds[fd])

        def recording_replace(src, dst):
            src = Path(src).resolve()
            files = [p for p in ([src] if src.is_file() else src.rglob("*")) if p.is_file()]
            self.renames.append((src, [p for p in files if p not in self.synced]))
            real_replace(src, dst)

        monkeypatch.setattr(os, "open", recording_open)
        monkeypatch.setattr(os, "fsync", recording_fsync)
        monkeypatch.setattr(os, "replace", recording_replace)


def test_files_are_flushed_and_readable_before_they_are_renamed_into_place(monkeypatch, tmp_path):
    sys.path.insert(0, str(ROOT))
    from configuration_simple_vit import SimpleViTConfig
    from modeling_simple_vit import SimpleViTForImageClassification
    from simple_vit_training.atomic_files import write_atomically
    from simple_vit_training.checkpoints import save_checkpoint, save_final_model
    from simple_vit_training.data import make_image_processor

    class FakeAccelerator:  # the parts of accelerate's API that save_checkpoint uses, one process
        is_main_process = True

        def wait_for_everyone(self):
            pass

        def save_state(self, folder):
            Path(folder).mkdir()
            Path(folder, "model.safetensors").write_bytes(b"weights")
            Path(folder, "model.safetensors").chmod(0o600)  # as safetensors creates it
            Path(folder, "random_states_0.pkl").write_bytes(b"rng")

    fs = _RecordingFS(monkeypatch)
    write_atomically(tmp_path / "metrics.json", lambda tmp: Path(tmp).write_text("{}"))
    save_checkpoint(FakeAccelerator(), tmp_path, epoch=3)
    config = SimpleViTConfig(**TINY_MODEL)
    save_final_model(SimpleViTForImageClassification(config), make_image_processor(config), tmp_path)

    assert json.loads((tmp_path / "metrics.json").read_text()) == {}
    assert (tmp_path / "checkpoints" / "epoch_3" / "random_states_0.pkl").read_bytes() == b"rng"
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "preprocessor_config.json").is_file()
    renamed = [src.name for src, _ in fs.renames]
    assert any(n.startswith(".metrics.json.") for n in renamed) and ".epoch_3.tmp" in renamed
    assert "model.safetensors" in renamed and "config.json" in renamed
    assert all(not unsynced for _, unsynced in fs.renames), [(s.name, u) for s, u in fs.renames if u]
    published = [tmp_path / "metrics.json", tmp_path / "model.safetensors", tmp_path / "config.json",
                 tmp_path / "checkpoints" / "epoch_3" / "model.safetensors"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in published} == {p.name: oct(0o666 & ~umask) for p in published}


def test_batch_augment_boxes_follow_random_resized_crop():
    sys.path.insert(0, str(ROOT))
    from simple_vit_training.augmentation import BatchAugment

    torch.manual_seed(0)
    augment = BatchAugment("tutorial", 32)
    boxes = augment.crop_boxes(4000, 32, "cpu")
    width, height = boxes[:, 3] - boxes[:, 1], boxes[:, 4] - boxes[:, 2]
    assert (boxes[:, 1] >= 0).all() and (boxes[:, 2] >= 0).all()
    assert (boxes[:, 3] <= 32).all() and (boxes[:, 4] <= 32).all()
    area = width * height / 1024
    assert area.min() >= 0.75 and area.max() <= 1.0  # scale (0.8, 1.0), up to rounding
    assert (width != height).any()  # aspect ratios vary
    assert torch.equal(boxes[:, 0], torch.arange(4000, dtype=boxes.dtype))  # each box crops its own image
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    out = augment(images)
    assert out.shape == (64, 3, 32, 32) and out.dtype == torch.float32
    assert 0 <= out.min() and out.max() <= 255
    assert not torch.equal(out, images.float())  # it did something
    # "none" is the identity
    assert torch.equal(BatchAugment("none", 32)(images), images.float())


def test_pad_crop_is_a_shifted_window_of_the_zero_padded_image():
    import torch.nn.functional as F

    sys.path.insert(0, str(ROOT))
    from simple_vit_training.augmentation import BatchAugment

    torch.manual_seed(0)
    images = torch.randint(1, 256, (300, 3, 30, 30), dtype=torch.uint8)  # no zeros: padding is recognisable
    out = BatchAugment("pad-crop", 30)(images)
    assert out.shape == (300, 3, 30, 30) and out.dtype == torch.float32
    padded = F.pad(images, [4] * 4).float()
    shifts, flips = set(), 0
    for i in range(len(images)):
        # exactly one window (and orientation) of the padded image, copied without interpolation
        found = [(top, left, flip) for top in range(9) for left in range(9) for flip in (False, True)
                 if torch.equal(out[i], padded[i, :, top:top + 30, left:left + 30].flip(-1) if flip
                                else padded[i, :, top:top + 30, left:left + 30])]
        assert len(found) == 1, (i, found)
        shifts.add(found[0][:2])
        flips += found[0][2]
    # offsets cover 0..8 both ways, as v2.RandomCrop(30, padding=4) draws them (81 windows; 300 draws)
    assert {top for top, _ in shifts} == set(range(9)) == {left for _, left in shifts} and len(shifts) > 60
    assert 100 < flips < 200  # about half flipped


def test_decoded_images_are_uint8_and_match_the_dataset(hub_dataset):
    import datasets
    from torchvision.transforms import v2

    sys.path.insert(0, str(ROOT))
    from simple_vit_training.data import decode_images

    dataset = datasets.load_dataset(str(hub_dataset), split="train")
    pixels, labels = decode_images(dataset, "img", "label", 16)
    assert pixels.dtype == torch.uint8 and pixels.shape == (96, 3, 16, 16)  # not datasets' default int64
    assert labels.dtype == torch.int64 and labels.tolist() == dataset["label"]
    for i in (0, 57):
        assert torch.equal(pixels[i], v2.functional.pil_to_tensor(dataset[i]["img"].convert("RGB")))


# Two epochs with workers: they are started again for the second.
@pytest.mark.parametrize("policy, workers, epochs", [("pad-crop", 0, 1), ("trivialaugment", 0, 1),
                                                     ("randaugment", 0, 1), ("trivialaugment", 2, 2)])
def test_augmentation_options_train(hub_dataset, tiny_model_config, tmp_path, policy, workers, epochs):
    out = tmp_path / "out"
    run_train(*common_args(hub_dataset, tiny_model_config, out,
                           **{"--epochs": epochs, "--augmentation": policy, "--num-workers": workers}))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["args"]["augmentation"] == policy and len(metrics["eval_accuracy"]) == epochs
    assert metrics["args"]["num_workers"] == workers


def test_trivialaugment_workers_under_two_process_ddp(hub_dataset, tiny_model_config, tmp_path):
    """A policy with decode workers under a gloo DDP group: each process trains on its own DeviceBatches shard
    (there is no train DataLoader for accelerate to shard any more), and every process takes the same steps."""
    out = tmp_path / "ddp"
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    run_train(*common_args(hub_dataset, tiny_model_config, out, **{"--epochs": 1, "--batch-size": 8,
                                                                  "--augmentation": "trivialaugment",
                                                                  "--num-workers": 1}), launcher=launcher)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["train_samples"] == 96 and len(metrics["eval_accuracy"]) == 1


def test_policy_images_draw_per_image_in_each_worker():
    """The batched TrivialAugment (which replaced the per-image loader path): every image gets its own draw, within
    a batch and from one batch to the next (a policy applied once per batch, or a draw repeated across calls, would
    repeat outputs)."""
    sys.path.insert(0, str(ROOT))
    from simple_vit_training.augmentation import BatchAugment

    torch.manual_seed(0)
    image = torch.randint(0, 256, (3, 30, 30), dtype=torch.uint8)
    images = image.expand(64, -1, -1, -1).contiguous()  # 64 copies of one image: any difference is the policy's
    policy = BatchAugment("trivialaugment", 30).batch_policy
    batches = [policy(images[i:i + 16]) for i in range(0, 64, 16)]  # four batches, as a loader would pass them
    out = torch.cat(batches)
    assert out.shape == (64, 3, 30, 30) and out.dtype == torch.uint8
    distinct = {tuple(x.flatten().tolist()) for x in out}
    assert len(distinct) > 20, len(distinct)  # 14 operations x 31 magnitudes: many different outputs
    # Successive batches of the same images draw anew.
    assert not torch.equal(batches[0], batches[1])
    # Each image keeps its place in the batch: those that drew Identity come back unchanged where they were.
    different = torch.randint(0, 256, (64, 3, 30, 30), dtype=torch.uint8)
    torch.manual_seed(1)
    op, _, _ = policy.draw(64, "cpu")
    torch.manual_seed(1)
    kept, identity = policy(different), op == 0  # OPS[0] is "Identity"
    assert identity.any() and torch.equal(kept[identity], different[identity])
    assert not torch.equal(kept[~identity], different[~identity])


def test_training_normalisation_matches_the_saved_image_processor():
    sys.path.insert(0, str(ROOT))
    from configuration_simple_vit import SimpleViTConfig
    from simple_vit_training.data import make_image_processor, make_normalizer

    processor = make_image_processor(SimpleViTConfig(image_size=30, patch_size=5, hidden_size=36,
                                                     num_attention_heads=6))
    images = torch.randint(0, 256, (5, 3, 30, 30), dtype=torch.uint8)
    expected = processor(images=images, return_tensors="pt")["pixel_values"]
    assert torch.allclose(make_normalizer(processor, "cpu")(images.float()), expected, atol=1e-6)


@pytest.mark.skipif(not CIFAR10.is_dir(), reason="the CIFAR-10 copy (../shared/datasets/cifar10) is not present")
def test_cifar10_copy_integration(tmp_path):
    out = tmp_path / "out"
    run_train("--dataset-name", CIFAR10, "--output-dir", out, "--epochs", "1", "--max-train-samples", "512",
              "--max-eval-samples", "256", "--batch-size", "64")
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["train_samples"], metrics["eval_samples"]) == (512, 256)
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"]["0"] == "airplane" and config["id2label"]["9"] == "truck"


def test_recipe_presets_set_defaults_that_flags_override():
    sys.path.insert(0, str(ROOT))
    from run_train import parse_args
    from simple_vit_training.recipes import read_recipe

    def recipe(name):  # the file's settings (its description is not one)
        return {k: v for k, v in read_recipe(name).items() if k != "description"}

    tutorial = parse_args([])
    assert (tutorial.lr, tutorial.weight_decay, tutorial.batch_size, tutorial.epochs) == (1e-2, 1e-2, 256, 100)
    assert (tutorial.lr_scheduler, tutorial.augmentation, tutorial.output_dir) == (
        "constant", "tutorial", os.path.join("experiments", "simple-vit"))
    improved = parse_args(["--recipe", "improved"])
    for key, value in recipe("improved").items():
        assert getattr(improved, key) == value
    assert parse_args(["--recipe", "improved", "--lr", "0.5"]).lr == 0.5
    short = parse_args(["--recipe", "improved-40"])
    for key, value in recipe("improved-40").items():
        assert getattr(short, key) == value
    long = parse_args(["--recipe", "improved-100"])
    assert (long.epochs, long.augmentation, long.batch_size, long.lr) == (100, "trivialaugment", 64, 4e-3)
    assert long.model_config == "configs/six-layers-mean-pooling-spt-lsa.json"
    assert parse_args(["--recipe", "improved-40", "--model-config", "other.json"]).model_config == "other.json"


def test_improved_40_recipe_model_config_resolves_from_any_directory(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT))
    from configuration_simple_vit import SimpleViTConfig
    from modeling_simple_vit import SimpleViTForImageClassification
    from run_train import parse_args
    from simple_vit_training.model_config import load_model_config_overrides

    monkeypatch.chdir(tmp_path)  # no configs/ here: the recipe's relative path must fall back to the project folder
    overrides = load_model_config_overrides(parse_args(["--recipe", "improved-40"]).model_config)
    config = SimpleViTConfig(**overrides)
    assert (config.num_hidden_layers, config.classifier_pooling, config.hidden_size) == (6, "mean", 48)
    assert SimpleViTForImageClassification(config).num_parameters() <= 200_000
    # A file of the same relative name in the working directory is the one the user means: it wins.
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "six-layers-mean-pooling.json").write_text(json.dumps({"num_hidden_layers": 2}))
    assert load_model_config_overrides("configs/six-layers-mean-pooling.json") == {"num_hidden_layers": 2}
