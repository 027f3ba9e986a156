"""The training step as a captured CUDA graph (simple_vit_training/graphed_step.py) and its graph-ready optimizer and
schedule (optim.py). Everything but the last section runs on the CPU: the step's body run eagerly, the schedule
computed on the device, the refusals of `can_capture`, the --cuda-graph flag. The last section needs a GPU."""

import copy
from types import SimpleNamespace

import pytest
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType

from configuration_simple_vit import SimpleViTConfig
from model_configs import ODD
from modeling_simple_vit import SimpleViTForImageClassification
from simple_vit_training.arguments import LR_SCHEDULERS, parse_args
from simple_vit_training.augmentation import BatchAugment
from simple_vit_training.data import make_image_processor, make_normalizer
from simple_vit_training.graphed_step import GraphedTrainStep, can_capture, train_step
from simple_vit_training.loop import train_one_epoch
from simple_vit_training.optim import DeviceLambdaLR, device_lr_factor, make_optimizer, make_scheduler

BATCH = 6
STEPS = 5  # 2 epochs of 5 batches: warmup over the first 3 steps, then the cosine down to 0 at step 10


def settings(**overrides):
    values = {"lr_scheduler": "cosine", "warmup_epochs": 0.0, "num_warmup_steps": 3, "epochs": 2,
              "gradient_accumulation_steps": 1, "label_smoothing": 0.1, "max_grad_norm": 0.5, "batch_size": BATCH,
              "cuda_graph": "auto", "compile": False, "lr": 3e-3, "weight_decay": 0.05}
    return SimpleNamespace(**{**values, **overrides})


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return SimpleViTForImageClassification(SimpleViTConfig(**{**ODD, "num_hidden_layers": 2}))


def batches(n=STEPS, size=BATCH, seed=1):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n * size, 3, 30, 30), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, ODD["num_labels"], (n * size,), generator=generator)
    return images, labels


def prepared(args, model, lr_on_device, device=None):
    """(accelerator, model, optimizer, scheduler) as run_train.py builds them (the optimizer before the model is
    moved to the device), the graph-ready form if asked."""
    accelerator = Accelerator(cpu=device is None)
    lr_device = accelerator.device if lr_on_device else None
    optimizer = make_optimizer(model, args.lr, args.weight_decay, "weights", lr_device=lr_device)
    scheduler = make_scheduler(optimizer, args, batches_per_epoch=STEPS, on_device=lr_on_device)
    return (accelerator, *accelerator.prepare(model, optimizer, scheduler))


def augment_and_normalize(model, device="cpu"):
    return BatchAugment("tutorial", 30), make_normalizer(make_image_processor(model.config), device)


def parameters(model):
    return [p.detach().clone() for p in model.parameters()]


def run_steps(step, images, labels):
    """Call `step(images, labels)` batch by batch; (cumulative losses as the loop sums them, parameters per step)."""
    loss_sum, losses, weights = torch.zeros((), device=images.device), [], []
    for start in range(0, len(labels), BATCH):
        loss_sum += step(images[start:start + BATCH], labels[start:start + BATCH]).detach()
        losses.append(loss_sum.clone())
        weights.append(parameters(step.model))
    return losses, weights


# ---------------------------------------------------------------------------------------------------------------
# The step's body, run eagerly, is the training loop's step
# ---------------------------------------------------------------------------------------------------------------
class InOrder(list):
    """A stand-in for data.DeviceBatches: the batches' index tensors in order."""

    def set_epoch(self, epoch):
        pass

    def iter_from(self, start):
        return iter(self[start:])


class Recorder:
    """A stand-in Checkpointer: records the loop's running loss and the parameters after every optimizer step."""

    def __init__(self, model):
        self.model, self.losses, self.weights = model, [], []

    def epoch_start(self, epoch):
        return 0, 0.0

    def after_step(self, epoch, steps, loss_sum):
        self.losses.append(loss_sum.clone())
        self.weights.append(parameters(self.model))


