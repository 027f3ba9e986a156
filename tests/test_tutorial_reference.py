"""benchmarks/tutorial_reference.py, the tutorial's own code made resumable: a run stopped between epochs and started
again with the same command ends with the same numbers as a run never stopped, and it refuses another run's
checkpoint. Needs the tutorial's code and the CIFAR-10 copy in ../shared; skipped without them."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "tutorial_reference.py"
SHARED = ROOT.parent / "shared"
pytestmark = pytest.mark.skipif(
    not (SHARED / "reference" / "tutorial" / "vit.py").exists() or not (SHARED / "datasets" / "cifar10").exists(),
    reason="needs the tutorial's code and the CIFAR-10 copy in ../shared")

# A few batches: the first 300 training images (two batches, the second partial), 100 test images.
SMALL = ["--epochs", "2", "--seed", "5", "--max-train-samples", "300", "--max-eval-samples", "100"]
CURVE = ("epoch", "train_loss", "eval_loss", "eval_accuracy")


def command(output_dir, *extra):
    return [sys.executable, str(SCRIPT), *SMALL, "--output-dir", str(output_dir), *extra]


def run(output_dir, *extra):
    return subprocess.run(command(output_dir, *extra), capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def metrics(output_dir):
    return json.loads((Path(output_dir) / "metrics.json").read_text())


def test_a_stopped_run_resumes_to_the_uninterrupted_runs_numbers(tmp_path):
    straight = run(tmp_path / "straight")
    assert straight.returncode == 0, straight.stderr
    whole = metrics(tmp_path / "straight")
    assert whole["epoch"] == [1, 2] and whole["num_parameters"] == 119_098  # the tutorial's model, no final LayerNorm
    assert (whole["train_samples"], whole["eval_samples"]) == (300, 100)
    assert (tmp_path / "straight" / "metrics.png").stat().st_size > 0

    # The same command, stopped (SIGTERM, as a session's end does) once its first epoch is saved, then again.
    stopped = tmp_path / "stopped"
    process = subprocess.Popen(command(stopped), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 300
    while not (stopped / "metrics.json").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    assert metrics(stopped)["epoch"] == [1]
    resumed = run(stopped)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed after epoch 1" in resumed.stderr
    again = metrics(stopped)
    assert {key: again[key] for key in CURVE} == {key: whole[key] for key in CURVE}
    assert len(again["epoch_seconds"]) == 2 and again["args"]["seed"] == 5

    # Another run's checkpoint (here: another seed) is named and refused, not silently continued.
    other = subprocess.run([*command(stopped), "--seed", "6"], capture_output=True, text=True, cwd=ROOT)
    assert other.returncode != 0 and "belongs to another run" in other.stderr
    assert "Traceback" not in other.stderr


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "0", "--output-dir", "x"], "--epochs must be at least 1, got 0"),
    (["--epochs", "1", "--output-dir", "x", "--tutorial-dir", "nowhere"], "no vit.py in --tutorial-dir nowhere"),
])
def test_misuse_is_one_line_without_a_traceback(argv, message, tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), *argv], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "x").exists()
