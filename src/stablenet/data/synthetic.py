"""Generated 2-D point sets: peaks, ellipses, swiss_roll, moons, circles.

All are deterministic given ``seed`` (``numpy.random.SeedSequence(seed)``, one independent stream
per purpose, never the global RNG), return float32 coordinates and int64 labels, and every split
contains every class.  Sizes of the test split may be ``None`` (then ``Dataset.test is None``).
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import nonnegative_float, positive_int
from .base import Dataset, Split, check_seed, make_split, spawn_rngs

PEAKS_GRID = 256          #: grid points per direction (Haber & Ruthotto 2017)
PEAKS_CLASSES = 5         #: equal-width bands of the function value
PEAKS_DOMAIN = (-3.0, 3.0, -3.0, 3.0)


# ------------------------------------------------------------------------------------- peaks

def peaks_function(x1, x2):
    """MATLAB's ``peaks``:

        f(x1, x2) = 3 (1 - x1)^2 exp(-x1^2 - (x2 + 1)^2)
                    - 10 (x1/5 - x1^3 - x2^5) exp(-x1^2 - x2^2)
                    - 1/3 exp(-(x1 + 1)^2 - x2^2)

    (numpy arrays or floats, evaluated in float64).  Max about 8.106, min about -6.551 on [-3, 3]^2.
    """
    x1 = np.asarray(x1, dtype=np.float64)
    x2 = np.asarray(x2, dtype=np.float64)
    return (3.0 * (1.0 - x1) ** 2 * np.exp(-x1 ** 2 - (x2 + 1.0) ** 2)
            - 10.0 * (x1 / 5.0 - x1 ** 3 - x2 ** 5) * np.exp(-x1 ** 2 - x2 ** 2)
            - np.exp(-(x1 + 1.0) ** 2 - x2 ** 2) / 3.0)


def peaks_grid() -> tuple[np.ndarray, np.ndarray]:
    """The peaks grid and its labels: ``points`` float64 ``(256*256, 2)`` (``x1`` varies slowest),
    ``labels`` int64 ``(256*256,)``, class = min(floor(5 (f - fmin) / (fmax - fmin)), 4) with
    fmin, fmax the extreme values of f on the grid."""
    t = np.linspace(-3.0, 3.0, PEAKS_GRID)
    x1, x2 = np.meshgrid(t, t, indexing="ij")
    f = peaks_function(x1, x2).ravel()
    fmin, fmax = f.min(), f.max()
    labels = np.minimum(np.floor(PEAKS_CLASSES * (f - fmin) / (fmax - fmin)), PEAKS_CLASSES - 1)
    points = np.stack([x1.ravel(), x2.ravel()], axis=1)
    return points, labels.astype(np.int64)


def peaks(*, seed: int = 0, n_train_per_class: int = 1000, n_val_per_class: int = 200,
          n_test_per_class: int | None = 40) -> Dataset:
    """The *peaks* data set of Haber & Ruthotto, "Stable architectures for deep neural networks"
    (Inverse Problems 34, 2017), built on MATLAB's ``peaks`` function (:func:`peaks_function`).

    The function is evaluated on the 256 x 256 regular grid ``np.linspace(-3, 3, 256)`` in both
    directions; the range [fmin, fmax] of its values on the grid is cut into 5 equal-width bands,
    which are the 5 classes.  Each split holds exactly ``n_*_per_class`` grid points of every class,
    drawn WITHOUT replacement, so no point is in two splits (the paper: 1000 per class for training,
    40 per class for testing).  Features are the 2 coordinates (float32).  Per class, one seeded
    permutation of its grid points is cut into test, then validation, then training points, so the
    test split does not depend on ``n_train_per_class`` / ``n_val_per_class``.

    The smallest classes have 1798 (class 4) and 1829 (class 0) grid points; asking for more in
    total raises ``ValueError``.
    """
    seed = check_seed(seed)
    n_train = positive_int("n_train_per_class", n_train_per_class)
    n_val = positive_int("n_val_per_class", n_val_per_class)
    n_test = 0 if n_test_per_class is None else positive_int("n_test_per_class", n_test_per_class)

    points, labels = peaks_grid()
    counts = np.bincount(labels, minlength=PEAKS_CLASSES)
    need = n_train + n_val + n_test
    if need > counts.min():
        k = int(counts.argmin())
        raise ValueError(
            f"peaks class {k} has only {int(counts[k])} grid points, fewer than "
            f"n_train_per_class + n_val_per_class + n_test_per_class = "
            f"{n_train} + {n_val} + {n_test} = {need}; reduce n_train_per_class")

    perm_rng, train_rng, val_rng, test_rng = spawn_rngs(seed, 4)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for k in range(PEAKS_CLASSES):
        idx = perm_rng.permutation(np.flatnonzero(labels == k))
        parts["test"].append(idx[:n_test])
        parts["val"].append(idx[n_test:n_test + n_val])
        parts["train"].append(idx[n_test + n_val:need])

    def split(key: str, rng: np.random.Generator) -> Split:
        idx = np.concatenate(parts[key])
        return make_split(points[idx], labels[idx], rng)

    return Dataset(
        name="peaks", n_classes=PEAKS_CLASSES, in_features=2,
        train=split("train", train_rng), val=split("val", val_rng),
        test=None if n_test_per_class is None else split("test", test_rng),
        image_shape=None, domain=PEAKS_DOMAIN,
    )


# ----------------------------------------------------------------------- two-class point sets

def _sizes(n_train, n_val, n_test, n_classes: int = 2) -> tuple[int, int, int | None]:
    out = []
    for name, n in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
        if n is None and name == "n_test":
            out.append(None)
            continue
        n = positive_int(name, n)
        if n < n_classes:
            raise ValueError(f"{name} must be >= {n_classes} so that the split holds every class, got {n}")
        out.append(n)
    return tuple(out)  # type: ignore[return-value]


def _point_set(name: str, sampler, seed, n_train, n_val, n_test, domain, n_classes: int = 2) -> Dataset:
    """Draw each split independently: ``sampler(rng, k, m)`` returns ``m`` points of class ``k``;
    class sizes differ by at most one (balanced), rows are shuffled."""
    seed = check_seed(seed)
    sizes = _sizes(n_train, n_val, n_test, n_classes)
    rngs = spawn_rngs(seed, 3)

    def split(n: int, rng: np.random.Generator) -> Split:
        per_class = [n // n_classes + (k < n % n_classes) for k in range(n_classes)]
        x = np.concatenate([sampler(rng, k, m) for k, m in enumerate(per_class)])
        y = np.repeat(np.arange(n_classes), per_class)
        return make_split(x, y, rng)

    train, val = split(sizes[0], rngs[0]), split(sizes[1], rngs[1])
    test = None if sizes[2] is None else split(sizes[2], rngs[2])
    return Dataset(name=name, n_classes=n_classes, in_features=2, train=train, val=val, test=test,
                   image_shape=None, domain=domain)


def _noise(name: str, value) -> float:
    return nonnegative_float(name, value)


ELLIPSE_AXES = (0.7, 0.4)     #: semi-axes (a, b) of the inner ellipse
ELLIPSE_RING = (1.4, 2.0)     #: ring between the ellipses scaled by these factors (gap: 1 to 1.4)


def ellipses(*, seed: int = 0, n_train: int = 1000, n_val: int = 200, n_test: int | None = 200) -> Dataset:
    """Two classes in 2-D: points uniform in the filled ellipse (x/a)^2 + (y/b)^2 <= 1 with
    (a, b) = (0.7, 0.4) (class 0) and uniform in the elliptical ring 1.4 <= r <= 2.0,
    r = sqrt((x/a)^2 + (y/b)^2) (class 1), so there is a clear gap 1 < r < 1.4 between them.
    Uniform by area: r = sqrt(U(r0^2, r1^2)), angle U(0, 2 pi), then scaled by (a, b).
    ``n_*`` are totals across the two classes (balanced).  Domain [-1.5, 1.5]^2.
    """
    a, b = ELLIPSE_AXES

    def sampler(rng: np.random.Generator, k: int, m: int) -> np.ndarray:
        r0, r1 = (0.0, 1.0) if k == 0 else ELLIPSE_RING
        r = np.sqrt(rng.uniform(r0 ** 2, r1 ** 2, m))
        phi = rng.uniform(0.0, 2.0 * math.pi, m)
        return np.stack([a * r * np.cos(phi), b * r * np.sin(phi)], axis=1)

    return _point_set("ellipses", sampler, seed, n_train, n_val, n_test, (-1.5, 1.5, -1.5, 1.5))


SPIRAL_ANGLES = (0.5 * math.pi, 3.0 * math.pi)   #: angle range of each spiral arm
SPIRAL_RADIUS = 1.2                              #: radius at the outer end of an arm


def swiss_roll(*, seed: int = 0, n_train: int = 1000, n_val: int = 200, n_test: int | None = 200,
               noise: float = 0.0) -> Dataset:
    """Two interleaved spirals ("swiss roll"): class 0 is the Archimedean arm
    r = 1.2 theta / (3 pi) at angle theta in [pi/2, 3 pi], i.e. (r cos theta, r sin theta);
    class 1 is the same arm rotated by pi.  The arms are 0.4 apart radially.  theta is drawn as
    sqrt(U(theta0^2, theta1^2)) so points are about uniform along the arc; ``noise`` is the
    standard deviation of Gaussian noise added to both coordinates (default 0: exact arms).
    ``n_*`` are totals across the two classes (balanced).  Domain [-1.5, 1.5]^2.
    """
    noise = _noise("noise", noise)
    t0, t1 = SPIRAL_ANGLES

    def sampler(rng: np.random.Generator, k: int, m: int) -> np.ndarray:
        theta = np.sqrt(rng.uniform(t0 ** 2, t1 ** 2, m))
        r = SPIRAL_RADIUS * theta / t1
        phi = theta + k * math.pi
        x = np.stack([r * np.cos(phi), r * np.sin(phi)], axis=1)
        return x + noise * rng.standard_normal(x.shape) if noise else x

    return _point_set("swiss_roll", sampler, seed, n_train, n_val, n_test, (-1.5, 1.5, -1.5, 1.5))


def moons(*, seed: int = 0, n_train: int = 1000, n_val: int = 200, n_test: int | None = 200,
          noise: float = 0.1) -> Dataset:
    """Two interleaving half circles, as scikit-learn's ``make_moons``: class 0 is
    (cos t, sin t), class 1 is (1 - cos t, 1 - sin t - 0.5), plus Gaussian noise of standard
    deviation ``noise``.  Unlike ``make_moons`` (evenly spaced t), t ~ U(0, pi) independently for
    every point, so different splits hold different points even without noise.
    ``n_*`` are totals across the two classes (balanced).  Domain [-1.5, 2.5] x [-1, 1.5].
    """
    noise = _noise("noise", noise)

    def sampler(rng: np.random.Generator, k: int, m: int) -> np.ndarray:
        t = rng.uniform(0.0, math.pi, m)
        x = (np.stack([np.cos(t), np.sin(t)], axis=1) if k == 0
             else np.stack([1.0 - np.cos(t), 1.0 - np.sin(t) - 0.5], axis=1))
        return x + noise * rng.standard_normal(x.shape) if noise else x

    return _point_set("moons", sampler, seed, n_train, n_val, n_test, (-1.5, 2.5, -1.0, 1.5))


def circles(*, seed: int = 0, n_train: int = 1000, n_val: int = 200, n_test: int | None = 200,
            noise: float = 0.05, factor: float = 0.5) -> Dataset:
    """Two concentric circles, as scikit-learn's ``make_circles``: class 0 on the unit circle,
    class 1 on the circle of radius ``factor`` (0 < factor < 1), plus Gaussian noise of standard
    deviation ``noise``.  Unlike ``make_circles`` (evenly spaced angles) the angle is U(0, 2 pi)
    for every point.  ``n_*`` are totals across the two classes (balanced).  Domain [-1.5, 1.5]^2.
    """
    noise = _noise("noise", noise)
    factor = nonnegative_float("factor", factor)
    if not 0.0 < factor < 1.0:
        raise ValueError(f"factor must be in (0, 1), got {factor!r}")

    def sampler(rng: np.random.Generator, k: int, m: int) -> np.ndarray:
        phi = rng.uniform(0.0, 2.0 * math.pi, m)
        r = 1.0 if k == 0 else factor
        x = np.stack([r * np.cos(phi), r * np.sin(phi)], axis=1)
        return x + noise * rng.standard_normal(x.shape) if noise else x

    return _point_set("circles", sampler, seed, n_train, n_val, n_test, (-1.5, 1.5, -1.5, 1.5))


__all__ = ["peaks_function", "peaks_grid", "peaks", "ellipses", "swiss_roll", "moons", "circles"]
