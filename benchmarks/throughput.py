"""Training-step throughput: SimpleViT vs transformers' ViTForImageClassification (SDPA), same config; and, with
--ablate, what each of SimpleViT's speed tricks saves.

    python benchmarks/throughput.py                 # both configs, CPU, fp32
    python benchmarks/throughput.py --profile       # plus a torch.profiler table of SimpleViT's top ops
    python benchmarks/throughput.py --device cuda --bf16 --steps 50 --rounds 5   # a GPU, under bf16 autocast
    python benchmarks/throughput.py --ablate all    # each speed trick on vs off (tutorial config, batch 256)

Both models get the same config, the same optimizer (run_train.py's `make_optimizer`: AdamW, foreach), the same
batch and the same loss; they are timed in one process in interleaved rounds (A, B, B, A, ...) so that machine noise
hits both alike, and the median of the per-round ratios is reported. Achieved GFLOP/s (analytic matmul FLOPs x 3 for
forward + backward) is put beside this machine's measured fp32 matmul peak; SimpleViT's classifier runs its last
layer on the CLS token alone (same logits, less work), so its GFLOP/s counts the full model's FLOPs: read it as
ViT-equivalent work per second (`--full-last-layer` times SimpleViT with every token in the last layer instead).
The load average is printed before and after each config: on a shared machine, read the ratio (both sides suffer
alike), not the absolute images/s.

`--ablate NAME ...` times SimpleViT as shipped against a copy with one trick switched (same weights, same
interleaving) and prints the share of a training step the trick saves; modeling_simple_vit.py keeps a trick only
where that share is at least 3% (CPU, fp32, tutorial config, batch 256). `patch-matmul` and `cls-fold` are tricks
the model no longer has: they are timed against the shipped code so that the decision can be re-checked.
"""

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from configuration_simple_vit import SimpleViTConfig  # noqa: E402
from convert_vit_checkpoint import simple_vit_config_to_vit  # noqa: E402
from modeling_simple_vit import SimpleViTForImageClassification  # noqa: E402
from run_train import make_optimizer  # noqa: E402
from transformers.activations import ACT2FN  # noqa: E402

CONFIGS = {
    # name: (config fields, batch size)
    "tutorial": ({}, 256),
    "vit-s-like": ({"hidden_size": 192, "num_hidden_layers": 6, "num_attention_heads": 3, "intermediate_size": 768}, 128),
}


