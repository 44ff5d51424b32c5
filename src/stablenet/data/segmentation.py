"""A synthetic semantic-segmentation data set: noisy images of random ellipses, rectangles and
triangles with per-pixel class labels, generated on the fly and deterministic given a seed.

Every image is ``size``×``size`` with 1 to ``max_shapes`` filled shapes on a zero background;
each shape has a random centre, half-axes in [0.1, 0.25]·size and an intensity (one per channel)
uniform in [0.5, 1]; later shapes cover earlier ones.  Gaussian noise of standard deviation
``noise`` is added to every pixel.  The labels are

* ``n_classes = 2``: 0 background, 1 any shape (ellipses and rectangles);
* ``n_classes = 3``: 0 background, 1 ellipse, 2 rectangle;
* ``n_classes = 4``: 0 background, 1 ellipse, 2 rectangle, 3 triangle.

All shapes share the intensity distribution, so with 3 or 4 classes a pixel's class follows from
the geometry around it, not from its value: the network needs a receptive field about the size
of a shape.  Shapes are axis-aligned (ellipse, rectangle; triangles point up).

    >>> from stablenet.data.segmentation import shapes_segmentation
    >>> ds = shapes_segmentation(seed=0, n_train=512, size=32, n_classes=3)
    >>> ds.train.x.shape, ds.train.y.shape          # float32 images, int64 labels
    (torch.Size([512, 1, 32, 32]), torch.Size([512, 32, 32]))
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real

import numpy as np
import torch

from .._checks import positive_int
from .base import check_seed, spawn_rngs

SHAPE_CLASSES = ("background", "ellipse", "rectangle", "triangle")


@dataclass(frozen=True, eq=False)
class SegmentationSplit:
    """Images ``x`` float32 (n, C, H, W) and per-pixel labels ``y`` int64 (n, H, W)."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if self.x.dtype != torch.float32 or self.x.dim() != 4:
            raise ValueError(f"SegmentationSplit.x must be float32 (n, C, H, W), "
                             f"got {self.x.dtype} {tuple(self.x.shape)}")
        if self.y.dtype != torch.int64 or self.y.shape != (self.x.shape[0], *self.x.shape[2:]):
            raise ValueError(f"SegmentationSplit.y must be int64 {(self.x.shape[0], *self.x.shape[2:])}, "
                             f"got {self.y.dtype} {tuple(self.y.shape)}")

    def __len__(self) -> int:
        return int(self.x.shape[0])


@dataclass(frozen=True, eq=False)
class SegmentationDataset:
    """Train / validation / test splits of a segmentation data set and its class names."""

    name: str
    n_classes: int
    in_channels: int
    train: SegmentationSplit
    val: SegmentationSplit
    test: SegmentationSplit
    class_names: tuple[str, ...]

    def class_frequencies(self, split: str = "train") -> torch.Tensor:
        """Fraction of the pixels of ``split`` in each class (float64, sums to 1)."""
        y = getattr(self, split).y
        return torch.bincount(y.flatten(), minlength=self.n_classes).to(torch.float64) / y.numel()


def _check_noise(noise: object) -> float:
    if isinstance(noise, bool) or not isinstance(noise, Real) or not 0.0 <= float(noise) < float("inf"):
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    return float(noise)


def make_shapes(n: int, rng: np.random.Generator, *, size: int = 32, n_classes: int = 3,
                noise: float = 0.1, max_shapes: int = 3, channels: int = 1
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images (float32 (n, channels, size, size)) and labels (int64 (n, size, size)) drawn
    with ``rng`` (see the module docstring for the distribution)."""
    n = positive_int("n", n)
    size = positive_int("size", size)
    max_shapes = positive_int("max_shapes", max_shapes)
    channels = positive_int("channels", channels)
    noise = _check_noise(noise)
    if n_classes not in (2, 3, 4):
        raise ValueError(f"n_classes must be 2, 3 or 4, got {n_classes!r}")
    if size < 8:
        raise ValueError(f"size must be an integer >= 8, got {size!r}")
    kinds = (1, 2, 3) if n_classes == 4 else (1, 2)       # ellipse, rectangle, (triangle)
    count = rng.integers(1, max_shapes + 1, size=n)
    coords = np.arange(size) + 0.5
    Y, X = coords[None, :, None], coords[None, None, :]
    image = np.zeros((n, channels, size, size))
    label = np.zeros((n, size, size), dtype=np.int64)
    for k in range(max_shapes):
        present = count > k
        kind = rng.choice(kinds, size=n)
        cy, cx = (rng.uniform(0, size, size=(2, n)))[:, :, None, None]
        ry, rx = (rng.uniform(0.1 * size, 0.25 * size, size=(2, n)))[:, :, None, None]
        value = rng.uniform(0.5, 1.0, size=(n, channels))
        dy, dx = (Y - cy) / ry, (X - cx) / rx                    # (n, size, size) each
        ellipse = dy ** 2 + dx ** 2 <= 1.0
        rectangle = (np.abs(dy) <= 1.0) & (np.abs(dx) <= 1.0)
        triangle = (np.abs(dy) <= 1.0) & (np.abs(dx) <= 0.5 * (dy + 1.0))   # apex at the top
        kk = kind[:, None, None]
        inside = np.where(kk == 1, ellipse, np.where(kk == 2, rectangle, triangle)) & present[:, None, None]
        image = np.where(inside[:, None], value[:, :, None, None], image)
        cls = kk if n_classes > 2 else np.ones_like(kk)
        label = np.where(inside, cls, label)
    image = image + noise * rng.standard_normal(image.shape)
    return torch.from_numpy(image.astype(np.float32)), torch.from_numpy(label)


def shapes_segmentation(*, seed: int = 0, n_train: int = 512, n_val: int = 128, n_test: int = 128,
                        size: int = 32, n_classes: int = 3, noise: float = 0.1, max_shapes: int = 3,
                        channels: int = 1) -> SegmentationDataset:
    """The synthetic shapes segmentation set, deterministic given ``seed`` (each split from its
    own stream, so changing one split's size leaves the others unchanged)."""
    seed = check_seed(seed)
    opts = dict(size=size, n_classes=n_classes, noise=noise, max_shapes=max_shapes, channels=channels)
    train_rng, val_rng, test_rng = spawn_rngs(seed, 3)
    splits = [SegmentationSplit(*make_shapes(positive_int(name, m), rng, **opts))
              for name, m, rng in (("n_train", n_train, train_rng), ("n_val", n_val, val_rng),
                                   ("n_test", n_test, test_rng))]
    names = ("background", "shape") if n_classes == 2 else SHAPE_CLASSES[:n_classes]
    return SegmentationDataset("shapes", n_classes, channels, *splits, class_names=names)


__all__ = ["SegmentationSplit", "SegmentationDataset", "make_shapes", "shapes_segmentation", "SHAPE_CLASSES"]
