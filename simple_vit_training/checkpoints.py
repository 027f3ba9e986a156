"""Resumable checkpoints and the final model, each written whole or not at all.

Layout: `<output_dir>/checkpoints/step_<G>` (every --checkpointing-steps optimizer steps, and on SIGTERM/SIGINT) and
`<output_dir>/checkpoints/epoch_<N>` (at the end of epoch N with --checkpointing-steps epoch / --save-model-every).
Each holds accelerate's state (model, optimizer, scheduler, every process's RNG states, the history) plus
`manifest.json`, written last: the position in training (global step, epoch, batches of it done, the epoch's loss so
far) and the size and sha256 of every other file. A checkpoint is written into `.<name>.tmp`, its manifest is
written, everything is flushed and re-verified, and only then is the folder renamed to its name (atomic): a folder
without a valid manifest is never used, so a SIGKILL at any moment cannot leave a `latest` that fails to load.
"""

import argparse
import errno
import hashlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from cli import CLIError, first_line

from .atomic_files import NoSpaceError, finish_files, write_atomically

MANIFEST = "manifest.json"
FORMAT = "simple-vit-checkpoint/1"
# Test hook (tests/test_preemption.py), comma-separated: "kill-after-step:G", "kill-in-save:G:PHASE" (PHASE: state,
# manifest, publish), "enospc-in-save:G", "sleep-per-step:SECONDS", "sleep-in-save:SECONDS". A real SIGKILL (or
# error) at an exact point of a run or of a save; the sleeps give a test's signal time to land where it means to.
FAULT_ENV = "SIMPLE_VIT_FAULT"
EXIT_CODES = {signal.SIGTERM: 143, signal.SIGINT: 130}  # 128 + signal number, as a shell reports a killed job


class CheckpointError(Exception):
    """A checkpoint that must not be loaded: names the folder, the file and what is wrong with it."""


def _checkpointing_steps(text):
    if text == "epoch":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer or 'epoch', got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (or 'epoch'), got {value}")
    return value


def _int_from(minimum):
    def parse(text):
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value
    return parse


def add_checkpoint_arguments(parser):
    """The checkpoint flags (dash and underscore spellings, as transformers' example scripts)."""
    add = parser.add_argument
    add("--save-model-every", "--save_model_every", type=_int_from(0), default=0,
        help="write a resumable checkpoint (checkpoints/epoch_N) every N epochs (0: only at --checkpointing-steps)")
    add("--checkpointing-steps", "--checkpointing_steps", type=_checkpointing_steps, default=None,
        help="write a resumable checkpoint every N optimizer steps (checkpoints/step_N), or 'epoch': every epoch")
    add("--save-total-limit", "--save_total_limit", type=_int_from(1), default=None,
        help="keep only the newest K complete checkpoints (older ones are deleted once a new one is published)")
    add("--resume-from-checkpoint", "--resume_from_checkpoint", default=None,
        help="a checkpoint folder, or 'latest': the newest complete one in the output dir (continues mid-epoch)")


# ---------------------------------------------------------------------------------------------------------------
# Manifest: written last, checked on resume
# ---------------------------------------------------------------------------------------------------------------
def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _describe_files(folder: Path):
    return {p.relative_to(folder).as_posix(): {"size": p.stat().st_size, "sha256": _sha256(p)}
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}


def read_manifest(folder: Path) -> dict:
    """The manifest of a checkpoint folder; CheckpointError when it is missing or unreadable."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise CheckpointError(f"checkpoint {folder}: {MANIFEST} is missing (the checkpoint is incomplete)")
    try:
        manifest = json.loads(path.read_text())
        if manifest.get("format") != FORMAT or not isinstance(manifest.get("files"), dict):
            raise ValueError(f"not a {FORMAT} manifest")
    except (ValueError, UnicodeDecodeError, AttributeError) as err:
        raise CheckpointError(f"checkpoint {folder}: {MANIFEST} is unreadable ({first_line(err)})") from None
    return manifest


def verify_checkpoint(folder: Path) -> dict:
    """Check every file the manifest lists (present, same size, same sha256); return the manifest."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    for name, expected in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            raise CheckpointError(f"checkpoint {folder}: file {name} is missing")
        size = path.stat().st_size
        if size != expected["size"]:
            raise CheckpointError(f"checkpoint {folder}: file {name} is {size} bytes, the manifest says "
                                  f"{expected['size']} (truncated or overwritten)")
        if _sha256(path) != expected["sha256"]:
            raise CheckpointError(f"checkpoint {folder}: file {name} does not match its sha256 (corrupt)")
    return manifest


