"""Gradient modes: what backpropagation through an ODE block computes and stores.

==============  ======================================  ==================  ====================
mode            gradient                                activation memory   integrators
==============  ======================================  ==================  ====================
``autograd``    exact, of the discrete network          O(N · stages)       all
``checkpoint``  exact (recomputes segments of k steps)  O(N/k + k·stages)   all
``reversible``  exact up to reconstruction round-off    O(1) in N           verlet, leapfrog
``adjoint``     continuous adjoint, O(h^p) from exact   O(1) in N           one-stream; RK
``mgrit``       exact to the MGRIT solver tolerance     this rank's states  RK, verlet
==============  ======================================  ==================  ====================

Choose one per block: ``ODEBlock(..., gradient="reversible")`` or an instance with options,
``ODEBlock(..., gradient=Adjoint(method="rk4", steps=128))``; in a config file the block keys
``gradient``, ``adjoint_method``, ``adjoint_steps``, ``checkpoint_segment``.  docs/gradients.md
compares them with measured numbers.  ``mgrit`` (layer-parallel, :mod:`stablenet.parallel`) is a
lazy registry entry: its package is imported when a block first asks for it.

What a mode may use of its block is the protocol :class:`GradientBlock` (``protocol.py``).
"""

import inspect

from .adjoint import Adjoint
from .base import (Autograd, GradientMode, available, get_gradient_mode, mode_class, register, register_lazy,
                   require_autograd)
from .checkpointing import Checkpoint
from .protocol import BlockDynamics, GradientBlock
from .reversible import Reversible

__all__ = ["GradientMode", "Autograd", "Checkpoint", "Reversible", "Adjoint", "available",
           "get_gradient_mode", "make_gradient_mode", "option_keys", "mode_class", "register", "register_lazy",
           "require_autograd", "GradientBlock", "BlockDynamics"]


def option_keys(name: str) -> dict[str, str]:
    """The flat option keys of gradient mode ``name``, as a config file writes them, and the
    constructor parameter each one sets: ``<name>_<parameter>`` for every keyword parameter of
    the mode's class (``adjoint_steps`` → ``steps``).  A new mode's options need no table here."""
    if name not in available():
        get_gradient_mode(name)  # raises the usual error for an unknown name
    params = inspect.signature(mode_class(name)).parameters.values()
    return {f"{name}_{p.name}": p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def make_gradient_mode(name: str, **options) -> GradientMode:
    """A mode from its name and flat options (``make_gradient_mode("adjoint", adjoint_steps=64)``;
    ``None`` leaves an option at its default).  An option of another mode is refused, naming it."""
    given = {key: value for key, value in options.items() if value is not None}
    for key in given:
        if not key.startswith(f"{name}_"):
            owner = next((m for m in available() if key.startswith(f"{m}_")), key.split("_")[0])
            raise ValueError(f"{key} applies to gradient={owner!r} only, got it with gradient={name!r}")
    keys = option_keys(name)
    for key in given:
        if key not in keys:
            raise ValueError(f"{key} is not an option of gradient={name!r}; its options: {sorted(keys) or 'none'}")
    return mode_class(name)(**{keys[key]: value for key, value in given.items()})
