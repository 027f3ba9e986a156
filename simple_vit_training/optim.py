"""The optimizer (AdamW with its weight-decay groups) and the learning-rate schedule."""

import math

import torch
from transformers import get_scheduler


def make_optimizer(model, lr, weight_decay, scope="all"):
    """AdamW. scope "all" decays every parameter (the tutorial's `AdamW(model.parameters())`); "weights" decays only
    the weight matrices, not biases, LayerNorms, the CLS token or position embeddings (the usual ViT practice).
    Neither decays the learned attention scales of `locality_self_attention`: pulling a temperature towards zero
    would flatten every attention map (the tutorial's model has none, so "all" is still its optimizer)."""
    def temperature(name):
        return name.endswith("attention.scaling")

    if scope == "all":
        named = list(model.named_parameters())
        groups = [{"params": [p for n, p in named if not temperature(n)], "weight_decay": weight_decay},
                  {"params": [p for n, p in named if temperature(n)], "weight_decay": 0.0}]
        groups = [group for group in groups if group["params"]]
    else:
        def decayed(name, p):
            return p.ndim >= 2 and not name.endswith(("cls_token", "position_embeddings"))

        named = list(model.named_parameters())
        groups = [{"params": [p for n, p in named if decayed(n, p)], "weight_decay": weight_decay},
                  {"params": [p for n, p in named if not decayed(n, p)], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, foreach=True)  # foreach: one kernel per op over all tensors


def make_scheduler(optimizer, args, batches_per_epoch, num_processes=1):
    """transformers' schedule named by --lr-scheduler over --epochs, after a linear warmup of --num-warmup-steps
    optimizer steps, or else --warmup-epochs.

    `batches_per_epoch` is counted on the unsharded loader: accelerate's prepared scheduler advances
    num_processes steps per optimizer step, so these totals hold for any number of processes, and a warmup given
    in optimizer steps is scaled by that number (as transformers' example scripts do)."""
    steps_per_epoch = math.ceil(batches_per_epoch / args.gradient_accumulation_steps)
    if args.num_warmup_steps is not None:
        warmup_steps = args.num_warmup_steps * num_processes
    else:
        warmup_steps = round(args.warmup_epochs * steps_per_epoch)
    name = args.lr_scheduler
    if name == "constant" and warmup_steps > 0:
        name = "constant_with_warmup"
    return get_scheduler(name, optimizer, num_warmup_steps=warmup_steps,
                         num_training_steps=args.epochs * steps_per_epoch)
