"""stablenet.data: generated point sets, digits, Fashion-MNIST and the IDX reader."""

from __future__ import annotations

import gzip
import math
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from stablenet.data import DATASETS, Dataset, Split, load_dataset, read_idx
from stablenet.data.images import FASHION_MNIST_DIR, FASHION_MNIST_FILES
from stablenet.data.synthetic import peaks_function

SYNTHETIC = ["peaks", "ellipses", "swiss_roll", "moons", "circles"]
TWO_CLASS = ["ellipses", "swiss_roll", "moons", "circles"]


def _splits(ds: Dataset):
    return [s for s in (ds.train, ds.val, ds.test) if s is not None]


def _check_types(ds: Dataset) -> None:
    for s in _splits(ds):
        assert isinstance(s, Split)
        assert s.x.dtype == torch.float32 and s.y.dtype == torch.int64
        assert s.x.dim() == 2 and s.x.shape == (len(s.y), ds.in_features)
        assert bool(torch.isfinite(s.x).all())
        assert int(s.y.min()) >= 0 and int(s.y.max()) < ds.n_classes


# ------------------------------------------------------------------------------ registry / API

def test_registry_names_and_descriptions():
    assert set(DATASETS) == {"peaks", "ellipses", "swiss_roll", "moons", "circles", "digits",
                             "fashion_mnist", "cifar10"}
    for name, spec in DATASETS.items():
        assert spec.name == name
        assert spec.description and "\n" not in spec.description
        assert "seed" not in spec.options and "data_dir" not in spec.options
    assert DATASETS["peaks"].options == {"n_train_per_class": 1000, "n_val_per_class": 200,
                                         "n_test_per_class": 40}
    assert DATASETS["fashion_mnist"].options == {"n_val": 5000, "n_train": None}
    assert DATASETS["circles"].options["noise"] == 0.05 and DATASETS["circles"].options["factor"] == 0.5
    assert DATASETS["moons"].options["noise"] == 0.1


def test_unknown_name_lists_names():
    with pytest.raises(ValueError, match="unknown data set 'mnist'") as err:
        load_dataset("mnist")
    for name in DATASETS:
        assert name in str(err.value)


def test_unknown_option_lists_valid_ones():
    with pytest.raises(TypeError, match="n_points") as err:
        load_dataset("moons", n_points=10)
    for opt in ("n_train", "n_val", "n_test", "noise"):
        assert opt in str(err.value)
    with pytest.raises(TypeError, match="n_train_per_class"):
        load_dataset("peaks", n_train=10)        # peaks sizes are per class


@pytest.mark.parametrize("name,option", [("peaks", "n_train_per_class"), ("peaks", "n_val_per_class"),
                                         ("peaks", "n_test_per_class"), ("moons", "n_train"),
                                         ("circles", "n_val"), ("ellipses", "n_test"),
                                         ("swiss_roll", "n_train")])
@pytest.mark.parametrize("value", [0, -3])
def test_nonpositive_sizes_rejected(name, option, value):
    with pytest.raises(ValueError, match=rf"{option}.*{value}"):
        load_dataset(name, **{option: value})


def test_other_bad_options():
    with pytest.raises(ValueError, match="n_train must be >= 2"):
        load_dataset("ellipses", n_train=1)          # one point cannot hold both classes
    with pytest.raises(ValueError, match="noise"):
        load_dataset("moons", noise=-0.1)
    with pytest.raises(ValueError, match="factor"):
        load_dataset("circles", factor=1.5)
    with pytest.raises(TypeError, match="n_train"):
        load_dataset("moons", n_train=10.5)
    with pytest.raises(ValueError, match="seed"):
        load_dataset("moons", seed=-1)
    with pytest.raises(ValueError, match="val_fraction"):
        load_dataset("digits", val_fraction=0.0)
    with pytest.raises(ValueError, match="val_fraction \\+ test_fraction"):
        load_dataset("digits", val_fraction=0.5, test_fraction=0.5)


# ------------------------------------------------------------------------------------- peaks

def _reference_peaks(x1, x2):
    """Written out again here (not imported) so a typo in the library shows up."""
    return (3 * (1 - x1) ** 2 * np.exp(-(x1 ** 2) - (x2 + 1) ** 2)
            - 10 * (x1 / 5 - x1 ** 3 - x2 ** 5) * np.exp(-(x1 ** 2) - x2 ** 2)
            - 1 / 3 * np.exp(-((x1 + 1) ** 2) - x2 ** 2))


