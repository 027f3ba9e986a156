"""DeviceBatches, the training batches that replace the train DataLoader, and the loop that reads them.

Sharding is tested without launching processes: one DeviceBatches per (process_index, num_processes), as each rank
builds its own. The layout is checked against accelerate's own sharded loader (BatchSamplerShard, which the
prepared DataLoader used), and the gradient-accumulation boundary against accelerate's prepared DataLoader.
The loop's "no host sync per step" is checked twice: on any machine by counting the project's own reads of tensor
values (`.item()`, `.cpu()`, `bool(tensor)`, ...), which must not grow with the number of steps; on a CUDA machine
by counting the synchronising CUDA calls torch reports (`torch.cuda.set_sync_debug_mode`).
"""

import collections
import math
import signal
import sys
import warnings
from argparse import Namespace
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.data_loader import BatchSamplerShard
from accelerate.state import AcceleratorState, GradientState

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from configuration_simple_vit import SimpleViTConfig  # noqa: E402
from modeling_simple_vit import SimpleViTForImageClassification  # noqa: E402
from simple_vit_training.augmentation import BatchAugment  # noqa: E402
from simple_vit_training.checkpoints import Checkpointer  # noqa: E402
from simple_vit_training.data import (DeviceBatches, EvalPixels, TrainingData, make_image_processor,  # noqa: E402
                                      make_normalizer)
from simple_vit_training.loop import evaluate_model, train_one_epoch  # noqa: E402
from simple_vit_training.metrics import load_accuracy_metric  # noqa: E402

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def epoch_batches(batches, epoch, start=0):
    batches.set_epoch(epoch)
    return list(batches.iter_from(start))


@pytest.fixture
def fresh_accelerate_state():
    """Accelerator state is a process-wide singleton: start from none and leave none behind."""
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    yield
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


# ---------------------------------------------------------------------------------------------------------------
# One process
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
def test_one_process_epoch_is_a_permutation_with_a_short_last_batch(device):
    batches = DeviceBatches(37, 5, seed=3, device=device)
    got = epoch_batches(batches, 1)
    assert len(batches) == len(got) == batches.unsharded_batches == 8
    assert [len(b) for b in got] == [5] * 7 + [2]  # the last partial batch is kept (DataLoader, drop_last=False)
    assert all(b.device.type == device and b.dtype == torch.int64 for b in got)
    flat = torch.cat(got).cpu().tolist()
    assert sorted(flat) == list(range(37)) and flat != list(range(37))


def test_the_order_depends_on_seed_and_epoch_only():
    torch.manual_seed(0)
    first = torch.cat(epoch_batches(DeviceBatches(50, 7, seed=11, device="cpu"), 2))
    torch.manual_seed(1)  # the global stream plays no part: another process, or a resumed run, gets the same
    again = torch.cat(epoch_batches(DeviceBatches(50, 7, seed=11, device="cpu"), 2))
    assert torch.equal(first, again)
    # The batch size only cuts the order: 1 process x batch 16 sees what 2 x 8 (or 2 accumulated x 8) see.
    assert torch.equal(first, torch.cat(epoch_batches(DeviceBatches(50, 10, seed=11, device="cpu"), 2)))
    assert not torch.equal(first, torch.cat(epoch_batches(DeviceBatches(50, 7, seed=11, device="cpu"), 3)))
    assert not torch.equal(first, torch.cat(epoch_batches(DeviceBatches(50, 7, seed=12, device="cpu"), 2)))
    # Negative seeds are valid --seed values too.
    assert sorted(torch.cat(epoch_batches(DeviceBatches(50, 7, seed=-5, device="cpu"), 1)).tolist()) == list(range(50))


def test_iterating_leaves_the_global_random_streams_alone():
    """The augmentation draws from the global stream; a resumed run restores it from the checkpoint, so making the
    epoch's batches must not draw from it (as a DataLoader's base seed did)."""
    before = torch.get_rng_state()
    epoch_batches(DeviceBatches(40, 6, seed=1, device="cpu"), 1)
    assert torch.equal(before, torch.get_rng_state())


@pytest.mark.parametrize("start", [0, 1, 4, 7, 8])
def test_batches_from_k_on_equal_the_tail_of_the_full_epoch(start):
    full = epoch_batches(DeviceBatches(37, 5, seed=3, device="cpu"), 4)
    resumed = epoch_batches(DeviceBatches(37, 5, seed=3, device="cpu"), 4, start)  # a new process, mid-epoch
    assert len(resumed) == len(full) - start
    assert all(torch.equal(a, b) for a, b in zip(full[start:], resumed))


def test_sharded_resume_equals_the_tail_too():
    full = epoch_batches(DeviceBatches(50, 8, seed=2, device="cpu", process_index=1, num_processes=3), 2)
    tail = epoch_batches(DeviceBatches(50, 8, seed=2, device="cpu", process_index=1, num_processes=3), 2, 1)
    assert len(full) == 3 and len(tail) == 2 and all(torch.equal(a, b) for a, b in zip(full[1:], tail))


