"""The batched TrivialAugmentWide / RandAugment (simple_vit_training/policies.py) against torchvision's own:
each op's output to the bit, the law of the draws, a draw per image, determinism, and BatchAugment's use of them."""

import pytest
import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import InterpolationMode

from simple_vit_training.augmentation import BatchAugment
from simple_vit_training.policies import OPS, BatchedRandAugment, BatchedTrivialAugmentWide

POLICIES = [(BatchedTrivialAugmentWide, v2.TrivialAugmentWide), (BatchedRandAugment, v2.RandAugment)]
SIZES = [(30, 30), (17, 23)]  # odd sizes: a square one (rot90 fast paths) and an oblong one


def _images(n, height, width, seed=0):
    """Random uint8 images, with some low-contrast, constant and two-level ones (autocontrast's and equalize's
    special cases)."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, height, width), dtype=torch.uint8, generator=g)
    images[1::7] = images[1::7] // 5 + 100  # low contrast
    images[2::11] = 77  # constant
    images[3::13] = torch.where(images[3::13] > 128, 200, 30).to(torch.uint8)  # two levels
    return images


def _reference(tv_policy, image, op, bin_index, negative, num_bins):
    """torchvision's result for one image: its own magnitude table, sign rule and `_apply_image_or_video_transform`."""
    name = OPS[op]
    magnitudes_fn, signed = tv_policy._AUGMENTATION_SPACE[name]
    magnitudes = magnitudes_fn(num_bins, image.shape[-2], image.shape[-1])
    magnitude = 0.0 if magnitudes is None else float(magnitudes[bin_index])
    if signed and negative:
        magnitude *= -1
    return tv_policy._apply_image_or_video_transform(image, name, magnitude, interpolation=tv_policy.interpolation,
                                                     fill=tv_policy._fill)


# Shear, translate and rotate sample through a float grid. Its 3-term products are summed elementwise here and by a
# one-image bmm in torchvision: equal to the bit on the CPUs this was first measured on, but on others (an AVX-512/AMX
# Xeon, 2026-12-02) the kernels round the last bit differently, and where a shear puts a nearest sample exactly on a
# tie between two pixels, that picks the other one (at most 30 of 2,700 values measured, all shears). A wrong matrix,
# sign, axis or magnitude moves most of the image, so these ops may differ at no more than 2% of the values.
GRID_OPS = {"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"}


def _matches(out, reference, op_name):
    if op_name in GRID_OPS:
        return (out != reference).float().mean().item() <= 0.02
    return torch.equal(out, reference)


@pytest.mark.parametrize("grouping", ["gather", "mask"])
@pytest.mark.parametrize("height, width", SIZES)
@pytest.mark.parametrize("batched_cls, tv_cls", POLICIES)
def test_every_op_magnitude_and_sign_equals_torchvision(batched_cls, tv_cls, height, width, grouping):
    """All 14 ops x every bin x both signs, each image in one shuffled batch with its own parameters: the uint8
    result equals torchvision's exactly (the blends included, which need the fused-add emulation), the grid
    ops up to the last-bit rounding of their grid (`GRID_OPS`)."""
    policy, tv_policy = batched_cls(grouping=grouping), tv_cls()
    bins = policy.num_magnitude_bins
    combos = torch.cartesian_prod(torch.arange(len(OPS)), torch.arange(bins), torch.arange(2))
    combos = combos[torch.randperm(len(combos), generator=torch.Generator().manual_seed(1))]
    op, bin_index, negative = combos[:, 0], combos[:, 1], combos[:, 2].bool()
    images = _images(len(combos), height, width)
    out = policy.apply(images, op, bin_index, negative)
    assert out.shape == images.shape and out.dtype == torch.uint8
    wrong = [(OPS[o], b, bool(s)) for x, y, o, b, s in zip(images, out, op.tolist(), bin_index.tolist(),
                                                          negative.tolist())
             if not _matches(y, _reference(tv_policy, x, o, b, s, bins), OPS[o])]
    assert not wrong, f"{len(wrong)} of {len(combos)} differ from torchvision, e.g. {wrong[:5]}"


@pytest.mark.parametrize("interpolation, fill", [(InterpolationMode.BILINEAR, None),
                                                 (InterpolationMode.NEAREST, [10, 20, 30]),
                                                 (InterpolationMode.BILINEAR, 200)])
