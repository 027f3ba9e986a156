"""The optimizer (AdamW with its weight-decay groups) and the learning-rate schedule.

Two forms of each. The ordinary one (what every CPU run and `--cuda-graph off` use): foreach AdamW with a Python
float learning rate, stepped by transformers' LambdaLR. The graph-ready one (`lr_device=...`, used by
`graphed_step.GraphedTrainStep`): AdamW whose learning rate is a tensor on the parameters' device, fused and
capturable on CUDA, and `DeviceLambdaLR`, the same schedule computed on the device from a step-counter tensor, so
that `optimizer.step(); scheduler.step()` issue only device work and can be captured in a CUDA graph and replayed.
Both forms save the same checkpoint layout (a LambdaLR state dict, float learning rates), and each keeps its own
implementation settings when loading the other's (see `_keep_implementation_on_load`).
"""

import math

import torch
from torch.optim.lr_scheduler import LambdaLR
from transformers import get_scheduler

# The optimizer settings that say *how* AdamW runs, not what it computes. Optimizer.load_state_dict replaces every
# param group with the saved one, so without care a checkpoint would also impose the saving run's implementation.
_IMPLEMENTATION = ("foreach", "fused", "capturable")


def make_optimizer(model, lr, weight_decay, scope="all", lr_device=None):
    """AdamW. scope "all" decays every parameter (the tutorial's `AdamW(model.parameters())`); "weights" decays only
    the weight matrices, not biases, LayerNorms, the CLS token or position embeddings (the usual ViT practice).
    Neither decays the learned attention scales of `locality_self_attention`: pulling a temperature towards zero
    would flatten every attention map (the tutorial's model has none, so "all" is still its optimizer).

    lr_device (the training device, e.g. accelerator.device): the graph-ready form. Each group's learning rate is
    its own float32 tensor on that device (a captured step reads it there; `DeviceLambdaLR` writes it there; it is
    the training device, not the parameters' current one: run_train.py builds the optimizer before accelerate moves
    the model), and the fused kernel updates all tensors at once; on CUDA also `capturable=True`, which keeps Adam's
    step counters on the device and is what torch requires of an optimizer stepped inside a CUDA graph (on the CPU
    capturable is not supported and nothing is captured: the fused CPU kernel runs as it is, the form a CPU test
    can run eagerly)."""
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
    if lr_device is None:
        optimizer = torch.optim.AdamW(groups, lr=lr, foreach=True)  # foreach: one kernel per op over all tensors
    else:
        device = torch.device(lr_device)
        for group in groups:  # one tensor per group: the schedule writes each in place, none aliases another
            group["lr"] = torch.tensor(float(lr), dtype=torch.float32, device=device)
            # The schedule's base value, as a float: a scheduler would otherwise take the float32 tensor's value
            # (0.009999999776 for 0.01) and every learning rate would differ from the ordinary path's.
            group["initial_lr"] = float(lr)
        optimizer = torch.optim.AdamW(groups, lr=lr, fused=True, capturable=device.type == "cuda")
    _keep_implementation_on_load(optimizer)
    return optimizer


def _keep_implementation_on_load(optimizer):
    """After `optimizer.load_state_dict` (accelerate's prepare and load_state call it) keep this optimizer's own
    implementation: its foreach/fused/capturable settings, its kind of learning rate (a float, or the very tensors
    it was built with, in place: a captured CUDA graph reads them by address) and its step counters where that
    implementation wants them (on the device for fused/capturable, else as saved). The values (learning rate,
    moments, step counts) are the checkpoint's, so a checkpoint of either form resumes exactly in the other."""
    kept = [{key: group[key] for key in _IMPLEMENTATION} for group in optimizer.param_groups]
    own_lrs = [group["lr"] for group in optimizer.param_groups]

    def restore(opt):
        for group, settings, own in zip(opt.param_groups, kept, own_lrs):
            group.update(settings)
            loaded = group["lr"]
            if isinstance(own, torch.Tensor):
                own.copy_(loaded) if isinstance(loaded, torch.Tensor) else own.fill_(loaded)
                group["lr"] = own
            else:
                group["lr"] = float(loaded)  # a graph-ready run's tensor (one host read, at load time only)
            if isinstance(group.get("initial_lr"), torch.Tensor):
                group["initial_lr"] = float(group["initial_lr"])
            on_device = settings["capturable"] or settings["fused"]
            for p in group["params"]:
                state = opt.state.get(p, {})
                if isinstance(state.get("step"), torch.Tensor):
                    step = state["step"]
                    state["step"] = (step.to(device=p.device, dtype=torch.float32) if on_device
                                     else step.to(device="cpu"))

    optimizer.register_load_state_dict_post_hook(restore)