def _candidates(output_dir: Path):
    """Published checkpoint folders (not the hidden staging ones), newest first by global step where the manifest
    says it, folders whose manifest is unreadable last (they are reported, never used)."""
    folder = Path(output_dir) / "checkpoints"
    found = [p for p in folder.glob("*") if p.is_dir() and not p.name.startswith(".")] if folder.is_dir() else []

    def key(p):
        try:
            manifest = read_manifest(p)
            return (1, manifest["global_step"], manifest["epoch"], p.stat().st_mtime)
        except CheckpointError:
            return (0, 0, 0, p.stat().st_mtime)

    return sorted(found, key=key, reverse=True)


def find_latest_checkpoint(output_dir: Path, warn=None):
    """The newest checkpoint that verifies, or None. Every damaged one tried before it, and every folder without a
    readable manifest (which can never be used), is reported through `warn` as one line."""
    chosen, problems = None, []
    for folder in _candidates(output_dir):
        try:
            # Older ones than the chosen: only their manifest is checked (hashing them all would be slow).
            read_manifest(folder) if chosen else verify_checkpoint(folder)
        except CheckpointError as err:
            problems.append(err)
            continue
        chosen = chosen or folder
        if not warn:
            break
    for err in problems if warn else ():
        warn(f"warning: skipping {err}; using {chosen or 'none'}")
    return chosen


def _warn_on_main(message):
    # Every process resolves the checkpoint (before the accelerator exists): only rank 0 says so.
    if os.environ.get("RANK", "0") == "0":
        print(message, file=sys.stderr, flush=True)


def resolve_resume_checkpoint(resume_from_checkpoint, output_dir: Path):
    """--resume-from-checkpoint as a verified folder (None: start afresh); 'latest' is the newest complete one in the
    output dir. Checked before any data is loaded, so that a wrong or damaged path fails at once."""
    if resume_from_checkpoint is None:
        return None
    if resume_from_checkpoint == "latest":
        latest = find_latest_checkpoint(output_dir, warn=_warn_on_main)
        if latest is None:
            raise CLIError(f"--resume-from-checkpoint latest: no checkpoint in {Path(output_dir) / 'checkpoints'} "
                           f"is complete")
        return latest
    folder = Path(resume_from_checkpoint)
    if not folder.is_dir():
        raise CLIError(f"--resume-from-checkpoint: no checkpoint folder at {folder}")
    try:
        verify_checkpoint(folder)
    except CheckpointError as err:
        raise CLIError(f"--resume-from-checkpoint: {err}") from None
    return folder


def load_checkpoint(accelerator, folder: Path) -> dict:
    """Restore everything `save_checkpoint` saved (model, optimizer, scheduler, RNGs, registered objects);
    return the manifest (the position in training)."""
    try:
        accelerator.load_state(str(folder))
    except (RuntimeError, KeyError, ValueError, FileNotFoundError) as err:
        raise CLIError(f"cannot resume from {folder} (resume with the same model config, batch layout, "
                       f"launcher and --compile setting): {first_line(err)}") from None
    return read_manifest(folder)


# ---------------------------------------------------------------------------------------------------------------
# Saving
# ---------------------------------------------------------------------------------------------------------------
def _fault_specs():
    return os.environ.get(FAULT_ENV, "").split(",")


def _fault_sleep(kind):
    """Seconds to sleep at this point (test hook "KIND:SECONDS"), else 0."""
    return next((float(spec.partition(":")[2]) for spec in _fault_specs() if spec.startswith(kind + ":")), 0.0)


def _fault(kind, global_step, phase=None):
    """The test hook: act when SIMPLE_VIT_FAULT (comma-separated) names this point."""
    if ":".join(str(x) for x in (kind, global_step, phase) if x is not None) in _fault_specs():
        if kind == "enospc-in-save":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        if phase == "manifest":  # half a manifest under its real name: must count as incomplete
            Path(os.environ["SIMPLE_VIT_FAULT_FILE"]).write_text('{"format": "simple-vit-checkpoint/1", "fil')
        os.kill(os.getpid(), signal.SIGKILL)


