"""Training-step throughput: SimpleViT vs transformers' ViTForImageClassification (SDPA), same config.

    python benchmarks/throughput.py                 # both configs, CPU, fp32
    python benchmarks/throughput.py --profile       # plus a torch.profiler table of SimpleViT's top ops
    python benchmarks/throughput.py --device cuda --bf16 --steps 50 --rounds 5   # a GPU, under bf16 autocast

Both models get the same config, the same optimizer (run_train.py's `make_optimizer`: AdamW, foreach), the same
batch and the same loss; they are timed in one
process in interleaved rounds (A, B, A, B, ...) so that machine noise hits both alike, and the median of the
per-round ratios is reported. Achieved GFLOP/s (analytic matmul FLOPs x 3 for forward + backward) is put
beside this machine's measured fp32 matmul peak; SimpleViT's classifier runs its last layer on the CLS token alone
(same logits, less work), so its GFLOP/s counts the full model's FLOPs: read it as ViT-equivalent work per second
(`--full-last-layer` times SimpleViT with every token in the last layer instead). The load average is printed before and after each config: on a
shared machine, read the ratio (both sides suffer alike), not the absolute images/s.
"""

import argparse
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
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


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


def timed(step, steps, device) -> float:
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return time.perf_counter() - start


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
    for step in steps.values():  # warm-up (allocator, kernels, Adam state)
        timed(step, 3, device)
    rates = {key: [] for key in steps}
    for _ in range(args.rounds):
        for key, step in steps.items():
            rates[key].append(args.steps * batch_size / timed(step, args.steps, device))
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
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--full-last-layer", action="store_true",
                        help="SimpleViT's last layer on every token (no CLS-only shortcut)")
    parser.add_argument("--profile", action="store_true", help="torch.profiler table of the top ops after timing")
    parser.add_argument("--profile-models", nargs="+", default=["SimpleViT"], choices=["SimpleViT", "transformers ViT"])
    parser.add_argument("--profile-shapes", action="store_true", help="group the profile by input shapes")
    parser.add_argument("--profile-rows", type=int, default=20)
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_flush_denormal(True)  # both sides: Adam's state must not turn denormal
    import transformers

    peak = matmul_peak_gflops(device, torch.bfloat16 if args.bf16 else torch.float32)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, device {device}"
          f"{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}, "
          f"threads {torch.get_num_threads()}, {'bf16 autocast' if args.bf16 else 'fp32'}; "
          f"matmul peak {peak:.0f} GFLOP/s (2048x2048)")
    for name in args.configs:
        fields, batch_size = CONFIGS[name]
        compare(name, fields, batch_size, args, device)


if __name__ == "__main__":
    main()
