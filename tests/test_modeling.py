"""SimpleViT against transformers' ViT (shapes), and the model's own behaviour: SDPA vs explicit attention,
gradient checkpointing, gradients, dropout, losses, output conventions, save/load (also as Hub remote code) and
input validation. Numerical agreement with ViT on converted weights is in test_convert.py."""

import copy
import json
import math
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import ViTConfig, ViTForImageClassification

from configuration_simple_vit import SimpleViTConfig
from modeling_simple_vit import SimpleViTForImageClassification, SimpleViTModel
from model_configs import ARCHITECTURE_FIELDS, CONFIGS, DEFAULT, ODD


ROOT = Path(__file__).resolve().parents[1]


def tiny_config(**overrides) -> SimpleViTConfig:
    """A small model for behaviour tests (fast), odd sizes so that shape mistakes do not cancel out."""
    return SimpleViTConfig(**{**ODD, **overrides})


def pixels(config, batch=2, size=None, seed=0):
    size = size or config.image_size
    return torch.randn(batch, config.num_channels, size, size, generator=torch.Generator().manual_seed(seed))


def classifier(config, attn_implementation="eager", seed=0):
    # _from_config keeps (and sets the attention implementation on) the config object itself: copy it, so that
    # two models built from one config do not end up sharing one implementation.
    config = copy.deepcopy(config)
    torch.manual_seed(seed)
    return SimpleViTForImageClassification._from_config(config, attn_implementation=attn_implementation).eval()


def vit_to_simple_vit_name(name: str) -> str:
    """transformers ViT parameter name -> SimpleViT's (q/k/v map to the fused projection)."""
    name = re.sub(r"^vit\.layers\.", "vit.encoder.layers.", name)
    return re.sub(r"attention\.[qkv]_proj\.", "attention.qkv_proj.", name)


# ------------------------------------------------------------------------------------------------------------------
# Same architecture as transformers' ViT
# ------------------------------------------------------------------------------------------------------------------


@CONFIGS
def test_parameter_shapes_match_vit(kwargs):
    simple = SimpleViTForImageClassification(SimpleViTConfig(**kwargs))
    vit = ViTForImageClassification(ViTConfig(**kwargs))
    simple_shapes = {name: tuple(p.shape) for name, p in simple.named_parameters()}

    # Expected SimpleViT shapes, derived from ViT's: every ViT parameter maps to one SimpleViT parameter, except
    # q, k and v, which are stacked (along the output dimension) into one fused projection.
    expected = {}
    for name, parameter in vit.named_parameters():
        target = vit_to_simple_vit_name(name)
        shape = tuple(parameter.shape)
        if target in expected and ".qkv_proj." in target:
            shape = (expected[target][0] + shape[0],) + shape[1:]
        expected[target] = shape
    assert simple_shapes == expected
    assert sum(p.numel() for p in simple.parameters()) == sum(p.numel() for p in vit.parameters())
    # The fused projection really is three ViT projections high.
    q_shape = tuple(vit.vit.layers[0].attention.q_proj.weight.shape)
    assert simple_shapes["vit.encoder.layers.0.attention.qkv_proj.weight"] == (3 * q_shape[0], q_shape[1])
    assert ("vit.encoder.layers.0.attention.qkv_proj.bias" in simple_shapes) == kwargs["qkv_bias"]