def test_the_steps_body_is_the_training_loops_step():
    """Same model, data and random state: `GraphedTrainStep` (here, without a GPU, its ordinary step) and
    loop.train_one_epoch give identical losses and parameters after every step (clipping, label smoothing and a
    warmup included): the body that is captured on a GPU is the loop's step, in the loop's order."""
    args = settings()
    images, labels = batches()
    model = tiny_model()
    accelerator, loop_model, optimizer, scheduler = prepared(args, copy.deepcopy(model), lr_on_device=False)
    augment, normalize = augment_and_normalize(model)
    data = SimpleNamespace(train_batches=InOrder(torch.arange(len(labels)).split(BATCH)), train_images=images,
                           train_labels=labels)
    recorder = Recorder(loop_model)
    torch.manual_seed(7)
    train_one_epoch(accelerator, loop_model, optimizer, scheduler, data, augment, normalize, args, 1, recorder)

    _, step_model, optimizer, scheduler = prepared(args, copy.deepcopy(model), lr_on_device=False)
    step = GraphedTrainStep(accelerator, step_model, optimizer, scheduler, augment, normalize, args)
    assert step.capture is False and "no GPU" in step.reason
    torch.manual_seed(7)
    losses, weights = run_steps(step, images, labels)

    assert len(losses) == len(recorder.losses) == STEPS
    for i in range(STEPS):
        assert torch.equal(losses[i], recorder.losses[i]), i
        assert all(torch.equal(a, b) for a, b in zip(weights[i], recorder.weights[i])), i
    assert torch.equal(weights[0][0], parameters(model)[0])  # the warmup starts at a learning rate of 0
    assert not torch.equal(weights[-1][0], parameters(model)[0])  # and then trains
    assert step.run_facts()["cuda_graph"] is False and step.run_facts()["cuda_graph_replays"] == 0


def plain_torch_step(model, optimizer, scheduler, augment, normalize, args):
    """The training step written with torch alone (no accelerate wrappers), as the tutorial's loop would be."""
    def step(images, labels):
        logits = model(pixel_values=normalize(augment(images))).logits
        loss = torch.nn.functional.cross_entropy(logits, labels, label_smoothing=args.label_smoothing)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        optimizer.step(), scheduler.step(), optimizer.zero_grad()
        return loss.detach()
    step.model = model
    return step


def test_the_steps_body_is_a_plain_torch_training_step():
    """The same comparison against an independent reference (also once the loop calls GraphedTrainStep itself):
    torch's own optimizer, schedule and clipping, called directly."""
    args = settings()
    images, labels = batches()
    model = tiny_model()
    augment, normalize = augment_and_normalize(model)
    reference_model = copy.deepcopy(model)
    optimizer = make_optimizer(reference_model, args.lr, args.weight_decay, "weights")
    reference = plain_torch_step(reference_model, optimizer, make_scheduler(optimizer, args, STEPS), augment,
                                 normalize, args)
    torch.manual_seed(7)
    expected_losses, expected_weights = run_steps(reference, images, labels)
    accelerator, step_model, optimizer, scheduler = prepared(args, copy.deepcopy(model), lr_on_device=False)
    step = GraphedTrainStep(accelerator, step_model, optimizer, scheduler, augment, normalize, args)
    torch.manual_seed(7)
    losses, weights = run_steps(step, images, labels)
    assert all(torch.equal(a, b) for a, b in zip(losses, expected_losses))
    assert all(torch.equal(a, b) for i in range(STEPS) for a, b in zip(weights[i], expected_weights[i]))