def test_peaks_function_known_values():
    assert peaks_function(0.0, 0.0) == pytest.approx(8 / 3 * math.exp(-1), rel=1e-14)  # 0.98101
    # MATLAB documents max 8.1062 near (-0.0093, 1.5814) and min -6.5511 near (0.2283, -1.6255)
    assert peaks_function(-0.0093, 1.5814) == pytest.approx(8.1062, abs=1e-3)
    assert peaks_function(0.2283, -1.6255) == pytest.approx(-6.5511, abs=1e-3)
    rng = np.random.default_rng(1)
    x1, x2 = rng.uniform(-3, 3, (2, 100))
    np.testing.assert_allclose(peaks_function(x1, x2), _reference_peaks(x1, x2), rtol=1e-13, atol=1e-13)


def test_peaks_default_sizes_and_balance():
    ds = load_dataset("peaks")
    _check_types(ds)
    assert (ds.name, ds.n_classes, ds.in_features) == ("peaks", 5, 2)
    assert ds.image_shape is None and ds.domain == (-3.0, 3.0, -3.0, 3.0)
    for split, per_class in ((ds.train, 1000), (ds.val, 200), (ds.test, 40)):
        assert split.x.shape == (5 * per_class, 2)
        assert torch.bincount(split.y, minlength=5).tolist() == [per_class] * 5
        assert float(split.x.abs().max()) <= 3.0
    # rows are shuffled, not grouped by class
    assert not bool((ds.train.y[1:] >= ds.train.y[:-1]).all())


def test_peaks_small_sizes():
    ds = load_dataset("peaks", seed=3, n_train_per_class=7, n_val_per_class=2, n_test_per_class=1)
    for split, per_class in ((ds.train, 7), (ds.val, 2), (ds.test, 1)):
        assert torch.bincount(split.y, minlength=5).tolist() == [per_class] * 5
    no_test = load_dataset("peaks", n_train_per_class=5, n_test_per_class=None)
    assert no_test.test is None and len(no_test.val) == 5 * 200


def test_peaks_labels_match_recomputed_function():
    t = np.linspace(-3, 3, 256)
    f = _reference_peaks(*np.meshgrid(t, t))
    fmin, fmax = f.min(), f.max()
    ds = load_dataset("peaks", seed=5)
    for split in _splits(ds):
        x = split.x.numpy().astype(np.float64)
        idx = np.rint((x + 3) * 255 / 6).astype(int)          # back to grid indices
        assert ((idx >= 0) & (idx <= 255)).all()
        np.testing.assert_array_equal(split.x.numpy(), t[idx].astype(np.float32))  # exact grid points
        v = _reference_peaks(t[idx[:, 0]], t[idx[:, 1]])
        cls = np.minimum(np.floor(5 * (v - fmin) / (fmax - fmin)), 4).astype(int)
        np.testing.assert_array_equal(split.y.numpy(), cls)


def test_peaks_splits_are_disjoint_grid_points():
    ds = load_dataset("peaks", seed=2)
    rows = [tuple(r) for s in _splits(ds) for r in s.x.tolist()]
    assert len(rows) == len(set(rows)) == 5 * (1000 + 200 + 40)


def test_peaks_test_split_independent_of_train_size():
    a = load_dataset("peaks", seed=4, n_train_per_class=10)
    b = load_dataset("peaks", seed=4, n_train_per_class=300, n_val_per_class=20)
    assert torch.equal(a.test.x, b.test.x) and torch.equal(a.test.y, b.test.y)


def test_peaks_too_many_points():
    with pytest.raises(ValueError, match="n_train_per_class") as err:
        load_dataset("peaks", n_train_per_class=1700)
    assert "grid points" in str(err.value)
    load_dataset("peaks", n_train_per_class=1798 - 240)     # exactly all of the smallest class


# ------------------------------------------------------------------------ two-class point sets

