"""Data sets for ODE-based classifiers: 2-D point sets (for decision-region plots) and images.

Everything is generated or read locally and deterministically from ``seed``; nothing is ever
downloaded and nothing is cached on disk.

    >>> from stablenet.data import load_dataset, DATASETS
    >>> ds = load_dataset("peaks", seed=0)                     # 5 classes, 1000/200/40 per class
    >>> ds.train.x.shape, ds.train.y.shape
    (torch.Size([5000, 2]), torch.Size([5000]))
    >>> load_dataset("moons", seed=1, n_train=200, noise=0.2).train.x.shape
    torch.Size([200, 2])

Names (``DATASETS`` holds a one-line description and the option defaults of each):

* ``peaks``: Haber & Ruthotto (2017) / MATLAB ``peaks`` on a 256 x 256 grid, 5 value bands.
* ``ellipses``: filled ellipse vs surrounding elliptical ring.
* ``swiss_roll``: two interleaved spirals.
* ``moons``, ``circles``: as scikit-learn's ``make_moons`` / ``make_circles``.
* ``digits``: scikit-learn's bundled 8 x 8 digits.
* ``fashion_mnist``: the official IDX files from a local directory.
* ``cifar10``: the official binary batches from a local directory (``stablenet.data.cifar``).

Image tools for convolutional networks (import the modules): ``stablenet.data.augment`` (random
crop + flip, per-channel normalization, explicit generators), ``stablenet.data.segmentation``
(synthetic shapes with per-pixel labels).

``load_dataset`` checks the option names (unknown -> ``TypeError`` listing the valid ones) and the
loaders check the values (zero or negative sizes -> ``ValueError`` naming the option).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

from . import cifar, images, synthetic
from .base import Dataset, Split
from .images import read_idx


# ----------------------------------------------------------------------------------- registry

@dataclass(frozen=True)
class DatasetSpec:
    """Registry entry: the loader ``loader(*, seed, [data_dir,] **options) -> Dataset`` and a
    one-line description.  ``options`` maps each option name to its default."""

    name: str
    loader: Callable[..., Dataset]
    description: str
    options: dict[str, Any] = field(init=False)
    uses_data_dir: bool = field(init=False)

    def __post_init__(self) -> None:
        params = inspect.signature(self.loader).parameters
        opts = {k: p.default for k, p in params.items() if k not in ("seed", "data_dir")}
        object.__setattr__(self, "options", opts)
        object.__setattr__(self, "uses_data_dir", "data_dir" in params)


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("peaks", synthetic.peaks,
                    "MATLAB peaks on a 256x256 grid of [-3,3]^2, 5 equal-width value bands "
                    "(Haber & Ruthotto 2017); class-balanced, 2 features"),
        DatasetSpec("ellipses", synthetic.ellipses,
                    "filled ellipse (class 0) vs surrounding elliptical ring (class 1), 2 features"),
        DatasetSpec("swiss_roll", synthetic.swiss_roll,
                    "two interleaved spirals, the second rotated by pi, 2 features"),
        DatasetSpec("moons", synthetic.moons,
                    "two interleaving half circles (as sklearn make_moons), 2 features"),
        DatasetSpec("circles", synthetic.circles,
                    "two concentric circles (as sklearn make_circles), 2 features"),
        DatasetSpec("digits", images.digits,
                    "scikit-learn's bundled 8x8 handwritten digits, 64 features in [0,1], 10 classes"),
        DatasetSpec("fashion_mnist", images.fashion_mnist,
                    "Fashion-MNIST 28x28 images from local IDX files, 784 features in [0,1], 10 classes"),
        DatasetSpec("cifar10", cifar.cifar10,
                    "CIFAR-10 32x32 colour images from the local binary batches (data_dir), 3072 features in "
                    "[0,1] (3 channels), 10 classes"),
    )
}


def load_dataset(name: str, *, seed: int = 0, data_dir: str | None = None, **options) -> Dataset:
    """Load data set ``name`` (see :data:`DATASETS`), deterministically from ``seed``.

    ``data_dir`` is used by data sets read from files (``fashion_mnist``, ``cifar10``) and ignored by the
    generated ones.  ``options`` are the data set's own options (``DATASETS[name].options``).
    Names are case-insensitive and ``-`` may stand for ``_`` (``"fashion-mnist"``).
    """
    if not isinstance(name, str):
        raise TypeError(f"data set name must be a str, got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    if key not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; available: {', '.join(DATASETS)}")
    spec = DATASETS[key]
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        valid = ", ".join(f"{k} (default {v!r})" for k, v in spec.options.items())
        raise TypeError(f"unknown option(s) {', '.join(unknown)} for data set {key!r}; "
                        f"valid options: {valid}")
    if spec.uses_data_dir:
        options["data_dir"] = data_dir
    return spec.loader(seed=seed, **options)


__all__ = ["Split", "Dataset", "DatasetSpec", "DATASETS", "load_dataset", "read_idx"]
