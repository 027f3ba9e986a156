"""The committed results are what they claim: each finished model under results/ reloads as Hub remote code and,
evaluated on the full CIFAR-10 test split through its own image processor, gives the accuracy its metrics.json
reports for the last epoch (the figure the README quotes)."""

import json
import os
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from experiment_log import stopped_run_commands

ROOT = Path(__file__).resolve().parents[1]
CIFAR10 = ROOT.parent / "shared" / "datasets" / "cifar10"
FINISHED = sorted(p.parent for p in (ROOT / "results").glob("*/model.safetensors"))


@pytest.mark.skipif(not CIFAR10.is_dir(), reason="the CIFAR-10 copy (../shared/datasets/cifar10) is not present")
@pytest.mark.skipif(not FINISHED, reason="no finished model under results/ yet")
@pytest.mark.parametrize("run", FINISHED, ids=[p.name for p in FINISHED])
def test_committed_model_reproduces_its_reported_accuracy(run, tmp_path):
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epoch"][-1] == metrics["args"]["epochs"], "the run did not finish"
    script = textwrap.dedent(f"""
        import json, torch, datasets
        from transformers import AutoImageProcessor, AutoModelForImageClassification
        model = AutoModelForImageClassification.from_pretrained({str(run)!r}, trust_remote_code=True).eval()
        processor = AutoImageProcessor.from_pretrained({str(run)!r})
        test = datasets.load_dataset({str(CIFAR10)!r}, split="test")
        correct = 0
        with torch.no_grad():
            for start in range(0, len(test), 1000):
                rows = test[start:start + 1000]
                pixels = processor(images=[im.convert("RGB") for im in rows["img"]], return_tensors="pt")
                preds = model(**pixels).logits.argmax(-1)
                correct += (preds == torch.tensor(rows["label"])).sum().item()
        print(json.dumps({{"accuracy": correct / len(test), "n": len(test)}}))
    """)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    env.pop("PYTHONPATH", None)
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured["n"] == 10000 == metrics["eval_samples"]
    assert measured["accuracy"] == pytest.approx(metrics["eval_accuracy"][-1], abs=3e-4)  # a borderline image may flip with batch size


# The run that measured `--recipe improved-40` (launched as `--recipe improved-40 --lr 4e-3`, before the preset's
# peak LR went from 3e-3 to 4e-3 on its result).
PRESET_RUN = ROOT / "results" / "improved-40-lr-4e-3"
# Arguments that say where data and outputs live, not how the model is trained (num_workers: processes for the
# one-time image decoding only).
NOT_RECIPE = {"recipe", "dataset_name", "output_dir", "exp_name", "save_model_every", "resume_from_checkpoint",
              "num_workers", "report_to", "checkpointing_steps", "save_total_limit"}


# Options added after some runs were made, with the value that means what those runs did.
ADDED_SINCE = {
    "max_grad_norm": None,  # no clipping
    "model_name_or_path": None,  # trained from scratch
    "ignore_mismatched_sizes": False,
    "push_to_hub": False,  # publishing after training changes no weight
    "hub_model_id": None,
    "checkpointing_steps": None,  # checkpoint cadence and rotation change no weight
    "save_total_limit": None,
    "dataset_config_name": None, "train_dir": None, "validation_dir": None,  # --dataset-name as given
    "num_warmup_steps": None,  # warmup in epochs (--warmup-epochs)
    "print_config": False,  # a training run
    "cuda_graph": "auto",  # how a GPU step is launched (never a graph on a CPU): the same training
}


def in_todays_terms(ran, now):
    """A run's recorded args in today's options. --validation-split-percentage (a percentage) became the fraction
    --train_val_split; --eval-split's default "test" became None: the dataset's validation split, else its test
    split, which is "test" for CIFAR-10 (train and test splits only). A run that evaluated CIFAR-10's test split
    carved nothing, so the fraction it would have carved did not count."""
    ran = dict(ran)
    if "validation_split_percentage" in ran:
        ran["train_val_split"] = ran.pop("validation_split_percentage") / 100
    if ran["eval_split"] == "test" and now["eval_split"] is None and Path(ran["dataset_name"]).name == "cifar10":
        ran["eval_split"] = None
        ran["train_val_split"] = now["train_val_split"]
    return ran