@pytest.mark.parametrize("name", TWO_CLASS)
def test_two_class_sets(name):
    ds = load_dataset(name, seed=1, n_train=101, n_val=10, n_test=4)
    _check_types(ds)
    assert (ds.n_classes, ds.in_features, ds.image_shape) == (2, 2, None)
    xmin, xmax, ymin, ymax = ds.domain
    for split, n in ((ds.train, 101), (ds.val, 10), (ds.test, 4)):
        counts = torch.bincount(split.y, minlength=2).tolist()
        assert sum(counts) == n and abs(counts[0] - counts[1]) <= 1
        inside = ((split.x[:, 0] > xmin) & (split.x[:, 0] < xmax)
                  & (split.x[:, 1] > ymin) & (split.x[:, 1] < ymax))
        assert float(inside.float().mean()) > 0.95
    defaults = load_dataset(name)
    assert (len(defaults.train), len(defaults.val), len(defaults.test)) == (1000, 200, 200)
    assert load_dataset(name, n_test=None).test is None


def test_geometry_without_noise():
    e = load_dataset("ellipses", seed=0)
    x, y = e.train.x.double(), e.train.y
    r = torch.sqrt((x[:, 0] / 0.7) ** 2 + (x[:, 1] / 0.4) ** 2)
    assert float(r[y == 0].max()) <= 1.0 + 1e-6
    assert float(r[y == 1].min()) >= 1.4 - 1e-6 and float(r[y == 1].max()) <= 2.0 + 1e-6

    c = load_dataset("circles", noise=0.0, factor=0.3)
    radius = c.train.x.double().norm(dim=1)
    np.testing.assert_allclose(radius, np.where(c.train.y == 0, 1.0, 0.3), atol=1e-6, rtol=0)

    m = load_dataset("moons", noise=0.0).train
    upper = m.x[m.y == 0].double()
    np.testing.assert_allclose(upper.norm(dim=1), 1.0, atol=1e-6, rtol=0)
    assert float(upper[:, 1].min()) >= -1e-6

    s = load_dataset("swiss_roll", seed=0).train
    xs = s.x.double()
    rad, ang = xs.norm(dim=1), torch.atan2(xs[:, 1], xs[:, 0])
    theta = rad / 1.2 * 3 * math.pi + torch.where(s.y == 1, math.pi, 0.0)   # arm angle + rotation
    np.testing.assert_allclose(torch.cos(theta), torch.cos(ang), atol=1e-4, rtol=0)
    np.testing.assert_allclose(torch.sin(theta), torch.sin(ang), atol=1e-4, rtol=0)
    noisy = load_dataset("swiss_roll", seed=0, noise=0.05).train
    assert not torch.equal(noisy.x, s.x)


@pytest.mark.parametrize("name", SYNTHETIC + ["digits"])
def test_determinism(name):
    small = {} if name in ("peaks", "digits") else {"n_train": 50, "n_val": 10, "n_test": 10}
    a, b = load_dataset(name, seed=7, **small), load_dataset(name, seed=7, **small)
    c = load_dataset(name, seed=8, **small)
    for sa, sb, sc in zip(_splits(a), _splits(b), _splits(c)):
        assert torch.equal(sa.x, sb.x) and torch.equal(sa.y, sb.y)
        assert not torch.equal(sa.x, sc.x)


def test_global_rng_untouched():
    torch.manual_seed(0)
    np.random.seed(0)
    before_t, before_np = torch.get_rng_state(), np.random.get_state()[1].copy()
    for name in SYNTHETIC + ["digits"]:
        load_dataset(name)
    assert torch.equal(torch.get_rng_state(), before_t)
    assert np.array_equal(np.random.get_state()[1], before_np)


# ------------------------------------------------------------------------------------ digits

def test_digits():
    ds = load_dataset("digits")
    _check_types(ds)
    assert (ds.n_classes, ds.in_features, ds.image_shape, ds.domain) == (10, 64, (8, 8), None)
    assert len(ds.train) + len(ds.val) + len(ds.test) == 1797
    assert len(ds.test) == pytest.approx(0.2 * 1797, abs=10) and len(ds.val) == pytest.approx(0.1 * 1797, abs=10)
    for s in _splits(ds):
        assert float(s.x.min()) == 0.0 and float(s.x.max()) == 1.0
        assert torch.bincount(s.y, minlength=10).min() > 0         # stratified
    rows = [tuple(r) + (int(c),) for s in _splits(ds) for r, c in zip(s.x.tolist(), s.y)]
    assert len(rows) == 1797