def test_the_graph_ready_optimizer_and_schedule_train_as_the_ordinary_ones():
    """The graph-ready form (fused AdamW, learning rate a tensor, schedule on the device) running the same body
    follows the ordinary form step for step, to float rounding: the fused kernel rounds differently from foreach,
    nothing else differs. A schedule one step off (a learning rate of 0 or 1/3 of the peak at the first step)
    would move the weights by far more than the tolerance."""
    args = settings()
    images, labels = batches()
    model = tiny_model()
    augment, normalize = augment_and_normalize(model)
    runs = []
    for lr_on_device in (False, True):
        accelerator, run_model, optimizer, scheduler = prepared(args, copy.deepcopy(model), lr_on_device)
        assert isinstance(scheduler.scheduler, DeviceLambdaLR) == lr_on_device
        torch.manual_seed(7)

        def step(x, y, run_model=run_model, optimizer=optimizer, scheduler=scheduler):
            loss = train_step(accelerator, run_model, optimizer, scheduler, x, y, augment, normalize, args)
            optimizer.zero_grad(set_to_none=True)
            return loss
        step.model = run_model
        runs.append(run_steps(step, images, labels))
    (ordinary_losses, ordinary_weights), (device_losses, device_weights) = runs
    for i in range(STEPS):
        torch.testing.assert_close(device_losses[i], ordinary_losses[i], rtol=1e-5, atol=1e-6)
        for a, b in zip(device_weights[i], ordinary_weights[i]):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=2e-6)


def test_the_warm_up_before_capture_leaves_no_trace():
    """The warm-up steps run before a capture are not training steps: afterwards the parameters, AdamW's moments
    and step counts (not created yet: zeros, as AdamW creates them), the learning rates, the schedule's counter and
    the random state are as before, so the next two steps equal those of a run that never warmed up."""
    args = settings()
    images, labels = batches(n=3)
    model = tiny_model()
    augment, normalize = augment_and_normalize(model)
    runs = []
    for warm_up in (False, True):
        accelerator, run_model, optimizer, scheduler = prepared(args, copy.deepcopy(model), lr_on_device=True)
        step = GraphedTrainStep(accelerator, run_model, optimizer, scheduler, augment, normalize, args)
        torch.manual_seed(7)
        if warm_up:
            step.static_images, step.static_labels = images[:BATCH].clone(), labels[:BATCH].clone()
            step._warm_up()
            assert all(p.grad is None for p in run_model.parameters())
        runs.append(run_steps(step, images[BATCH:], labels[BATCH:]))
        runs[-1] += (optimizer.state_dict(), scheduler.state_dict(), torch.get_rng_state())
    (losses, weights, opt, sched, rng), (warm_losses, warm_weights, warm_opt, warm_sched, warm_rng) = runs
    assert all(torch.equal(a, b) for a, b in zip(warm_losses, losses))
    assert all(torch.equal(a, b) for i in range(2) for a, b in zip(warm_weights[i], weights[i]))
    for p in opt["state"]:
        assert all(torch.equal(warm_opt["state"][p][k], opt["state"][p][k]) for k in opt["state"][p])
    assert [float(g["lr"]) for g in warm_opt["param_groups"]] == [float(g["lr"]) for g in opt["param_groups"]]
    assert warm_sched["last_epoch"] == sched["last_epoch"] == 2 and torch.equal(warm_rng, rng)


def test_the_ordinary_optimizer_is_todays():
    optimizer = make_optimizer(tiny_model(), 1e-3, 0.1, "weights")
    for group in optimizer.param_groups:
        assert isinstance(group["lr"], float) and group["foreach"] is True
        assert not group["fused"] and not group["capturable"]
    ready = make_optimizer(tiny_model(), 1e-3, 0.1, "weights", lr_device="cpu")
    lrs = [group["lr"] for group in ready.param_groups]
    assert all(isinstance(lr, torch.Tensor) and lr.dtype == torch.float32 for lr in lrs)
    assert lrs[0] is not lrs[1] and all(group["fused"] for group in ready.param_groups)
    assert not any(group["capturable"] for group in ready.param_groups)  # on the CPU: torch supports it on GPUs only


# ---------------------------------------------------------------------------------------------------------------
# The schedule on the device
# ---------------------------------------------------------------------------------------------------------------
def lambda_lr_run(args, steps, lr_on_device):
    model = torch.nn.Linear(3, 2)
    optimizer = make_optimizer(model, args.lr, 0.0, lr_device="cpu" if lr_on_device else None)
    scheduler = make_scheduler(optimizer, args, batches_per_epoch=STEPS, on_device=lr_on_device)
    rates = []
    for _ in range(steps):
        rates.append(torch.as_tensor(optimizer.param_groups[0]["lr"], dtype=torch.float32).clone())
        optimizer.step()
        scheduler.step()
    return rates, scheduler


