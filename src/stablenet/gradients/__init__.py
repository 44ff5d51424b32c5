"""Gradient modes: what backpropagation through an ODE block computes and stores.

==============  ======================================  ==================  ====================
mode            gradient                                activation memory   integrators
==============  ======================================  ==================  ====================
``autograd``    exact, of the discrete network          O(N · stages)       all
``checkpoint``  exact (recomputes segments of k steps)  O(N/k + k·stages)   all
``reversible``  exact up to reconstruction round-off    O(1) in N           verlet, leapfrog
``adjoint``     continuous adjoint, O(h^p) from exact   O(1) in N           one-stream; RK
==============  ======================================  ==================  ====================

Choose one per block: ``ODEBlock(..., gradient="reversible")`` or an instance with options,
``ODEBlock(..., gradient=Adjoint(method="rk4", steps=128))``; in a config file the block keys
``gradient``, ``adjoint_method``, ``adjoint_steps``, ``checkpoint_segment``.  docs/gradients.md
compares them with measured numbers.
"""

from .adjoint import Adjoint
from .base import Autograd, GradientMode, available, get_gradient_mode
from .checkpointing import Checkpoint
from .reversible import Reversible

__all__ = ["GradientMode", "Autograd", "Checkpoint", "Reversible", "Adjoint", "available",
           "get_gradient_mode", "make_gradient_mode"]


def make_gradient_mode(name: str, *, adjoint_method: str | None = None,
                       adjoint_steps: int | None = None,
                       checkpoint_segment: int | None = None) -> GradientMode:
    """A mode from a name and the options of a config file (options of other modes refused)."""
    given = {"adjoint_method": adjoint_method, "adjoint_steps": adjoint_steps,
             "checkpoint_segment": checkpoint_segment}
    allowed = {"adjoint": ("adjoint_method", "adjoint_steps"),
               "checkpoint": ("checkpoint_segment",)}.get(name, ())
    for key, value in given.items():
        if value is not None and key not in allowed:
            raise ValueError(f"{key} applies to gradient='{key.split('_')[0]}' only, "
                             f"got it with gradient={name!r}")
    if name == "adjoint":
        return Adjoint(method=adjoint_method, steps=adjoint_steps)
    if name == "checkpoint":
        return Checkpoint(segment=checkpoint_segment)
    return get_gradient_mode(name)
