"""TrivialAugmentWide and RandAugment on whole uint8 batches, each image with its own random operation and magnitude.

torchvision's `v2.TrivialAugmentWide` / `v2.RandAugment` draw one operation and magnitude per call, so a batch
passed to them is transformed identically; applying them per image costs a Python call per image. Here the draws are
made for the whole batch at once (op uniform over the 14 operations; magnitude bin uniform for TrivialAugment, fixed
for RandAugment; sign +/- with p=1/2 for the signed operations) and each operation is one batched kernel. The kernels
reproduce what torchvision's `_AutoAugmentBase._apply_image_or_video_transform` computes for one uint8 image, to
the bit (tests/test_batched_policies.py checks every operation against it):

* every per-sample parameter torchvision derives from a magnitude (affine matrix, blend factor, posterize mask,
  solarize threshold) is computed on the host once per image size, with torchvision's own arithmetic, and cast to the
  dtype torchvision's kernel computes in; a draw then only indexes these tables (no host sync);
* the affine operations (shear, translate, rotate) share one `grid_sample`, whose grid is built as torchvision's
  `_affine_grid` builds it, from a per-sample matrix;
* torchvision's blends compute `image * r + other * (1 - r)` as a fused multiply-add (`Tensor.add_(other, alpha=)`),
  which a per-sample `alpha` tensor cannot express in float32; it is computed in float64, where `other * alpha` is
  exact, so the one rounding to float32 is the fused one (see `_blend`).

The random draws come from the global torch generator of the images' device, so a checkpoint that restores the RNG
states (accelerate's) repeats them exactly.

Grouping: "mask" runs every kernel on the whole batch and keeps each image's own result with `torch.where` (no host
sync: suits a GPU stream); "gather" runs each kernel only on the images that drew it (`nonzero` + `index_select`,
which needs the host to know the group sizes: free on a CPU, a stall on a GPU). "auto" picks gather on the CPU and
mask elsewhere (measured: benchmarks/augmentation_cost.py).
"""

import math

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF
# Private, but the only way to get torchvision's affine matrices to the bit (the same double arithmetic, in order).
from torchvision.transforms.v2.functional._geometry import _get_inverse_affine_matrix

# The operations in torchvision's order: TrivialAugmentWide and RandAugment both draw uniformly among these 14
# (AutoAugment's "Invert" is in neither).
OPS = ("Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color", "Contrast",
       "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize")


def _linspace(end, start=0.0):
    return lambda bins, height, width: torch.linspace(start, end, bins)


def _posterize_bits(lowest):  # 8 bits down to `lowest` bits over the bins, as torchvision rounds them
    return lambda bins, height, width: (8 - (torch.arange(bins) / ((bins - 1) / (8 - lowest)))).round().int()


def _none(bins, height, width):
    return None


# op -> (magnitude per bin as a function of (num_bins, height, width), or None for ops without one; signed).
# These restate torchvision 0.29's `_AUGMENTATION_SPACE` tables (the tests compare draws with torchvision's own).
_SHEARS, _BLENDS = ("ShearX", "ShearY"), ("Brightness", "Color", "Contrast", "Sharpness")
TRIVIAL_AUGMENT_WIDE_SPACE = {
    "Identity": (_none, False),
    **{op: (_linspace(0.99), True) for op in _SHEARS},
    "TranslateX": (_linspace(32.0), True),  # pixels, whatever the image size
    "TranslateY": (_linspace(32.0), True),
    "Rotate": (_linspace(135.0), True),  # degrees
    **{op: (_linspace(0.99), True) for op in _BLENDS},
    "Posterize": (_posterize_bits(2), False),
    "Solarize": (_linspace(0.0, start=1.0), False),  # threshold as a fraction of 255
    "AutoContrast": (_none, False),
    "Equalize": (_none, False),
}
RAND_AUGMENT_SPACE = {
    **TRIVIAL_AUGMENT_WIDE_SPACE,
    **{op: (_linspace(0.3), True) for op in _SHEARS},
    # RandAugment translates by a fraction of the image (AutoAugment's 150 pixels of 331).
    "TranslateX": (lambda bins, height, width: torch.linspace(0.0, 150.0 / 331.0 * width, bins), True),
    "TranslateY": (lambda bins, height, width: torch.linspace(0.0, 150.0 / 331.0 * height, bins), True),
    "Rotate": (_linspace(30.0), True),
    **{op: (_linspace(0.9), True) for op in _BLENDS},
    "Posterize": (_posterize_bits(4), False),
}
assert tuple(TRIVIAL_AUGMENT_WIDE_SPACE) == OPS and tuple(RAND_AUGMENT_SPACE) == OPS