@CONFIGS
def test_output_shapes_match_vit(kwargs):
    simple = classifier(SimpleViTConfig(**kwargs))
    vit = ViTForImageClassification._from_config(ViTConfig(**kwargs), attn_implementation="eager").eval()
    x = pixels(simple.config, batch=2)
    with torch.no_grad():
        ours = simple(x, output_hidden_states=True, output_attentions=True)
        theirs = vit(x, output_hidden_states=True, output_attentions=True)
        our_base, their_base = simple.vit(x), vit.vit(x)
    assert ours.logits.shape == theirs.logits.shape == (2, kwargs["num_labels"])
    assert our_base.last_hidden_state.shape == their_base.last_hidden_state.shape
    assert [h.shape for h in ours.hidden_states] == [h.shape for h in theirs.hidden_states]
    assert [a.shape for a in ours.attentions] == [a.shape for a in theirs.attentions]
    seq_len = (kwargs["image_size"] // kwargs["patch_size"]) ** 2 + 1
    assert ours.attentions[0].shape == (2, kwargs["num_attention_heads"], seq_len, seq_len)


# ------------------------------------------------------------------------------------------------------------------
# Attention paths, gradients, dropout
# ------------------------------------------------------------------------------------------------------------------


def test_sdpa_matches_explicit_attention(monkeypatch):
    config = tiny_config()
    eager = classifier(config, "eager")
    sdpa = classifier(config, "sdpa")
    sdpa.load_state_dict(eager.state_dict())
    assert sdpa.config._attn_implementation == "sdpa"

    # Count the fused kernel's calls, to be sure each model takes the path it claims to.
    calls = []
    original = F.scaled_dot_product_attention
    monkeypatch.setattr(F, "scaled_dot_product_attention", lambda *a, **k: calls.append(1) or original(*a, **k))
    x = pixels(config)
    with torch.no_grad():
        out_eager = eager(x, output_hidden_states=True)
        assert len(calls) == 0
        out_sdpa = sdpa(x, output_hidden_states=True)
        assert len(calls) == config.num_hidden_layers
        # Asking for attention maps forces the explicit path even on the SDPA model.
        with_maps = sdpa(x, output_attentions=True)
        assert len(calls) == config.num_hidden_layers
    torch.testing.assert_close(out_sdpa.logits, out_eager.logits, atol=1e-5, rtol=0)
    for ours, theirs in zip(out_sdpa.hidden_states, out_eager.hidden_states):
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
    torch.testing.assert_close(with_maps.logits, out_eager.logits, atol=1e-5, rtol=0)
    assert len(with_maps.attentions) == config.num_hidden_layers
    for attention in with_maps.attentions:
        assert isinstance(attention, torch.Tensor) and attention.numel() > 0
        torch.testing.assert_close(attention.sum(-1), torch.ones(attention.shape[:-1]))  # rows are distributions


@pytest.mark.parametrize("options", [{}, {"locality_self_attention": True}], ids=["plain", "lsa"])
def test_set_attn_implementation_switches_a_loaded_model(tmp_path, monkeypatch, options):
    config = tiny_config(**options)
    classifier(config, "sdpa").save_pretrained(tmp_path)
    model = SimpleViTForImageClassification.from_pretrained(tmp_path).eval()  # transformers picks SDPA
    assert model.config._attn_implementation == "sdpa"
    calls = []
    original = F.scaled_dot_product_attention
    monkeypatch.setattr(F, "scaled_dot_product_attention", lambda *a, **k: calls.append(1) or original(*a, **k))
    x = pixels(config)
    layers = config.num_hidden_layers
    with torch.no_grad():
        sdpa_logits = model(x).logits
        assert len(calls) == layers  # the CLS-only last layer uses the same attention path

        model.set_attn_implementation("eager")
        assert model.config._attn_implementation == model.vit.config._attn_implementation == "eager"
        eager_logits = model(x).logits
        hidden = model(x, output_hidden_states=True)
        assert len(calls) == layers  # the explicit path: no SDPA call

        model.set_attn_implementation("sdpa")
        assert model(x).logits.shape == sdpa_logits.shape
        assert len(calls) == 2 * layers
    torch.testing.assert_close(eager_logits, sdpa_logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(hidden.logits, sdpa_logits, atol=1e-5, rtol=0)


def _loss_and_grads(model, x, labels):
    model.zero_grad()
    loss = model(x, labels=labels).loss
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def test_gradient_checkpointing_gives_the_same_gradients():
    config = tiny_config()
    plain = classifier(config, "sdpa").train()
    checkpointed = classifier(config, "sdpa").train()
    checkpointed.load_state_dict(plain.state_dict())
    # transformers v5 renamed gradient checkpointing to activation checkpointing (the old names warn).
    if hasattr(checkpointed, "activation_checkpointing_enable"):
        checkpointed.activation_checkpointing_enable()
        assert checkpointed.is_activation_checkpointing and not plain.is_activation_checkpointing
    else:
        checkpointed.gradient_checkpointing_enable()
        assert checkpointed.is_gradient_checkpointing and not plain.is_gradient_checkpointing

    # With checkpointing the layers' insides run twice (forward, then recomputed in backward). Counted by wrapping
    # forward itself: torch does not fire module hooks during the recomputation.
    mlp_calls = []
    mlp = checkpointed.vit.encoder.layers[0].mlp
    mlp_forward = mlp.forward
    mlp.forward = lambda hidden_states: mlp_calls.append(1) or mlp_forward(hidden_states)
    x, labels = pixels(config), torch.tensor([1, 5])
    loss_plain, grads_plain = _loss_and_grads(plain, x, labels)
    loss_ckpt, grads_ckpt = _loss_and_grads(checkpointed, x, labels)
    assert len(mlp_calls) == 2
    torch.testing.assert_close(loss_ckpt, loss_plain)
    assert grads_ckpt.keys() == grads_plain.keys() == {name for name, _ in plain.named_parameters()}
    for name in grads_plain:
        torch.testing.assert_close(grads_ckpt[name], grads_plain[name], atol=1e-6, rtol=1e-5, msg=name)


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
@pytest.mark.parametrize("qkv_bias", [False, True])
def test_backward_reaches_every_parameter(attn_implementation, qkv_bias):
    config = tiny_config(qkv_bias=qkv_bias)
    model = classifier(config, attn_implementation).train()
    out = model(pixels(config), labels=torch.tensor([0, 6]))
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.loss)
    out.loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize("field", ["hidden_dropout_prob", "attention_probs_dropout_prob"])
@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_dropout_is_active_in_training_only(field, attn_implementation):
    config = tiny_config(**{field: 0.3})
    model = classifier(config, attn_implementation)
    x = pixels(config)
    with torch.no_grad():
        eval_1, eval_2 = model(x).logits, model(x).logits
        model.train()
        train_1, train_2 = model(x).logits, model(x).logits
    torch.testing.assert_close(eval_1, eval_2, atol=0, rtol=0)  # eval is deterministic
    assert (train_1 - eval_1).abs().max() > 1e-4
    assert (train_1 - train_2).abs().max() > 1e-4


# ------------------------------------------------------------------------------------------------------------------
# Losses and output conventions
# ------------------------------------------------------------------------------------------------------------------


def test_single_label_loss_is_cross_entropy():
    model = classifier(tiny_config())
    labels = torch.tensor([3, 0])
    out = model(pixels(model.config), labels=labels)
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, labels))


