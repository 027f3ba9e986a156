"""The Accelerator for this machine and launcher: device, mixed precision, CPU threads, data order."""

import os

import psutil
import torch
from accelerate import Accelerator, DataLoaderConfiguration


def make_accelerator(args, output_dir) -> Accelerator:
    # A GPU is used when there is one, unless accelerate was told to stay on the CPU (--cpu / ACCELERATE_USE_CPU).
    on_gpu = torch.cuda.is_available() and os.environ.get("ACCELERATE_USE_CPU", "").lower() not in ("1", "true", "yes")
    # The flag wins; then a precision chosen in accelerate's config; else bf16 on a GPU that has it. (`accelerate
    # launch` without a config exports "no", which is its default rather than a choice, so it does not count.)
    mixed_precision = args.mixed_precision or os.environ.get("ACCELERATE_MIXED_PRECISION", "no")
    if mixed_precision == "no" and args.mixed_precision is None and on_gpu and torch.cuda.is_bf16_supported():
        mixed_precision = "bf16"
    accelerator = Accelerator(
        # Without a GPU, cpu=True is what turns `accelerate launch --multi_gpu --num_processes N` into one
        # gloo DDP group; without it each process would silently train alone.
        cpu=not on_gpu,
        mixed_precision=mixed_precision,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        log_with=None if args.report_to == "none" else args.report_to.split(","),
        project_dir=str(output_dir),
        dynamo_backend="inductor" if args.compile else None,
        # The prepared (evaluation) loader: seeded, unshuffled. The training batches shuffle themselves on the
        # device with seed + epoch (data.DeviceBatches), so a resumed run sees the same batches.
        # non_blocking (with pinned index batches): moving each batch's indices to the GPU does not make the
        # host wait for the GPU, so there is no per-step synchronisation.
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=args.seed,
                                                  non_blocking=on_gpu),
    )
    if not on_gpu:
        # Adam's state decays into denormal floats that x86 CPUs process ~100x slower; flush them to zero.
        torch.set_flush_denormal(True)
        threads = cpu_threads_per_process(int(os.environ.get("LOCAL_WORLD_SIZE", accelerator.num_processes)))
        if threads is not None:
            torch.set_num_threads(threads)
    return accelerator


def cpu_threads_per_process(local_processes: int):
    """The CPU threads each process should use, or None to keep torch's own choice.

    A thread count the user chose (OMP_NUM_THREADS, or `accelerate launch --num_cpu_threads_per_process`) is kept.
    `accelerate launch` without that flag exports OMP_NUM_THREADS=1 (commands/launch.py: the flag's default is
    OMP_NUM_THREADS of its own environment, else 1), which would train a CPU run on one core; that default, like
    no setting at all, becomes the process's share of the cores. A single process with no setting keeps torch's
    default (every core), as `python run_train.py` always had.
    """
    if "OMP_NUM_THREADS" in os.environ and not _omp_threads_is_accelerate_default():
        return None
    if "OMP_NUM_THREADS" not in os.environ and local_processes == 1:
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, local_processes))


def _omp_threads_is_accelerate_default() -> bool:
    """Whether OMP_NUM_THREADS was put there by `accelerate launch` on its own rather than asked for.

    The launcher is this process's parent (it starts the script itself, or through torch's elastic agent running
    inside it): its command line says whether --num_cpu_threads_per_process was given, and its environment, as it
    was started, whether the user had set OMP_NUM_THREADS (which accelerate passes on)."""
    if "ACCELERATE_DYNAMO_BACKEND" not in os.environ:  # exported by every `accelerate launch`: not launched by it
        return False
    try:
        launcher = psutil.Process().parent()
        command, environment = launcher.cmdline(), launcher.environ()
    except (psutil.Error, OSError, AttributeError):  # no parent, or not allowed to read it: assume a choice
        return False
    launched_by_accelerate = any("accelerate" in part for part in command[:3])
    # Also any abbreviation argparse accepts for the flag (no other launch option starts with --num_c).
    flag_given = any(part.startswith("--num_c") for part in command)
    return launched_by_accelerate and not flag_given and "OMP_NUM_THREADS" not in environment
