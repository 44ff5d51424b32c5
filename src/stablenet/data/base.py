"""What every data set is made of: :class:`Split` and :class:`Dataset`, and the loaders' helpers
(seed checking, independent random streams, splits from numpy arrays).

The loaders (synthetic.py, images.py, cifar.py, segmentation.py) import this module; the package
(``stablenet.data``) imports the loaders for its registry, so nothing imports the package from
below.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

import numpy as np
import torch


@dataclass(frozen=True, eq=False)
class Split:
    """One split of a data set: ``x`` float32 ``(n, features)``, ``y`` int64 class labels ``(n,)``.

    (``eq=False``: tensors have no single truth value, so splits compare by identity.)
    """

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if not isinstance(self.x, torch.Tensor) or not isinstance(self.y, torch.Tensor):
            raise TypeError("Split.x and Split.y must be torch.Tensors")
        if self.x.dtype != torch.float32 or self.x.dim() != 2:
            raise ValueError(f"Split.x must be float32 (n, features), got {self.x.dtype} {tuple(self.x.shape)}")
        if self.y.dtype != torch.int64 or self.y.dim() != 1:
            raise ValueError(f"Split.y must be int64 (n,), got {self.y.dtype} {tuple(self.y.shape)}")
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"Split.x has {self.x.shape[0]} rows but Split.y has {self.y.shape[0]} labels")

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True, eq=False)
class Dataset:
    """A classification data set with train / validation / (optional) test splits.

    ``image_shape`` is the shape the feature vector reshapes to for images (``(8, 8)`` for digits,
    ``(28, 28)`` for Fashion-MNIST), ``None`` for point sets.  ``domain`` is the box
    ``(xmin, xmax, ymin, ymax)`` to draw decision regions in for 2-D point sets, ``None`` otherwise.
    """

    name: str
    n_classes: int
    in_features: int
    train: Split
    val: Split
    test: Split | None
    image_shape: tuple[int, ...] | None = None
    domain: tuple[float, float, float, float] | None = None

    def __post_init__(self) -> None:
        splits = [("train", self.train), ("val", self.val)]
        if self.test is not None:
            splits.append(("test", self.test))
        for label, split in splits:
            if not isinstance(split, Split):
                raise TypeError(f"Dataset.{label} must be a Split, got {type(split).__name__}")
            if split.x.shape[1] != self.in_features:
                raise ValueError(f"Dataset.{label}.x has {split.x.shape[1]} features, expected {self.in_features}")
            if len(split) and (int(split.y.min()) < 0 or int(split.y.max()) >= self.n_classes):
                raise ValueError(f"Dataset.{label}.y has labels outside [0, {self.n_classes})")
        if self.image_shape is not None and int(np.prod(self.image_shape)) != self.in_features:
            raise ValueError(f"image_shape {self.image_shape} does not hold {self.in_features} features")


# ----------------------------------------------------------------------------------- helpers
# (for the loaders: synthetic.py, images.py, cifar.py, segmentation.py)

def check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        raise TypeError(f"seed must be an integer >= 0, got {seed!r} ({type(seed).__name__})")
    if seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    return int(seed)


def spawn_rngs(seed: int, n: int) -> list[np.random.Generator]:
    """``n`` independent generators derived from ``seed`` (one stream per purpose/split, so that
    e.g. the test split does not change when only ``n_train`` changes)."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]


def make_split(x: np.ndarray, y: np.ndarray, rng: np.random.Generator | None = None) -> Split:
    """Build a :class:`Split` from numpy arrays, shuffling the rows with ``rng`` if given."""
    if rng is not None:
        order = rng.permutation(len(y))
        x, y = x[order], y[order]
    return Split(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
                 torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64)))