def make_scheduler(optimizer, args, batches_per_epoch, num_processes=1, on_device=False):
    """transformers' schedule named by --lr-scheduler over --epochs, after a linear warmup of --num-warmup-steps
    optimizer steps, or else --warmup-epochs.

    `batches_per_epoch` is counted on the unsharded loader: accelerate's prepared scheduler advances
    num_processes steps per optimizer step, so these totals hold for any number of processes, and a warmup given
    in optimizer steps is scaled by that number (as transformers' example scripts do).

    on_device=True (with an optimizer from `make_optimizer(..., lr_device=...)`): the same schedule as a
    `DeviceLambdaLR` over the run's num_training_steps, built from transformers' own lambda."""
    steps_per_epoch = math.ceil(batches_per_epoch / args.gradient_accumulation_steps)
    if args.num_warmup_steps is not None:
        warmup_steps = args.num_warmup_steps * num_processes
    else:
        warmup_steps = round(args.warmup_epochs * steps_per_epoch)
    name = args.lr_scheduler
    if name == "constant" and warmup_steps > 0:
        name = "constant_with_warmup"
    total_steps = args.epochs * steps_per_epoch
    scheduler = get_scheduler(name, optimizer, num_warmup_steps=warmup_steps, num_training_steps=total_steps)
    return DeviceLambdaLR(optimizer, scheduler.lr_lambdas, total_steps) if on_device else scheduler


# ---------------------------------------------------------------------------------------------------------------
# The schedule on the device
# ---------------------------------------------------------------------------------------------------------------
def device_lr_factor(lr_lambda, num_steps, device="cpu"):
    """Any LambdaLR lambda (transformers' or not) as a function of a step-counter tensor, with no host
    synchronisation: the lambda's own values for steps 0..num_steps, computed once on the host (float64), looked
    up on the device. Past num_steps the last value holds: accelerate steps a prepared schedule num_processes times
    per optimizer step, so an uneven last batch can overshoot the total by a few steps, and a schedule that has
    ended should stay ended (transformers' cosine would climb again there)."""
    if num_steps < 0:
        raise ValueError(f"num_steps must be >= 0, got {num_steps}")
    table = torch.tensor([float(lr_lambda(step)) for step in range(num_steps + 1)], dtype=torch.float64,
                         device=device)

    def factor(step):
        # index_select with a device index: a lookup a CUDA graph can capture (indexing by a 0-dim tensor
        # would convert it to a Python int, a host sync).
        index = step.clamp(0, num_steps).to(torch.long).reshape(1)
        return table.index_select(0, index).reshape(())
    return factor


class DeviceLambdaLR(LambdaLR):
    """LambdaLR computed on the device over a run of num_steps steps: `step()` adds one to a float64 step-counter
    tensor and writes base_lr * factor(counter) (`device_lr_factor`: the lambda's values, tabled on the host) into
    each group's learning-rate tensor, in place: device work only, which a CUDA
    graph can capture and replay (the Python-side `last_epoch` is not advanced by a replay, so it is read from the
    counter when the state is saved). Its state dict is LambdaLR's (floats; `last_epoch` the steps taken), so
    checkpoints are the ordinary path's; `load_state_dict` writes the restored position into the same counter and
    learning-rate tensors (in place: a graph captured before the load still reads them)."""

    _DEVICE_ATTRIBUTES = ("_counter", "_factors", "_device_base_lrs")

    def __init__(self, optimizer, lr_lambda, num_steps):
        lrs = [group["lr"] for group in optimizer.param_groups]
        if not all(isinstance(lr, torch.Tensor) for lr in lrs):
            raise ValueError("DeviceLambdaLR needs an optimizer whose learning rates are tensors "
                             "(make_optimizer(..., lr_device=...))")
        lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * len(lrs)
        self._factors = [device_lr_factor(fn, num_steps, lrs[0].device) for fn in lambdas]
        self._counter = torch.full((), -1.0, dtype=torch.float64, device=lrs[0].device)
        self._device_base_lrs = None
        super().__init__(optimizer, lambdas)  # its initial step() (ours) sets step 0's learning rate

    def _write_lrs(self):
        for group, base, factor in zip(self.optimizer.param_groups, self._device_base_lrs, self._factors):
            group["lr"].copy_(base * factor(self._counter))

    def step(self, epoch=None):
        if epoch is not None:
            raise ValueError("DeviceLambdaLR.step() takes no epoch (the step count lives on the device)")
        if self._device_base_lrs is None:  # the initial step, from LRScheduler.__init__: base_lrs are known now
            self.base_lrs = [float(lr) for lr in self.base_lrs]
            for group in self.optimizer.param_groups:
                group["initial_lr"] = float(group["initial_lr"])
            self._device_base_lrs = [torch.tensor(lr, dtype=torch.float64, device=self._counter.device)
                                     for lr in self.base_lrs]
        self._counter += 1
        self._write_lrs()

    def state_tensors(self):
        """The tensors a step changes besides the learning rates (the step counter)."""
        return [self._counter]

    def get_last_lr(self):
        return [float(group["lr"]) for group in self.optimizer.param_groups]  # reads the device (a sync)

    def state_dict(self):
        # LambdaLR's fields as an ordinary run would have them after the same number of steps.
        self.last_epoch = int(self._counter.item())
        self._step_count = self.last_epoch + 1
        self._last_lr = self.get_last_lr()
        self.__dict__.setdefault("_get_lr_called_within_step", False)  # (LambdaLR's own steps leave it there)
        state = super().state_dict()
        for key in self._DEVICE_ATTRIBUTES:
            state.pop(key, None)
        return state

    def load_state_dict(self, state_dict):
        super().load_state_dict({k: v for k, v in state_dict.items() if k not in self._DEVICE_ATTRIBUTES})
        self.base_lrs = [float(lr) for lr in self.base_lrs]
        for tensor, lr in zip(self._device_base_lrs, self.base_lrs):
            tensor.fill_(lr)
        self._counter.fill_(float(self.last_epoch))
        self._write_lrs()