def test_affine_ops_with_other_interpolation_and_fill_equal_torchvision(interpolation, fill):
    policy = BatchedTrivialAugmentWide(interpolation=interpolation, fill=fill)
    tv_policy = v2.TrivialAugmentWide(interpolation=interpolation, fill=fill)
    affine = [OPS.index(name) for name in ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")]
    combos = torch.cartesian_prod(torch.tensor(affine), torch.arange(0, 31, 3), torch.arange(2))
    op, bin_index, negative = combos[:, 0], combos[:, 1], combos[:, 2].bool()
    images = _images(len(combos), 17, 23, seed=2)
    out = policy.apply(images, op, bin_index, negative)
    for x, y, o, b, s in zip(images, out, op.tolist(), bin_index.tolist(), negative.tolist()):
        assert _matches(y, _reference(tv_policy, x, o, b, s, 31), OPS[o]), (OPS[o], b, s)


def _record_torchvision_draws(tv_policy, calls, image):
    """(op name, magnitude) of every op torchvision's policy applies over `calls` calls, recorded by replacing its
    `_apply_image_or_video_transform` (which receives exactly the drawn op and signed magnitude)."""
    drawn = []

    def record(img, transform_id, magnitude, interpolation, fill):
        drawn.append((transform_id, magnitude))
        return img

    tv_policy._apply_image_or_video_transform = record
    for _ in range(calls):
        tv_policy(image)
    return drawn


def _our_draws(policy, n, height, width):
    steps = policy.draw(n, "cpu")
    steps = [steps] if isinstance(policy, BatchedTrivialAugmentWide) else steps
    values = policy.magnitude_values(height, width)
    drawn = []
    for op, bin_index, negative in steps:
        for o, b, s in zip(op.tolist(), bin_index.tolist(), negative.tolist()):
            magnitude = float(values[o, b])
            drawn.append((OPS[o], -magnitude if s and policy.signed[o] else magnitude))
    return drawn


def _chi2_pvalue(a, b):
    """p-value of the chi-square test that the two counters of categories come from one law (homogeneity)."""
    keys = sorted(set(a) | set(b))
    table = torch.tensor([[a.get(k, 0) for k in keys], [b.get(k, 0) for k in keys]], dtype=torch.float64)
    expected = table.sum(1, keepdim=True) * table.sum(0, keepdim=True) / table.sum()
    stat = ((table - expected) ** 2 / expected).sum()
    dof = len(keys) - 1
    return float(torch.special.gammaincc(torch.tensor(dof / 2, dtype=torch.float64), stat / 2))


def _counts(items):
    counts = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts


@pytest.mark.parametrize("batched_cls, tv_cls", POLICIES)
def test_draws_follow_torchvision_law(batched_cls, tv_cls):
    """20,000 draws each: the same (op, magnitude) values occur (a missing op, a dropped sign or bins off by one
    change the set), with frequencies that a chi-square test cannot tell apart - jointly, per op, per sign."""
    height, width = 17, 23
    torch.manual_seed(0)
    policy = batched_cls()
    calls = 20_000 // getattr(policy, "num_ops", 1)
    theirs = _record_torchvision_draws(tv_cls(), calls, torch.zeros(3, height, width, dtype=torch.uint8))
    ours = _our_draws(policy, calls, height, width)
    assert len(ours) == len(theirs) == 20_000
    assert set(ours) == set(theirs), sorted(set(ours) ^ set(theirs))[:10]
    assert _chi2_pvalue(_counts(ours), _counts(theirs)) > 1e-3
    assert _chi2_pvalue(_counts(o for o, _ in ours), _counts(o for o, _ in theirs)) > 1e-3

    def signs(draws):  # (op, negative) over the signed ops
        return _counts((o, m < 0) for o, m in draws if m != 0 and o not in ("Posterize", "Solarize"))

    assert _chi2_pvalue(signs(ours), signs(theirs)) > 1e-3
    # Each op drawn about 1/14 of the time, each sign about half the time for the signed ones (sanity of the law
    # itself, not only of the agreement).
    op_counts = _counts(o for o, _ in ours)
    assert set(op_counts) == set(OPS) and all(abs(c / len(ours) - 1 / 14) < 0.01 for c in op_counts.values())
    negative = sum(m < 0 for o, m in ours if o == "Rotate") / sum(m != 0 for o, m in ours if o == "Rotate")
    assert abs(negative - 0.5) < 0.05


@pytest.mark.parametrize("batched_cls, tv_cls", POLICIES)
def test_call_applies_its_own_draws_like_torchvision_per_image(batched_cls, tv_cls):
    """`policy(images)` draws as `policy.draw` does (same RNG state -> same draws) and applies them image by image as
    torchvision would: for RandAugment, num_ops ops in sequence per image."""
    policy, tv_policy = batched_cls(), tv_cls()
    images = _images(40, 30, 30, seed=3)
    torch.manual_seed(7)
    steps = policy.draw(len(images), "cpu")
    steps = [steps] if isinstance(policy, BatchedTrivialAugmentWide) else steps
    torch.manual_seed(7)
    out = policy(images)
    for i in range(len(images)):
        expected = images[i]
        for op, bin_index, negative in steps:
            expected = _reference(tv_policy, expected, int(op[i]), int(bin_index[i]), bool(negative[i]), 31)
        assert torch.equal(out[i], expected), i


@pytest.mark.parametrize("num_ops", [0, 1, 3])
def test_rand_augment_applies_num_ops_independent_ops(num_ops, monkeypatch):
    policy = BatchedRandAugment(num_ops=num_ops, magnitude=4)
    calls = []
    original = BatchedRandAugment.apply

    def counting_apply(self, images, op, bin_index, negative):
        calls.append((op, bin_index, negative))
        return original(self, images, op, bin_index, negative)

    monkeypatch.setattr(BatchedRandAugment, "apply", counting_apply)
    images = _images(20_000, 5, 7, seed=4)
    out = policy(images)
    assert len(calls) == num_ops and out.shape == images.shape and out.dtype == torch.uint8
    if num_ops == 0:
        assert torch.equal(out, images)
    for op, bin_index, negative in calls:
        assert op.shape == (20_000,) and (bin_index == 4).all()
    if num_ops >= 2:
        # Independent per step: the 14 x 14 pairs (op of step 1, op of step 2) are uniform.
        pairs = _counts(zip(calls[0][0].tolist(), calls[1][0].tolist()))
        uniform = {k: 20_000 / 196 for k in pairs}
        assert len(pairs) == 196 and _chi2_pvalue(pairs, uniform) > 1e-3
        assert not torch.equal(calls[0][0], calls[1][0]) and not torch.equal(calls[0][2], calls[1][2])


@pytest.mark.parametrize("batched_cls", [BatchedTrivialAugmentWide, BatchedRandAugment])
def test_identical_images_get_distinct_draws_in_one_batch(batched_cls):
    image = _images(1, 30, 30, seed=5)
    out = batched_cls()(image.expand(64, -1, -1, -1).contiguous())
    distinct = {tuple(x.flatten().tolist()) for x in out}
    assert len(distinct) > 40, len(distinct)


def test_same_rng_state_same_output_and_the_stream_moves_on():
    images = _images(32, 17, 23, seed=6)
    for policy in (BatchedTrivialAugmentWide(), BatchedRandAugment()):
        torch.manual_seed(11)
        state = torch.get_rng_state()
        first = policy(images)
        after = torch.get_rng_state()
        torch.set_rng_state(state)
        assert torch.equal(policy(images), first)  # exact resume: the restored state repeats the draws
        assert torch.equal(torch.get_rng_state(), after)  # and consumes the same amount of the stream
        assert not torch.equal(policy(images), first)  # the next call draws anew


def test_mask_and_gather_groupings_agree_on_a_call():
    images = _images(50, 30, 30, seed=8)
    torch.manual_seed(3)
    gathered = BatchedRandAugment(grouping="gather")(images)
    torch.manual_seed(3)
    assert torch.equal(BatchedRandAugment(grouping="mask")(images), gathered)


@pytest.mark.parametrize("kind", ["trivialaugment", "randaugment"])
def test_batch_augment_applies_the_policy_then_crop_and_flip(kind):
    images = _images(24, 30, 30, seed=9)
    torch.manual_seed(4)
    out = BatchAugment(kind, 30)(images)
    assert out.shape == (24, 3, 30, 30) and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 255 + 1e-3 and out.max() > 100  # roi_align: float rounding above 255
    # The same draws, step by step: the batched policy first, then the tutorial's crop + flip.
    torch.manual_seed(4)
    policy = BatchedTrivialAugmentWide() if kind == "trivialaugment" else BatchedRandAugment()
    expected = BatchAugment("tutorial", 30)(policy(images))
    assert torch.equal(out, expected)
    # Held below the model's size (decode size 24): the crop outputs the model's size.
    assert BatchAugment(kind, 30)(images[:, :, :24, :24].contiguous()).shape == (24, 3, 30, 30)


def test_bad_input_and_config_raise_clear_errors():
    policy = BatchedTrivialAugmentWide()
    for bad, expected in [(torch.zeros(2, 3, 8, 8), "float32"), (torch.zeros(3, 8, 8, dtype=torch.uint8), "(3, 8, 8)"),
                          (torch.zeros(2, 1, 8, 8, dtype=torch.uint8), "(2, 1, 8, 8)")]:
        with pytest.raises(ValueError, match=r"expects \(batch, 3, H, W\) uint8 images, got .*" + expected.replace(
                "(", r"\(").replace(")", r"\)")):
            policy(bad)
    with pytest.raises(ValueError, match="num_magnitude_bins"):
        BatchedTrivialAugmentWide(num_magnitude_bins=1)
    with pytest.raises(ValueError, match="magnitude must be"):
        BatchedRandAugment(magnitude=31)
    with pytest.raises(ValueError, match="num_ops"):
        BatchedRandAugment(num_ops=-1)
    with pytest.raises(ValueError, match="interpolation"):
        BatchedRandAugment(interpolation=InterpolationMode.BICUBIC)
    with pytest.raises(ValueError, match="grouping"):
        BatchedRandAugment(grouping="sorted")
    with pytest.raises(ValueError, match="fill"):
        BatchedRandAugment(fill=[1, 2])
    with pytest.raises(ValueError, match="augmentation must be one of"):
        BatchAugment("autoaugment", 30)
