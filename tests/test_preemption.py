"""Training that survives preemption and crashes: step checkpoints, mid-epoch resume, SIGTERM/SIGINT, SIGKILL at
any moment (also inside a checkpoint write), damaged checkpoints, rotation and a full disk.

The subprocess tests train a tiny model (tests/test_train.py's) on 96 synthetic images in batches of 16: 6 optimizer
steps an epoch, 12 in two epochs, a checkpoint every 2. SIGKILL is delivered by the process itself at an exact point
(SIMPLE_VIT_FAULT, see simple_vit_training/checkpoints.py), so a kill "inside a checkpoint write" is deterministic;
the step it lands on is drawn from a seeded generator. SIGTERM is sent by the test while the run trains.
"""

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from synthetic_data import write_hub_layout

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from cli import CLIError  # noqa: E402
from simple_vit_training.checkpoints import (CheckpointError, find_latest_checkpoint, resolve_resume_checkpoint,  # noqa: E402
                                             rotate_checkpoints, save_checkpoint, verify_checkpoint)
from simple_vit_training.metrics import TrainingHistory, write_metrics  # noqa: E402

TINY_MODEL = {"image_size": 16, "patch_size": 4, "hidden_size": 24, "num_hidden_layers": 2,
              "num_attention_heads": 3, "intermediate_size": 37}


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SIMPLE_VIT_FAULT")}
    env.update(HF_HUB_OFFLINE="1", PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1", **extra)
    return env


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("preemption")
    dataset = write_hub_layout(base / "data", n_train=96, n_test=48, size=16)
    config = base / "tiny.json"
    config.write_text(json.dumps(TINY_MODEL))
    return dataset, config, base


def _command(setup, out, augmentation, workers=0, *extra):
    dataset, config, _ = setup
    return [sys.executable, str(ROOT / "run_train.py"), "--dataset-name", str(dataset), "--model-config", str(config),
            "--output-dir", str(out), "--batch-size", "16", "--lr", "3e-3", "--seed", "7", "--epochs", "2",
            "--lr-scheduler", "constant", "--warmup-epochs", "1.5", "--augmentation", augmentation,
            "--num-workers", str(workers), *map(str, extra)]


def _run(command, check=True, **env):
    result = subprocess.run(command, cwd=ROOT, env=_env(**env), capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"run_train failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return result


_references = {}


def _reference(setup, augmentation, workers):
    """The uninterrupted run of these settings (once per module)."""
    key = (augmentation, workers)
    if key not in _references:
        out = setup[2] / f"straight-{augmentation}-{workers}"
        _run(_command(setup, out, augmentation, workers))
        _references[key] = out
    return _references[key]


def _assert_same_run(straight, resumed):
    a, b = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst <= 1e-6, worst
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (straight, resumed))
    assert mb["epoch"] == [1, 2]
    for key in ("train_loss", "eval_loss", "eval_accuracy"):
        assert mb[key] == pytest.approx(ma[key], abs=1e-6), key


# ---------------------------------------------------------------------------------------------------------------
# SIGKILL at seeded points (after a step, or inside a checkpoint write), then resume == uninterrupted
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("augmentation, workers, fault, seed", [
    ("tutorial", 0, "kill-after-step", 0),
    ("pad-crop", 0, "kill-in-save:manifest", 1),  # half a manifest.json under its real name in the staging folder
    ("none", 0, "kill-in-save:state", 2),  # accelerate's files written, no manifest yet
    ("randaugment", 0, "kill-in-save:publish", 3),  # verified, not yet renamed into place
    ("trivialaugment", 2, "kill-after-step", 4),  # the policy, images decoded by 2 worker processes
])
def test_sigkill_then_resume_equals_uninterrupted(setup, augmentation, workers, fault, seed):
    rng = random.Random(seed)
    out = setup[2] / f"killed-{augmentation}-{seed}"
    steps = "--checkpointing-steps", 2
    if fault == "kill-after-step":
        step = rng.choice([3, 5, 7, 9, 11])  # mid-epoch, between two checkpoints
        spec = f"kill-after-step:{step}"
        expected_latest = f"step_{step - 1}"
    else:
        step = rng.choice([4, 6, 8, 10])  # a checkpoint step (the first one, 2, would leave nothing to resume)
        kind, phase = fault.split(":")
        spec = f"{kind}:{step}:{phase}"
        expected_latest = f"step_{step - 2}"
    killed = _run(_command(setup, out, augmentation, workers, *steps, "--save-total-limit", 2), check=False,
                  SIMPLE_VIT_FAULT=spec)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert find_latest_checkpoint(out).name == expected_latest
    if fault != "kill-after-step":
        assert (out / "checkpoints" / f".step_{step}.tmp").is_dir()  # the interrupted write, never published
    resumed = _run(_command(setup, out, augmentation, workers, *steps, "--save-total-limit", 2,
                            "--resume-from-checkpoint", "latest"))
    assert f"Resumed from {out / 'checkpoints' / expected_latest}" in resumed.stdout
    _assert_same_run(_reference(setup, augmentation, workers), out)
    # rotation: only the two newest complete checkpoints remain, and no staging debris
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_10", "step_12"]


# ---------------------------------------------------------------------------------------------------------------
# SIGTERM: finish the step, checkpoint, exit 143 with one line; a second signal stops at once
# ---------------------------------------------------------------------------------------------------------------
def _start_slow_run(setup, out, faults="sleep-per-step:0.3"):
    command = _command(setup, out, "tutorial", 0, "--checkpointing-steps", 4)
    return subprocess.Popen(command, cwd=ROOT, env=_env(SIMPLE_VIT_FAULT=faults),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path, process, timeout=120):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def test_sigterm_mid_epoch_checkpoints_and_resume_loses_no_step(setup):
    out = setup[2] / "sigterm"
    process = _start_slow_run(setup, out)
    _wait_for(out / "checkpoints" / "step_4" / "manifest.json", process)
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    grace = time.monotonic() - sent
    assert process.returncode == 143, stderr[-3000:]
    assert grace < 10, grace  # one step (0.3 s of it a sleep) plus a checkpoint of the tiny model
    last = stderr.strip().splitlines()[-1]
    assert "stopped by SIGTERM" in last and "--resume-from-checkpoint latest" in last, stderr[-2000:]
    latest = find_latest_checkpoint(out)
    manifest = verify_checkpoint(latest)
    assert latest.name == f"step_{manifest['global_step']}" and manifest["global_step"] > 4
    _run(_command(setup, out, "tutorial", 0, "--checkpointing-steps", 4, "--resume-from-checkpoint", "latest"))
    _assert_same_run(_reference(setup, "tutorial", 0), out)


def test_second_signal_stops_at_once(setup):
    out = setup[2] / "twice"
    # Saves take 2 s (a sleep inside them): the second signal lands inside the save the first one started.
    process = _start_slow_run(setup, out, "sleep-per-step:0.3,sleep-in-save:2")
    _wait_for(out / "checkpoints" / "step_4" / "manifest.json", process)
    process.send_signal(signal.SIGINT)
    time.sleep(0.8)  # the step in progress ends (<= 0.3 s + compute), its save begins, and sleeps
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == -signal.SIGINT, stderr[-2000:]
    assert "second SIGINT: stopping at once" in stderr
    assert find_latest_checkpoint(out).name == "step_4"  # the save cut short was never published
    assert len(list((out / "checkpoints").glob(".step_*.tmp"))) == 1


# ---------------------------------------------------------------------------------------------------------------
# Damaged checkpoints, rotation, a full disk: in process, with a stand-in for accelerate's save_state
# ---------------------------------------------------------------------------------------------------------------
class FakeAccelerator:
    """The parts of accelerate's API that save_checkpoint uses, one process; `fail`: the disk fills up mid-save."""

    is_main_process = True

    def __init__(self, fail=False):
        self.fail = fail

    def wait_for_everyone(self):
        pass

    def save_state(self, folder):
        Path(folder).mkdir()
        Path(folder, "model.safetensors").write_bytes(os.urandom(256))
        if self.fail:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        Path(folder, "random_states_0.pkl").write_bytes(b"rng" * 10)


def _saved(tmp_path, *steps):
    return [save_checkpoint(FakeAccelerator(), tmp_path, 1, name=f"step_{s}", global_step=s) for s in steps]


@pytest.mark.parametrize("damage, problem", [
    ("flip", "file model.safetensors does not match its sha256 (corrupt)"),
    ("truncate", "file model.safetensors is 100 bytes, the manifest says 256 (truncated"),
    ("delete", "file random_states_0.pkl is missing"),
    ("manifest", "manifest.json is missing (the checkpoint is incomplete)"),
    ("garble", "manifest.json is unreadable"),
])
def test_damaged_checkpoint_is_named_and_latest_falls_back(tmp_path, capsys, damage, problem):
    older, newest = _saved(tmp_path, 2, 4)
    model = newest / "model.safetensors"
    if damage == "flip":
        data = bytearray(model.read_bytes())
        data[57] ^= 0x01
        model.write_bytes(bytes(data))
    elif damage == "truncate":
        model.write_bytes(model.read_bytes()[:100])
    elif damage == "delete":
        (newest / "random_states_0.pkl").unlink()
    elif damage == "manifest":
        (newest / "manifest.json").unlink()
    else:
        (newest / "manifest.json").write_text('{"format": "simple-vit-chec')
    with pytest.raises(CheckpointError) as err:
        verify_checkpoint(newest)
    assert str(err.value).startswith(f"checkpoint {newest}: {problem}")
    # latest: a warning line naming it, then the newest complete one
    assert resolve_resume_checkpoint("latest", tmp_path) == older
    warning = capsys.readouterr().err.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith("warning: skipping checkpoint") and problem in warning[0]
    # an explicit path: a one-line CLI error that names it
    with pytest.raises(CLIError) as err:
        resolve_resume_checkpoint(str(newest), tmp_path)
    assert problem in str(err.value) and str(newest) in str(err.value) and "\n" not in str(err.value)
    # nothing complete at all
    (older / "manifest.json").unlink()
    with pytest.raises(CLIError, match="no checkpoint in .* is complete"):
        resolve_resume_checkpoint("latest", tmp_path)


def test_rotation_keeps_the_newest_complete_checkpoints(tmp_path):
    folders = _saved(tmp_path, 2, 4, 6, 8)
    (folders[3] / "manifest.json").unlink()  # the newest is damaged: it is neither counted nor deleted
    rotate_checkpoints(tmp_path, keep=2, protect=folders[2])
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_4", "step_6", "step_8"]
    rotate_checkpoints(tmp_path, keep=1, protect=folders[2])
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_6", "step_8"]
    assert find_latest_checkpoint(tmp_path) == folders[2]  # the only complete one survives any limit


def test_full_disk_keeps_the_previous_checkpoint_and_metrics(tmp_path, monkeypatch):
    (previous,) = _saved(tmp_path, 4)
    history = TrainingHistory()
    history.record(1, 1.0, 0.9, 0.5, 1.0, 1.2)
    write_metrics(tmp_path / "metrics.json", history, world_size=1)
    before = (tmp_path / "metrics.json").read_text()
    with pytest.raises(CLIError) as err:
        save_checkpoint(FakeAccelerator(fail=True), tmp_path, 1, name="step_6", global_step=6)
    assert str(err.value) == (f"no space left on device while writing checkpoint {tmp_path / 'checkpoints' / 'step_6'}; "
                              f"previous checkpoint {previous} kept")
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_4"]  # no partial folder left
    verify_checkpoint(previous)

    def full_disk(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_text", full_disk)
    history.record(2, 0.8, 0.7, 0.6, 1.0, 1.2)
    with pytest.raises(CLIError, match="no space left on device while writing .*metrics.json; the previous "
                                       "metrics.json is kept"):
        write_metrics(tmp_path / "metrics.json", history, world_size=1)
    monkeypatch.undo()
    assert (tmp_path / "metrics.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_corrupt_explicit_checkpoint_is_a_one_line_cli_error(setup, tmp_path):
    (folder,) = _saved(tmp_path, 2)
    (folder / "random_states_0.pkl").write_bytes(b"rnG" * 10)
    result = _run(_command(setup, tmp_path, "none", 0, "--resume-from-checkpoint", folder), check=False)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert lines[0] == (f"run_train.py: error: --resume-from-checkpoint: checkpoint {folder}: file random_states_0.pkl "
                        f"does not match its sha256 (corrupt)")


@pytest.mark.parametrize("flag, value, message", [("--checkpointing-steps", "0", "must be at least 1"),
                                                  ("--checkpointing_steps", "often", "integer or 'epoch'"),
                                                  ("--save-total-limit", "0", "must be at least 1")])
def test_checkpoint_flags_are_checked(capsys, flag, value, message):
    from simple_vit_training.arguments import parse_args

    with pytest.raises(SystemExit) as exit_info:
        parse_args([flag, value])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    args = parse_args(["--checkpointing_steps", "epoch", "--save_total_limit", "3", "--resume_from_checkpoint", "x"])
    assert (args.checkpointing_steps, args.save_total_limit, args.resume_from_checkpoint) == ("epoch", 3, "x")
    assert parse_args(["--checkpointing-steps", "7"]).checkpointing_steps == 7


def test_two_process_ddp_sigkill_then_resume_equals_uninterrupted(setup):
    """gloo DDP on the CPU (2 processes x batch 8): every process's RNG state is in the checkpoint, the loss so
    far is the mean over processes, and the kill of one process (rank 0, inside its step) ends the group."""
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]

    def command(out, *extra):
        return launcher + _command(setup, out, "tutorial", 0, "--checkpointing-steps", 2, *extra)[1:] + [
            "--batch-size", "8"]

    straight, out = setup[2] / "ddp-straight", setup[2] / "ddp-killed"
    _run(command(straight))
    killed = _run(command(out), check=False, SIMPLE_VIT_FAULT="kill-after-step:5")
    assert killed.returncode != 0
    assert find_latest_checkpoint(out).name == "step_4"
    assert sorted(p.name for p in find_latest_checkpoint(out).glob("random_states_*")) == [
        "random_states_0.pkl", "random_states_1.pkl"]
    _run(command(out, "--resume-from-checkpoint", "latest"))
    assert json.loads((out / "metrics.json").read_text())["world_size"] == 2
    _assert_same_run(straight, out)
