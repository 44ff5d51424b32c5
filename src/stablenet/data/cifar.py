"""CIFAR-10 from the standard *binary* distribution, read from a local directory.

The binary version (``cifar-10-binary.tar.gz`` from https://www.cs.toronto.edu/~kriz/cifar.html,
Krizhevsky 2009, "Learning multiple layers of features from tiny images") unpacks to
``cifar-10-batches-bin/`` with ``data_batch_1.bin`` … ``data_batch_5.bin`` (10,000 training
images each), ``test_batch.bin`` (10,000 test images) and ``batches.meta.txt``.  Every record is
3073 bytes: one label byte (0–9), then the 32×32 red, green and blue planes, row-major (1024
bytes each).  Nothing is downloaded and nothing is unpickled: the Python version of the data set
(pickled dicts) is never read.

    >>> from stablenet.data.cifar import read_cifar10, cifar10
    >>> raw = read_cifar10("~/data/cifar-10-batches-bin")   # uint8 images, int64 labels
    >>> raw["train"][0].shape, raw["test"][0].shape
    (torch.Size([50000, 3, 32, 32]), torch.Size([10000, 3, 32, 32]))
    >>> ds = cifar10(data_dir="~/data", n_train=5000)       # a stablenet Dataset, 3072 features

Augmentation (random crop + flip) and per-channel normalization: :mod:`stablenet.data.augment`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .._checks import positive_int
from .base import Dataset, check_seed, make_split, spawn_rngs

CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch.bin"
CIFAR10_SUBDIR = "cifar-10-batches-bin"        #: what the binary tarball unpacks to
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_SHAPE = (3, 32, 32)
RECORD_BYTES = 1 + 3 * 32 * 32                 #: 3073: label byte + R, G, B planes
#: per-channel mean and standard deviation of the 50,000 training images scaled to [0, 1]
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
_HINT = ("download cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html yourself, "
         "unpack it (tar xzf) and pass the directory that holds the .bin files (or its parent) "
         "(stablenet train: --data-dir DIR or data.data_dir)")


def find_cifar10(data_dir: str | os.PathLike) -> dict[str, Path]:
    """Paths of the six CIFAR-10 binary batch files: keys ``data_batch_1`` … ``data_batch_5`` and
    ``test_batch``.

    Looks in ``data_dir`` and in ``data_dir/cifar-10-batches-bin`` (the tarball's folder); the
    first directory holding every file wins.  Raises ``FileNotFoundError`` naming every path
    tried if neither holds all six.
    """
    if data_dir is None:
        raise ValueError("data_dir must name the directory with the CIFAR-10 binary files, got None; " + _HINT)
    base = Path(data_dir).expanduser()
    names = CIFAR10_TRAIN_FILES + (CIFAR10_TEST_FILE,)
    tried: list[Path] = []
    missing_in: list[str] = []
    for folder in (base, base / CIFAR10_SUBDIR):
        paths = [folder / n for n in names]
        tried += paths
        missing = [p.name for p in paths if not p.is_file()]
        if not missing:
            return {p.name[:-len(".bin")]: p for p in paths}
        state = "does not exist" if not folder.is_dir() else f"lacks {', '.join(missing)}"
        missing_in.append(f"{folder} {state}")
    raise FileNotFoundError(
        f"CIFAR-10 binary files not found: {'; '.join(missing_in)}. Paths tried: "
        + ", ".join(str(p) for p in tried) + f". To fix: {_HINT}")


def read_cifar10_batch(path: str | os.PathLike, *, expected_records: int | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """One binary batch file → (images uint8 (n, 3, 32, 32), labels int64 (n,)).

    Raises ``ValueError`` naming the file when it is empty, is not a whole number of 3073-byte
    records (truncated or not a CIFAR-10 binary file), holds a label outside 0–9, or has a
    record count other than ``expected_records`` (10,000 in the official files).
    """
    path = Path(path)
    raw = path.read_bytes()
    n, rest = divmod(len(raw), RECORD_BYTES)
    if len(raw) == 0:
        raise ValueError(f"CIFAR-10 file {path}: empty, expected records of {RECORD_BYTES} bytes")
    if rest:
        raise ValueError(f"CIFAR-10 file {path}: {len(raw)} bytes is not a whole number of {RECORD_BYTES}-byte "
                         f"records ({n} records and {rest} bytes left over): truncated or not the binary version")
    if expected_records is not None and n != expected_records:
        raise ValueError(f"CIFAR-10 file {path}: {n} records, expected {expected_records}")
    records = np.frombuffer(raw, dtype=np.uint8).reshape(n, RECORD_BYTES)
    labels = records[:, 0].astype(np.int64)
    if int(labels.max()) > 9:
        bad = int(np.flatnonzero(labels > 9)[0])
        raise ValueError(f"CIFAR-10 file {path}: record {bad} has label {int(labels[bad])}, expected 0..9")
    images = np.ascontiguousarray(records[:, 1:]).reshape(n, *CIFAR10_SHAPE)
    return torch.from_numpy(images), torch.from_numpy(labels)


def read_cifar10(data_dir: str | os.PathLike, *, expected_records: int | None = None
                 ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The official splits as uint8 images (n, 3, 32, 32) and int64 labels: ``{"train": (x, y),
    "test": (x, y)}``, training batches 1–5 concatenated in order (see :func:`find_cifar10`).
    ``expected_records=10000`` checks every file is complete."""
    files = find_cifar10(data_dir)
    parts = [read_cifar10_batch(files[n[:-4]], expected_records=expected_records) for n in CIFAR10_TRAIN_FILES]
    test = read_cifar10_batch(files[CIFAR10_TEST_FILE[:-4]], expected_records=expected_records)
    return {"train": (torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])), "test": test}


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images → float32 in [0, 1] (x / 255, exact at 0 and 255)."""
    return images.to(torch.float32).div_(255.0)


def cifar10(*, seed: int = 0, data_dir: str | os.PathLike | None = None, n_val: int = 5000,
            n_train: int | None = None) -> Dataset:
    """CIFAR-10 as a :class:`~stablenet.data.Dataset`: 3072 features in [0, 1] per image
    (channel-major, ``image_shape = (3, 32, 32)``: ``x.view(-1, 3, 32, 32)``), 10 classes.

    test = the official 10,000 test images (file order); validation = the last ``n_val`` images
    of a ``seed``-permuted training set; train = the rest, or its first ``n_train`` images.
    float32 copies take 4 bytes per pixel (≈ 740 MB for all 60,000 images); for large runs keep
    :func:`read_cifar10`'s uint8 tensors and convert per batch with :func:`to_float`.
    """
    seed = check_seed(seed)
    n_val = positive_int("n_val", n_val)
    if n_train is not None:
        n_train = positive_int("n_train", n_train)
    raw = read_cifar10(data_dir)
    x_train, y_train = raw["train"]
    x_test, y_test = raw["test"]
    total = int(y_train.shape[0])
    if n_val >= total:
        raise ValueError(f"n_val={n_val} leaves no training images (the training files hold {total})")
    if n_train is not None and n_train > total - n_val:
        raise ValueError(f"n_train={n_train} exceeds the {total - n_val} training images left after n_val={n_val}")
    (perm_rng,) = spawn_rngs(seed, 1)
    perm = perm_rng.permutation(total)
    val_idx = perm[total - n_val:]
    train_idx = perm[:total - n_val] if n_train is None else perm[:n_train]

    def split(x: torch.Tensor, y: torch.Tensor, idx):
        if idx is not None:
            x, y = x[torch.from_numpy(idx)], y[torch.from_numpy(idx)]
        return make_split(to_float(x).reshape(x.shape[0], -1).numpy(), y.numpy())

    return Dataset(name="cifar10", n_classes=10, in_features=3 * 32 * 32,
                   train=split(x_train, y_train, train_idx), val=split(x_train, y_train, val_idx),
                   test=split(x_test, y_test, None), image_shape=CIFAR10_SHAPE, domain=None)


__all__ = ["find_cifar10", "read_cifar10_batch", "read_cifar10", "cifar10", "to_float",
           "CIFAR10_TRAIN_FILES", "CIFAR10_TEST_FILE", "CIFAR10_CLASSES", "CIFAR10_MEAN", "CIFAR10_STD",
           "CIFAR10_SHAPE", "RECORD_BYTES"]
