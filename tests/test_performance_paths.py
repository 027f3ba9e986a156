"""The reformulations in modeling_simple_vit.py compute what the plain formulation computes.

- The patch embeddings' Conv2d is "cut out each patch, flatten it, apply one Linear" (`patchify`, what SPT runs);
  with the CLS token in front and the positions added, the embeddings equal the textbook form.
- The classifier's last layer runs on the CLS token alone (the `# --- speed:` block of
  SimpleViTForImageClassification); logits and every gradient must equal those of the full last layer, and hidden
  states / attention maps must still be complete when asked for.
"""

import pytest
import torch

from configuration_simple_vit import SimpleViTConfig
from modeling_simple_vit import SimpleViTForImageClassification, SimpleViTModel, patchify

SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, image_size=16, patch_size=4)


def reference_embeddings(embeddings, pixel_values, position_embeddings):
    """The textbook form: Conv2d, flatten, transpose, cat the CLS token, add positions."""
    patches = embeddings.patch_embeddings.projection(pixel_values).flatten(2).transpose(1, 2)
    cls = embeddings.cls_token.expand(pixel_values.shape[0], -1, -1)
    return torch.cat((cls, patches), dim=1) + position_embeddings


@pytest.mark.parametrize("size", [16, 24, 18])  # 18: pixels past the last whole patch are ignored, as by Conv2d
def test_patch_projection_matches_conv2d_cls_and_positions(size):
    torch.manual_seed(0)
    model = SimpleViTModel(SimpleViTConfig(**SMALL)).eval()
    embeddings = model.embeddings
    with torch.no_grad():
        embeddings.patch_embeddings.projection.bias.normal_()  # a non-zero bias must land on patch rows only
    x = torch.randn(3, 3, size, size, requires_grad=True)
    interpolate = size != 16
    positions = embeddings.interpolate_pos_encoding(size, size) if interpolate else embeddings.position_embeddings
    expected = reference_embeddings(embeddings, x, positions)
    got = embeddings(x, interpolate_pos_encoding=interpolate)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)

    grad = torch.randn_like(got)
    params = [x, embeddings.cls_token, embeddings.position_embeddings, *embeddings.patch_embeddings.parameters()]
    ours = torch.autograd.grad(got, params, grad)
    theirs = torch.autograd.grad(expected, params, grad)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


@pytest.mark.parametrize("size", [16, 18])
def test_patch_embeddings_module_alone_matches_conv2d_and_patchify_then_linear(size):
    torch.manual_seed(0)
    patch_embeddings = SimpleViTModel(SimpleViTConfig(**SMALL)).embeddings.patch_embeddings
    x = torch.randn(2, 3, size, size)
    expected = patch_embeddings.projection(x).flatten(2).transpose(1, 2)
    torch.testing.assert_close(patch_embeddings(x), expected, atol=1e-5, rtol=0)
    # patchify by hand: patch (row, col) is the pixel block [4 row : 4 row + 4, 4 col : 4 col + 4], flattened.
    patches = patchify(x, 4)
    assert patches.shape == (2, 16, 3 * 4 * 4)
    torch.testing.assert_close(patches[:, 1 * 4 + 2], x[:, :, 4:8, 8:12].flatten(1), atol=0, rtol=0)
    projection = patch_embeddings.projection
    linear = torch.nn.functional.linear(patches, projection.weight.flatten(1), projection.bias)
    torch.testing.assert_close(linear, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
def test_cls_only_last_layer_gives_the_same_logits_and_gradients(attn_implementation):
    torch.manual_seed(0)
    config = SimpleViTConfig(**SMALL)
    config._attn_implementation = attn_implementation
    model = SimpleViTForImageClassification(config).train()
    x, labels = torch.randn(4, 3, 16, 16), torch.randint(0, 10, (4,))
    results = {}
    for cls_only in (True, False):
        model.cls_only_last_layer = cls_only
        model.zero_grad()
        out = model(x, labels=labels)
        out.loss.backward()
        results[cls_only] = out.logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}
    torch.testing.assert_close(results[True][0], results[False][0], atol=1e-5, rtol=0)
    for name, grad in results[True][1].items():
        torch.testing.assert_close(grad, results[False][1][name], atol=1e-5, rtol=1e-4, msg=name)


def test_hidden_states_and_attentions_stay_complete_with_the_cls_only_default():
    torch.manual_seed(0)
    config = SimpleViTConfig(**SMALL)
    config._attn_implementation = "eager"
    model = SimpleViTForImageClassification(config).eval()
    assert model.cls_only_last_layer
    seq_len = (16 // 4) ** 2 + 1
    with torch.no_grad():
        out = model(torch.randn(2, 3, 16, 16), output_hidden_states=True, output_attentions=True)
        plain = model(torch.randn(2, 3, 16, 16))
    assert [h.shape for h in out.hidden_states] == [(2, seq_len, 32)] * 3
    assert [a.shape for a in out.attentions] == [(2, 4, seq_len, seq_len)] * 2
    assert plain.logits.shape == (2, 10)


def test_the_cls_only_path_gives_the_full_models_cls_state_while_the_bare_model_returns_every_token():
    # The CLS-only shortcut lives in the classifier; the bare model (also the classifier's own `vit`) always returns
    # every token.
    torch.manual_seed(0)
    model = SimpleViTForImageClassification(SimpleViTConfig(**SMALL)).eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        full = model.vit(x)
        cls_only = model.cls_only_sequence_output(x)  # the last hidden state, CLS row only: (batch, 1, hidden_size)
    assert full.last_hidden_state.shape == (2, 17, 32)
    assert cls_only.shape == (2, 1, 32)
    torch.testing.assert_close(model.vit.pooler(cls_only), full.pooler_output, atol=1e-5, rtol=0)
    torch.testing.assert_close(cls_only[:, 0], full.last_hidden_state[:, 0], atol=1e-5, rtol=0)


def test_the_cls_only_path_runs_only_for_cls_pooling_without_extras(monkeypatch):
    torch.manual_seed(0)
    calls = []
    original = SimpleViTForImageClassification.cls_only_sequence_output
    monkeypatch.setattr(
        SimpleViTForImageClassification, "cls_only_sequence_output",
        lambda self, *args: calls.append(1) or original(self, *args),
    )  # fmt: skip
    x = torch.randn(2, 3, 16, 16)
    model = SimpleViTForImageClassification(SimpleViTConfig(**SMALL)).eval()
    with torch.no_grad():
        model(x)
        assert len(calls) == 1
        model(x, output_hidden_states=True)
        model(x, output_attentions=True)
        model.cls_only_last_layer = False
        model(x)
        assert len(calls) == 1
        SimpleViTForImageClassification(SimpleViTConfig(**SMALL, classifier_pooling="mean")).eval()(x)
    assert len(calls) == 1  # mean pooling reads every patch token: the full last layer
