"""Train SimpleViT on CIFAR-10 (or any image-classification dataset) with `accelerate`.

    accelerate launch run_train.py                              # CPU, one GPU, or what `accelerate config` says
    python run_train.py --dataset-name ../shared/datasets/cifar10 --epochs 5
    python run_train.py --recipe improved-40                    # a recipe: configs/recipes/improved-40.json
    accelerate launch --multi_gpu --num_processes 2 run_train.py  # two processes (gloo DDP on a CPU machine)

`main()` reads top to bottom as the steps of training:
    1. arguments  2. accelerator  3. data  4. model  5. optimizer and schedule
    6. loop (train, evaluate, log, save)  7. final save
The work of each step lives in `simple_vit_training/`, one module per job. The defaults are the tutorial's recipe
(configs/recipes/tutorial.json); `--recipe NAME` picks another file of settings, and explicit flags override it.
"""

import json
import time
from pathlib import Path

import torch
from accelerate.utils import set_seed

from cli import run_cli
from simple_vit_training.accelerator import make_accelerator
from simple_vit_training.arguments import build_parser, parse_args  # noqa: F401  (build_parser: part of the API)
from simple_vit_training.augmentation import BatchAugment
from simple_vit_training.checkpoints import Checkpointer, resolve_resume_checkpoint, save_final_model
from simple_vit_training.data import build_training_data, load_splits, make_image_processor, make_normalizer
from simple_vit_training.graphed_step import GraphedTrainStep, can_capture
from simple_vit_training.hub import check_hub_args, publish_output
from simple_vit_training.loop import evaluate_model, train_one_epoch
from simple_vit_training.metrics import TrainingHistory, load_accuracy_metric, plot_metrics, write_metrics
from simple_vit_training.model_config import (build_model, build_model_config, load_model_config_overrides,
                                             resolved_settings)
from simple_vit_training.optim import make_optimizer, make_scheduler
from simple_vit_training.pretrained import open_pretrained