# --- per-sample parameters: torchvision's magnitude -> what its kernel receives (host, once per image size) ---------

def _affine_matrix(op, magnitude, height, width):
    """The inverse affine matrix (6 floats) torchvision's `affine` / `rotate` sample with, as in
    `_apply_image_or_video_transform`."""
    if op in ("ShearX", "ShearY"):
        # torchvision shears about the top-left corner (center=[0, 0], in coordinates relative to the image centre).
        shear = math.degrees(math.atan(magnitude))
        shears = [shear, 0.0] if op == "ShearX" else [0.0, shear]
        return _get_inverse_affine_matrix([-0.5 * width, -0.5 * height], 0.0, [0.0, 0.0], 1.0, shears)
    if op in ("TranslateX", "TranslateY"):
        shift = float(int(magnitude))  # whole pixels, truncated towards zero
        return _get_inverse_affine_matrix([0.0, 0.0], 0.0, [shift, 0.0] if op == "TranslateX" else [0.0, shift],
                                          1.0, [0.0, 0.0])
    if op == "Rotate":
        angle = magnitude % 360
        matrix = _get_inverse_affine_matrix([0.0, 0.0], -angle, [0.0, 0.0], 1.0, [0.0, 0.0])
        # torchvision's fast paths (a copy, or rot90) are exact transposes: the matrix's entries rounded to -1/0/1
        # sample the same pixels through the grid.
        if angle in (0, 180) or (height == width and angle in (90, 270)):
            matrix = [float(round(v)) for v in matrix]
        return matrix
    return [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]  # identity: not an affine op


def _blend_factors(op, magnitude):
    """(ratio, alpha) of `image * ratio + other * alpha`: torchvision's factor is 1 + magnitude, its blend weights
    are (factor, 1.0 - factor) in double, cast to float32 by the kernels; sharpness blends the image itself (ratio 1)
    with (blurred - image) at weight 1 - factor."""
    factor = 1.0 + magnitude
    if op == "Sharpness":
        return [1.0, 1.0 - factor]
    if op in ("Brightness", "Color", "Contrast"):
        return [factor, 1.0 - factor]
    return [1.0, 0.0]


def _posterize_mask(op, magnitude):
    bits = int(magnitude) if op == "Posterize" else 8
    return [float(((1 << bits) - 1) << (8 - bits)) if bits < 8 else 255.0]


def _solarize_threshold(op, magnitude):
    # torchvision compares the uint8 image with the Python float 255 * magnitude, i.e. in float32.
    return [255.0 * magnitude if op == "Solarize" else math.inf]


# --- batched kernels: (m, 3, H, W) uint8 images, (m, P) float32 parameters -> (m, 3, H, W) uint8 -------------------

def _grayscale(images):
    # (m, 3, H, W) uint8 -> (m, 1, H, W) float32, floored: torchvision's ops, so the fused adds round alike.
    r, g, b = images.float().unbind(dim=-3)
    return r.mul(0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114).floor_().unsqueeze(-3)


def _blend(base, other, alpha):
    """`base + other * alpha` rounded once to float32, clamped and truncated to uint8, as torchvision's
    `base.add_(other, alpha=alpha)` computes it (a fused multiply-add on CPU and GPU). In float64 `other * alpha` is
    exact here (other: integers up to 255, or a float32 mean; alpha: float32), so the sum rounds as the fused one
    does (exactly, unless the float64 sum itself had to round: a tie at float32 precision, practically never)."""
    alpha = alpha.view(-1, 1, 1, 1).double()
    return (base.double() + other.double() * alpha).float().clamp_(0, 255).to(torch.uint8)


def _brightness(images, p):
    # (m, 3, H, W) uint8 -> same: image * factor
    return (images.float() * p[:, 0].view(-1, 1, 1, 1)).clamp_(0, 255).to(torch.uint8)


def _color(images, p):
    # (m, 3, H, W) uint8 -> same: blend with the image's grayscale (saturation)
    return _blend(images.float() * p[:, 0].view(-1, 1, 1, 1), _grayscale(images), p[:, 1])