def test_digits_match_sklearn():
    from sklearn.datasets import load_digits

    ref = load_digits()
    ds = load_dataset("digits", seed=0)
    x = torch.cat([s.x for s in _splits(ds)]).double()
    y = torch.cat([s.y for s in _splits(ds)])
    ref_x = torch.from_numpy(ref.data / 16.0)
    ref_y = torch.from_numpy(ref.target.astype(np.int64))
    order, ref_order = np.lexsort(x.T.numpy()), np.lexsort(ref_x.T.numpy())
    np.testing.assert_allclose(x[order], ref_x[ref_order], rtol=0, atol=1e-7)
    assert torch.equal(y[order], ref_y[ref_order])


# --------------------------------------------------------------------------------------- IDX

def _idx_bytes(arr: np.ndarray) -> bytes:
    codes = {np.dtype("uint8"): 0x08, np.dtype("int8"): 0x09, np.dtype(">i2"): 0x0B,
             np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}
    big = arr.astype(arr.dtype.newbyteorder(">")) if arr.dtype.itemsize > 1 else arr
    header = bytes([0, 0, codes[big.dtype], arr.ndim]) + b"".join(struct.pack(">I", n) for n in arr.shape)
    return header + big.tobytes()


def _write(path: Path, data: bytes, gz: bool) -> Path:
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, gz):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 4, 5), dtype=np.uint8)
    labels = rng.integers(0, 10, 3).astype(np.uint8)
    p_img = _write(tmp_path / "images-idx3-ubyte", _idx_bytes(images), gz)
    p_lab = _write(tmp_path / "labels-idx1-ubyte", _idx_bytes(labels), gz)
    out = read_idx(p_img, expected_magic=2051)
    assert out.dtype == np.uint8 and out.shape == (3, 4, 5)
    np.testing.assert_array_equal(out, images)
    np.testing.assert_array_equal(read_idx(p_lab, expected_magic=2049), labels)
    for arr in (rng.integers(-1000, 1000, (2, 3)).astype(np.int32),
                rng.standard_normal((4,)).astype(np.float32), rng.standard_normal((2, 2))):
        p = _write(tmp_path / f"x-{arr.dtype}", _idx_bytes(arr), gz)
        out = read_idx(p)
        assert out.dtype == arr.dtype and out.dtype.isnative
        np.testing.assert_array_equal(out, arr)


def test_idx_malformed(tmp_path):
    good = _idx_bytes(np.zeros((2, 3, 3), dtype=np.uint8))
    cases = {
        "truncated-payload": (good[:-1], "truncated.*only 17 data bytes"),
        "truncated-header": (good[:9], "truncated header"),
        "tiny": (good[:2], "truncated"),
        "trailing": (good + b"\0", "trailing"),
        "bad-magic": (b"\x01\x02\x08\x03" + good[4:], "bad magic"),
    }
    for name, (data, msg) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ValueError, match=msg) as err:
            read_idx(path)
        assert str(path) in str(err.value)
    with pytest.raises(ValueError, match="magic number 2051.*expected 2049"):
        (tmp_path / "ok").write_bytes(good)
        read_idx(tmp_path / "ok", expected_magic=2049)
    broken = tmp_path / "cut.gz"
    broken.write_bytes(gzip.compress(good)[:-8])
    with pytest.raises(ValueError, match="gzip") as err:
        read_idx(broken)
    assert str(broken) in str(err.value)


# ------------------------------------------------------------------------------ Fashion-MNIST

def _fake_fashion(tmp_path: Path, n_train=20, n_test=6, gz=True) -> tuple[Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n_train + n_test, 28, 28), dtype=np.uint8)
    x[0, 0, 0], x[0, 0, 1] = 0, 255
    y = (np.arange(n_train + n_test) % 10).astype(np.uint8)
    files = FASHION_MNIST_FILES
    _write(tmp_path / files["train_images"], _idx_bytes(x[:n_train]), gz)
    _write(tmp_path / files["train_labels"], _idx_bytes(y[:n_train]), not gz)   # mix plain and .gz
    _write(tmp_path / files["test_images"], _idx_bytes(x[n_train:]), gz)
    _write(tmp_path / files["test_labels"], _idx_bytes(y[n_train:]), gz)
    return tmp_path, x, y


