"""Helpers shared by the test files: ``from helpers import ...`` (pytest's default 'prepend' import
mode puts tests/ on sys.path, as for tests/_resume.py, because tests/ has no __init__.py).

- loglog_slope / convergence_order: least-squares slope of log(y) against log(x)
- rel_error: ‖a − b‖ / ‖b‖
- gradient_probe: ∂L/∂(weights, input) of a block for L = Σ sin(Y_N)·w, w a fixed weighting
- SMALL, small_raw, small_config: the tiny peaks training config of the training tests
- raises_one_line, assert_one_line, assert_cli_error: ConfigError / CLI errors are one clear line
- assert_png: a figure file decodes to a non-trivial image that is not one flat colour
"""

from __future__ import annotations

import copy
import math
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch


# -- numbers ---------------------------------------------------------------------------------------
def loglog_slope(xs, ys) -> float:
    """Least-squares slope of log(ys) against log(xs): the p in ys ≈ C·xs^p."""
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def convergence_order(steps, errors) -> float:
    """Observed order p of errors ≈ C·N^(−p) over step counts N (= slope against h = T/N)."""
    return -loglog_slope(steps, errors)


def rel_error(a, b) -> float:
    """‖a − b‖ / ‖b‖ (tensors or numbers)."""
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    return float((a - b).norm() / b.norm())


# -- gradients -------------------------------------------------------------------------------------
def gradient_probe(block, x, mode=None, *, return_output=False):
    """∂L/∂(block weights, x) flattened into one vector, for L = Σ sin(Y_N) ⊙ w with the fixed
    weighting w = linspace(−1, 1) (so every output entry matters, each differently).

    ``mode`` (a name or a GradientMode) is set as ``block.gradient`` first unless None.  A
    two-stream output is probed through its first stream.  With ``return_output`` the detached
    output comes first: ``(out, grads)``."""
    if mode is not None:
        block.gradient = mode
    block.zero_grad()
    x = x.detach().clone().requires_grad_()
    out = block(x)
    out = out[0] if isinstance(out, tuple) else out
    w = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape)
    (torch.sin(out) * w).sum().backward()
    grads = torch.cat([p.grad.flatten() for p in block.parameters()] + [x.grad.flatten()])
    return (out.detach(), grads) if return_output else grads


# -- the small training config ---------------------------------------------------------------------
SMALL = {
    "seed": 3,
    "data": {"name": "peaks", "options": {"n_train_per_class": 40, "n_val_per_class": 20, "n_test_per_class": 10}},
    "model": {"opening": "duplicate",
              "blocks": [{"dynamics": "hamiltonian", "width": 4, "T": 2.0, "steps": 4, "method": "verlet"}]},
    "training": {"epochs": 3, "batch_size": 50, "lr": 0.02, "smoothness": 1e-3, "threads": 1},
}
REMOVE = object()  # small_raw({"training.smoothness": REMOVE}) deletes the key


def set_dotted(raw: dict, changes: dict) -> dict:
    """Apply {"a.b.0.c": value} changes in place (integers index lists; REMOVE deletes)."""
    for path, value in changes.items():
        *parents, last = path.split(".")
        node = raw
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        if value is REMOVE:
            node.pop(last, None)
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return raw


def small_raw(changes: dict | None = None, base: dict = SMALL, **training) -> dict:
    """A deep copy of SMALL (or ``base``) with dotted-path ``changes`` and training.* keywords."""
    raw = copy.deepcopy(base)
    set_dotted(raw, changes or {})
    raw["training"].update(training)
    return raw


def small_config(changes: dict | None = None, base: dict = SMALL, **training):
    """small_raw(...) parsed into a Config."""
    from stablenet.app.config import parse_config

    return parse_config(small_raw(changes, base, **training))


# -- errors ----------------------------------------------------------------------------------------
def assert_one_line(message: str, *fragments: str) -> str:
    """``message`` is one line and contains every fragment (in any order)."""
    message = str(message)
    assert "\n" not in message.strip(), f"not one line: {message!r}"
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


@contextmanager
def raises_one_line(exc_type, *fragments: str):
    """pytest.raises(exc_type) whose message is one line containing every fragment."""
    with pytest.raises(exc_type) as info:
        yield info
    assert_one_line(str(info.value), *fragments)


def assert_cli_error(stderr: str, *fragments: str, prefix: str = "stablenet: error: ") -> str:
    """The CLI's stderr is exactly one line ``stablenet: error: ...`` containing every fragment."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}: {stderr!r}"
    assert lines[0].startswith(prefix), lines[0]
    return assert_one_line(lines[0], *fragments)


# -- figures ---------------------------------------------------------------------------------------
def assert_png(path, min_side: int = 50):
    """``path`` is a PNG that decodes, at least min_side pixels each way, not one flat colour.
    Returns the decoded array (height, width, channels) with values in [0, 1]."""
    import matplotlib.image as mpimg
    import numpy as np

    path = Path(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    image = np.asarray(mpimg.imread(path))
    assert image.ndim in (2, 3), (path, image.shape)
    assert image.shape[0] >= min_side and image.shape[1] >= min_side, (path, image.shape)
    pixels = image.reshape(image.shape[0] * image.shape[1], -1)
    assert np.isfinite(pixels).all(), path
    assert (pixels != pixels[0]).any(axis=1).sum() > 0.001 * len(pixels), f"{path} is one flat colour"
    return image


# -- experiments -----------------------------------------------------------------------------------
def run_on_other_threads(run, out, **kwargs):
    """``run(out, **kwargs)`` started with a thread count other than the current one; returns
    (results, the count it started with, the count it left), restoring the current count after."""
    before = torch.get_num_threads()
    probe = 3 if before != 3 else 2
    torch.set_num_threads(probe)
    try:
        results = run(out, **kwargs)
        return results, probe, torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def numpy_step(method: str, f, Y, h):
    """One forward Euler or classical RK4 step of Y' = f(Y) in numpy: an independent reference
    for the experiments' integrators."""
    if method == "euler":
        return Y + h * f(Y)
    k1 = f(Y)
    k2 = f(Y + h / 2 * k1)
    k3 = f(Y + h / 2 * k2)
    return Y + h / 6 * (k1 + 2 * k2 + 2 * k3 + f(Y + h * k3))


def expected_verdict(values, kind, reference, margin):
    """Issue 17's verdict rule written out again, independently of stablenet.app.experiments.verdict
    (the experiment tests recompute every claim record with it): mean ± 2 standard errors on the
    claimed side / the other side / neither; (mean, std, sem, interval, verdict)."""
    x = np.asarray(values, dtype=np.float64)
    mean, std = x.mean(), x.std(ddof=1)
    sem = std / math.sqrt(len(x))
    lo, hi = mean - 2 * sem, mean + 2 * sem
    eps = 1e-9 * max(1.0, abs(reference), margin or 0.0)
    if kind == "greater":
        verdict = "supported" if lo > reference + eps else "refuted" if hi < reference - eps else "inconclusive"
    elif kind == "smaller":
        verdict = "supported" if hi < reference - eps else "refuted" if lo > reference + eps else "inconclusive"
    else:
        inside = lo >= reference - margin - eps and hi <= reference + margin + eps
        outside = lo > reference + margin + eps or hi < reference - margin - eps
        verdict = "supported" if inside else "refuted" if outside else "inconclusive"
    return mean, std, sem, [lo, hi], verdict
