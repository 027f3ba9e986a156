"""Training augmentation: the tutorial's crop + flip and the other options, applied to uint8 images."""

import math

import torch
import torch.nn.functional as F
from torchvision.ops import roi_align
from torchvision.transforms import v2

from .policies import BatchedRandAugment, BatchedTrivialAugmentWide

AUGMENTATIONS = ("tutorial", "pad-crop", "none", "trivialaugment", "randaugment")


class BatchAugment:
    """The training augmentation, applied to a whole uint8 batch on its device; returns float in [0, 255].

    torchvision's v2 transforms draw *one* set of random parameters per call, so a batch passed to them would be
    cropped and flipped identically. Per-sample calls cost ~35 ms per 256 images on this CPU (10% of a training
    step), so the tutorial's crop + flip draw per-sample parameters (same distribution as
    `v2.RandomResizedCrop`) and apply them in one `torchvision.ops.roi_align` call, which resamples each image's
    own box bilinearly, on CPU or GPU alike. (Inside the box the result equals `v2.functional.resized_crop`
    without antialiasing; on the box's outermost pixels roi_align interpolates with the pixels just outside the box
    instead of repeating the edge: a difference of no consequence for training.) "pad-crop" is
    `v2.RandomCrop(size, padding=4)` + flip, the usual CIFAR augmentation: zero-pad, then a random window of the
    original size, i.e. a shift of up to 4 pixels each way; its windows sit on whole pixels, so roi_align copies
    them exactly (images arrive already resized to `image_size`). The stronger policies, "trivialaugment" and
    "randaugment", are torchvision's TrivialAugmentWide / RandAugment with a draw of op and magnitude per image,
    batched on the same device (`self.batch_policy`, see policies.py); they transform the uint8 batch first, then the
    tutorial's crop + flip follows, as before.
    """

    def __init__(self, kind, image_size, scale=(0.8, 1.0), ratio=(3 / 4, 4 / 3), padding=4):
        if kind not in AUGMENTATIONS:
            raise ValueError(f"augmentation must be one of {', '.join(AUGMENTATIONS)}, got {kind!r}")
        self.kind = kind
        self.image_size = image_size
        self.padding = padding
        self.scale = scale
        self.log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        policies = {"trivialaugment": BatchedTrivialAugmentWide, "randaugment": BatchedRandAugment}
        self.batch_policy = policies[kind]() if kind in policies else None

    def crop_boxes(self, n, size, device, tries=10):
        """Per-sample RandomResizedCrop boxes (index, x1, y1, x2, y2), drawn as v2.RandomResizedCrop draws them:
        area fraction uniform in `scale`, aspect ratio log-uniform in `ratio`, first of 10 tries that fits,
        else the whole image."""
        area = torch.empty(n, tries, device=device).uniform_(*self.scale) * size * size
        aspect = torch.exp(torch.empty(n, tries, device=device).uniform_(*self.log_ratio))
        width, height = torch.sqrt(area * aspect).round(), torch.sqrt(area / aspect).round()
        fits = (width <= size) & (height <= size) & (width > 0) & (height > 0)
        choice = fits.to(torch.uint8).argmax(dim=1, keepdim=True)  # first try that fits
        width, height = width.gather(1, choice).squeeze(1), height.gather(1, choice).squeeze(1)
        none_fit = ~fits.any(dim=1)
        width, height = width.masked_fill(none_fit, size), height.masked_fill(none_fit, size)
        top = torch.floor(torch.rand(n, device=device) * (size - height + 1))
        left = torch.floor(torch.rand(n, device=device) * (size - width + 1))
        index = torch.arange(n, device=device, dtype=width.dtype)
        return torch.stack([index, left, top, left + width, top + height], dim=1)

    def shift_boxes(self, n, size, device):
        """Per-sample RandomCrop windows on the zero-padded image (index, x1, y1, x2, y2): a size x size window at
        an offset uniform in 0..2*padding each way, as v2.RandomCrop(size, padding) draws it."""
        offsets = torch.randint(0, 2 * self.padding + 1, (n, 2), device=device).float()
        left, top = offsets.unbind(dim=1)
        index = torch.arange(n, device=device, dtype=left.dtype)
        return torch.stack([index, left, top, left + size, top + size], dim=1)

    def __call__(self, images):
        # images: (batch, 3, H, W) uint8 -> (batch, 3, image_size, image_size) float in [0, 255]
        # (H = W may be below image_size: images are held at decode size and the crop outputs the model's size)
        if self.kind == "none":
            if images.shape[-2:] != (self.image_size, self.image_size):  # held below the model's size
                images = v2.functional.resize(images, [self.image_size, self.image_size], antialias=True)
            return images.float()
        if self.batch_policy is not None:
            images = self.batch_policy(images)  # (batch, 3, H, W) uint8, each image its own op and magnitude
        n, size = images.shape[0], images.shape[-1]
        if self.kind == "pad-crop":
            images = F.pad(images, [self.padding] * 4)  # zeros, as v2.RandomCrop(padding=...) fills by default
            boxes = self.shift_boxes(n, size, images.device)
        else:
            boxes = self.crop_boxes(n, size, images.device)
        # sampling_ratio=1, aligned=True: one bilinear sample at each output pixel centre (a plain resize).
        out = roi_align(images.float(), boxes, output_size=self.image_size, spatial_scale=1.0, sampling_ratio=1,
                        aligned=True)
        flip = torch.rand(n, device=images.device) < 0.5
        return torch.where(flip.view(-1, 1, 1, 1), out.flip(-1), out)