def test_fashion_mnist_from_data_dir(tmp_path):
    d, x, y = _fake_fashion(tmp_path)
    ds = load_dataset("fashion-mnist", data_dir=str(d), n_val=5, seed=1)
    _check_types(ds)
    assert (ds.n_classes, ds.in_features, ds.image_shape, ds.domain) == (10, 784, (28, 28), None)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (15, 5, 6)
    flat = torch.from_numpy(x.reshape(len(x), -1).astype(np.float32) / 255)
    assert torch.equal(ds.test.x, flat[20:])                                     # official order
    assert torch.equal(ds.test.y, torch.from_numpy(y[20:].astype(np.int64)))
    # train + val is a permutation of the training file
    both = torch.cat([ds.train.x, ds.val.x])
    idx = [int((flat[:20] == r).all(dim=1).nonzero()) for r in both]
    assert sorted(idx) == list(range(20))
    assert torch.equal(torch.cat([ds.train.y, ds.val.y]), torch.from_numpy(y[idx].astype(np.int64)))
    assert float(both.min()) == 0.0 and float(both.max()) == 1.0

    sub = load_dataset("fashion_mnist", data_dir=d, n_val=5, n_train=4, seed=1)
    assert len(sub.train) == 4 and torch.equal(sub.train.x, ds.train.x[:4])
    assert torch.equal(sub.val.x, ds.val.x)
    other = load_dataset("fashion_mnist", data_dir=d, n_val=5, seed=2)
    assert not torch.equal(other.val.x, ds.val.x)
    with pytest.raises(ValueError, match="n_val=20"):
        load_dataset("fashion_mnist", data_dir=d, n_val=20)
    with pytest.raises(ValueError, match="n_train=16"):
        load_dataset("fashion_mnist", data_dir=d, n_val=5, n_train=16)
    with pytest.raises(ValueError, match="n_val.*0"):
        load_dataset("fashion_mnist", data_dir=d, n_val=0)


def test_fashion_mnist_bad_file(tmp_path):
    d, _, _ = _fake_fashion(tmp_path, gz=False)
    path = d / FASHION_MNIST_FILES["test_images"]
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="truncated") as err:
        load_dataset("fashion_mnist", data_dir=d, n_val=5)
    assert str(path) in str(err.value)
    # labels file where the images file should be
    path.write_bytes(_idx_bytes(np.zeros(6, dtype=np.uint8)))
    with pytest.raises(ValueError, match="expected 2051"):
        load_dataset("fashion_mnist", data_dir=d, n_val=5)


def test_fashion_mnist_missing_dir(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as err:
        load_dataset("fashion_mnist", data_dir=missing)
    msg = str(err.value)
    for fname in FASHION_MNIST_FILES.values():
        assert str(missing / fname) in msg and str(missing / (fname + ".gz")) in msg
    assert "dataset-fashion-mnist" in msg and "apt-get install -y dataset-fashion-mnist" in msg
    assert "--data-dir DIR" in msg and "does not exist" in msg


def test_fashion_mnist_partly_missing(tmp_path):
    d, _, _ = _fake_fashion(tmp_path)
    (d / (FASHION_MNIST_FILES["test_labels"] + ".gz")).unlink()
    with pytest.raises(FileNotFoundError, match="missing t10k-labels-idx1-ubyte\\. Looked at"):
        load_dataset("fashion_mnist", data_dir=d)


@pytest.mark.skipif(not Path(FASHION_MNIST_DIR).is_dir(),
                    reason=f"{FASHION_MNIST_DIR} not found (apt-get install -y dataset-fashion-mnist)")
def test_fashion_mnist_installed():
    t0 = time.perf_counter()
    ds = load_dataset("fashion_mnist")
    elapsed = time.perf_counter() - t0
    _check_types(ds)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (55000, 5000, 10000)
    assert ds.image_shape == (28, 28) and ds.in_features == 784
    for s in _splits(ds):
        assert float(s.x.min()) == 0.0 and float(s.x.max()) == 1.0
        assert s.y.unique().tolist() == list(range(10))
    assert torch.bincount(ds.test.y, minlength=10).tolist() == [1000] * 10   # official test set
    assert elapsed < 20, f"loading Fashion-MNIST took {elapsed:.1f} s"