@pytest.mark.parametrize("problem_type", [None, "multi_label_classification"])
def test_multi_label_loss_is_bce_with_logits(problem_type):
    model = classifier(tiny_config(problem_type=problem_type))
    labels = torch.tensor([[1.0, 0, 1, 0, 0, 1, 0], [0, 0, 0, 1, 1, 0, 0]])
    out = model(pixels(model.config), labels=labels)
    torch.testing.assert_close(out.loss, F.binary_cross_entropy_with_logits(out.logits, labels))
    assert not torch.allclose(out.loss, F.mse_loss(out.logits, labels))


def test_single_output_loss_is_mse():
    model = classifier(tiny_config(num_labels=1))
    labels = torch.tensor([0.5, -1.25])
    out = model(pixels(model.config), labels=labels)
    assert out.logits.shape == (2, 1)
    torch.testing.assert_close(out.loss, F.mse_loss(out.logits.squeeze(-1), labels))


def test_return_dict_false_gives_transformers_tuple_order():
    config = tiny_config()
    model = classifier(config)
    vit = ViTForImageClassification._from_config(ViTConfig(**ODD), attn_implementation="eager").eval()
    x, labels = pixels(config), torch.tensor([1, 2])
    kwargs = dict(labels=labels, output_hidden_states=True, output_attentions=True)
    with torch.no_grad():
        as_dict = model(x, **kwargs)
        as_tuple = model(x, return_dict=False, **kwargs)
        theirs = vit(x, return_dict=False, **kwargs)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == len(theirs) == 4
    # transformers' order: loss, logits, hidden_states, attentions.
    torch.testing.assert_close(as_tuple[0], as_dict.loss)
    torch.testing.assert_close(as_tuple[1], as_dict.logits)
    for position in (2, 3):
        assert len(as_tuple[position]) == len(theirs[position]) == config.num_hidden_layers + (position == 2)
    for ours, expected in zip(as_tuple[2] + as_tuple[3], as_dict.hidden_states + as_dict.attentions):
        torch.testing.assert_close(ours, expected)
    assert [t.shape for t in as_tuple[2] + as_tuple[3]] == [t.shape for t in theirs[2] + theirs[3]]

    # Without labels or extras, only the logits.
    with torch.no_grad():
        (logits,) = model(x, return_dict=False)
    torch.testing.assert_close(logits, as_dict.logits)

    # The bare model: last_hidden_state, pooler_output (the final CLS state), hidden_states.
    with torch.no_grad():
        base_tuple = model.vit(x, return_dict=False, output_hidden_states=True)
        base_dict = model.vit(x, output_hidden_states=True)
    assert len(base_tuple) == 3
    torch.testing.assert_close(base_tuple[0], base_dict.last_hidden_state)
    torch.testing.assert_close(base_tuple[1], base_dict.last_hidden_state[:, 0])
    torch.testing.assert_close(base_tuple[1], base_dict.pooler_output)


def test_hidden_states_are_embeddings_then_each_layer():
    config = tiny_config()
    model = classifier(config)
    x = pixels(config)
    with torch.no_grad():
        out = model.vit(x, output_hidden_states=True)
        embeddings = model.vit.embeddings(x)
        expected = [embeddings]
        for layer in model.vit.encoder.layers:
            expected.append(layer(expected[-1])[0])
    assert len(out.hidden_states) == config.num_hidden_layers + 1
    for ours, theirs in zip(out.hidden_states, expected):
        torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(model.vit.layernorm(out.hidden_states[-1]), out.last_hidden_state)


def test_config_output_defaults_are_honoured():
    config = tiny_config(output_attentions=True, output_hidden_states=True)
    model = classifier(config, "sdpa")
    x = pixels(config)
    with torch.no_grad():
        out = model(x)
        assert len(out.attentions) == config.num_hidden_layers
        assert all(isinstance(a, torch.Tensor) and a.numel() > 0 for a in out.attentions)
        assert len(out.hidden_states) == config.num_hidden_layers + 1
        overridden = model(x, output_attentions=False, output_hidden_states=False)
        assert overridden.attentions is None and overridden.hidden_states is None
        plain = classifier(tiny_config(), "sdpa")(x)
        assert plain.attentions is None and plain.hidden_states is None
        model.config.return_dict = False
        assert isinstance(model(x), tuple)


