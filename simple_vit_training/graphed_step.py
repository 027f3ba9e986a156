"""The whole training step as one captured CUDA graph, where that is possible (issue 23).

A step of this model on a GPU is hundreds of small kernels (augmentation, 12 attention blocks forward and back,
AdamW over every tensor, the schedule), and at CIFAR-10 sizes the GPU waits for the Python that launches them.
`GraphedTrainStep` records one whole step - augment, normalize, forward (under the accelerator's autocast, which the
prepared model's forward enters itself), loss, backward, optional clipping, AdamW, learning-rate update - into a
`torch.cuda.CUDAGraph` once, then replays it for every full batch: one launch per step.

What capture needs, and where it comes from:
- static shapes and addresses: the graph reads its inputs from buffers it owns (`static_images`, uint8, and
  `static_labels`); each step copies the batch into them, then replays. Only full batches (--batch-size) replay;
  a last partial batch takes the ordinary step (no drop_last: every sample is still trained on, as today).
- no host synchronisation inside the step: AdamW fused with `capturable=True`, its learning rate a device tensor,
  the schedule computed on the device from a step counter (`optim.DeviceLambdaLR`); clipping uses torch's foreach
  norm, which does not read the norm on the host.
- random augmentation inside the graph: the crop/flip draws use the default CUDA generator, which
  `torch.cuda.graph` registers for capture itself (Philox: each replay reads the generator's current seed/offset
  and advances the offset by what the graph consumes, so every replay draws new numbers and the generator's
  state, which checkpoints save, stays exact). A step that drew from its own `torch.Generator` would have to be
  registered with `graph.register_generator_state(generator)` before capture.
- warm-up before capture, on a side stream, as torch's docs require (lazy optimizer state, library handles,
  autocast). The warm-up steps are not training steps: the whole training state (parameters, buffers, AdamW
  moments and step counters, learning rates, the schedule's counter, the CPU and CUDA random states) is restored
  after them, so every real step of a run is a replay (or the ordinary step for a partial batch), whether the run
  was resumed or not.

Exact resume: capture is lazy (at the first full batch), which comes after `Checkpointer.resume` ->
`accelerator.load_state`, so the graph is recorded on the restored tensors. `DeviceLambdaLR.load_state_dict` and
the optimizer's load hook (optim.py) write restored values into the same learning-rate and counter tensors; a
load that replaces the optimizer's state tensors after capture is detected (the optimizer's state dict object
changed) and the graph is captured again before the next replay.

Where capture is not possible, `can_capture` says why (printed once by the caller) and `GraphedTrainStep` runs the
ordinary step: no GPU, --cuda-graph off, gradient accumulation, several processes (DDP), --compile, fp16.
"""

import contextlib
import time
import warnings

import torch
import torch.nn.functional as F
from accelerate.utils import DistributedType

from .optim import DeviceLambdaLR

CUDA_GRAPH_CHOICES = ("auto", "off")
# torch warns once that a capturable optimizer stepped outside a graph is slower: true only of the partial batch.
_UNCAPTURED_WARNING = r"This instance was constructed with capturable=True"


@contextlib.contextmanager
def _quiet_uncaptured():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_UNCAPTURED_WARNING)
        yield


def can_capture(accelerator, args):
    """(whether the training step can run as a captured CUDA graph, the reason in one line)."""
    if getattr(args, "cuda_graph", "auto") == "off":
        return False, "off (--cuda-graph off): the ordinary training step runs"
    if accelerator.device.type != "cuda":
        return False, f"off (no GPU: training on {accelerator.device.type}, where there are no CUDA graphs)"
    if args.gradient_accumulation_steps > 1:
        return False, ("off (--gradient-accumulation-steps > 1: steps without an optimizer update are a different "
                       "graph; the ordinary step runs)")
    if accelerator.num_processes > 1 or accelerator.distributed_type != DistributedType.NO:
        return False, (f"off ({accelerator.num_processes} processes, {accelerator.distributed_type.value}: "
                       "capturing DDP's gradient all-reduce is not covered here; the ordinary step runs)")
    if getattr(args, "compile", False):
        return False, ("off (--compile: a torch.compile'd model is not captured by hand; use either --compile or "
                       "the CUDA graph)")
    if accelerator.mixed_precision == "fp16":
        return False, ("off (--mixed-precision fp16: the gradient scaler decides on the host whether to skip a "
                       "step; bf16 has no scaler and can be captured)")
    return True, (f"on: each full batch of {args.batch_size} replays one captured CUDA graph (augment, forward, "
                  f"backward{', clipping' if args.max_grad_norm is not None else ''}, AdamW, learning rate); "
                  "a last partial batch takes the ordinary step")


