"""One training epoch and one evaluation pass, as the training loop calls them."""

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .graphed_step import GraphedTrainStep


def train_one_epoch(accelerator, model, optimizer, scheduler, data, augment, normalize, args, epoch,
                    checkpointer, train_step=None) -> float:
    """One pass over the training set (the rest of it, for a run resumed mid-epoch); returns the mean training
    loss over all processes. `checkpointer.after_step` runs after every optimizer step (checkpoints, signals).

    Nothing in a step makes the host wait for the device: the batch is a slice of an index permutation already on
    the device, the loss is summed there and read once, at the end of the epoch; `accelerator.sync_gradients` and
    the step counts are host values; tqdm counts the batches it is handed and never looks into them. (With several
    processes `checkpointer.after_step` agrees on a stop flag every 16 steps: that all-reduce does wait.)"""
    if train_step is None:  # run_train.py passes its own, kept across epochs (its CUDA graph is captured once)
        train_step = GraphedTrainStep(accelerator, model, optimizer, scheduler, augment, normalize, args, capture=False)
    batches = data.train_batches
    batches.set_epoch(epoch)
    skip, loss_done = checkpointer.epoch_start(epoch)
    # Summed on the device and read once per epoch: a .item() per step would stall a GPU every step.
    loss_sum = torch.full((), loss_done, device=accelerator.device)
    steps = skip
    for index in tqdm(batches.iter_from(skip), desc=f"epoch {epoch}/{args.epochs}", total=len(batches),
                      initial=skip, leave=False, disable=not accelerator.is_local_main_process):
        # index: (batch,) int64 on the device
        images = data.train_images[index]  # (batch, 3, S, S) uint8
        # augment, normalize, forward, loss, backward, clip, AdamW, schedule, zero_grad (graphed_step.train_step):
        # one CUDA-graph replay for a full batch where it was captured, else the ordinary step
        loss_sum += train_step(images, data.train_labels[index])
        steps += 1
        if accelerator.sync_gradients:  # an optimizer step was taken: a checkpoint may be due, a signal waiting
            checkpointer.after_step(epoch, steps, loss_sum)
    return accelerator.reduce(loss_sum / max(steps, 1), reduction="mean").item()  # the epoch's one read


def evaluate_model(accelerator, model, data, accuracy_metric):
    """(mean loss, accuracy) over the whole eval set, each sample counted exactly once across processes. The
    per-batch results stay on the device (gathering is a collective, not a read); they are read once at the end."""
    model.eval()
    losses, predictions, references = [], [], []
    with torch.no_grad():
        for index in data.eval_loader:
            logits = model(pixel_values=data.eval_pixels[index]).logits  # (batch, num_labels)
            labels = data.eval_labels[index]
            loss = F.cross_entropy(logits.float(), labels, reduction="none")
            loss, preds, labels = accelerator.gather_for_metrics((loss, logits.argmax(-1), labels))
            losses.append(loss)
            predictions.append(preds)
            references.append(labels)
    model.train()
    predictions = torch.cat(predictions).cpu().numpy()
    references = torch.cat(references).cpu().numpy()
    accuracy = accuracy_metric.compute(predictions=predictions, references=references)["accuracy"]
    return torch.cat(losses).mean().item(), accuracy