# ------------------------------------------------------------------------------------------------------------------
# Mean pooling (classifier_pooling="mean"): the patch tokens' average instead of the CLS token
# ------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_mean_pooling_classifies_the_average_patch_token(attn_implementation):
    model = classifier(tiny_config(classifier_pooling="mean"), attn_implementation)
    x = pixels(model.config, batch=3)
    with torch.no_grad():
        out = model(x, output_hidden_states=True)
        # The last hidden state before the final LayerNorm, normalised here, then averaged over the patches only.
        final = model.vit.layernorm(out.hidden_states[-1])  # (batch, num_patches + 1, hidden_size)
        assert final.shape[1] == (30 // 5) ** 2 + 1
        expected = model.classifier(final[:, 1:].mean(dim=1))
        torch.testing.assert_close(out.logits, expected, atol=1e-6, rtol=0)
        # The classifier's CLS-only shortcut must not apply: it would drop the patch tokens' last layer. Logits
        # without hidden states (where the shortcut would kick in) are the same.
        torch.testing.assert_close(model(x).logits, out.logits, atol=1e-6, rtol=0)
        base = model.vit(x)
        torch.testing.assert_close(base.pooler_output, base.last_hidden_state[:, 1:].mean(dim=1), atol=0, rtol=0)


def test_mean_and_cls_pooling_differ_only_in_what_the_classifier_reads():
    # Same weights, two poolings: the encoder output is identical, the logits are not (so the option is live).
    cls_model = classifier(tiny_config())
    mean_model = classifier(tiny_config(classifier_pooling="mean"))
    mean_model.load_state_dict(cls_model.state_dict())
    x = pixels(cls_model.config)
    with torch.no_grad():
        cls_out = cls_model(x, output_hidden_states=True)
        mean_out = mean_model(x, output_hidden_states=True)
    torch.testing.assert_close(mean_out.hidden_states[-1], cls_out.hidden_states[-1], atol=0, rtol=0)
    assert (mean_out.logits - cls_out.logits).abs().max() > 1e-3


@pytest.mark.parametrize("pooling", ["mean", "sequence"])
def test_patch_pooling_survives_save_and_load(tmp_path, pooling):
    model = classifier(tiny_config(classifier_pooling=pooling))
    if pooling == "sequence":
        with torch.no_grad():  # values that initialisation would not give: loading must keep them
            model.vit.pooler.attention_pool.weight.normal_()
    x = pixels(model.config)
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["classifier_pooling"] == pooling
    loaded = SimpleViTForImageClassification.from_pretrained(tmp_path, attn_implementation="eager").eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x).logits, model(x).logits, atol=0, rtol=0)
        half = loaded.to(torch.bfloat16)(x.to(torch.bfloat16)).logits
    assert half.dtype == torch.bfloat16 and torch.isfinite(half).all()


# ------------------------------------------------------------------------------------------------------------------
# Sequence pooling (classifier_pooling="sequence", from Compact Convolutional Transformers)
# ------------------------------------------------------------------------------------------------------------------


def sequence_pooling_model(attn_implementation="eager"):
    """A sequence-pooling classifier whose pooler scores the tokens far from evenly (unlike at initialisation)."""
    model = classifier(tiny_config(classifier_pooling="sequence"), attn_implementation)
    with torch.no_grad():
        model.vit.pooler.attention_pool.weight.copy_(torch.randn(1, 36, generator=torch.Generator().manual_seed(1)))
    return model


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_sequence_pooling_classifies_the_softmax_weighted_patch_tokens(attn_implementation):
    model = sequence_pooling_model(attn_implementation)
    x = pixels(model.config, batch=3)
    with torch.no_grad():
        out = model(x, output_hidden_states=True)
        # By hand: one score per patch token of the normalised final states (w . h), softmax over the patches of
        # each image, and the classifier reads the patch tokens' sum under those weights.
        final = model.vit.layernorm(out.hidden_states[-1])[:, 1:]  # (batch, num_patches, hidden_size)
        scores = final @ model.vit.pooler.attention_pool.weight[0]  # (batch, num_patches)
        weights = scores.softmax(dim=1)
        expected = model.classifier((weights[..., None] * final).sum(dim=1))
        torch.testing.assert_close(out.logits, expected, atol=1e-5, rtol=0)
        torch.testing.assert_close(model(x).logits, out.logits, atol=1e-6, rtol=0)  # no CLS-only shortcut
        # The weights are far from even here, so this is not mean pooling by another name.
        assert weights.max() > 3 / weights.shape[1]
        assert (model.classifier(final.mean(dim=1)) - out.logits).abs().max() > 1e-3


def test_sequence_pooling_adds_one_scoring_layer_and_starts_close_to_mean_pooling():
    config = tiny_config(classifier_pooling="sequence")
    model, mean_model = classifier(config), classifier(tiny_config(classifier_pooling="mean"))
    extra = {name: p.shape for name, p in model.named_parameters()}.items() - {
        name: p.shape for name, p in mean_model.named_parameters()}.items()
    assert extra == {("vit.pooler.attention_pool.weight", (1, 36))}  # no bias, which the softmax would ignore
    # Initialised like every Linear (normal(0, 0.02)): the scores start near zero, so the weights start near even,
    # and training starts from (almost) mean pooling.
    with torch.no_grad():
        weights = model.vit.pooler.token_weights(model.vit(pixels(config, batch=4)).last_hidden_state)
    num_patches = (30 // 5) ** 2
    assert weights.shape == (4, num_patches)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(4))
    assert (weights * num_patches - 1).abs().max() < 0.75  # PyTorch's own Linear initialisation gives about 2.7


def test_sequence_pooling_trains_every_parameter():
    config = tiny_config(classifier_pooling="sequence")
    model = classifier(config).train()
    model(pixels(config, batch=4), labels=torch.tensor([0, 1, 2, 3])).loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


# ------------------------------------------------------------------------------------------------------------------
# Fixed 2-D sine-cosine positions (position_embedding_type="sincos")
# ------------------------------------------------------------------------------------------------------------------


def expected_sincos(rows, cols, hidden_size):
    """The documented formula, entry by entry in plain Python (an independent check of the vectorised table)."""
    quarter = hidden_size // 4
    table = [[0.0] * hidden_size]  # the CLS position
    for row in range(rows):
        for col in range(cols):
            angles_col = [col / 10000 ** (k / quarter) for k in range(quarter)]
            angles_row = [row / 10000 ** (k / quarter) for k in range(quarter)]
            table.append(
                [math.sin(a) for a in angles_col] + [math.cos(a) for a in angles_col]
                + [math.sin(a) for a in angles_row] + [math.cos(a) for a in angles_row]
            )
    return torch.tensor(table).unsqueeze(0)  # (1, 1 + rows * cols, hidden_size)


