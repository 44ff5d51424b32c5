"""Argument checks shared by the public API.

Every failure names the parameter, the value it got and what was expected, so that a user (or the
CLI, which prints the message as one line) can fix the call without reading a traceback.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch


def positive_int(name: str, value: object) -> int:
    """Return ``value`` as an int if it is an integer >= 1, else raise ``ValueError``/``TypeError``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer >= 1, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def positive_float(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a finite number > 0, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def nonnegative_float(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a finite number >= 0, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def choice(name: str, value: object, options) -> str:
    """Return ``value`` if it is one of ``options`` (strings)."""
    if value not in options:
        raise ValueError(f"{name} must be one of {sorted(options)}, got {value!r}")
    return value  # type: ignore[return-value]


def finite_state(name: str, y: object, width: int | None = None, dim: int = -1) -> None:
    """Check that ``y`` is a floating tensor with ``width`` features along ``dim`` (the last one
    for dense states (batch, ..., width), 1 for images (batch, channels, H, W)), all finite."""
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(y).__name__}")
    if not y.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {y.dtype}")
    if y.dim() == 0:
        raise ValueError(f"{name} must have at least one dimension (batch, ..., features), got a scalar")
    if width is not None:
        got = y.shape[dim] if -y.dim() <= dim < y.dim() else None
        if got != width:
            where = "" if dim == -1 else f" along dimension {dim}"
            raise ValueError(f"{name} has feature width {got}{where} (shape {tuple(y.shape)}), "
                             f"expected width {width}")
    if not bool(torch.isfinite(y).all()):
        bad = int((~torch.isfinite(y)).sum())
        raise ValueError(f"{name} must be finite, got {bad} non-finite entries (NaN or Inf)")
