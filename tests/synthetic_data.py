"""Small synthetic image-classification datasets in the layouts run_train.py accepts.

Each class has its own colour, with noise, so the task is easy but not trivial: a model that learns anything
ends far above chance, and one that learns nothing stays at chance.
"""

from pathlib import Path

import numpy as np
from PIL import Image

CLASS_NAMES = ["crimson", "forest", "navy"]
# One dominant channel per class, so a swapped channel axis or a broken label mapping cannot pass.
_CLASS_COLOURS = np.array([[200, 40, 40], [40, 200, 40], [40, 40, 200]], dtype=np.float32)


def make_images(n, size, seed):
    """`n` RGB uint8 arrays (size, size, 3) and their labels, classes in a fixed shuffled order."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(CLASS_NAMES))
    noise = rng.normal(0, 45, size=(n, size, size, 3))
    images = np.clip(_CLASS_COLOURS[labels][:, None, None, :] + noise, 0, 255).astype(np.uint8)
    return images, labels


def write_hub_layout(root, n_train=96, n_test=48, size=16, seed=0, image_column="img", label_column="label",
                     n_validation=0, folder="data"):
    """A folder laid out like `uoft-cs/cifar10` (parquet shards with an Image and a ClassLabel column): train and
    test splits (n=0 leaves a split out), and a validation split when n_validation > 0."""
    import datasets

    root = Path(root)
    (root / folder).mkdir(parents=True, exist_ok=True)
    features = datasets.Features(
        {image_column: datasets.Image(), label_column: datasets.ClassLabel(names=CLASS_NAMES)}
    )
    for split, n, split_seed in (("train", n_train, seed), ("test", n_test, seed + 1),
                                 ("validation", n_validation, seed + 2)):
        if n == 0:
            continue
        images, labels = make_images(n, size, split_seed)
        ds = datasets.Dataset.from_dict(
            {image_column: [Image.fromarray(a) for a in images], label_column: labels.tolist()}, features=features
        )
        ds.to_parquet(str(root / folder / f"{split}-00000-of-00001.parquet"))
    return root


def write_image_folder(root, n_train=60, n_test=30, size=16, seed=0, splits=("train", "test")):
    """A plain image folder: <split>/<class>/<i>.png."""
    root = Path(root)
    for split, n, split_seed in (("train", n_train, seed), ("test", n_test, seed + 1)):
        if split not in splits:
            continue
        images, labels = make_images(n, size, split_seed)
        for i, (array, label) in enumerate(zip(images, labels)):
            folder = root / split / CLASS_NAMES[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(array).save(folder / f"{i}.png")
    return root
