"""run_train.py as users of transformers' example scripts call it: their flag names, --help, --print-config,
--report_to, which split is evaluated, the warmup/schedule options, CPU threads under `accelerate launch`, and the
figure of a one-epoch run."""

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from cli import CLIError
from run_train import build_parser, parse_args
from simple_vit_training.data import load_splits
from simple_vit_training.metrics import metrics_figure, plot_metrics
from simple_vit_training.optim import make_scheduler
from synthetic_data import write_hub_layout, write_image_folder

ROOT = Path(__file__).resolve().parents[1]
TINY_MODEL = {"image_size": 15, "patch_size": 5, "hidden_size": 18, "num_hidden_layers": 1,
              "num_attention_heads": 3, "intermediate_size": 19}
LAUNCH = [sys.executable, "-m", "accelerate.commands.launch"]
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "tiny.json"
    path.write_text(json.dumps(TINY_MODEL))
    return path


@pytest.fixture(scope="module")
def three_splits(tmp_path_factory):
    return write_hub_layout(tmp_path_factory.mktemp("three"), n_train=40, n_test=12, n_validation=9, size=15)


def clean_env(tmp_path, **extra):
    """No PYTHONPATH, no thread setting from the test session, and an empty HF_HOME: no accelerate config."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "OMP_NUM_THREADS")}
    env.update(HF_HUB_OFFLINE="1", PYTHONWARNINGS="ignore", HF_HOME=str(tmp_path / "hf_home"), **extra)
    return env


def train(tmp_path, *args, launcher=(sys.executable,), env=None, check=True):
    result = subprocess.run([*launcher, str(ROOT / "run_train.py"), *map(str, args)], cwd=tmp_path,
                            env=env or clean_env(tmp_path), capture_output=True, text=True, timeout=600)
    if check:
        assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def tiny_run(dataset, config, out, *extra):
    return ["--dataset-name", dataset, "--model-config", config, "--output-dir", out, "--epochs", 1,
            "--batch-size", 8, "--max-train-samples", 16, "--max-eval-samples", 8, *extra]


# ---------------------------------------------------------------------------------------------------------------
# Flag names
# ---------------------------------------------------------------------------------------------------------------
EXAMPLE_FLAGS = {  # transformers' run_image_classification*.py name -> ours
    "--dataset_name": "--dataset-name", "--dataset_config_name": "--dataset-config-name",
    "--train_dir": "--train-dir", "--validation_dir": "--validation-dir",
    "--image_column_name": "--image-column", "--label_column_name": "--label-column",
    "--train_val_split": "--train-val-split", "--output_dir": "--output-dir", "--num_train_epochs": "--epochs",
    "--learning_rate": "--lr", "--weight_decay": "--weight-decay", "--per_device_train_batch_size": "--batch-size",
    "--per_device_eval_batch_size": "--eval-batch-size", "--gradient_accumulation_steps":
    "--gradient-accumulation-steps", "--lr_scheduler_type": "--lr-scheduler", "--num_warmup_steps":
    "--num-warmup-steps", "--max_train_samples": "--max-train-samples", "--max_eval_samples": "--max-eval-samples",
    "--seed": "--seed", "--resume_from_checkpoint": "--resume-from-checkpoint", "--report_to": "--report-to",
}
EXAMPLE_VALUES = {"--dataset_name": "some/dataset", "--dataset_config_name": "plain", "--train_dir": "imgs/train",
                  "--validation_dir": "imgs/val", "--image_column_name": "pic", "--label_column_name": "cat",
                  "--train_val_split": "0.2", "--output_dir": "out", "--num_train_epochs": "3",
                  "--learning_rate": "0.001", "--weight_decay": "0.2", "--per_device_train_batch_size": "8",
                  "--per_device_eval_batch_size": "5", "--gradient_accumulation_steps": "2",
                  "--lr_scheduler_type": "linear", "--num_warmup_steps": "4", "--max_train_samples": "10",
                  "--max_eval_samples": "6", "--seed": "3", "--resume_from_checkpoint": "latest",
                  "--report_to": "none"}


def test_the_example_scripts_flags_mean_ours():
    theirs = [part for flag, value in EXAMPLE_VALUES.items() for part in (flag, value)]
    ours = [part for flag, value in EXAMPLE_VALUES.items() for part in (EXAMPLE_FLAGS[flag], value)]
    parsed = vars(parse_args(theirs))
    assert parsed == vars(parse_args(ours))
    assert (parsed["epochs"], parsed["lr"], parsed["batch_size"], parsed["lr_scheduler"]) == (3, 0.001, 8, "linear")
    assert (parsed["dataset_config_name"], parsed["train_dir"], parsed["num_warmup_steps"]) == ("plain", "imgs/train", 4)


def test_every_option_has_both_spellings():
    for action in build_parser()._actions:
        for name in action.option_strings:
            if name.startswith("--"):
                for spelling in (name.replace("_", "-"), "--" + name[2:].replace("-", "_")):
                    assert spelling in action.option_strings, (spelling, action.option_strings)
    assert parse_args(["--max_grad_norm", "2", "--weight-decay-scope", "weights"]).max_grad_norm == 2.0


def test_with_tracking_means_report_to_all_unless_trackers_are_named():
    args = parse_args(["--with_tracking"])
    assert args.report_to == "all" and "with_tracking" not in vars(args)  # recorded as what it does
    assert parse_args([]).report_to == "none"
    if importlib.util.find_spec("tensorboard") is not None:
        assert parse_args(["--with_tracking", "--report_to", "tensorboard"]).report_to == "tensorboard"


@pytest.mark.parametrize("value, expected", [("bogus", "unknown tracker(s) bogus"),
                                             ("tensorboard,bogus", "unknown tracker(s) bogus"),
                                             (",", "(none given)"),
                                             ("aim", "not installed")])
def test_report_to_is_checked_against_accelerates_trackers(value, expected):
    if value == "aim" and importlib.util.find_spec("aim") is not None:
        pytest.skip("aim is installed here")
    with pytest.raises(CLIError, match="--report_to") as error:
        parse_args(["--report_to", value])
    assert expected in str(error.value)
    assert parse_args(["--report-to", "all"]).report_to == "all"


def test_deprecated_percentage_is_the_fraction(capsys):
    assert parse_args(["--validation-split-percentage", "20"]).train_val_split == 0.2
    assert "deprecated" in capsys.readouterr().err
    assert parse_args([]).train_val_split == 0.15  # the example scripts' default
    with pytest.raises(CLIError, match="train_val_split"):
        parse_args(["--train_val_split", "1.5"])
    with pytest.raises(CLIError, match="--validation_dir needs --train_dir"):
        parse_args(["--validation_dir", "somewhere"])


def test_help_gives_every_option_a_meaning_and_its_default(capsys):
    parser = build_parser()
    options = [action for action in parser._actions if action.dest != "help"]
    assert all(action.help and len(action.help) > 10 for action in options), [
        action.dest for action in options if not action.help]
    # One block per option under "options:", each starting with its option strings.
    blocks = re.split(r"\n(?=  -)", parser.format_help().split("\noptions:\n", 1)[1])
    for action in options:
        block = next(b for b in blocks if re.match(rf"  {re.escape(action.option_strings[0])}[ ,\n]", b + "\n"))
        if action.default is not argparse.SUPPRESS:  # (a deprecated alias: its option's default is shown there)
            assert "(default:" in block, block
    # With a recipe, --help shows the recipe's values as the defaults.
    with pytest.raises(SystemExit) as exited:
        parse_args(["--recipe", "improved-40", "--help"])
    assert exited.value.code == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert "(default: 0.004)" in shown and "(default: configs/six-layers-mean-pooling.json)" in shown


def test_print_config_prints_the_resolved_settings_and_exits(tmp_path):
    result = train(tmp_path, "--recipe", "improved-40", "--learning_rate", "0.003", "--print-config",
                   "--output-dir", tmp_path / "out")
    settings = json.loads(result.stdout)
    assert settings["args"]["lr"] == 0.003 and settings["args"]["epochs"] == 40
    assert settings["args"]["recipe"] == "improved-40"
    model = settings["model_config"]
    assert (model["num_hidden_layers"], model["classifier_pooling"], model["hidden_size"]) == (6, "mean", 48)
    assert not (tmp_path / "out").exists()  # nothing was trained or written


# ---------------------------------------------------------------------------------------------------------------
# Which split is evaluated
# ---------------------------------------------------------------------------------------------------------------
def splits_for(dataset, *extra):
    return load_splits(parse_args(["--dataset-name", str(dataset), *map(str, extra)]))


def test_the_validation_split_is_evaluated_when_there_is_one(three_splits):
    splits = splits_for(three_splits)
    assert (splits.eval_split, len(splits.evaluation), len(splits.train)) == ("validation", 9, 40)
    assert splits.dataset_name == str(three_splits)
    explicit = splits_for(three_splits, "--eval-split", "test")
    assert (explicit.eval_split, len(explicit.evaluation)) == ("test", 12)
    with pytest.raises(CLIError, match="no 'val' split to evaluate on"):
        splits_for(three_splits, "--eval-split", "val")


def test_test_split_then_a_carved_one(tmp_path):
    two = write_hub_layout(tmp_path / "two", n_train=20, n_test=7, size=15)
    assert (splits_for(two).eval_split, len(splits_for(two).evaluation)) == ("test", 7)
    only_train = write_hub_layout(tmp_path / "one", n_train=40, n_test=0, size=15)
    carved = splits_for(only_train)
    assert (carved.eval_split, len(carved.evaluation), len(carved.train)) == ("train[carved 15%]", 6, 34)
    carved = splits_for(only_train, "--train_val_split", "0.25")
    assert (carved.eval_split, len(carved.evaluation)) == ("train[carved 25%]", 10)


def test_dataset_config_name_selects_the_configuration(tmp_path):
    root = write_hub_layout(tmp_path / "configs", n_train=20, n_test=5, size=15)
    write_hub_layout(root, n_train=11, n_test=3, size=15, folder="small")
    (root / "README.md").write_text(
        "---\nconfigs:\n"
        "- config_name: default\n  data_files:\n  - split: train\n    path: data/train-*\n"
        "  - split: test\n    path: data/test-*\n"
        "- config_name: small\n  data_files:\n  - split: train\n    path: small/train-*\n"
        "  - split: test\n    path: small/test-*\n---\n")
    assert len(splits_for(root).train) == 20
    small = splits_for(root, "--dataset_config_name", "small")
    assert (len(small.train), len(small.evaluation)) == (11, 3)


def test_train_and_validation_dirs_are_image_folders(tmp_path):
    folder = write_image_folder(tmp_path / "images", n_train=24, n_test=9, size=15)
    splits = splits_for("unused", "--train_dir", folder / "train", "--validation_dir", folder / "test")
    assert (splits.eval_split, len(splits.train), len(splits.evaluation)) == ("validation", 24, 9)
    assert splits.dataset_name == f"imagefolder:{folder / 'train'}"
    carved = splits_for("unused", "--train_dir", folder / "train")
    assert (carved.eval_split, len(carved.evaluation)) == ("train[carved 15%]", 4)


# ---------------------------------------------------------------------------------------------------------------
# Schedules
# ---------------------------------------------------------------------------------------------------------------
def learning_rates(steps, num_processes=1, **settings):
    args = SimpleNamespace(**{"lr_scheduler": "constant", "warmup_epochs": 0.0, "num_warmup_steps": None,
                              "epochs": 2, "gradient_accumulation_steps": 1, **settings})
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = make_scheduler(optimizer, args, batches_per_epoch=5, num_processes=num_processes)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def test_num_warmup_steps_and_the_schedulers():
    # linear: 3 warmup steps to the peak, then linearly to 0 at step 10 (2 epochs x 5 steps)
    assert learning_rates(10, lr_scheduler="linear", num_warmup_steps=3) == pytest.approx(
        [0, 1 / 3, 2 / 3, 1, 6 / 7, 5 / 7, 4 / 7, 3 / 7, 2 / 7, 1 / 7])
    # the same warmup given in epochs (1 epoch = 5 steps) or in steps
    assert learning_rates(10, warmup_epochs=1.0, lr_scheduler="cosine") == learning_rates(
        10, num_warmup_steps=5, lr_scheduler="cosine")
    # steps replace epochs; a constant schedule with a warmup warms up
    assert learning_rates(4, warmup_epochs=1.0, num_warmup_steps=2) == pytest.approx([0, 0.5, 1, 1])
    # under 2 processes accelerate steps the scheduler twice per optimizer step: warmup counts optimizer steps
    assert learning_rates(6, num_processes=2, num_warmup_steps=2) == pytest.approx([0, 0.25, 0.5, 0.75, 1, 1])


# ---------------------------------------------------------------------------------------------------------------
# The figure
# ---------------------------------------------------------------------------------------------------------------
def test_a_one_epoch_figure_is_not_blank(tmp_path):
    one_epoch = {"epoch": [1], "train_loss": [1.1], "eval_loss": [1.0], "eval_accuracy": [0.4]}
    lines = [line for axis in metrics_figure(one_epoch).axes for line in axis.get_lines()]
    assert len(lines) == 3 and all(line.get_marker() not in (None, "", "None", " ") for line in lines)
    plot_metrics(one_epoch, tmp_path / "metrics.png")
    pixels = np.asarray(Image.open(tmp_path / "metrics.png").convert("RGB")).astype(int)
    green = (np.abs(pixels - [44, 160, 44]).sum(axis=-1) < 40).sum()  # tab:green: only the accuracy point
    assert green > 10, green


# ---------------------------------------------------------------------------------------------------------------
# End to end: the example's flags, the evaluated split in metrics.json, trackers, CPU threads
# ---------------------------------------------------------------------------------------------------------------
def test_an_example_script_command_trains_and_records_the_split(three_splits, tiny_config, tmp_path):
    out = tmp_path / "out"
    result = train(tmp_path, "--dataset_name", three_splits, "--model-config", tiny_config, "--output_dir", out,
                   "--num_train_epochs", 1, "--per_device_train_batch_size", 8, "--learning_rate", 0.003,
                   "--lr_scheduler_type", "linear", "--num_warmup_steps", 2, "--seed", 5)
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["eval_split"], metrics["eval_samples"], metrics["train_samples"]) == ("validation", 9, 40)
    assert metrics["dataset_name"] == str(three_splits)
    assert metrics["args"]["lr_scheduler"] == "linear" and metrics["args"]["num_warmup_steps"] == 2
    assert "(validation)" in result.stdout
    # The resolved settings open every run's output.
    start = result.stdout.index("{")
    assert json.JSONDecoder().raw_decode(result.stdout[start:])[0]["args"]["seed"] == 5


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="tensorboard is not installed")
def test_report_to_tensorboard_writes_events(three_splits, tiny_config, tmp_path):
    out = tmp_path / "out"
    train(tmp_path, *tiny_run(three_splits, tiny_config, out, "--report_to", "tensorboard", "--exp-name", "tb"))
    events = list(out.rglob("events.out.tfevents.*"))
    assert events and all(path.stat().st_size > 0 for path in events), list(out.rglob("*"))


def recorded_threads(out):
    return json.loads((out / "metrics.json").read_text())["cpu_threads"]


def test_cpu_threads_under_each_launcher(three_splits, tiny_config, tmp_path):
    """`accelerate launch` without a config exports OMP_NUM_THREADS=1; the run must still use the machine's
    cores (split between its processes) unless the user asked for a number."""
    fresh = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
                           env=clean_env(tmp_path), capture_output=True, text=True, check=True)
    expected = {
        "python": ((sys.executable,), int(fresh.stdout)),  # torch's own default, untouched
        "accelerate": (LAUNCH, CORES),  # as the README says: `accelerate launch run_train.py`
        "accelerate-flag-1": ((*LAUNCH, "--num_cpu_threads_per_process", "1"), 1),
        "gloo-2": ((*LAUNCH, "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision",
                    "no", "--dynamo_backend", "no"), max(1, CORES // 2)),
    }
    measured = {}
    for name, (launcher, _) in expected.items():
        train(tmp_path, *tiny_run(three_splits, tiny_config, tmp_path / name), launcher=launcher)
        measured[name] = recorded_threads(tmp_path / name)
    # A thread count set in the environment is the user's choice, also under accelerate launch.
    train(tmp_path, *tiny_run(three_splits, tiny_config, tmp_path / "env-1"), launcher=LAUNCH,
          env=clean_env(tmp_path, OMP_NUM_THREADS="1"))
    measured["env-1"] = recorded_threads(tmp_path / "env-1")
    assert measured == {**{name: threads for name, (_, threads) in expected.items()}, "env-1": 1}


def test_launch_threads_benchmark_runs(three_splits, tiny_config, tmp_path):
    # Only on a tiny setting here (times on this busy machine would mean nothing): it runs, and reports both ways.
    result = subprocess.run(["bash", str(ROOT / "benchmarks" / "launch_threads.sh"), str(three_splits),
                             "--model-config", str(tiny_config), "--max-train-samples", "16",
                             "--max-eval-samples", "8", "--batch-size", "8"],
                            cwd=tmp_path, env=clean_env(tmp_path, PYTHON=sys.executable), capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()
            if line.startswith(("python ", "accelerate-launch "))}
    assert sorted(rows) == ["accelerate-launch", "python"], result.stdout
    threads = {name: int(row[row.index("cpu_threads") + 1]) for name, row in rows.items()}
    assert threads["accelerate-launch"] == CORES and threads["python"] >= 1, result.stdout
    assert all(float(row[row.index("train_seconds") + 1]) > 0 for row in rows.values())