def train_step(accelerator, model, optimizer, scheduler, images, labels, augment, normalize, args):
    """One training step, everything but zero_grad: the body that `GraphedTrainStep` captures, and the same
    operations in the same order as the training loop's ordinary step (so it can also just run).

    images: (batch, 3, H, W) uint8 on the device; labels: (batch,) int64. Returns the loss, a 0-dim tensor."""
    pixel_values = normalize(augment(images))  # (batch, 3, image_size, image_size) float
    logits = model(pixel_values=pixel_values).logits  # (batch, num_labels); the prepared forward autocasts
    loss = F.cross_entropy(logits.float(), labels, label_smoothing=args.label_smoothing)
    accelerator.backward(loss)
    # Clip only on the step that updates (accelerate syncs and unscales the gradients first).
    if args.max_grad_norm is not None and accelerator.sync_gradients:
        accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
    optimizer.step()
    scheduler.step()
    return loss


def _inner(obj, attribute):
    """The torch object inside accelerate's wrapper (AcceleratedOptimizer.optimizer, AcceleratedScheduler.scheduler)."""
    return getattr(obj, attribute, obj)


class _TrainingState:
    """A copy of every tensor a training step changes, to put back in place (same tensors, same addresses)."""

    def __init__(self, model, optimizer, scheduler):
        self.optimizer = opt = optimizer
        params = [p for group in opt.param_groups for p in group["params"]]
        # Parameters without AdamW state yet get it in the first step: zeros (moments and step), as AdamW makes it.
        self.without_state = [p for p in params if not opt.state.get(p)]
        tensors = list(model.parameters()) + list(model.buffers())
        tensors += [t for p in params for t in opt.state.get(p, {}).values() if isinstance(t, torch.Tensor)]
        tensors += [group["lr"] for group in opt.param_groups if isinstance(group["lr"], torch.Tensor)]
        tensors += list(getattr(scheduler, "state_tensors", lambda: [])())
        self.saved = [(t, t.detach().clone()) for t in tensors]

    def restore(self):
        with torch.no_grad():
            for tensor, value in self.saved:
                tensor.copy_(value)
            for p in self.without_state:
                for value in self.optimizer.state.get(p, {}).values():
                    if isinstance(value, torch.Tensor):
                        value.zero_()