def settings_not_reproduced(ran, argv):
    """The training settings recorded in a run's metrics.json (`ran`) that `run_train.py argv` would not repeat."""
    sys.path.insert(0, str(ROOT))
    from run_train import parse_args

    now = vars(parse_args(argv))
    ran = in_todays_terms(ran, now)
    assert set(ran) <= set(now), f"options the script no longer has: {set(ran) - set(now)}"
    assert set(now) - set(ran) <= set(ADDED_SINCE), f"new options without a recorded old value: {set(now) - set(ran)}"
    missing = {key: (ADDED_SINCE[key], now[key]) for key in set(now) - set(ran) if now[key] != ADDED_SINCE[key]}
    differing = {key: (ran[key], now[key]) for key in ran if key not in NOT_RECIPE and ran[key] != now[key]}
    return {**missing, **differing}


# Each preset the README credits with a figure, and the run that measured it: the preset must expand to exactly the
# settings that run had (its model config included), so `--recipe NAME` repeats the quoted figure's run.
PRESET_RUNS = {
    "improved-40": PRESET_RUN,
    "improved-100": ROOT / "results" / "improved-40-spt-lsa-100-epochs-trivialaugment",
    "tutorial-size-100": ROOT / "results" / "seed-config",
    "improved-20": ROOT / "results" / "improved-20-no-final-layernorm",
    "conv-tokenizer-100": ROOT / "results" / "improved-100-conv-tokenizer",
    "conv-tokenizer-wide-100": ROOT / "results" / "conv-tokenizer-100-five-layers-hidden-64",
}


@pytest.mark.parametrize("recipe", sorted(PRESET_RUNS))
def test_preset_is_the_committed_run(recipe):
    sys.path.insert(0, str(ROOT))
    from run_train import load_model_config_overrides, parse_args

    folder = PRESET_RUNS[recipe]
    ran = json.loads((folder / "metrics.json").read_text())["args"]
    assert not settings_not_reproduced(ran, ["--recipe", recipe])
    config = json.loads((folder / "config.json").read_text())
    overrides = load_model_config_overrides(parse_args(["--recipe", recipe]).model_config)
    assert overrides and all(config[key] == value for key, value in overrides.items())


def readme_commands():
    """(output folder, argv) for each `python run_train.py ...` line in the experiment log's Commands."""
    log = (ROOT / "docs" / "experiments.md").read_text()
    commands = [shlex.split(line)[2:] for line in log.splitlines() if line.startswith("    python run_train.py ")]
    return [(argv[argv.index("--output-dir") + 1], argv) for argv in commands]


@pytest.mark.parametrize("folder, argv", readme_commands(), ids=[folder for folder, _ in readme_commands()])
def test_readme_command_repeats_the_committed_run(folder, argv):
    # A preset changed after runs were made with it must not silently change what their README commands do.
    ran = json.loads((ROOT / folder / "metrics.json").read_text())["args"]
    assert not settings_not_reproduced(ran, argv)


def test_readme_lists_the_run_commands():
    assert len(readme_commands()) >= 10


def test_stopped_runs_quote_commands():
    assert any(folder.endswith("-partial") for folder, _ in stopped_run_commands())


@pytest.mark.parametrize("folder, argv", stopped_run_commands(), ids=[folder for folder, _ in stopped_run_commands()])
def test_stopped_run_command_repeats_its_run(folder, argv):
    # A stopped run's command, rerun, must repeat the epochs it reached: its recorded settings, seed included.
    ran = json.loads((ROOT / folder / "metrics.json").read_text())["args"]
    assert not settings_not_reproduced(ran, argv)
