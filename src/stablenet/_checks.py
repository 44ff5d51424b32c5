"""Argument checks shared by the public API.

Every failure names the parameter, the value it got and what was expected, so that a user (or the
CLI, which prints the message as one line) can fix the call without reading a traceback.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch


class ArgumentError(ValueError):
    """A ``ValueError`` that knows which argument it is about (``argument``: a parameter or spec
    field name such as ``"method"``), so that a caller can report it under its own name for that
    argument (the configuration file: ``model.blocks.0.method``).  The message is the usual one
    line that names the argument, the value and what was expected."""

    def __init__(self, argument: str, message: str):
        super().__init__(message)
        self.argument = argument


def listing(values, conjunction: str = "or") -> str:
    """``'a', 'b' or 'c'``: the values' reprs for a message (``conjunction`` before the last)."""
    names = [repr(v) for v in values]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {conjunction} {names[-1]}"


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


def tensor(name: str, value: object) -> torch.Tensor:
    """Return ``value`` if it is a torch.Tensor, else raise ``TypeError``."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def compiling() -> bool:
    """Whether this code is being traced by ``torch.compile`` (TorchDynamo).

    Checks that read tensor *values* (:func:`finite`) are skipped while tracing: turning a
    tensor into a Python bool (``Tensor.item()``) is a data-dependent branch that breaks the
    graph (an error under ``fullgraph=True``), and a compiled region cannot raise on data.
    Checks of metadata (type, dtype, shape, device) are static: they run while tracing and
    become guards of the compiled code.  See docs/compile.md."""
    return torch.compiler.is_compiling()


def finite(name: str, y: torch.Tensor, hint: str = "") -> None:
    """Check that every entry of ``y`` is finite (one device synchronization); ``hint`` is
    appended to the message.  Skipped under ``torch.compile`` (:func:`compiling`)."""
    if compiling():
        return
    if not bool(torch.isfinite(y).all()):
        bad = int((~torch.isfinite(y)).sum())
        raise ValueError(f"{name} must be finite, got {bad} non-finite entries (NaN or Inf){hint}")


def finite_state(name: str, y: object, width: int | None = None, dim: int = -1) -> None:
    """Check that ``y`` is a floating tensor with ``width`` features along ``dim`` (the last one
    for dense states (batch, ..., width), 1 for images (batch, channels, H, W)), all finite."""
    tensor(name, y)
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
    finite(name, y)


def same_shape(name: str, x: torch.Tensor, ref: torch.Tensor, ref_name: str, *,
               except_dim: int | None = None, hint: str = "") -> None:
    """Check that ``x`` has the shape of ``ref`` (``ref_name`` says what ref is), or with
    ``except_dim`` the same sizes as ``ref`` along every other dimension.

    Raises ``ValueError`` "{name}: shape (…), expected (…) (the shape of {ref_name}){hint}"."""
    expected, of = list(ref.shape), f"the shape of {ref_name}"
    if except_dim is not None:
        of = f"{ref_name}'s sizes except along dimension {except_dim}"
        if x.dim() == ref.dim():
            expected[except_dim] = x.shape[except_dim]
    if list(x.shape) != expected:
        raise ValueError(f"{name}: shape {tuple(x.shape)}, expected {tuple(expected)} ({of}){hint}")


def autocast_enabled(device: torch.device) -> bool:
    """Whether ``torch.autocast`` (mixed precision) is active for the device's type."""
    return torch.amp.is_autocast_available(device.type) and torch.is_autocast_enabled(device.type)


def same_device_and_dtype(name: str, x: torch.Tensor, ref: torch.Tensor, ref_name: str,
                          fix: str = "") -> None:
    """Check that ``x`` is on ``ref``'s device and has ``ref``'s dtype (``ref_name`` says what ref
    is).  Under ``torch.autocast`` for x's device type the dtypes may differ: mixed precision
    computes in a lower precision on purpose, and torch's type promotion handles the mix.

    Raises ``ValueError`` (device) or ``TypeError`` (dtype) "{name}: dtype {got}, expected
    {expected} (the dtype of {ref_name}){fix}", where ``fix`` may use the placeholders {got} and {expected}
    (dtypes as ``torch.float64``, devices quoted as ``'cuda:0'``).  Only metadata is compared: no
    device synchronization.
    """
    if x.device != ref.device:
        got, expected = repr(str(x.device)), repr(str(ref.device))
        raise ValueError(f"{name}: device {x.device}, expected {ref.device} (the device of {ref_name})"
                         + fix.format(got=got, expected=expected))
    if x.dtype != ref.dtype and not autocast_enabled(x.device):
        raise TypeError(f"{name}: dtype {x.dtype}, expected {ref.dtype} (the dtype of {ref_name})"
                        + fix.format(got=x.dtype, expected=ref.dtype))