def _contrast(images, p):
    # (m, 3, H, W) uint8 -> same: blend with the mean of the grayscale image
    mean = _grayscale(images).mean(dim=(-3, -2, -1), keepdim=True)  # (m, 1, 1, 1): sums of integers, exact
    return _blend(images.float() * p[:, 0].view(-1, 1, 1, 1), mean, p[:, 1])


def _sharpness(images, p):
    # (m, 3, H, W) uint8 -> same: the interior blended with its 3x3 blur (weights 1/13, centre 5/13); border kept.
    # torchvision convolves and rounds; the blur's exact value is k/13, never a tie at .5, so summing the 3x3 window
    # (exact integers) and dividing rounds to the same integer, at a fraction of a depthwise convolution's cost.
    x = images.float()
    if x.shape[-1] <= 2 or x.shape[-2] <= 2:
        return images  # torchvision leaves images without an interior unchanged
    rows = x[..., :-2, :] + x[..., 1:-1, :] + x[..., 2:, :]
    window = rows[..., :-2] + rows[..., 1:-1] + rows[..., 2:]  # (m, 3, H - 2, W - 2)
    centre = x[..., 1:-1, 1:-1]
    blurred = (window + 4.0 * centre).div_(13.0).round_()
    out = images.clone()
    out[..., 1:-1, 1:-1] = _blend(centre, blurred - centre, p[:, 1])
    return out


def _posterize(images, p):
    # (m, 3, H, W) uint8 -> same: keep the top `bits` bits
    return images & p[:, 0].to(torch.uint8).view(-1, 1, 1, 1)


def _solarize(images, p):
    # (m, 3, H, W) uint8 -> same: invert the pixels at or above the threshold
    return torch.where(images >= p[:, 0].view(-1, 1, 1, 1), images.bitwise_not(), images)


def _autocontrast(images, p):
    # (m, 3, H, W) uint8 -> same: stretch each channel to 0..255. torchvision's arithmetic, with torch.where in place
    # of its boolean-mask assignment (which may sync with the host).
    x = images.float()
    minimum = x.amin(dim=(-2, -1), keepdim=True)
    maximum = x.amax(dim=(-2, -1), keepdim=True)
    flat = maximum == minimum
    inv_scale = torch.where(flat, 1.0, (maximum - minimum).mul_(1.0 / 255))
    minimum = torch.where(flat, 0.0, minimum)
    return x.sub_(minimum).div_(inv_scale).clamp_(0, 255).to(torch.uint8)


def _equalize(images, p):
    # (m, 3, H, W) uint8 -> same: torchvision's kernel is batched already (per image and channel, no host sync)
    return TF.equalize(images)