def forward_flops_per_image(c: SimpleViTConfig) -> int:
    """Multiply-adds x 2 of every matmul in one forward pass (elementwise ops are negligible beside them)."""
    patches = (c.image_size // c.patch_size) ** 2
    n, h = patches + 1, c.hidden_size
    embed = 2 * patches * (c.num_channels * c.patch_size**2) * h
    per_layer = 2 * n * h * 3 * h + 2 * 2 * n * n * h + 2 * n * h * h + 2 * 2 * n * h * c.intermediate_size
    return embed + c.num_hidden_layers * per_layer + 2 * h * c.num_labels


def matmul_peak_gflops(device, dtype=torch.float32, n=2048, repeats=10) -> float:
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    sync(device)
    start = clock()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * n**3 * repeats / (clock() - start) / 1e9


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())  # 1, 5 and 15 minutes


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def make_step(model, batch, labels, device, bf16):
    optimizer = make_optimizer(model, lr=1e-3, weight_decay=1e-2)  # the training script's AdamW, both sides

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(pixel_values=batch).logits
        loss = F.cross_entropy(logits.float(), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = CLOCKS["wall"]


def timed(step, steps, device) -> float:
    sync(device)
    start = clock()
    for _ in range(steps):
        step()
    sync(device)
    return clock() - start


def interleaved_rates(steps, args, batch_size, device) -> dict:
    """images/s of each step function, per round; the order alternates between rounds (A B, B A, ...)."""
    for step in steps.values():  # warm-up (allocator, kernels, Adam state)
        timed(step, 3, device)
    rates = {key: [] for key in steps}
    for index in range(args.rounds):
        for key in list(steps)[:: 1 if index % 2 == 0 else -1]:
            rates[key].append(args.steps * batch_size / timed(steps[key], args.steps, device))
    return rates


# --- the speed tricks, each as the change that switches it in a copy of the shipped model ----------------------------


def without_cls_only_last_layer(model):
    model.cls_only_last_layer = False  # the classifier's last layer on every token


def without_fused_gelu(model):
    for layer in model.vit.encoder.layers:
        layer.mlp.activation_fn = ACT2FN[model.config.hidden_act]  # transformers' "gelu_new": five elementwise ops


def with_patch_matmul(model):
    """The patch embeddings as the model computed them before they were written as plain code: the patches cut out
    (`patchify`, one copy) and projected by one matmul with the Conv2d's weight, instead of running the Conv2d."""
    from modeling_simple_vit import patchify

    patch_embeddings = model.vit.embeddings.patch_embeddings
    weight, bias = patch_embeddings.projection.weight, patch_embeddings.projection.bias
    patch_embeddings.forward = lambda pixel_values: F.linear(
        patchify(pixel_values, patch_embeddings.patch_size), weight.flatten(1), bias
    )


def with_cls_fold(model):
    """The embeddings as the model computed them before they were written as plain code: the patches copied into a
    buffer whose row 0 is zeros and projected in one matmul, the CLS token, the projection's bias and the positions
    added as one (1, seq_len, hidden) tensor: no batch-sized concatenation. Native size, learned positions, no SPT."""
    embeddings = model.vit.embeddings
    projection = embeddings.patch_embeddings.projection
    p = embeddings.patch_size

    def forward(pixel_values, interpolate_pos_encoding=False):
        b, c, h, w = pixel_values.shape
        rows, cols = h // p, w // p
        flat = pixel_values.new_empty(b, 1 + rows * cols, c * p * p)
        flat[:, :1].zero_()
        patches = pixel_values.reshape(b, c, rows, p, cols, p).permute(0, 2, 4, 1, 3, 5)
        flat[:, 1:].view(b, rows, cols, c, p, p).copy_(patches)
        bias = projection.bias.view(1, 1, -1).expand(1, rows * cols, -1)
        per_position = embeddings.position_embeddings + torch.cat((embeddings.cls_token, bias), dim=1)
        return embeddings.dropout(torch.matmul(flat, projection.weight.flatten(1).t()) + per_position)

    embeddings.forward = forward


# name: (what the trick does, whether the shipped model has it, the change that gives the other variant)
ABLATIONS = {
    "cls-only-last-layer": ("the classifier's last layer computes the CLS token alone", True,
                            without_cls_only_last_layer),
    "fused-gelu": ("one-kernel tanh-GELU for hidden_act='gelu_new'", True, without_fused_gelu),
    "patch-matmul": ("(not in the model) patches cut out and projected by one matmul instead of a Conv2d", False,
                     with_patch_matmul),
    "cls-fold": ("(not in the model) CLS token and projection bias folded into the positions, no batch-sized cat",
                 False, with_cls_fold),
}  # fmt: skip


def ablate(trick, name, fields, batch_size, args, device):
    description, shipped_has_it, switch = ABLATIONS[trick]
    torch.manual_seed(0)
    shipped = SimpleViTForImageClassification(SimpleViTConfig(**fields)).to(device).train()
    other = copy.deepcopy(shipped)
    switch(other)
    with_trick, without_trick = (shipped, other) if shipped_has_it else (other, shipped)
    batch = torch.randn(batch_size, 3, shipped.config.image_size, shipped.config.image_size, device=device)
    labels = torch.randint(0, shipped.config.num_labels, (batch_size,), device=device)
    with torch.no_grad():  # the variants compute the same function
        torch.testing.assert_close(with_trick(batch[:8]).logits, without_trick(batch[:8]).logits, atol=1e-4, rtol=1e-4)
    print(f"\n{trick} ({name}, batch {batch_size}): {description}; load average {load()} before")
    steps = {"with": make_step(with_trick, batch, labels, device, args.bf16),
             "without": make_step(without_trick, batch, labels, device, args.bf16)}
    rates = interleaved_rates(steps, args, batch_size, device)
    # Step time with the trick / without it, per round; the trick saves 1 - that of a training step.
    ratios = [b / a for a, b in zip(rates["with"], rates["without"])]
    saving = 1 - statistics.median(ratios)
    print(f"  with {statistics.median(rates['with']):.0f} images/s, without {statistics.median(rates['without']):.0f} "
          f"images/s; per-round step-time ratios {', '.join(f'{r:.3f}' for r in ratios)}")
    print(f"  {trick} saves {100 * saving:.1f}% of a training step (median) -> "
          f"{'keep' if saving >= 0.03 else 'under 3%: drop'}; load average {load()} after")
    return saving


def compare(name, fields, batch_size, args, device):
    from transformers import ViTForImageClassification

    torch.manual_seed(0)
    config = SimpleViTConfig(**fields)
    simple = SimpleViTForImageClassification(config).to(device).train()
    simple.cls_only_last_layer = not args.full_last_layer
    vit_config = simple_vit_config_to_vit(config)
    vit_config._attn_implementation = "sdpa"
    reference = ViTForImageClassification(vit_config).to(device).train()
    batch = torch.randn(batch_size, 3, config.image_size, config.image_size, device=device)
    labels = torch.randint(0, config.num_labels, (batch_size,), device=device)
    steps = {"SimpleViT": make_step(simple, batch, labels, device, args.bf16),
             "transformers ViT": make_step(reference, batch, labels, device, args.bf16)}
    print(f"\n{name}: load average {load()} before")
    rates = interleaved_rates(steps, args, batch_size, device)
    ratio = statistics.median(a / b for a, b in zip(rates["SimpleViT"], rates["transformers ViT"]))
    flops = 3 * forward_flops_per_image(config)
    params = sum(p.numel() for p in simple.parameters())
    print(f"{name}: hidden {config.hidden_size}, {config.num_hidden_layers} layers, {config.num_attention_heads} heads, "
          f"MLP {config.intermediate_size}, patch {config.patch_size}, image {config.image_size}, batch {batch_size}, "
          f"{params:,} parameters, {flops / 1e6:.1f} MFLOP per training image; SimpleViT's last layer: "
          f"{'every token' if args.full_last_layer else 'CLS token only'}")
    for key, values in rates.items():
        rate = statistics.median(values)
        print(f"  {key:18s} {rate:9.0f} images/s  ({rate * flops / 1e9:7.1f} GFLOP/s)")
    print(f"  median ratio SimpleViT / transformers: {ratio:.2f}x  (per-round ratios "
          f"{', '.join(f'{a / b:.2f}' for a, b in zip(rates['SimpleViT'], rates['transformers ViT']))}); "
          f"load average {load()} after")
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
        for key in args.profile_models:
            with profile(activities=activities, record_shapes=args.profile_shapes) as prof:
                timed(steps[key], 3, device)
            print(f"\n{key}, 3 training steps, top ops by self time:")
            print(prof.key_averages(group_by_input_shape=args.profile_shapes).table(sort_by=sort, row_limit=args.profile_rows))
    return ratio


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast for both models")
    parser.add_argument("--steps", type=int, default=5, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--configs", nargs="+", default=None, choices=list(CONFIGS),
                        help="default: both; with --ablate, the tutorial config")
    parser.add_argument("--ablate", nargs="+", choices=[*ABLATIONS, "all"],
                        help="time SimpleViT with vs without each speed trick instead of the comparison with ViT")
    parser.add_argument("--full-last-layer", action="store_true",
                        help="SimpleViT's last layer on every token (no CLS-only shortcut)")
    parser.add_argument("--clock", choices=list(CLOCKS), default="wall",
                        help="cpu: this process's CPU time instead of wall time (CPU only; on a machine shared with "
                        "other jobs it counts the work done, not the time spent waiting for a core)")
    parser.add_argument("--profile", action="store_true", help="torch.profiler table of the top ops after timing")
    parser.add_argument("--profile-models", nargs="+", default=["SimpleViT"], choices=["SimpleViT", "transformers ViT"])
    parser.add_argument("--profile-shapes", action="store_true", help="group the profile by input shapes")
    parser.add_argument("--profile-rows", type=int, default=20)
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.clock == "cpu" and device.type != "cpu":
        parser.error("--clock cpu measures CPU time: use it with --device cpu")
    global clock
    clock = CLOCKS[args.clock]
    if device.type == "cpu":
        torch.set_flush_denormal(True)  # both sides: Adam's state must not turn denormal
    import transformers

    peak = matmul_peak_gflops(device, torch.bfloat16 if args.bf16 else torch.float32)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, device {device}"
          f"{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}, "
          f"threads {torch.get_num_threads()}, {'bf16 autocast' if args.bf16 else 'fp32'}, {args.clock} clock; "
          f"matmul peak {peak:.0f} GFLOP/s (2048x2048)")
    if args.ablate:
        tricks = list(ABLATIONS) if "all" in args.ablate else args.ablate
        savings = {(trick, name): ablate(trick, name, *CONFIGS[name], args, device)
                   for name in args.configs or ["tutorial"] for trick in tricks}
        print("\nsummary: " + "; ".join(f"{trick} ({name}) {100 * saving:.1f}%"
                                        for (trick, name), saving in savings.items()))
        return
    for name in args.configs or list(CONFIGS):
        fields, batch_size = CONFIGS[name]
        compare(name, fields, batch_size, args, device)


if __name__ == "__main__":
    main()