def _disk_error(err, final, output_dir):
    previous = find_latest_checkpoint(output_dir)
    kept = f"previous checkpoint {previous} kept" if previous else "no earlier checkpoint"
    no_space = (isinstance(err, NoSpaceError) or getattr(err, "errno", None) == errno.ENOSPC
                or "No space left" in str(err))
    what = "no space left on device" if no_space else f"error ({first_line(err)})"
    return CLIError(f"{what} while writing checkpoint {final}; {kept}")


def save_checkpoint(accelerator, output_dir: Path, epoch: int, name=None, progress=None, global_step=0):
    """accelerate state (model, optimizer, scheduler, RNGs, history) plus the manifest into checkpoints/<name>
    (default epoch_N), atomically: written into `.<name>.tmp`, verified, then renamed into place. A failed write
    (a full disk) removes the partial folder and leaves every earlier checkpoint as it was."""
    name = name or f"epoch_{epoch}"
    checkpoints = Path(output_dir) / "checkpoints"
    final, staging = checkpoints / name, checkpoints / f".{name}.tmp"
    progress = {"epoch": epoch, "batches_done": 0, "train_loss_sum": 0.0, **(progress or {})}
    if accelerator.is_main_process:
        for debris in checkpoints.glob(".*"):  # staging folders of saves that crashed, deletions cut short
            shutil.rmtree(debris, ignore_errors=True)
        checkpoints.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    try:
        accelerator.save_state(str(staging))  # every process writes its own RNG state
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            time.sleep(_fault_sleep("sleep-in-save"))
            _fault("kill-in-save", global_step, "state")
            _fault("enospc-in-save", global_step)
            manifest = {"format": FORMAT, "global_step": global_step, **progress, "files": _describe_files(staging)}
            os.environ["SIMPLE_VIT_FAULT_FILE"] = str(staging / MANIFEST)
            _fault("kill-in-save", global_step, "manifest")
            write_atomically(staging / MANIFEST, lambda tmp: Path(tmp).write_text(json.dumps(manifest, indent=1)))
            finish_files(staging)
            verify_checkpoint(staging)  # what is on disk is what was meant to be written
            _fault("kill-in-save", global_step, "publish")
            _publish(staging, final)
    except (OSError, RuntimeError, CheckpointError, NoSpaceError) as err:  # torch.save reports a failed write as RuntimeError
        if accelerator.is_main_process:
            shutil.rmtree(staging, ignore_errors=True)
        raise _disk_error(err, final, output_dir) from None
    accelerator.wait_for_everyone()
    return final