class _Affine:
    """Shear, translate and rotate: one `grid_sample` with each image's own inverse matrix."""

    def __init__(self, interpolation, fill):
        self.mode, self.fill = interpolation.value, fill

    def __call__(self, images, theta):
        # (m, 3, H, W) uint8, (m, 6) float32 -> (m, 3, H, W) uint8
        m, channels, height, width = images.shape
        # The grid as torchvision's `_affine_grid` builds it (pixel-centre coordinates about the image centre, the
        # matrix applied, then normalised by the half sizes), one matrix per image. Its 3-term products are summed
        # elementwise: on some CPUs that equals torchvision's one-image bmm to the bit (on others it differs in the
        # last bit, see tests/test_batched_policies.GRID_OPS), where a batched bmm is 10x
        # slower and einsum/mm sum in another order (a last-bit difference moves a nearest sample only at a tie).
        base = torch.empty(1, height, width, 3, device=images.device)
        base[..., 0].copy_(torch.linspace((1.0 - width) * 0.5, (width - 1.0) * 0.5, steps=width, device=images.device))
        base[..., 1].copy_(torch.linspace((1.0 - height) * 0.5, (height - 1.0) * 0.5, steps=height,
                                          device=images.device).unsqueeze_(-1))
        base[..., 2].fill_(1)
        rescaled = theta.view(m, 2, 3).transpose(1, 2).div(
            torch.tensor([0.5 * width, 0.5 * height], device=images.device))
        grid = base.view(1, height * width, 3, 1).mul(rescaled.view(m, 1, 3, 2)).sum(2).view(m, height, width, 2)
        x = images.float()
        if self.fill is not None:  # torchvision's trick: a channel of ones tells which pixels came from outside
            x = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)
        x = F.grid_sample(x, grid, mode=self.mode, padding_mode="zeros", align_corners=False)
        if self.fill is not None:
            x, mask = x[:, :channels], x[:, channels:].expand(-1, channels, -1, -1)
            fill = torch.tensor(self.fill, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
            x = torch.where(mask < 0.5, fill.expand_as(x), x) if self.mode == "nearest" else (
                x.sub_(fill).mul_(mask).add_(fill))
        return x.round_().to(torch.uint8)


class _BatchedPolicy:
    """The shared machinery: per-size parameter tables, and `apply` with each image's (op, bin, sign)."""

    space = None  # op -> (magnitudes, signed)

    def __init__(self, num_magnitude_bins, interpolation, fill, grouping):
        if not isinstance(num_magnitude_bins, int) or num_magnitude_bins < 2:
            raise ValueError(f"num_magnitude_bins must be an integer >= 2, got {num_magnitude_bins!r}")
        interpolation = InterpolationMode(interpolation) if isinstance(interpolation, str) else interpolation
        if interpolation not in (InterpolationMode.NEAREST, InterpolationMode.BILINEAR):
            raise ValueError(f"interpolation must be nearest or bilinear, got {interpolation!r}")
        if grouping not in ("auto", "mask", "gather"):
            raise ValueError(f"grouping must be auto, mask or gather, got {grouping!r}")
        if fill is not None:
            fill = [float(v) for v in (fill if isinstance(fill, (list, tuple)) else [fill])]
            if len(fill) not in (1, 3):
                raise ValueError(f"fill must be a number or 3 numbers (one per channel), got {len(fill)}")
        self.num_magnitude_bins, self.interpolation, self.fill, self.grouping = (
            num_magnitude_bins, interpolation, fill, grouping)
        self.signed = [signed for _, signed in self.space.values()]  # per op in OPS
        # kernel, its parameter function (op name, magnitude) -> list of floats, and the ops it serves
        affine_ops = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")
        self.kernels = [
            (_Affine(interpolation, fill), _affine_matrix, affine_ops),
            (_brightness, lambda op, m, h, w: _blend_factors(op, m), ("Brightness",)),
            (_color, lambda op, m, h, w: _blend_factors(op, m), ("Color",)),
            (_contrast, lambda op, m, h, w: _blend_factors(op, m), ("Contrast",)),
            (_sharpness, lambda op, m, h, w: _blend_factors(op, m), ("Sharpness",)),
            (_posterize, lambda op, m, h, w: _posterize_mask(op, m), ("Posterize",)),
            (_solarize, lambda op, m, h, w: _solarize_threshold(op, m), ("Solarize",)),
            (_autocontrast, lambda op, m, h, w: [0.0], ("AutoContrast",)),
            (_equalize, lambda op, m, h, w: [0.0], ("Equalize",)),
        ]
        self._tables = {}  # (height, width, device) -> per-kernel parameter tables

    def magnitude_values(self, height, width):
        """(14, num_magnitude_bins) float64: the unsigned magnitude torchvision passes for each op and bin (0.0 for
        the ops without one, as torchvision passes); a drawn negative sign negates the signed ops' values."""
        rows = []
        for magnitudes, _ in self.space.values():
            values = magnitudes(self.num_magnitude_bins, height, width)
            rows.append([0.0] * self.num_magnitude_bins if values is None else [float(v) for v in values])
        return torch.tensor(rows, dtype=torch.float64)

    def _parameter_tables(self, height, width, device):
        key = (height, width, str(device))
        if key not in self._tables:
            values = self.magnitude_values(height, width).tolist()
            tables = []
            for _, params, _ in self.kernels:
                # (14 ops, bins, 2 signs, P): the parameters for every possible draw, in float32 as torchvision's
                # kernels receive them (torch.tensor rounds the doubles to nearest, as its scalar casts do).
                table = [[[params(op, sign * values[i][b] if self.signed[i] else values[i][b], height, width)
                           for sign in (1.0, -1.0)] for b in range(self.num_magnitude_bins)]
                         for i, op in enumerate(OPS)]
                tables.append(torch.tensor(table, dtype=torch.float32, device=device))
            kernel_of_op = [next((k for k, (_, _, ops) in enumerate(self.kernels) if op in ops), -1) for op in OPS]
            self._tables[key] = (tables, torch.tensor(kernel_of_op, device=device))
        return self._tables[key]

    def _check(self, images):
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4 or (
                images.shape[1] != 3):
            got = (f"{tuple(images.shape)} {images.dtype}" if isinstance(images, torch.Tensor)
                   else type(images).__name__)
            raise ValueError(f"{type(self).__name__} expects (batch, 3, H, W) uint8 images, got {got}")

    def apply(self, images, op, bin_index, negative):
        """images (batch, 3, H, W) uint8; op, bin_index (batch,) int64 (op indexes OPS); negative (batch,) bool ->
        (batch, 3, H, W) uint8, each image transformed by its own op at its own magnitude (as torchvision would)."""
        self._check(images)
        n, _, height, width = images.shape
        tables, kernel_of_op = self._parameter_tables(height, width, images.device)
        kernel_index = kernel_of_op[op]  # (batch,): which kernel each image drew (-1: Identity)
        sign = negative.long()
        gather = self.grouping == "gather" or (self.grouping == "auto" and images.device.type == "cpu")
        out = images
        for k, (kernel, _, _) in enumerate(self.kernels):
            params = tables[k][op, bin_index, sign]  # (batch, P)
            chosen = kernel_index == k
            if gather:  # only the images that drew this kernel (the group's size is read on the host)
                index = chosen.nonzero().squeeze(1)
                if len(index):
                    out = out.index_copy(0, index, kernel(images.index_select(0, index), params.index_select(0, index)))
            else:  # the whole batch, each image keeping its own kernel's result: no host sync
                out = torch.where(chosen.view(-1, 1, 1, 1), kernel(images, params), out)
        return out


class BatchedTrivialAugmentWide(_BatchedPolicy):
    """`v2.TrivialAugmentWide` with a draw per image: (batch, 3, H, W) uint8 -> same shape uint8, on any device.

    Each image: one op uniform over OPS, a magnitude bin uniform over `num_magnitude_bins`, a negative sign with
    probability 1/2 for the signed ops. Defaults are torchvision's (31 bins, nearest, fill None = zeros)."""

    space = TRIVIAL_AUGMENT_WIDE_SPACE

    def __init__(self, num_magnitude_bins=31, interpolation=InterpolationMode.NEAREST, fill=None, grouping="auto"):
        super().__init__(num_magnitude_bins, interpolation, fill, grouping)

    def draw(self, n, device):
        """(op, bin_index, negative), each (n,), from the global generator of `device`."""
        op = torch.randint(len(OPS), (n,), device=device)
        bin_index = torch.randint(self.num_magnitude_bins, (n,), device=device)
        negative = torch.rand(n, device=device) <= 0.5  # torchvision negates when rand() <= 0.5
        return op, bin_index, negative

    def __call__(self, images):
        # images: (batch, 3, H, W) uint8 -> (batch, 3, H, W) uint8
        self._check(images)
        return self.apply(images, *self.draw(images.shape[0], images.device))


class BatchedRandAugment(_BatchedPolicy):
    """`v2.RandAugment` with draws per image: `num_ops` ops in sequence, each uniform over OPS and drawn anew for each
    image and step, all at bin `magnitude` of `num_magnitude_bins`, negative with probability 1/2 for the signed ops.
    (batch, 3, H, W) uint8 -> same shape uint8. Defaults are torchvision's (2 ops, magnitude 9 of 31 bins)."""

    space = RAND_AUGMENT_SPACE

    def __init__(self, num_ops=2, magnitude=9, num_magnitude_bins=31, interpolation=InterpolationMode.NEAREST,
                 fill=None, grouping="auto"):
        super().__init__(num_magnitude_bins, interpolation, fill, grouping)
        if not isinstance(num_ops, int) or num_ops < 0:
            raise ValueError(f"num_ops must be a non-negative integer, got {num_ops!r}")
        if not isinstance(magnitude, int) or not 0 <= magnitude < num_magnitude_bins:
            raise ValueError(f"magnitude must be an integer bin in 0..{num_magnitude_bins - 1}, got {magnitude!r}")
        self.num_ops, self.magnitude = num_ops, magnitude

    def draw(self, n, device):
        """A list of `num_ops` (op, bin_index, negative) triples, each (n,), from the global generator of `device`."""
        steps = []
        for _ in range(self.num_ops):
            op = torch.randint(len(OPS), (n,), device=device)
            negative = torch.rand(n, device=device) <= 0.5
            steps.append((op, torch.full((n,), self.magnitude, device=device), negative))
        return steps

    def __call__(self, images):
        # images: (batch, 3, H, W) uint8 -> (batch, 3, H, W) uint8
        self._check(images)
        for op, bin_index, negative in self.draw(images.shape[0], images.device):
            images = self.apply(images, op, bin_index, negative)
        return images
