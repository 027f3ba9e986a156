"""Test helpers: a tiny synthetic image dataset and a SimpleViT checkpoint trained on it by run_train.py.

Both test_push_to_hub.py and test_attention_maps.py need "a checkpoint folder as run_train.py writes it". The
training run is the slow part (a subprocess that imports torch, transformers and accelerate), so it runs once
per test session: `trained_checkpoint()` caches its result at module level, and the pytest fixtures below are
thin wrappers around it (a session fixture imported into two test modules would otherwise run once per module).
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


ROOT = Path(__file__).resolve().parents[1]
# Three named classes whose images differ by colour, so the names (not just ids) can be checked end to end.
CLASS_NAMES = ("blue", "green", "red")
IMAGE_SIZE = 32

_cache: dict[str, Path] = {}


def make_image_folder(root: Path, n_train: int = 8, n_test: int = 4, size: int = IMAGE_SIZE) -> Path:
    """Write `root/{train,test}/<class>/*.png`: noisy images tinted by their class's colour."""
    rng = np.random.default_rng(0)
    for split, count in (("train", n_train), ("test", n_test)):
        for channel, name in enumerate(CLASS_NAMES):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                pixels = rng.integers(0, 120, size=(size, size, 3), dtype=np.uint8)
                # A bright square of the class colour somewhere in the image: something to attend to.
                y, x = rng.integers(0, size - size // 3, size=2)
                pixels[y : y + size // 3, x : x + size // 3, {"blue": 2, "green": 1, "red": 0}[name]] = 255
                Image.fromarray(pixels).save(folder / f"{index}.png")
    return root


def clean_env(**overrides) -> dict:
    """The environment for a subprocess that must not see the project: no PYTHONPATH, offline Hub."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["HF_HUB_OFFLINE"] = "1"
    env["TOKENIZERS_PARALLELISM"] = "false"
    env.update(overrides)
    return env


def image_folder(base: Path) -> Path:
    if "dataset" not in _cache:
        _cache["dataset"] = make_image_folder(base / "images")
    return _cache["dataset"]


def trained_checkpoint(base: Path) -> Path:
    """Train SimpleViT for one short run on the synthetic folder with run_train.py; return its output folder."""
    if "checkpoint" not in _cache:
        dataset = image_folder(base)
        output = base / "run"
        command = [
            sys.executable, str(ROOT / "run_train.py"),
            "--dataset-name", str(dataset),
            "--epochs", "2",
            "--batch-size", "8",
            "--max-train-samples", "24",
            "--max-eval-samples", "12",
            "--num-workers", "0",
            "--save-model-every", "2",  # a checkpoints/ folder of training state, which must not be shared
            "--output-dir", str(output),
        ]  # fmt: skip
        result = subprocess.run(
            command, cwd=base, env=clean_env(HF_DATASETS_CACHE=str(base / "datasets-cache")),
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, f"training run failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        _cache["checkpoint"] = output
    return _cache["checkpoint"]


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory) -> Path:
    return image_folder(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    return trained_checkpoint(tmp_path_factory.getbasetemp())