def test_sincos_positions_follow_the_formula_for_any_grid():
    model = classifier(tiny_config(position_embedding_type="sincos"))
    embeddings = model.vit.embeddings
    with torch.no_grad():
        embeddings.patch_embeddings.projection.bias.normal_()
    # One model, three grids in turn (the tables are cached per grid): the native 6 x 6, then 8 x 5 and 5 x 8, so
    # rows and columns cannot swap unnoticed.
    for height, width in ((30, 30), (40, 25), (25, 40)):
        x = torch.randn(2, 3, height, width, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            got = embeddings(x, interpolate_pos_encoding=(height, width) != (30, 30))
            # Conv2d, CLS in front, then the fixed positions: nothing else is added.
            patches = embeddings.patch_embeddings.projection(x).flatten(2).transpose(1, 2)
            tokens = torch.cat((embeddings.cls_token.expand(2, -1, -1), patches), dim=1)
        expected = expected_sincos(height // 5, width // 5, 36)
        torch.testing.assert_close(got - tokens, expected.expand(2, -1, -1), atol=1e-5, rtol=0)


def test_an_unknown_position_embedding_type_set_after_the_config_is_refused_by_the_model():
    config = tiny_config()
    config.position_embedding_type = "absolute"  # bypasses the config's own check, as from_pretrained kwargs do
    with pytest.raises(ValueError, match="position_embedding_type must be 'learned' or 'sincos', got 'absolute'"):
        SimpleViTForImageClassification(config)


def test_sincos_positions_have_no_parameters_and_survive_save_and_load(tmp_path):
    model = classifier(tiny_config(position_embedding_type="sincos"))
    learned = classifier(tiny_config())
    names = {name for name, _ in model.named_parameters()}
    # Exactly the learned model's parameters minus the position table: nothing to train, save or load.
    assert names == {name for name, _ in learned.named_parameters()} - {"vit.embeddings.position_embeddings"}
    assert not any("position" in key for key in model.state_dict())
    x = pixels(model.config)
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["position_embedding_type"] == "sincos"
    loaded = SimpleViTForImageClassification.from_pretrained(tmp_path, attn_implementation="sdpa").eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x).logits, model(x).logits, atol=1e-5, rtol=0)
        # The positions matter: the same weights with learned positions (set to zero) give other logits.
        learned.load_state_dict(model.state_dict(), strict=False)
        learned.vit.embeddings.position_embeddings.zero_()
        assert (learned(x).logits - model(x).logits).abs().max() > 1e-3


def test_sincos_model_trains_and_runs_in_bfloat16():
    model = classifier(tiny_config(position_embedding_type="sincos")).train()
    x, labels = pixels(model.config, batch=4), torch.tensor([0, 1, 2, 3])
    model(x, labels=labels).loss.backward()
    assert model.vit.embeddings.cls_token.grad.abs().sum() > 0
    # The table follows the parameters' dtype and device, as learned positions would.
    model = model.to(torch.bfloat16).eval()
    with torch.no_grad():
        assert model(x.to(torch.bfloat16)).logits.dtype == torch.bfloat16


# ------------------------------------------------------------------------------------------------------------------
# The small-dataset options: Shifted Patch Tokenization and Locality Self-Attention
# ------------------------------------------------------------------------------------------------------------------


def moved(x, down, right):
    """x with its content moved `down` rows and `right` columns (negative: up / left), zeros moved in."""
    height, width = x.shape[-2:]
    out = torch.zeros_like(x)
    out[..., max(down, 0) : height + min(down, 0), max(right, 0) : width + min(right, 0)] = x[
        ..., max(-down, 0) : height - max(down, 0), max(-right, 0) : width - max(right, 0)
    ]
    return out


def test_shifted_patch_tokenization_embeds_the_image_and_its_four_diagonal_shifts():
    config = tiny_config(shifted_patch_tokenization=True)  # patch 5: shifts of 5 // 2 = 2 pixels
    embeddings = classifier(config).vit.embeddings
    patch_embeddings = embeddings.patch_embeddings
    assert patch_embeddings.projection.weight.shape == (36, 15, 5, 5)  # 5 x 3 input channels
    with torch.no_grad():  # non-trivial LayerNorm affine, so a normalised CLS slot would show
        patch_embeddings.patch_norm.weight.normal_()
        patch_embeddings.patch_norm.bias.normal_()
    x = pixels(config)
    stacked = torch.cat([x, moved(x, -2, -2), moved(x, -2, 2), moved(x, 2, -2), moved(x, 2, 2)], dim=1)
    torch.testing.assert_close(patch_embeddings.shifted_images(x), stacked, atol=0, rtol=0)
    with torch.no_grad():
        got = embeddings(x)  # (2, 37, 36)
        # The paper's recipe spelled out: cut patches, LayerNorm, linear projection; then CLS and positions as usual.
        patches = F.unfold(stacked, kernel_size=5, stride=5).transpose(1, 2)  # (2, 36, 375), (channel, row, col)
        norm = patch_embeddings.patch_norm
        normed = F.layer_norm(patches, (375,), norm.weight, norm.bias, norm.eps)
        projection = patch_embeddings.projection
        tokens = F.linear(normed, projection.weight.flatten(1), projection.bias)
        expected = torch.cat((embeddings.cls_token.expand(2, -1, -1), tokens), dim=1) + embeddings.position_embeddings
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
        torch.testing.assert_close(patch_embeddings(x), tokens, atol=1e-5, rtol=0)  # the module on its own
        # Another image size (8 x 5 patches, interpolated positions): the same recipe on that grid.
        y = torch.randn(2, 3, 40, 25, generator=torch.Generator().manual_seed(3))
        stacked = torch.cat([y, moved(y, -2, -2), moved(y, -2, 2), moved(y, 2, -2), moved(y, 2, 2)], dim=1)
        patches = F.unfold(stacked, kernel_size=5, stride=5).transpose(1, 2)  # (2, 40, 375)
        normed = F.layer_norm(patches, (375,), norm.weight, norm.bias, norm.eps)
        tokens = F.linear(normed, projection.weight.flatten(1), projection.bias)
        expected = torch.cat((embeddings.cls_token.expand(2, -1, -1), tokens), dim=1)
        expected = expected + embeddings.interpolate_pos_encoding(40, 25)
        torch.testing.assert_close(embeddings(y, interpolate_pos_encoding=True), expected, atol=1e-5, rtol=0)