class GraphedTrainStep:
    """The training step, as a CUDA graph where `can_capture` allows it, else the ordinary step.

        step = GraphedTrainStep(accelerator, model, optimizer, scheduler, augment, normalize, args)
        loss = step(images, labels)  # (batch, 3, H, W) uint8, (batch,) int64 -> 0-dim loss on the device

    With capture, `optimizer` must come from `make_optimizer(..., lr_device=accelerator.device)` and `scheduler` from
    `make_scheduler(..., on_device=True)` (both prepared by accelerate); `run_facts()` says what happened, for
    metrics.json. The ordinary step (CPU, refused, partial batch) is `train_step` + zero_grad inside
    `accelerator.accumulate`, exactly the training loop's step."""

    WARMUP_STEPS = 3  # torch's docs warm up 3 iterations before capturing a whole network

    def __init__(self, accelerator, model, optimizer, scheduler, augment, normalize, args, capture=None):
        self.accelerator, self.model, self.optimizer, self.scheduler = accelerator, model, optimizer, scheduler
        self.augment, self.normalize, self.args = augment, normalize, args
        possible, self.reason = can_capture(accelerator, args)
        self.capture = possible if capture is None else capture and possible
        if self.capture and not isinstance(_inner(scheduler, "scheduler"), DeviceLambdaLR):
            raise ValueError("GraphedTrainStep with capture needs make_scheduler(..., on_device=True) and "
                             "make_optimizer(..., lr_device=accelerator.device)")
        self.graph = None
        self.static_images = self.static_labels = self.static_loss = None
        self.captures, self.capture_seconds, self.replays = 0, 0.0, 0
        self._captured_state = None

    def run_facts(self) -> dict:
        """What the step did, for metrics.json: whether it was captured, why (not), and the one-time cost."""
        return {"cuda_graph": self.capture, "cuda_graph_reason": self.reason, "cuda_graph_captures": self.captures,
                "cuda_graph_capture_seconds": round(self.capture_seconds, 3), "cuda_graph_replays": self.replays}

    def ordinary(self, images, labels):
        """The training loop's ordinary step: `train_step` + zero_grad inside `accelerator.accumulate`."""
        if self.graph is not None:
            # After replays .grad holds the graph's gradient buffers (each replay overwrites them); an eager
            # backward would add to them. Dropped here, they stay the graph's: its pool is not used by eager code.
            _inner(self.optimizer, "optimizer").zero_grad(set_to_none=True)
        # The warning filter only where the capturable optimizer runs (changing filters costs each step a little).
        quiet = _quiet_uncaptured() if self.capture else contextlib.nullcontext()
        with self.accelerator.accumulate(self.model), quiet:
            loss = train_step(self.accelerator, self.model, self.optimizer, self.scheduler, images, labels,
                              self.augment, self.normalize, self.args)
            self.optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    def __call__(self, images, labels):
        # images: (batch, 3, H, W) uint8, labels: (batch,) int64 -> the batch's loss, a 0-dim tensor on the device
        if not self.capture or images.shape[0] != self.args.batch_size:
            return self.ordinary(images, labels)
        if self.graph is None or self._captured_state is not _inner(self.optimizer, "optimizer").state:
            if not self._capture(images, labels):
                return self.ordinary(images, labels)
        if images.shape != self.static_images.shape or labels.shape != self.static_labels.shape:
            raise ValueError(f"GraphedTrainStep: a full batch must keep the captured shapes: expected images "
                             f"{tuple(self.static_images.shape)} and labels {tuple(self.static_labels.shape)}, got "
                             f"{tuple(images.shape)} and {tuple(labels.shape)}")
        self.static_images.copy_(images, non_blocking=True)
        self.static_labels.copy_(labels, non_blocking=True)
        self.graph.replay()
        self.replays += 1
        # A copy: the static loss is overwritten by the next replay, and the caller may keep this one longer.
        return self.static_loss.detach().clone()

    def _body(self):
        return train_step(self.accelerator, self.model, self.optimizer, self.scheduler, self.static_images,
                          self.static_labels, self.augment, self.normalize, self.args)

    def _warm_up(self):
        """Run WARMUP_STEPS steps on the static buffers (on a side stream on a GPU, as torch's docs want before a
        capture), then put the whole training state back as it was; returns that state, to restore it again."""
        device = self.accelerator.device
        state = _TrainingState(self.model, self.optimizer, _inner(self.scheduler, "scheduler"))
        side = torch.cuda.Stream(device) if device.type == "cuda" else None
        if side is not None:
            side.wait_stream(torch.cuda.current_stream(device))
        # fork_rng: the warm-up's random draws (CPU and this GPU) are given back, as is everything else it changed.
        with torch.random.fork_rng(devices=[device] if side is not None else []), _quiet_uncaptured():
            with torch.cuda.stream(side) if side is not None else contextlib.nullcontext():
                for _ in range(self.WARMUP_STEPS):
                    self._body()
                    self.optimizer.zero_grad(set_to_none=True)
            if side is not None:
                torch.cuda.current_stream(device).wait_stream(side)
            state.restore()
        return state

    def _capture(self, images, labels) -> bool:
        """Warm up, restore the training state, capture. False (after a one-line message) if capture fails: the
        state is restored again and the ordinary step runs from then on."""
        start = time.perf_counter()
        device = self.accelerator.device
        self.static_images = images.detach().clone()  # the graph reads its inputs from these addresses
        self.static_labels = labels.detach().clone()
        state = self._warm_up()
        # No .grad before capture: backward inside the graph allocates them from the graph's pool and each replay
        # overwrites them (torch's whole-network example), so no zero_grad is needed between replays.
        self.optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        try:
            # thread_local: a DataLoader's pin-memory thread may allocate while this thread captures.
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                self.static_loss = self._body()
        except RuntimeError as err:
            torch.cuda.synchronize(device)
            state.restore()
            self.optimizer.zero_grad(set_to_none=True)
            self.capture, self.graph = False, None
            self.reason = f"off (capture failed: {str(err).strip().splitlines()[0]}); the ordinary step runs"
            self.accelerator.print(f"CUDA graph: {self.reason}")
            return False
        torch.cuda.synchronize(device)
        self.graph = graph
        self._captured_state = _inner(self.optimizer, "optimizer").state
        self.captures += 1
        self.capture_seconds += time.perf_counter() - start
        return True