def main(argv=None):
    # ------------------------------------------------------------------------------------------------------------
    # 1. Arguments: a recipe's settings, overridden by explicit flags; the model config is checked up front
    # ------------------------------------------------------------------------------------------------------------
    args = parse_args(argv)
    model_overrides = load_model_config_overrides(args.model_config)
    settings = json.dumps(resolved_settings(args, model_overrides), indent=2)
    if args.print_config:
        print(settings)
        return
    output_dir = Path(args.output_dir)
    resume_from = resolve_resume_checkpoint(args.resume_from_checkpoint, output_dir)
    pretrained = open_pretrained(args.model_name_or_path)  # None: from scratch; a ViT checkpoint is converted
    hub_token = check_hub_args(args)  # --push_to_hub: repo id and token checked before any training

    # ------------------------------------------------------------------------------------------------------------
    # 2. Accelerator: device, precision, processes; then the seeds and the output folder
    # ------------------------------------------------------------------------------------------------------------
    accelerator = make_accelerator(args, output_dir)
    accelerator.print(f"Settings (recipe {args.recipe}, then the flags given):\n{settings}")
    # Each process gets its own random stream (augmentation); DDP copies rank 0's initial weights to the others.
    set_seed(args.seed, device_specific=True)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------------------------------------------------
    # 3. Data: decode once into uint8 tensors on the training device; batches are index slices drawn there
    # ------------------------------------------------------------------------------------------------------------
    with accelerator.local_main_process_first():  # one process per machine fills the datasets cache first
        splits = load_splits(args)
    config = build_model_config(model_overrides, splits.class_names, pretrained, args.ignore_mismatched_sizes)
    processor = make_image_processor(config, pretrained)
    augment = BatchAugment(args.augmentation, config.image_size)
    data = build_training_data(splits, config.image_size, processor, accelerator, args)
    normalize = make_normalizer(processor, accelerator.device)

    # ------------------------------------------------------------------------------------------------------------
    # 4. Model: random weights, or the checkpoint's
    # ------------------------------------------------------------------------------------------------------------
    model = build_model(config, pretrained, args.ignore_mismatched_sizes)
    num_parameters = sum(p.numel() for p in model.parameters())

    # ------------------------------------------------------------------------------------------------------------
    # 5. Optimizer and schedule (and the state of an interrupted run, once everything is prepared)
    # ------------------------------------------------------------------------------------------------------------
    # --cuda-graph auto on one GPU: the graph-ready forms (learning rate a device tensor, schedule on the device).
    graphed, graph_reason = can_capture(accelerator, args)
    accelerator.print(f"CUDA graph: {graph_reason}")
    optimizer = make_optimizer(model, args.lr, args.weight_decay, args.weight_decay_scope,
                               lr_device=accelerator.device if graphed else None)
    # The schedule counts the batches of the whole set (an unsharded loader's length): accelerate's prepared
    # scheduler advances num_processes steps per optimizer step. The training batches shard themselves and are not
    # prepared (see DeviceBatches).
    scheduler = make_scheduler(optimizer, args, data.train_batches.unsharded_batches, accelerator.num_processes,
                               on_device=graphed)
    model, optimizer, data.eval_loader, scheduler = accelerator.prepare(model, optimizer, data.eval_loader, scheduler)
    train_step = GraphedTrainStep(accelerator, model, optimizer, scheduler, augment, normalize, args)
    history = TrainingHistory()
    accelerator.register_for_checkpointing(history)
    checkpointer = Checkpointer(accelerator, output_dir, args)  # from here on, SIGTERM/SIGINT save, then exit
    position = checkpointer.resume(resume_from)
    if resume_from is not None:
        accelerator.print(f"Resumed from {resume_from} at step {position.global_step} (epoch {position.epoch}, "
                          f"{position.batches_done} batches done)")

    # ------------------------------------------------------------------------------------------------------------
    # 6. Loop: train, evaluate, log, save (metrics every epoch; checkpoints every --checkpointing-steps, on a signal)
    # ------------------------------------------------------------------------------------------------------------
    accuracy_metric = load_accuracy_metric()
    if args.report_to != "none":
        accelerator.init_trackers(args.exp_name, config={k: v for k, v in vars(args).items() if v is not None})
    accelerator.print(
        f"SimpleViT: device={accelerator.device} world_size={accelerator.num_processes} "
        f"precision={accelerator.mixed_precision} parameters={num_parameters:,} "
        f"train={len(data.train_labels):,} eval={len(data.eval_labels):,} ({splits.eval_split}) "
        f"classes={len(splits.class_names)} epochs={args.epochs} batch_size={args.batch_size}x{accelerator.num_processes} "
        f"cpu_threads={torch.get_num_threads()}"
    )
    model.train()
    for epoch in range(checkpointer.first_epoch(history.epochs_done), args.epochs + 1):
        start = time.perf_counter()
        train_loss = train_one_epoch(accelerator, model, optimizer, scheduler, data, augment, normalize, args, epoch,
                                     checkpointer, train_step)
        train_seconds = time.perf_counter() - start
        eval_loss, eval_accuracy = evaluate_model(accelerator, model, data, accuracy_metric)
        epoch_seconds = time.perf_counter() - start
        history.record(epoch, train_loss, eval_loss, eval_accuracy, train_seconds, epoch_seconds)

        accelerator.print(
            f"epoch {epoch}/{args.epochs}: train_loss={train_loss:.4f} eval_loss={eval_loss:.4f} "
            f"eval_accuracy={eval_accuracy:.4f} ({epoch_seconds:.1f}s)"
        )
        accelerator.log({"train_loss": train_loss, "eval_loss": eval_loss, "eval_accuracy": eval_accuracy},
                        step=epoch)
        checkpoint_epoch = checkpointer.every_epochs and epoch % checkpointer.every_epochs == 0
        if accelerator.is_main_process:
            write_metrics(output_dir / "metrics.json", history, world_size=accelerator.num_processes,
                          num_parameters=num_parameters, train_samples=len(data.train_labels),
                          eval_samples=len(data.eval_labels), eval_split=splits.eval_split,
                          dataset_name=splits.dataset_name, cpu_threads=torch.get_num_threads(),
                          device=str(accelerator.device),
                          mixed_precision=accelerator.mixed_precision, **train_step.run_facts(), args=vars(args))
            if epoch == args.epochs or checkpoint_epoch:
                plot_metrics(history.metrics, output_dir / "metrics.png")  # ~0.3 s: not every epoch of a GPU run
        checkpointer.after_epoch(epoch)

    # ------------------------------------------------------------------------------------------------------------
    # 7. Final save: the model, its config and the image processor, loadable with from_pretrained (and published)
    # ------------------------------------------------------------------------------------------------------------
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        save_final_model(accelerator.unwrap_model(model), processor, output_dir)
        accelerator.print(f"Saved the model, image processor and metrics to {output_dir}")
        if args.push_to_hub:
            accelerator.print(f"Published to {publish_output(output_dir, args, hub_token).commit_url}")
    accelerator.end_training()


if __name__ == "__main__":
    run_cli(main, "run_train.py")
