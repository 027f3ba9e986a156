"""The Accelerator for this machine and launcher: device, mixed precision, CPU threads, data order."""

import os

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
        log_with=None if args.report_to == "none" else args.report_to,
        project_dir=str(output_dir),
        dynamo_backend="inductor" if args.compile else None,
        # Shuffle with seed + epoch: the data order of any epoch is known without replaying the ones before,
        # which is what makes a resumed run see the same batches as an uninterrupted one.
        # non_blocking (with pinned index batches): moving each batch's indices to the GPU does not make the
        # host wait for the GPU, so there is no per-step synchronisation.
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=args.seed,
                                                  non_blocking=on_gpu),
    )
    if not on_gpu:
        # Adam's state decays into denormal floats that x86 CPUs process ~100x slower; flush them to zero.
        torch.set_flush_denormal(True)
        if accelerator.num_processes > 1 and "OMP_NUM_THREADS" not in os.environ:
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // accelerator.num_processes))
    return accelerator