@pytest.mark.parametrize("name", LR_SCHEDULERS)
@pytest.mark.parametrize("warmup", [0, 3])
def test_the_device_schedule_is_the_lambda_schedule(name, warmup):
    """Over a whole run: the device factor equals transformers' lambda exactly (its own float64 values), the learning
    rate the optimizer reads equals LambdaLR's rounded to float32, and the saved state is LambdaLR's. Past the run's
    end (accelerate's per-process stepping can overshoot by a few steps) the last step's rate holds."""
    args = settings(lr_scheduler=name, num_warmup_steps=warmup)
    total = args.epochs * STEPS
    past_end = 3
    ordinary, lambda_scheduler = lambda_lr_run(args, total + 1 + past_end, lr_on_device=False)
    on_device, device_scheduler = lambda_lr_run(args, total + 1 + past_end, lr_on_device=True)
    assert on_device[:total + 1] == ordinary[:total + 1]  # float32 learning rates, step by step, the last one included
    assert on_device[total + 1:] == [ordinary[total]] * past_end
    lr_lambda = lambda_scheduler.lr_lambdas[0]
    factor = device_lr_factor(lr_lambda, total)
    for step in range(total + 1 + past_end):
        assert factor(torch.tensor(float(step), dtype=torch.float64)).item() == lr_lambda(min(step, total))
    saved, expected = device_scheduler.state_dict(), lambda_scheduler.state_dict()
    assert set(saved) == set(expected)
    assert {k: saved[k] for k in ("last_epoch", "_step_count", "base_lrs")} == {
        k: expected[k] for k in ("last_epoch", "_step_count", "base_lrs")}


def test_the_device_schedule_resumes_in_place():
    """load_state_dict puts the restored position into the same counter and learning-rate tensors (a captured
    graph reads them by address), and the schedule continues as the uninterrupted one; an ordinary LambdaLR state
    loads too (the checkpoint layout is the same)."""
    args = settings()
    full, _ = lambda_lr_run(args, 9, lr_on_device=True)
    first, scheduler = lambda_lr_run(args, 4, lr_on_device=True)
    _, ordinary = lambda_lr_run(args, 4, lr_on_device=False)
    for state in (scheduler.state_dict(), ordinary.state_dict()):
        model = torch.nn.Linear(3, 2)
        optimizer = make_optimizer(model, args.lr, 0.0, lr_device="cpu")
        resumed = make_scheduler(optimizer, args, batches_per_epoch=STEPS, on_device=True)
        lr, counter = optimizer.param_groups[0]["lr"], resumed.state_tensors()[0]
        resumed.load_state_dict(state)
        assert optimizer.param_groups[0]["lr"] is lr and resumed.state_tensors()[0] is counter
        rates = []
        for _ in range(5):
            rates.append(lr.clone())
            optimizer.step()
            resumed.step()
        assert first + rates == full