def _publish(staging: Path, final: Path):
    if final.exists():  # a rerun into the same folder: replace the old checkpoint of this name
        old = final.with_name(f".{final.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(staging, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, final)
    if os.name != "nt":  # the rename itself is durable once the folder holding it is flushed
        _fsync_dir(final.parent)


def _fsync_dir(folder: Path):
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def rotate_checkpoints(output_dir: Path, keep: int, protect: Path):
    """Delete all but the newest `keep` complete checkpoints; `protect` (the one just published) always stays.
    Each is first renamed to a hidden name (atomic), so a deletion cut short never leaves a damaged checkpoint."""
    complete = []
    for folder in _candidates(output_dir):
        try:
            read_manifest(folder)
            complete.append(folder)
        except CheckpointError:
            continue  # a damaged folder is the user's to inspect, and never counts towards the limit
    for folder in [f for f in complete if f != protect][max(keep - 1, 0):]:
        doomed = folder.with_name(f".{folder.name}.deleting")
        os.replace(folder, doomed)
        shutil.rmtree(doomed, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------------
# The loop's side: when to save, resuming mid-epoch, signals
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class Position:
    """Where training stands: the epoch in progress and how many of its batches are done."""

    epoch: int = 1
    batches_done: int = 0
    train_loss_sum: float = 0.0  # the epoch's summed loss so far (mean over processes)
    global_step: int = 0  # optimizer steps so far


class Checkpointer:
    """Saves checkpoints when due (every N optimizer steps, every epoch, on SIGTERM/SIGINT), rotates them and
    resumes. A first SIGTERM/SIGINT is recorded; the step in progress finishes, a checkpoint is written and the
    process exits with 143/130. A second one stops the process at once."""

    def __init__(self, accelerator, output_dir: Path, args):
        self.accelerator, self.output_dir = accelerator, Path(output_dir)
        self.every_steps = args.checkpointing_steps if isinstance(args.checkpointing_steps, int) else None
        self.every_epochs = 1 if args.checkpointing_steps == "epoch" else args.save_model_every
        self.save_total_limit = args.save_total_limit
        self.position = Position()
        self.signal_received = None
        self.step_sleep = _fault_sleep("sleep-per-step")
        for signum in EXIT_CODES:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum, frame):
        if self.signal_received is not None:  # the second one: stop now, without a checkpoint
            os.write(2, f"run_train.py: second {signal.Signals(signum).name}: stopping at once\n".encode())
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        self.signal_received = signum

    def resume(self, folder):
        """Load a checkpoint (if any) and return the position to continue from."""
        if folder is not None:
            m = load_checkpoint(self.accelerator, folder)
            self.position = Position(m["epoch"], m["batches_done"], m["train_loss_sum"], m["global_step"])
        return self.position

    def first_epoch(self, epochs_done):
        """The epoch to start with: the one in progress, or the one after the last finished."""
        return self.position.epoch if self.position.batches_done else epochs_done + 1

    def epoch_start(self, epoch):
        """(batches of this epoch already done, their summed loss): non-zero only for a run resumed mid-epoch."""
        if epoch == self.position.epoch and self.position.batches_done:
            return self.position.batches_done, self.position.train_loss_sum
        return 0, 0.0

    # With several processes the stop flag is agreed by an all-reduce, which makes the host wait for the device:
    # done every STOP_CHECK_STEPS steps (and at every due checkpoint and epoch end), not every step.
    STOP_CHECK_STEPS = 16

    def _stop_requested(self, check_now=True):
        if self.accelerator.num_processes == 1:
            return self.signal_received is not None
        if not check_now:
            return False
        # All processes must agree, or one would wait for the others forever.
        flag = torch.tensor(float(self.signal_received is not None), device=self.accelerator.device)
        return self.accelerator.reduce(flag, reduction="sum").item() > 0

    def after_step(self, epoch, batches_done, loss_sum):
        """Called after each optimizer step with the epoch's progress (loss_sum: this process's summed loss)."""
        self.position.global_step += 1
        step = self.position.global_step
        _fault("kill-after-step", step)
        if self.step_sleep:
            time.sleep(self.step_sleep)
        due = self.every_steps is not None and step % self.every_steps == 0
        stop = self._stop_requested(check_now=due or step % self.STOP_CHECK_STEPS == 0)
        if due or stop:
            loss = self.accelerator.reduce(loss_sum.detach().clone(), reduction="mean").item()
            self._save(f"step_{step}", {"epoch": epoch, "batches_done": batches_done, "train_loss_sum": loss})
        if stop:
            self._exit(f"epoch {epoch}, batch {batches_done}")

    def after_epoch(self, epoch):
        """Called once the epoch is evaluated and logged: its checkpoint, if one is due or a signal came."""
        stop = self._stop_requested()
        if (self.every_epochs and epoch % self.every_epochs == 0) or stop:
            self._save(f"epoch_{epoch}", {"epoch": epoch, "batches_done": 0, "train_loss_sum": 0.0})
        if stop:
            self._exit(f"end of epoch {epoch}")

    def _save(self, name, progress):
        final = save_checkpoint(self.accelerator, self.output_dir, progress["epoch"], name=name, progress=progress,
                                global_step=self.position.global_step)
        if self.save_total_limit and self.accelerator.is_main_process:
            rotate_checkpoints(self.output_dir, self.save_total_limit, protect=final)
        self.accelerator.wait_for_everyone()
        self.last_saved = final

    def _exit(self, where):
        name = signal.Signals(self.signal_received).name
        self.accelerator.print(f"run_train.py: stopped by {name} at {where} (step {self.position.global_step}); "
                               f"checkpoint {self.last_saved}; continue with --resume-from-checkpoint latest",
                               file=sys.stderr)
        sys.exit(EXIT_CODES[self.signal_received])


def save_final_model(model, processor, output_dir: Path):
    """save_pretrained into a temporary folder, then move each file into the output folder."""
    staging = Path(tempfile.mkdtemp(dir=output_dir, prefix=".final-model."))
    try:
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
        finish_files(staging)
        for item in staging.iterdir():
            os.replace(item, Path(output_dir) / item.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
