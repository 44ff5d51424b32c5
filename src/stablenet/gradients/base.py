"""The gradient-mode interface, the registry that finds modes by name, and the autograd-only rule.

A gradient mode decides how a block (:class:`~stablenet.gradients.protocol.GradientBlock`, e.g.
an :class:`~stablenet.block.ODEBlock`) computes its final state when a gradient will be asked for,
and so what backpropagation through the block computes and stores.  The block hands the mode
itself, the initial state (a tensor or a (y, z) pair) and the number of steps; the mode returns
the final state with an autograd graph attached.  Without gradients (``torch.no_grad()``) or with
``return_states=True`` the block steps plainly and the mode is not consulted.

Modes defined above this package (MGRIT, in :mod:`stablenet.parallel`) have a *lazy* registry
entry, ``name → "module:Class"``: ``gradient="mgrit"`` imports that module on first use, so
``import stablenet`` loads none of it.
"""

from __future__ import annotations

import importlib
from typing import ClassVar

from ..integrators import Integrator, solve
from ..state import device_of
from .protocol import BlockDynamics, GradientBlock


class GradientMode:
    """Base class: ``solve(block, state, steps)`` → final state, differentiable.

    Subclasses set ``name`` (and ``exact``) and may refuse dynamics/integrator pairs in
    :meth:`check` (called when a block is built or its mode changes).  ``solve`` may use of the
    block only what :class:`~stablenet.gradients.protocol.GradientBlock` lists.
    """

    name: ClassVar[str] = ""
    #: whether the gradient is that of the discrete network the block computes, to round-off
    #: (``adjoint``: the continuous gradient, O(h^p) away; ``mgrit``: to the solver tolerance)
    exact: ClassVar[bool] = True

    def check(self, dynamics: BlockDynamics, integrator: Integrator) -> None:
        """Raise ``ValueError`` if this mode cannot differentiate this pairing."""

    def solve(self, block: GradientBlock, state, steps: int):
        """Y_N from ``state`` = Y_0 by ``steps`` steps of the block's integrator, differentiable
        w.r.t. the state and the block's weights the way this mode computes gradients.  Every mode
        implements it."""
        raise NotImplementedError

    def options(self) -> dict:
        """The mode's settings (for ``repr`` and run records)."""
        return {}

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}({opts})"


class Autograd(GradientMode):
    """Backpropagation through every step: the exact gradient of the discrete network.

    "Discretize, then differentiate": autograd records every stage of every step, so the
    gradient is that of the computed Y_N to round-off, and the activation memory grows linearly
    with the number of steps N (for RK4, four stage evaluations per step are stored).
    """

    name = "autograd"

    def solve(self, block, state, steps):
        f = block.rhs(*block.stage_weights(steps, device_of(state)))
        return solve(block.integrator, f, state, block.T / steps, steps)


def require_autograd(gradient: str | GradientMode, message: str) -> None:
    """The rule "only ``gradient="autograd"`` here", in one place.

    Every other mode is a custom ``torch.autograd.Function`` whose backward runs outside the
    graph autograd recorded: it cannot be differentiated again (Newton-type curvature products),
    recomputes outside ``torch.autocast`` (mixed precision), and is replaced wholesale by
    layer-parallel training.  Raises ``ValueError(message)`` for any other mode, ``{gradient}``
    in ``message`` standing for the refused mode's name (quoted).
    """
    name = gradient if isinstance(gradient, str) else gradient.name
    if name != Autograd.name:
        raise ValueError(message.replace("{gradient}", repr(name)))


# -- the registry -------------------------------------------------------------------------------
_REGISTRY: dict[str, type[GradientMode] | str] = {}


def register(cls: type[GradientMode]) -> type[GradientMode]:
    """Class decorator: make a mode available by its ``name``."""
    if not cls.name:
        raise ValueError(f"gradient mode class {cls.__name__} has no name")
    _REGISTRY[cls.name] = cls
    return cls


def register_lazy(name: str, target: str) -> None:
    """Make a mode available by ``name`` before its module is imported: ``target`` is
    ``"package.module:Class"``, imported on first use (:func:`mode_class`)."""
    if ":" not in target:
        raise ValueError(f"target must be 'module:Class', got {target!r}")
    _REGISTRY.setdefault(name, target)


register(Autograd)
register_lazy("mgrit", "stablenet.parallel.gradient:MGRIT")


def available() -> list[str]:
    """Names of the gradient modes (lazy entries included, none imported)."""
    return sorted(_REGISTRY)


def mode_class(name: str) -> type[GradientMode]:
    """The class registered as ``name``, importing its module first for a lazy entry."""
    entry = _REGISTRY[name]
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        cls = getattr(importlib.import_module(module), attr)
        if not (isinstance(cls, type) and issubclass(cls, GradientMode) and cls.name == name):
            raise TypeError(f"gradient mode {name!r}: {entry} is not a GradientMode named {name!r}")
        _REGISTRY[name] = entry = cls
    return entry


def get_gradient_mode(mode: str | GradientMode) -> GradientMode:
    """A mode from its name (default options) or an instance (returned as is)."""
    if isinstance(mode, GradientMode):
        return mode
    if not isinstance(mode, str) or mode not in _REGISTRY:
        raise ValueError(f"gradient must be one of {available()} or a GradientMode instance, got {mode!r}")
    return mode_class(mode)()
