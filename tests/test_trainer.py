"""SimpleViT under `transformers.Trainer` with gradient accumulation.

Trainer passes `num_items_in_batch` to a model whose `forward` takes `**kwargs` and trusts its loss to be divided by
the whole accumulated batch's size; a loss averaged over each micro-batch alone would be k times too large under
accumulation k (reported, back-propagated and clipped that way). Batch 16 x accumulation 1 and batch 8 x
accumulation 2 see the same 64 images in the same order, so they must log the same loss and end with the same
weights. transformers' own ViTForImageClassification on the same data is the baseline: the check holds for it too.
"""

import copy

import pytest
import torch
from transformers import Trainer, TrainingArguments, ViTConfig, ViTForImageClassification

from configuration_simple_vit import SimpleViTConfig
from modeling_simple_vit import SimpleViTForImageClassification

TINY = dict(
    image_size=15, patch_size=5, hidden_size=18, num_attention_heads=3, intermediate_size=19, num_hidden_layers=2,
    num_labels=5,
)  # fmt: skip


class Images(torch.utils.data.Dataset):
    def __init__(self, n=64):
        generator = torch.Generator().manual_seed(0)
        self.pixels = torch.randn(n, 3, 15, 15, generator=generator)
        self.labels = torch.randint(0, 5, (n,), generator=generator)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return {"pixel_values": self.pixels[index], "labels": self.labels[index]}


def train(model, batch_size, accumulation, output_dir):
    args = TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=accumulation,
        num_train_epochs=1,
        # Plain SGD without clipping: the update is proportional to the gradient, so a k-times loss shows in the
        # weights too (Adam would normalise most of it away).
        optim="sgd",
        learning_rate=0.1,
        lr_scheduler_type="constant",
        weight_decay=0.0,
        max_grad_norm=0.0,
        train_sampling_strategy="sequential",  # the same images in the same order in both runs
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    trainer = Trainer(model=model, args=args, train_dataset=Images())
    result = trainer.train()
    step_losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    weights = {name: p.detach().clone() for name, p in model.named_parameters()}
    return result.training_loss, step_losses, weights


def simple_vit():
    return SimpleViTForImageClassification(SimpleViTConfig(**TINY))


def transformers_vit():
    return ViTForImageClassification._from_config(ViTConfig(**TINY), attn_implementation="sdpa")


@pytest.mark.parametrize("build", [simple_vit, transformers_vit], ids=["SimpleViT", "transformers ViT"])
def test_gradient_accumulation_gives_the_loss_and_weights_of_the_whole_batch(build, tmp_path):
    torch.manual_seed(0)
    model = build().train()
    whole = train(copy.deepcopy(model), batch_size=16, accumulation=1, output_dir=tmp_path / "whole")
    accumulated = train(copy.deepcopy(model), batch_size=8, accumulation=2, output_dir=tmp_path / "accumulated")

    assert len(whole[1]) == len(accumulated[1]) == 4  # 64 images, 16 per optimizer step
    assert whole[0] == pytest.approx(accumulated[0], abs=1e-5), "the mean training loss"
    assert whole[1] == pytest.approx(accumulated[1], abs=1e-3), "the logged per-step losses (rounded by Trainer)"
    # The training moved the weights (so equal weights mean something), the same way in both runs.
    start = dict(model.named_parameters())
    assert max((whole[2][name] - start[name]).abs().max() for name in start) > 1e-2
    for name, weight in whole[2].items():
        torch.testing.assert_close(accumulated[2][name], weight, atol=1e-5, rtol=0, msg=name)