# ---------------------------------------------------------------------------------------------------------------
# Several processes
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n, batch, world", [(48, 8, 3), (96, 8, 2), (50, 8, 2), (37, 5, 3), (5, 4, 3)])
def test_shards_cover_the_set_once_with_the_same_step_count_everywhere(n, batch, world):
    shards = [DeviceBatches(n, batch, seed=5, device="cpu", process_index=r, num_processes=world)
              for r in range(world)]
    per_rank = [epoch_batches(s, 1) for s in shards]
    steps = math.ceil(math.ceil(n / batch) / world)
    assert [len(s) for s in shards] == [len(b) for b in per_rank] == [steps] * world  # no rank waits for another
    assert all(len(b) == batch for batches in per_rank for b in batches)  # every batch full
    counts = collections.Counter(torch.cat([torch.cat(b) for b in per_rank]).tolist())
    assert set(counts) == set(range(n))  # every sample, at least once
    padding = steps * world * batch - n
    assert sum(counts.values()) == n + padding
    if padding == 0:  # divisible: the shards are disjoint and cover the set exactly
        assert set(counts.values()) == {1}
        sets = [set(torch.cat(b).tolist()) for b in per_rank]
        assert all(not sets[i] & sets[j] for i in range(world) for j in range(i + 1, world))
    # The stated rule: batch t of rank r is global batch t * world + r of the one-process order, which is repeated
    # from its start to fill the last batches.
    single = torch.cat(epoch_batches(DeviceBatches(n, batch, seed=5, device="cpu"), 1))
    walked = torch.cat([per_rank[r][t] for t in range(steps) for r in range(world)])
    assert torch.equal(walked[:n], single)
    assert torch.equal(walked[n:], single[torch.arange(padding) % n])


@pytest.mark.parametrize("n, batch, world", [(96, 8, 2), (50, 8, 2), (37, 5, 3), (100, 7, 4)])
def test_layout_is_that_of_accelerates_sharded_loader(n, batch, world):
    """accelerate's BatchSamplerShard (even_batches=True) over the same order gives each rank the same batches."""
    order = DeviceBatches(n, batch, seed=9, device="cpu").order(1).tolist()
    for rank in range(world):
        theirs = BatchSamplerShard(torch.utils.data.BatchSampler(order, batch, drop_last=False),
                                   num_processes=world, process_index=rank, even_batches=True)
        ours = DeviceBatches(n, batch, seed=9, device="cpu", process_index=rank, num_processes=world)
        assert [b.tolist() for b in epoch_batches(ours, 1)] == list(theirs), rank


def test_an_empty_set_has_no_batches_on_any_process():
    for world in (1, 2):
        batches = DeviceBatches(0, 4, seed=0, device="cpu", process_index=world - 1, num_processes=world)
        assert len(batches) == 0 and epoch_batches(batches, 1) == []


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_samples=10, batch_size=0), "batch_size >= 1"),
    (dict(num_samples=-1, batch_size=4), "num_samples >= 0"),
    (dict(num_samples=10, batch_size=4, process_index=2, num_processes=2), "process_index must be in 0..1, got 2"),
    (dict(num_samples=10, batch_size=4, num_processes=0), "num_processes >= 1"),
])
def test_bad_arguments_are_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DeviceBatches(seed=0, device="cpu", **kwargs)


# ---------------------------------------------------------------------------------------------------------------
# accelerate's gradient accumulation sees the epoch's end, as with a prepared DataLoader
# ---------------------------------------------------------------------------------------------------------------
def test_accumulation_steps_at_the_epoch_end_as_with_a_prepared_loader(fresh_accelerate_state):
    accelerator = Accelerator(cpu=True, gradient_accumulation_steps=3)
    model = torch.nn.Linear(2, 2)

    def sync_pattern(batches):
        pattern = []
        for _ in batches:
            with accelerator.accumulate(model):
                pass
            pattern.append(accelerator.sync_gradients)
        return pattern

    ours = DeviceBatches(28, 4, seed=0, device="cpu")  # 7 batches: steps after batches 3, 6 and 7 (the end)
    theirs = accelerator.prepare(torch.utils.data.DataLoader(torch.arange(28), batch_size=4))
    expected = [False, False, True, False, False, True, True]
    assert [sync_pattern(ours) for _ in range(2)] == [sync_pattern(theirs) for _ in range(2)] == [expected] * 2
    assert not accelerator.gradient_state.in_dataloader  # the epoch ended: nothing left registered
    # An epoch cut short (a signal's exit) unregisters too, once its iterator is closed.
    batches = iter(ours)
    next(batches)
    assert accelerator.gradient_state.in_dataloader
    batches.close()
    assert not accelerator.gradient_state.in_dataloader