def conv_tokenizer_config(**overrides):
    # Patch 4 (two conv blocks) on a 24-pixel image: a 6 x 6 grid; hidden 36, so the first block has 18 channels.
    return tiny_config(image_size=24, patch_size=4, convolutional_tokenization=True, **overrides)


def test_convolutional_tokenization_is_cct_s_tokenizer():
    config = conv_tokenizer_config()
    embeddings = classifier(config).vit.embeddings
    first, second = (layer for layer in embeddings.patch_embeddings.projection if isinstance(layer, torch.nn.Conv2d))
    assert (first.weight.shape, second.weight.shape) == ((18, 3, 3, 3), (36, 18, 3, 3))
    assert first.bias is None and second.bias is None
    # He initialisation for the ReLU layers (std sqrt(2 / fan_in)), not the transformer's normal(0, 0.02).
    assert first.weight.std().item() == pytest.approx(math.sqrt(2 / 27), rel=0.15)
    assert second.weight.std().item() == pytest.approx(math.sqrt(2 / 162), rel=0.1)
    x = pixels(config)
    with torch.no_grad():
        # CCT's tokenizer spelled out: (3x3 conv, ReLU, 3x3 max-pool of stride 2) twice, then the grid row by row.
        hidden = F.max_pool2d(F.relu(F.conv2d(x, first.weight, padding=1)), 3, stride=2, padding=1)  # (2, 18, 12, 12)
        grid = F.max_pool2d(F.relu(F.conv2d(hidden, second.weight, padding=1)), 3, stride=2, padding=1)
        assert grid.shape == (2, 36, 6, 6)
        tokens = torch.stack([grid[:, :, row, col] for row in range(6) for col in range(6)], dim=1)  # (2, 36, 36)
        torch.testing.assert_close(embeddings.patch_embeddings(x), tokens, atol=1e-5, rtol=0)
        expected = torch.cat((embeddings.cls_token.expand(2, -1, -1), tokens), dim=1) + embeddings.position_embeddings
        torch.testing.assert_close(embeddings(x), expected, atol=1e-5, rtol=0)
        # Another size (8 x 4 tokens, interpolated positions) works; one the pools would round up is refused.
        assert embeddings(torch.randn(2, 3, 32, 16), interpolate_pos_encoding=True).shape == (2, 33, 36)
        with pytest.raises(ValueError, match="image size divisible by patch_size \\(4\\); got 26x24"):
            embeddings(torch.randn(2, 3, 26, 24), interpolate_pos_encoding=True)


def test_convolutional_tokenizer_missing_from_a_checkpoint_starts_from_he_initialisation(tmp_path):
    from safetensors.torch import load_file, save_file

    classifier(conv_tokenizer_config()).save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    save_file({k: v for k, v in weights.items() if ".projection." not in k}, tmp_path / "model.safetensors",
              metadata={"format": "pt"})  # fmt: skip
    loaded = SimpleViTForImageClassification.from_pretrained(tmp_path)
    # The rest of the embeddings loaded (their module counts as initialised), the convolutions drawn anew: He's.
    torch.testing.assert_close(loaded.vit.embeddings.cls_token, weights["vit.embeddings.cls_token"], atol=0, rtol=0)
    first = loaded.vit.embeddings.patch_embeddings.projection[0]
    assert first.weight.std().item() == pytest.approx(math.sqrt(2 / 27), rel=0.15)