def test_any_lambda_has_a_device_form_and_bad_input_is_refused():
    """The table is the lambda's own values, so a schedule transformers does not ship (here a step function) runs
    on the device too; an optimizer with float learning rates, or a negative length, is refused."""
    factor = device_lr_factor(lambda step: 0.5 ** (step // 2), 5)
    assert [factor(torch.tensor(float(s), dtype=torch.float64)).item() for s in range(7)] == [
        1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.25]
    with pytest.raises(ValueError, match="num_steps must be >= 0, got -1"):
        device_lr_factor(lambda step: 1.0, -1)
    with pytest.raises(ValueError, match="learning rates are tensors"):
        DeviceLambdaLR(make_optimizer(torch.nn.Linear(2, 2), 1e-3, 0.0), lambda step: 1.0, 4)


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints: either form loads the other's, keeping its own implementation
# ---------------------------------------------------------------------------------------------------------------
def trained_optimizer(lr_on_device, steps=2):
    model = torch.nn.Linear(3, 2)
    optimizer = make_optimizer(model, 1e-2, 0.1, lr_device="cpu" if lr_on_device else None)
    for _ in range(steps):
        model(torch.ones(4, 3)).sum().backward()
        optimizer.step()
        optimizer.zero_grad()
    return model, optimizer


@pytest.mark.parametrize("saved_on_device, loaded_on_device", [(False, True), (True, False), (True, True)])
def test_an_optimizer_keeps_its_implementation_when_loading_the_other_forms_state(saved_on_device,
                                                                                  loaded_on_device):
    model, saved = trained_optimizer(saved_on_device)
    loading = make_optimizer(model, 1e-2, 0.1, lr_device="cpu" if loaded_on_device else None)  # after a restart
    before = [(group["lr"], group["fused"], group["foreach"]) for group in loading.param_groups]
    loading.load_state_dict(copy.deepcopy(saved.state_dict()))
    for group, (lr, fused, foreach) in zip(loading.param_groups, before):
        assert (group["fused"], group["foreach"]) == (fused, foreach)
        if loaded_on_device:
            assert group["lr"] is lr  # the very tensor: a captured step reads it by address
        else:
            assert isinstance(group["lr"], float)
        assert float(group["lr"]) == pytest.approx(float(saved.param_groups[0]["lr"]))
    for p in model.parameters():
        assert float(loading.state[p]["step"]) == 2.0
        assert torch.equal(loading.state[p]["exp_avg"], saved.state[p]["exp_avg"])
    # And it steps (a foreach optimizer would refuse a tensor learning rate; fused wants float32 steps).
    model(torch.ones(4, 3)).sum().backward()
    loading.step()
    assert all(float(loading.state[p]["step"]) == 3.0 for p in model.parameters())


# ---------------------------------------------------------------------------------------------------------------
# can_capture and the flag
# ---------------------------------------------------------------------------------------------------------------
def gpu_accelerator(**overrides):
    """Only what can_capture reads, as a one-GPU Accelerator would have it (this machine has no GPU)."""
    values = {"device": torch.device("cuda", 0), "num_processes": 1, "distributed_type": DistributedType.NO,
              "mixed_precision": "bf16"}
    return SimpleNamespace(**{**values, **overrides})


@pytest.mark.parametrize("accelerator, overrides, expected", [
    (None, {}, "no GPU"),
    ("gpu", {"cuda_graph": "off"}, "--cuda-graph off"),
    ("gpu", {"gradient_accumulation_steps": 4}, "--gradient-accumulation-steps"),
    ("gpu-ddp", {}, "2 processes"),
    ("gpu", {"compile": True}, "--compile"),
    ("gpu-fp16", {}, "fp16"),
], ids=["cpu", "off", "accumulation", "ddp", "compile", "fp16"])
def test_can_capture_refuses_with_a_one_line_reason(accelerator, overrides, expected):
    accelerator = {None: Accelerator(cpu=True), "gpu": gpu_accelerator(),
                   "gpu-ddp": gpu_accelerator(num_processes=2, distributed_type=DistributedType.MULTI_GPU),
                   "gpu-fp16": gpu_accelerator(mixed_precision="fp16")}[accelerator]
    possible, reason = can_capture(accelerator, settings(**overrides))
    assert possible is False and reason.startswith("off (") and expected in reason and "\n" not in reason


def test_can_capture_accepts_one_gpu_in_bf16():
    possible, reason = can_capture(gpu_accelerator(), settings())
    assert possible is True and reason.startswith("on:") and "clipping" in reason
    assert "clipping" not in can_capture(gpu_accelerator(mixed_precision="no"), settings(max_grad_norm=None))[1]


def test_the_flag_parses_and_bad_values_are_one_line_errors(capsys):
    assert parse_args([]).cuda_graph == "auto"
    assert parse_args(["--cuda-graph", "off"]).cuda_graph == "off"
    assert parse_args(["--cuda_graph", "auto"]).cuda_graph == "auto"
    with pytest.raises(SystemExit) as exited:
        parse_args(["--cuda-graph", "always"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--cuda-graph" in err and "'always'" in err and "Traceback" not in err


def test_capture_needs_the_graph_ready_optimizer_and_schedule(monkeypatch):
    """On a GPU a GraphedTrainStep built on the ordinary optimizer and LambdaLR would capture a schedule that never
    moves: it is refused at construction (here can_capture is made to say yes, as on a GPU)."""
    import simple_vit_training.graphed_step as graphed_step

    monkeypatch.setattr(graphed_step, "can_capture", lambda accelerator, args: (True, "on"))
    args = settings()
    accelerator, model, optimizer, scheduler = prepared(args, tiny_model(), lr_on_device=False)
    with pytest.raises(ValueError, match="on_device=True"):
        GraphedTrainStep(accelerator, model, optimizer, scheduler, *augment_and_normalize(model), args)


# ---------------------------------------------------------------------------------------------------------------
# On a GPU (skipped without one): capture, replay, partial batches, exact resume
# ---------------------------------------------------------------------------------------------------------------
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def gpu_step(args, model, state=None, capture=None):
    accelerator, model, optimizer, scheduler = prepared(args, model, lr_on_device=True, device="cuda")
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.cuda.set_rng_state(state["rng"])
    return GraphedTrainStep(accelerator, model, optimizer, scheduler, *augment_and_normalize(model, "cuda"), args,
                            capture=capture)


@needs_cuda
def test_replays_train_as_the_ordinary_step_on_a_gpu():
    """Full batches replay the graph, the last partial batch takes the ordinary step (its backward must not add to
    the graph's gradient buffers); the weights follow the same steps run without a graph (fp32, the same kernels
    and random draws: a replay reads the generator's offset as the eager kernels would)."""
    args = settings()
    images, labels = (t.cuda() for t in batches(n=STEPS + 1))
    images, labels = images[:-2], labels[:-2]  # the last batch has BATCH - 2 samples
    model = tiny_model()
    results = []
    for capture in (False, True):
        step = gpu_step(args, copy.deepcopy(model).cuda(), capture=capture)
        torch.manual_seed(7)
        results.append(run_steps(step, images, labels))
        facts = step.run_facts()
        assert facts["cuda_graph"] is capture and facts["cuda_graph_replays"] == (STEPS if capture else 0)
        assert facts["cuda_graph_captures"] == int(capture) and (facts["cuda_graph_capture_seconds"] > 0) == capture
    (losses, weights), (graph_losses, graph_weights) = results
    for i in range(STEPS + 1):
        torch.testing.assert_close(graph_losses[i], losses[i], rtol=1e-4, atol=1e-5)
        for a, b in zip(graph_weights[i], weights[i]):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@needs_cuda
def test_a_resumed_graph_run_equals_the_uninterrupted_one():
    """Stop after 2 steps, save model, optimizer, schedule and CUDA random state, resume into new objects: the
    next replays (captured after the load) give the uninterrupted run's weights. (To float rounding: on a GPU
    some backward kernels, e.g. memory-efficient attention's, add with atomics in no fixed order.)"""
    args = settings()
    images, labels = (t.cuda() for t in batches(n=4))
    model = tiny_model()
    torch.manual_seed(7)
    uninterrupted = gpu_step(args, copy.deepcopy(model).cuda())
    _, expected = run_steps(uninterrupted, images, labels)

    torch.manual_seed(7)
    first = gpu_step(args, copy.deepcopy(model).cuda())
    run_steps(first, images[:2 * BATCH], labels[:2 * BATCH])
    state = copy.deepcopy({"model": first.model.state_dict(), "optimizer": first.optimizer.state_dict(),
                           "scheduler": first.scheduler.state_dict(), "rng": torch.cuda.get_rng_state()})
    resumed = gpu_step(args, tiny_model(seed=3).cuda(), state)
    _, weights = run_steps(resumed, images[2 * BATCH:], labels[2 * BATCH:])
    assert resumed.captures == 1 and resumed.replays == 2
    for a, b in zip(weights[-1], expected[-1]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