# ---------------------------------------------------------------------------------------------------------------
# The loop reads nothing back per step
# ---------------------------------------------------------------------------------------------------------------
def _tiny_run(accelerator, train_samples, batch_size=4, eval_samples=8, augmentation="tutorial"):
    """A model, data on the accelerator's device and the loop's arguments: an odd tiny setup (image 30, patch 5,
    hidden 36, 6 heads, MLP 37)."""
    torch.manual_seed(0)
    device = accelerator.device
    config = SimpleViTConfig(image_size=30, patch_size=5, hidden_size=36, num_hidden_layers=2, num_attention_heads=6,
                             intermediate_size=37, num_labels=3)
    model = SimpleViTForImageClassification(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, foreach=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    eval_loader = torch.utils.data.DataLoader(torch.arange(eval_samples), batch_size=batch_size,
                                              pin_memory=device.type == "cuda")
    model, optimizer, eval_loader, scheduler = accelerator.prepare(model, optimizer, eval_loader, scheduler)
    normalize = make_normalizer(make_image_processor(config), device)
    images = torch.randint(0, 256, (train_samples, 3, 30, 30), dtype=torch.uint8, device=device)
    eval_images = torch.randint(0, 256, (eval_samples, 3, 30, 30), dtype=torch.uint8, device=device)
    data = TrainingData(images, torch.randint(0, 3, (train_samples,), device=device),
                        EvalPixels(eval_images, make_image_processor(config), 30, normalize),
                        torch.randint(0, 3, (eval_samples,), device=device),
                        DeviceBatches(train_samples, batch_size, seed=1, device=device), eval_loader)
    args = Namespace(epochs=1, label_smoothing=0.1, max_grad_norm=1.0, checkpointing_steps=None, save_model_every=0,
                     save_total_limit=None)
    return model, optimizer, scheduler, data, BatchAugment(augmentation, 30), normalize, args


def _epoch_and_evaluation(accelerator, run, tmp_path):
    model, optimizer, scheduler, data, augment, normalize, args = run
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        checkpointer = Checkpointer(accelerator, tmp_path, args)  # the real one: after_step runs every step
        loss = train_one_epoch(accelerator, model, optimizer, scheduler, data, augment, normalize, args, 1,
                               checkpointer)
        _, accuracy = evaluate_model(accelerator, model, data, load_accuracy_metric())
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    assert checkpointer.position.global_step == len(data.train_batches)
    return loss, accuracy


_READS = ("item", "tolist", "cpu", "numpy", "__bool__", "__int__", "__float__", "__index__")


def test_the_project_reads_no_tensor_value_per_step(monkeypatch, tmp_path, fresh_accelerate_state):
    """Every read of a tensor's value (a host sync on a GPU) made by the project's own code is counted, over an epoch
    plus evaluation of 2 and of 7 steps (and 1 vs 4 eval batches): the count must not grow with the steps. (Reads
    inside torch and accelerate are not counted: on a GPU those are of host tensors, e.g. Adam's step counter.)"""
    accelerator = Accelerator(cpu=True)
    reads = collections.Counter()
    project_files = [str(ROOT / name) for name in ("simple_vit_training", "modeling_simple_vit.py",
                                                    "configuration_simple_vit.py")]
    for name in _READS:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if any(caller.startswith(path) for path in project_files):
                reads[_name, caller, sys._getframe(1).f_lineno] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    counts = []
    for train_samples, eval_samples in ((8, 4), (28, 16)):
        reads.clear()
        loss, accuracy = _epoch_and_evaluation(accelerator, _tiny_run(accelerator, train_samples,
                                                                      eval_samples=eval_samples), tmp_path)
        assert math.isfinite(loss) and 0 <= accuracy <= 1
        counts.append(dict(reads))
    assert counts[0] == counts[1], counts
    # The epoch's loss (.item()); evaluation's predictions and references (.cpu().numpy() each) and its loss.
    assert sum(counts[0].values()) <= 6, counts[0]


@needs_cuda
@pytest.mark.parametrize("augmentation", ["none", "tutorial", "pad-crop"])
def test_on_cuda_no_synchronising_call_per_step(tmp_path, fresh_accelerate_state, augmentation):
    """torch's own account (set_sync_debug_mode "warn": one warning per synchronising CUDA call): an epoch of 7
    steps plus 4 eval batches makes no more synchronising calls than one of 2 steps and 1 eval batch."""
    # As run_train.py's accelerator on a GPU: bf16, and pinned eval index batches copied without blocking.
    accelerator = Accelerator(mixed_precision="bf16" if torch.cuda.is_bf16_supported() else "no",
                              dataloader_config=DataLoaderConfiguration(non_blocking=True))
    counts = []
    for train_samples, eval_samples in ((8, 4), (28, 16)):
        run = _tiny_run(accelerator, train_samples, eval_samples=eval_samples, augmentation=augmentation)
        _epoch_and_evaluation(accelerator, run, tmp_path)  # a first pass: lazy CUDA initialisation is not counted
        run = _tiny_run(accelerator, train_samples, eval_samples=eval_samples, augmentation=augmentation)
        torch.cuda.synchronize()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                _epoch_and_evaluation(accelerator, run, tmp_path)
            finally:
                torch.cuda.set_sync_debug_mode("default")
        counts.append(sum("synchroniz" in str(w.message) for w in caught))
    assert counts[0] == counts[1], counts