@pytest.mark.parametrize("patch_size, widths", [(2, [36]), (8, [18, 18, 36])])
def test_convolutional_tokenization_has_one_block_per_halving(patch_size, widths):
    config = tiny_config(image_size=32, patch_size=patch_size, convolutional_tokenization=True)
    model = classifier(config)
    convs = [layer for layer in model.vit.embeddings.patch_embeddings.projection if isinstance(layer, torch.nn.Conv2d)]
    assert [conv.out_channels for conv in convs] == widths
    hidden = model.vit(pixels(config)).last_hidden_state
    assert hidden.shape == (2, (32 // patch_size) ** 2 + 1, 36)


def test_tokenizer_channels_set_the_width_between_the_blocks(tmp_path):
    # Patch 8: three blocks, 7 channels between them (not hidden 36 // 2 = 18); the last still gives hidden_size.
    config = tiny_config(image_size=32, patch_size=8, convolutional_tokenization=True, tokenizer_channels=7)
    model = classifier(config).eval()
    convs = [layer for layer in model.vit.embeddings.patch_embeddings.projection if isinstance(layer, torch.nn.Conv2d)]
    assert [tuple(conv.weight.shape) for conv in convs] == [(7, 3, 3, 3), (7, 7, 3, 3), (36, 7, 3, 3)]
    assert convs[1].weight.std().item() == pytest.approx(math.sqrt(2 / 63), rel=0.15)  # He, for its fan-in 7 x 9
    x = pixels(config)
    model.save_pretrained(tmp_path)
    loaded = SimpleViTForImageClassification.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x).logits, model(x).logits, atol=1e-5, rtol=0)


def test_convolutional_tokenization_trains_every_parameter_and_survives_save_and_load(tmp_path):
    config = conv_tokenizer_config(locality_self_attention=True, classifier_pooling="mean")
    model = classifier(config).train()
    model(pixels(config, batch=4), labels=torch.tensor([0, 1, 2, 3])).loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert "vit.embeddings.patch_embeddings.projection.3.weight" in dict(model.named_parameters())
    x = pixels(config)
    model.eval().save_pretrained(tmp_path)
    # Loading must keep the trained convolutions, not draw new He-initialised ones.
    loaded = SimpleViTForImageClassification.from_pretrained(tmp_path, attn_implementation="sdpa").eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x).logits, model(x).logits, atol=1e-5, rtol=0)
        half = loaded.to(torch.bfloat16)(x.to(torch.bfloat16)).logits
    assert half.dtype == torch.bfloat16 and torch.isfinite(half).all()


def lsa_models():
    """An eager and an SDPA model with Locality Self-Attention, sharing weights, each layer with its own scale."""
    config = tiny_config(locality_self_attention=True)
    eager = classifier(config, "eager")
    with torch.no_grad():
        for index, layer in enumerate(eager.vit.encoder.layers):
            assert layer.attention.scaling.item() == pytest.approx(6**-0.5)  # starts at 1/sqrt(head_dim)
            layer.attention.scaling.fill_(0.1 + 0.2 * index)
    sdpa = classifier(config, "sdpa")
    sdpa.load_state_dict(eager.state_dict())
    return eager, sdpa


@pytest.mark.parametrize("cls_only_last_layer", [True, False])
def test_locality_self_attention_masks_the_diagonal_with_a_learned_scale(cls_only_last_layer):
    eager, sdpa = lsa_models()
    eager.cls_only_last_layer = sdpa.cls_only_last_layer = cls_only_last_layer
    x = pixels(eager.config)
    with torch.no_grad():
        full = eager(x, output_attentions=True, output_hidden_states=True)
        torch.testing.assert_close(eager(x).logits, full.logits, atol=1e-5, rtol=0)
        torch.testing.assert_close(sdpa(x).logits, full.logits, atol=1e-5, rtol=0)
        # Layer 1's probabilities by hand: its learned scale (0.3), the diagonal excluded.
        layer = eager.vit.encoder.layers[1]
        qkv = layer.attention.qkv_proj(layer.layernorm_before(full.hidden_states[1])).view(2, 37, 3, 6, 6)
        query, key, _ = (t.transpose(1, 2) for t in qkv.unbind(2))
        scores = (query @ key.transpose(-1, -2)) * 0.3
        scores = scores.masked_fill(torch.eye(37, dtype=torch.bool), float("-inf"))
        torch.testing.assert_close(full.attentions[1], scores.softmax(-1), atol=1e-6, rtol=0)
    for attention in full.attentions:
        assert torch.diagonal(attention, dim1=-2, dim2=-1).abs().max() == 0  # no token reads itself
        torch.testing.assert_close(attention.sum(-1), torch.ones(attention.shape[:-1]))
    # The scale is used: another value gives other logits.
    with torch.no_grad():
        eager.vit.encoder.layers[0].attention.scaling.fill_(1.0)
        assert (eager(x).logits - full.logits).abs().max() > 1e-4


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_small_dataset_options_train_every_parameter(attn_implementation):
    config = tiny_config(shifted_patch_tokenization=True, locality_self_attention=True)
    model = classifier(config, attn_implementation).train()
    model(pixels(config, batch=4), labels=torch.tensor([0, 1, 2, 3])).loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    names = {name for name, _ in model.named_parameters()}
    assert {"vit.embeddings.patch_embeddings.patch_norm.weight", "vit.encoder.layers.2.attention.scaling"} <= names


def test_small_dataset_options_survive_save_and_load_and_run_in_bfloat16(tmp_path):
    config = tiny_config(shifted_patch_tokenization=True, locality_self_attention=True)
    model = classifier(config)
    with torch.no_grad():  # values that initialisation would not give: loading must keep them
        for index, layer in enumerate(model.vit.encoder.layers):
            layer.attention.scaling.fill_(0.1 + 0.2 * index)
        model.vit.embeddings.patch_embeddings.patch_norm.bias.normal_()
    x = pixels(config)
    model.save_pretrained(tmp_path)
    loaded = SimpleViTForImageClassification.from_pretrained(tmp_path, attn_implementation="sdpa").eval()
    assert [layer.attention.scaling.item() for layer in loaded.vit.encoder.layers] == pytest.approx([0.1, 0.3, 0.5])
    with torch.no_grad():
        torch.testing.assert_close(loaded(x).logits, model.eval()(x).logits, atol=1e-5, rtol=0)
        half = loaded.to(torch.bfloat16)(x.to(torch.bfloat16)).logits
    assert half.dtype == torch.bfloat16 and torch.isfinite(half).all()


