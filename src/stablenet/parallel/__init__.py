"""Layer-parallel forward and backward propagation: MGRIT across the time steps of a block.

===============================  ============================================================
``mgrit_forward(block, y0, …)``  Y_N (and this rank's states) by MGRIT, residual history
``mgrit_adjoint(block, …)``      ∂L/∂Y_0, ∂L/∂θ by MGRIT on the discrete adjoint
``MGRIT(…)``                     the gradient mode ``"mgrit"``: ``block.gradient = MGRIT(m=4)``
``MGRITOptions``                 m, max_levels, relax, max_iter, rtol, atol, fmg, min_coarse
``make_parallel_model(model…)``  set the MGRIT mode on every block of a model (trainer hook)
``cost``                         critical-path cost model and predicted speedups
===============================  ============================================================

Importing this package registers ``gradient="mgrit"``.  docs/parallel.md explains when
layer-parallelism pays off and how to launch it with torchrun.
"""

from __future__ import annotations

from . import cost
from .comm import SerialComm, TorchComm
from .gradient import MGRIT
from .mgrit import (AdjointResult, ForwardResult, MGRITOptions, SolveStats, hierarchy, mgrit_adjoint,
                    mgrit_forward, partition)

__all__ = ["MGRIT", "MGRITOptions", "mgrit_forward", "mgrit_adjoint", "ForwardResult",
           "AdjointResult", "SolveStats", "SerialComm", "TorchComm", "hierarchy", "partition",
           "make_parallel_model", "cost"]


def make_parallel_model(model, *, distributed: bool = False, group=None, **options):
    """Give every :class:`~stablenet.block.ODEBlock` in ``model`` the MGRIT gradient mode.

    One mode instance per block (each keeps its own residual history).  ``options`` are those
    of :class:`MGRITOptions`; ``distributed=True`` splits every block's time steps over the
    ranks of ``group`` (the world group by default).  Returns ``model`` for chaining.  This is
    the hook for a trainer's ``[parallel]`` config section.
    """
    from ..block import ODEBlock

    blocks = [m for m in model.modules() if isinstance(m, ODEBlock)]
    if not blocks:
        raise ValueError(f"model must contain at least one ODEBlock, got {type(model).__name__} without one")
    for block in blocks:
        block.gradient = MGRIT(distributed=distributed, group=group, **options)
    return model
