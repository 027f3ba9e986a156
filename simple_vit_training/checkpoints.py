"""Resumable checkpoints (accelerate state under checkpoints/epoch_N) and the final model, written atomically."""

import os
import shutil
import tempfile
from pathlib import Path

from cli import CLIError, first_line

from .atomic_files import finish_files


def find_latest_checkpoint(output_dir: Path):
    """The checkpoints/epoch_N folder with the highest N, or None."""
    checkpoints = [p for p in (Path(output_dir) / "checkpoints").glob("epoch_*") if p.name.split("_")[1].isdigit()]
    return max(checkpoints, key=lambda p: int(p.name.split("_")[1]), default=None)


def resolve_resume_checkpoint(resume_from_checkpoint, output_dir: Path):
    """--resume-from-checkpoint as a folder (None: start afresh); 'latest' is the newest one in the output dir.
    Checked before any data is loaded, so that a wrong path fails at once."""
    if resume_from_checkpoint is None:
        return None
    if resume_from_checkpoint == "latest":
        latest = find_latest_checkpoint(output_dir)
        if latest is None:
            raise CLIError(f"--resume-from-checkpoint latest: no checkpoint in {Path(output_dir) / 'checkpoints'}")
        return latest
    folder = Path(resume_from_checkpoint)
    if not folder.is_dir():
        raise CLIError(f"--resume-from-checkpoint: no checkpoint folder at {folder}")
    return folder


def load_checkpoint(accelerator, folder: Path):
    """Restore everything `save_checkpoint` saved (model, optimizer, scheduler, RNGs, registered objects)."""
    try:
        accelerator.load_state(str(folder))
    except (RuntimeError, KeyError, ValueError, FileNotFoundError) as err:
        raise CLIError(f"cannot resume from {folder} (resume with the same model config, batch layout, "
                       f"launcher and --compile setting): {first_line(err)}") from None


def save_checkpoint(accelerator, output_dir: Path, epoch: int):
    """accelerate state (model, optimizer, scheduler, RNGs, history) into checkpoints/epoch_N, atomically:
    everything is written into a temporary folder first and renamed into place only once complete."""
    final = Path(output_dir) / "checkpoints" / f"epoch_{epoch}"
    staging = Path(output_dir) / "checkpoints" / f".epoch_{epoch}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)  # debris of a save that crashed
        staging.parent.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(staging))  # every process writes its own RNG state
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        finish_files(staging)
        if final.exists():  # a rerun into the same folder: replace the old checkpoint of this epoch
            old = final.with_name(f".epoch_{epoch}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(staging, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, final)
    accelerator.wait_for_everyone()


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
