"""Image data sets: scikit-learn's bundled 8x8 digits and Fashion-MNIST from local IDX files.

Nothing is downloaded: digits ship inside scikit-learn, Fashion-MNIST is read from ``data_dir``
or from ``/usr/share/datasets/fashion-mnist`` (Debian package ``dataset-fashion-mnist``).
"""

from __future__ import annotations

import gzip
import importlib.util
import math
import os
import zlib
from numbers import Real
from pathlib import Path

import numpy as np

from .._checks import positive_int
from .base import Dataset, check_seed, make_split, spawn_rngs

# ------------------------------------------------------------------------------------- IDX

#: IDX type code (third magic byte) -> big-endian numpy dtype (http://yann.lecun.com/exdb/mnist/)
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IDX_IMAGES_MAGIC = 2051   #: 0x00000803: unsigned bytes, 3 dimensions (n, rows, cols)
IDX_LABELS_MAGIC = 2049   #: 0x00000801: unsigned bytes, 1 dimension (n,)


def read_idx(path: str | os.PathLike, *, expected_magic: int | None = None) -> np.ndarray:
    """Read an IDX file (plain or gzip-compressed, detected from its first bytes) into a numpy
    array of shape given by its header, without copying the payload (read-only for 1-byte types).

    Header: 2 zero bytes, a type code (0x08 ubyte, 0x09 byte, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions d, then d big-endian uint32 sizes; the
    payload is prod(sizes) big-endian values.  Any deviation (bad magic, wrong ``expected_magic``,
    truncated header or payload, trailing bytes, broken gzip stream) raises ``ValueError`` naming
    the file and what is wrong.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"IDX file {path}: broken or truncated gzip data ({exc})") from None
    if len(raw) < 4:
        raise ValueError(f"IDX file {path}: truncated, {len(raw)} bytes is shorter than the 4-byte magic number")
    magic = int.from_bytes(raw[:4], "big")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES or raw[3] == 0:
        raise ValueError(f"IDX file {path}: bad magic number {magic} (0x{magic:08x}); "
                         "expected 0x0000TTDD with type code TT in 08,09,0B,0C,0D,0E and DD >= 1 dimensions")
    if expected_magic is not None and magic != expected_magic:
        raise ValueError(f"IDX file {path}: magic number {magic} (0x{magic:08x}), expected "
                         f"{expected_magic} (0x{expected_magic:08x})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"IDX file {path}: truncated header, {len(raw)} bytes but {ndim} dimensions "
                         f"need {header}")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(IDX_DTYPES[raw[2]])
    expected = math.prod(shape) * dtype.itemsize
    found = len(raw) - header
    if found < expected:
        raise ValueError(f"IDX file {path}: truncated, header says shape {shape} ({expected} data bytes) "
                         f"but only {found} data bytes follow")
    if found > expected:
        raise ValueError(f"IDX file {path}: {found - expected} unexpected trailing bytes after the "
                         f"{expected} data bytes of shape {shape}")
    arr = np.frombuffer(raw, dtype=dtype, offset=header, count=math.prod(shape)).reshape(shape)
    return arr if dtype.itemsize == 1 else arr.astype(dtype.newbyteorder("="))


# ------------------------------------------------------------------------------------ digits

def _fraction(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number in (0, 1), got {value!r} ({type(value).__name__})")
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {value!r}")
    return float(value)


def _load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(data float64 (1797, 64), target int64) of ``sklearn.datasets.load_digits()``.

    Importing scikit-learn takes about a second, so the CSV file it ships
    (``sklearn/datasets/data/digits.csv.gz``, 64 pixel columns then the label, which is exactly what
    ``load_digits`` parses) is read directly when it is where scikit-learn keeps it; otherwise
    ``load_digits`` is called."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise ImportError("the 'digits' data set needs scikit-learn (pip install scikit-learn); "
                          "its 8x8 digits ship with it, nothing is downloaded")
    csv = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    if csv.is_file():
        table = np.loadtxt(csv, delimiter=",", dtype=np.float64)
        if table.ndim == 2 and table.shape[1] == 65:
            return np.ascontiguousarray(table[:, :64]), table[:, 64].astype(np.int64)
    from sklearn.datasets import load_digits  # pragma: no cover - other scikit-learn layouts

    bunch = load_digits()  # pragma: no cover
    return (np.asarray(bunch.data, dtype=np.float64),  # pragma: no cover
            np.asarray(bunch.target, dtype=np.int64))


def digits(*, seed: int = 0, val_fraction: float = 0.1, test_fraction: float = 0.2) -> Dataset:
    """scikit-learn's bundled 8x8 handwritten digits (``sklearn.datasets.load_digits``: 1797
    images, a copy of the UCI "Optical Recognition of Handwritten Digits" test set; no download).
    Pixel counts 0..16 are divided by 16, giving 64 features in [0, 1]; 10 classes.

    Stratified split by ``seed``: per class, a seeded permutation gives
    round(test_fraction * n_c) test and round(val_fraction * n_c) validation images (at least
    one each), the rest train.  Rows of each split are shuffled.
    """
    seed = check_seed(seed)
    val_fraction = _fraction("val_fraction", val_fraction)
    test_fraction = _fraction("test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(f"val_fraction + test_fraction must be < 1, got {val_fraction} + {test_fraction}")
    data, target = _load_digits_arrays()
    x = data / 16.0
    y = target

    perm_rng, train_rng, val_rng, test_rng = spawn_rngs(seed, 4)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for k in range(10):
        idx = perm_rng.permutation(np.flatnonzero(y == k))
        n_test = max(1, round(test_fraction * len(idx)))
        n_val = max(1, round(val_fraction * len(idx)))
        if n_test + n_val >= len(idx):
            raise ValueError(f"val_fraction={val_fraction} and test_fraction={test_fraction} leave no "
                             f"training images of digit {k} ({len(idx)} images)")
        parts["test"].append(idx[:n_test])
        parts["val"].append(idx[n_test:n_test + n_val])
        parts["train"].append(idx[n_test + n_val:])

    def split(key, rng):
        idx = np.concatenate(parts[key])
        return make_split(x[idx], y[idx], rng)

    return Dataset(name="digits", n_classes=10, in_features=64,
                   train=split("train", train_rng), val=split("val", val_rng),
                   test=split("test", test_rng), image_shape=(8, 8), domain=None)


# ----------------------------------------------------------------------------- Fashion-MNIST

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
_INSTALL_HINT = ("install the Debian package dataset-fashion-mnist (apt-get install -y "
                 "dataset-fashion-mnist) or pass --data-dir DIR containing the four IDX files")


def find_fashion_mnist(data_dir: str | os.PathLike | None = None) -> dict[str, Path]:
    """Paths of the four Fashion-MNIST IDX files in ``data_dir`` (default
    ``/usr/share/datasets/fashion-mnist``), each plain or ``.gz`` (plain preferred).
    Raises ``FileNotFoundError`` listing every path looked at if any file is missing."""
    base = Path(FASHION_MNIST_DIR if data_dir is None else data_dir).expanduser()
    found: dict[str, Path] = {}
    looked: list[Path] = []
    missing: list[str] = []
    for key, fname in FASHION_MNIST_FILES.items():
        candidates = [base / fname, base / (fname + ".gz")]
        looked += candidates
        hit = next((p for p in candidates if p.is_file()), None)
        if hit is None:
            missing.append(fname)
        else:
            found[key] = hit
    if missing:
        where = "" if base.is_dir() else f" (directory {base} does not exist)"
        raise FileNotFoundError(
            f"Fashion-MNIST: missing {', '.join(missing)}{where}. Looked at: "
            + ", ".join(str(p) for p in looked) + f". To fix: {_INSTALL_HINT}")
    return found


def _read_pair(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    x = read_idx(images, expected_magic=IDX_IMAGES_MAGIC)
    y = read_idx(labels, expected_magic=IDX_LABELS_MAGIC)
    if x.shape[1:] != (28, 28):
        raise ValueError(f"IDX file {images}: images are {x.shape[1]}x{x.shape[2]}, expected 28x28")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"IDX files {images} and {labels}: {x.shape[0]} images but {y.shape[0]} labels")
    if y.size and int(y.max()) > 9:
        raise ValueError(f"IDX file {labels}: label {int(y.max())} outside 0..9")
    return x, y


def fashion_mnist(*, seed: int = 0, data_dir: str | os.PathLike | None = None, n_val: int = 5000,
                  n_train: int | None = None) -> Dataset:
    """Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, https://github.com/zalandoresearch/fashion-mnist):
    28x28 grey images of 10 clothing classes (``FASHION_MNIST_CLASSES``), read from the four
    standard IDX files (see :func:`find_fashion_mnist`).  Pixels are scaled to [0, 1]: 784 features.

    test = the official 10,000 test images (file order); validation = the last ``n_val`` images of
    a ``seed``-permuted official training set; train = the rest of that permutation, or its first
    ``n_train`` images if given (to subsample for speed).  Default sizes 55,000 / 5,000 / 10,000.
    """
    seed = check_seed(seed)
    n_val = positive_int("n_val", n_val)
    if n_train is not None:
        n_train = positive_int("n_train", n_train)
    files = find_fashion_mnist(data_dir)
    x_train, y_train = _read_pair(files["train_images"], files["train_labels"])
    x_test, y_test = _read_pair(files["test_images"], files["test_labels"])
    n_total = x_train.shape[0]
    if n_val >= n_total:
        raise ValueError(f"n_val={n_val} leaves no training images (the training file has {n_total})")
    if n_train is not None and n_train > n_total - n_val:
        raise ValueError(f"n_train={n_train} exceeds the {n_total - n_val} training images left after "
                         f"n_val={n_val}")

    (perm_rng,) = spawn_rngs(seed, 1)
    perm = perm_rng.permutation(n_total)
    val_idx = perm[n_total - n_val:]
    train_idx = perm[:n_total - n_val] if n_train is None else perm[:n_train]

    def split(x: np.ndarray, y: np.ndarray, idx: np.ndarray | None):
        if idx is not None:          # index the uint8 images before converting: 4x less copying
            x, y = x[idx], y[idx]
        xf = x.reshape(x.shape[0], -1).astype(np.float32)
        xf /= np.float32(255.0)      # exact: 0 -> 0.0, 255 -> 1.0
        return make_split(xf, y.astype(np.int64))

    return Dataset(name="fashion_mnist", n_classes=10, in_features=784,
                   train=split(x_train, y_train, train_idx), val=split(x_train, y_train, val_idx),
                   test=split(x_test, y_test, None), image_shape=(28, 28), domain=None)


__all__ = ["read_idx", "digits", "fashion_mnist", "find_fashion_mnist", "FASHION_MNIST_DIR",
           "FASHION_MNIST_FILES", "FASHION_MNIST_CLASSES"]