# ------------------------------------------------------------------------------------------------------------------
# Saving and loading (also as Hub remote code)
# ------------------------------------------------------------------------------------------------------------------


def test_save_and_from_pretrained_reproduce_logits(tmp_path):
    model = classifier(tiny_config(id2label={i: f"class_{i}" for i in range(7)}))
    x = pixels(model.config)
    model.save_pretrained(tmp_path)

    files = set(os.listdir(tmp_path))
    assert {"model.safetensors", "config.json", "modeling_simple_vit.py", "configuration_simple_vit.py"} <= files
    assert not any(name.endswith(".bin") for name in files)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "simple_vit"
    assert saved["architectures"] == ["SimpleViTForImageClassification"]
    assert {"AutoConfig", "AutoModel", "AutoModelForImageClassification"} <= set(saved["auto_map"])
    assert (tmp_path / "modeling_simple_vit.py").read_text() == (ROOT / "modeling_simple_vit.py").read_text()

    loaded = SimpleViTForImageClassification.from_pretrained(tmp_path, attn_implementation="eager").eval()
    assert loaded.config.id2label[6] == "class_6"
    with torch.no_grad():
        torch.testing.assert_close(loaded(x).logits, model(x).logits, atol=0, rtol=0)


# Run in a fresh interpreter, from a temporary directory, with the project's modules made unimportable (even if
# the project is pip-installed), so only the code files saved next to the weights can make this work.
REMOTE_CODE_SCRIPT = textwrap.dedent(
    """
    import importlib.abc, sys
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name in ("modeling_simple_vit", "configuration_simple_vit", "convert_vit_checkpoint"):
                raise ModuleNotFoundError(name)
    sys.meta_path.insert(0, Block())

    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForImageClassification

    classifier_dir, base_dir, data = sys.argv[1], sys.argv[2], torch.load(sys.argv[3])
    config = AutoConfig.from_pretrained(classifier_dir, trust_remote_code=True)
    assert type(config).__name__ == "SimpleViTConfig", type(config)
    for auto_class, folder, name, key in (
        (AutoModelForImageClassification, classifier_dir, "SimpleViTForImageClassification", "logits"),
        (AutoModel, classifier_dir, "SimpleViTModel", "base_hidden"),
        (AutoModel, base_dir, "SimpleViTModel", "base_only_hidden"),
    ):
        model = auto_class.from_pretrained(folder, trust_remote_code=True).eval()
        assert type(model).__name__ == name, type(model)
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        with torch.no_grad():
            out = model(data["pixels"])
        got = out.logits if key == "logits" else out.last_hidden_state
        torch.testing.assert_close(got, data[key], atol=1e-6, rtol=0)
        print("OK", auto_class.__name__, name)
    """
)


def test_saved_folders_load_as_remote_code_without_the_project(tmp_path):
    model = classifier(tiny_config())
    base = SimpleViTModel._from_config(tiny_config(), attn_implementation="eager").eval()
    x = pixels(model.config)
    with torch.no_grad():
        data = {
            "pixels": x,
            "logits": model(x).logits,
            "base_hidden": model.vit(x).last_hidden_state,
            "base_only_hidden": base(x).last_hidden_state,
        }
    model.save_pretrained(tmp_path / "classifier")
    base.save_pretrained(tmp_path / "base")
    assert json.loads((tmp_path / "base" / "config.json").read_text())["architectures"] == ["SimpleViTModel"]
    torch.save(data, tmp_path / "data.pt")
    (tmp_path / "check.py").write_text(REMOTE_CODE_SCRIPT)

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    result = subprocess.run(
        [sys.executable, str(tmp_path / "check.py"), "../classifier", "../base", "../data.pt"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("OK") == 3, result.stdout


# ------------------------------------------------------------------------------------------------------------------
# Input validation
# ------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(35, 35), (30, 35), (25, 30)])
def test_wrong_image_size_says_expected_and_got(size):
    model = classifier(tiny_config())
    x = torch.randn(1, 3, *size)
    with pytest.raises(ValueError) as error:
        model(x)
    message = str(error.value)
    assert re.search(r"30\s*[x*×,]\s*30", message), message
    assert re.search(rf"{size[0]}\s*[x*×,]\s*{size[1]}", message), message


def test_other_sizes_work_with_interpolated_positions():
    model = classifier(tiny_config())
    with torch.no_grad():
        out = model(torch.randn(1, 3, 40, 35), interpolate_pos_encoding=True, output_attentions=True)
    assert out.logits.shape == (1, 7)
    assert out.attentions[0].shape[-1] == 8 * 7 + 1


def test_wrong_channel_count_is_rejected():
    model = classifier(tiny_config())
    with pytest.raises(ValueError, match="channels"):
        model(torch.randn(1, 1, 30, 30))


@pytest.mark.parametrize("shape", [(3, 30, 30), (1, 1, 3, 30, 30)])
def test_non_4d_input_is_rejected(shape):
    model = classifier(tiny_config())
    with pytest.raises(ValueError, match="4-D"):
        model(torch.randn(*shape))
