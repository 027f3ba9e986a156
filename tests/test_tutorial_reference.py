"""benchmarks/tutorial_reference.py, the tutorial's own code made resumable: on the same data and seed it computes
exactly what the shared harness (../shared/tools/tutorial_on_local_copy.py) computes; a run stopped between epochs and
started again with the same command ends with the same numbers as a run never stopped; it refuses another run's
checkpoint, and misuse is one line. The training tests need the tutorial's code and the CIFAR-10 copy in ../shared and
are skipped without them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "tutorial_reference.py"
SHARED = ROOT.parent / "shared"
HARNESS = SHARED / "tools" / "tutorial_on_local_copy.py"
needs_shared = pytest.mark.skipif(
    not (SHARED / "reference" / "tutorial" / "vit.py").exists() or not (SHARED / "datasets" / "cifar10").exists(),
    reason="needs the tutorial's code and the CIFAR-10 copy in ../shared")
CURVE = ("epoch", "train_loss", "eval_loss", "eval_accuracy")
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same thread count for every run compared here


def run(*argv):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, argv)], capture_output=True, text=True, cwd=ROOT,
                          env=ONE_THREAD)


def metrics(output_dir):
    return json.loads((Path(output_dir) / "metrics.json").read_text())


@pytest.fixture(scope="module")
def small_copy(tmp_path_factory):
    """The local copy's first 300 training and 100 test rows, in its own layout: two batches (the second partial)."""
    from datasets import load_dataset

    folder = tmp_path_factory.mktemp("cifar10-small")
    (folder / "plain_text").mkdir()
    for split, rows in (("train", 300), ("test", 100)):
        data = load_dataset(str(SHARED / "datasets" / "cifar10"), split=split).select(range(rows))
        data.to_parquet(str(folder / "plain_text" / f"{split}-00000-of-00001.parquet"))
    return folder


@needs_shared
def test_the_runner_computes_what_the_shared_harness_computes(small_copy, tmp_path):
    harness = subprocess.run([sys.executable, str(HARNESS), "2", "5"], capture_output=True, text=True, cwd=ROOT,
                             env={**ONE_THREAD, "CIFAR": str(small_copy)})
    assert harness.returncode == 0, harness.stderr
    theirs = [json.loads(line) for line in harness.stdout.splitlines()]
    done = run("--epochs", 2, "--seed", 5, "--dataset-name", small_copy, "--output-dir", tmp_path / "run")
    assert done.returncode == 0, done.stderr
    ours = metrics(tmp_path / "run")
    assert [(e["epoch"], e["train_loss"], e["eval_loss"], e["acc"]) for e in theirs] == list(
        zip(*(ours[key] for key in CURVE)))
    assert ours["num_parameters"] == 119_098  # the tutorial's model: no final LayerNorm
    assert (ours["train_samples"], ours["eval_samples"]) == (300, 100)
    assert (tmp_path / "run" / "metrics.png").stat().st_size > 0


@needs_shared
def test_a_stopped_run_resumes_to_the_uninterrupted_runs_numbers(small_copy, tmp_path):
    settings = ["--epochs", 2, "--seed", 6, "--dataset-name", small_copy]
    assert run(*settings, "--output-dir", tmp_path / "straight").returncode == 0
    whole = metrics(tmp_path / "straight")

    stopped = tmp_path / "stopped"
    first = run(*settings, "--output-dir", stopped, "--stop-after-epoch", 1)
    assert first.returncode == 0 and "stopped after epoch 1 of 2" in first.stderr
    assert metrics(stopped)["epoch"] == [1]
    assert sorted(p.name for p in (stopped / "checkpoints").iterdir()) == ["state.pt"]  # no temporary file left
    resumed = run(*settings, "--output-dir", stopped)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed after epoch 1" in resumed.stderr
    again = metrics(stopped)
    assert {key: again[key] for key in CURVE} == {key: whole[key] for key in CURVE}
    assert len(again["epoch_seconds"]) == 2

    # A crash after the last checkpoint but before its metrics: the next start writes them from the checkpoint.
    (stopped / "metrics.json").write_text(json.dumps({**again, "epoch": [1]}))
    mended = run(*settings, "--output-dir", stopped)
    assert mended.returncode == 0 and {key: metrics(stopped)[key] for key in CURVE} == {
        key: whole[key] for key in CURVE}

    # Another run's checkpoint (another seed) is named and refused, not continued; so is a folder that has metrics
    # but no checkpoint (a finished run's, kept without it), which a fresh start would overwrite.
    other = run("--epochs", 2, "--seed", 7, "--dataset-name", small_copy, "--output-dir", stopped)
    assert other.returncode == 2 and "belongs to another run" in other.stderr
    assert len(other.stderr.strip().splitlines()) == 1
    (stopped / "checkpoints" / "state.pt").unlink()
    kept = run(*settings, "--output-dir", stopped)
    assert kept.returncode == 2 and "holds a metrics.json but no checkpoint" in kept.stderr
    assert len(kept.stderr.strip().splitlines()) == 1 and metrics(stopped)["epoch"] == [1, 2]


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "0"], "--epochs must be at least 1, got 0"),
    (["--epochs", "1", "--max-train-samples", "0"], "--max-train-samples must be at least 1, got 0"),
    (["--epochs", "1", "--tutorial-dir", "nowhere"], "no vit.py in --tutorial-dir nowhere"),
    (["--epochs", "1", "--tutorial-dir", "tutorial", "--dataset-name", "nowhere"],
     "--dataset-name nowhere is not a folder"),
])
def test_misuse_is_one_line_without_a_traceback(argv, message, tmp_path):
    (tmp_path / "tutorial").mkdir()
    (tmp_path / "tutorial" / "vit.py").write_text("")  # passes the check without ../shared; never imported here
    done = subprocess.run([sys.executable, str(SCRIPT), *argv, "--output-dir", "x"], capture_output=True, text=True,
                          cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "x").exists()
