"""Layer-parallel forward and backward propagation: MGRIT across the time steps of a block.

===============================  ============================================================
``mgrit_forward(block, y0, …)``  Y_N (and this rank's states) by MGRIT, residual history
``mgrit_adjoint(block, …)``      ∂L/∂Y_0, ∂L/∂θ by MGRIT on the discrete adjoint
``MGRIT(…)``                     the gradient mode ``"mgrit"``: ``block.gradient = MGRIT(m=4)``
``MGRITOptions``                 m, max_levels, relax, max_iter, rtol, atol, fmg, min_coarse
``make_parallel_model(model…)``  set the MGRIT mode on every block of a model
``ParallelContext``              the trainer's layer × data process grid; ``apply`` = the above
``cost``                         critical-path cost model and predicted speedups
===============================  ============================================================

Importing this package registers ``gradient="mgrit"``.  docs/parallel.md explains when
layer-parallelism pays off and how to launch it with torchrun.
"""

from __future__ import annotations

from . import cost
from .comm import SerialComm, TorchComm
from .context import ParallelContext, make_parallel_model
from .gradient import MGRIT
from .mgrit import (AdjointResult, ForwardResult, MGRITOptions, SolveStats, hierarchy, mgrit_adjoint,
                    mgrit_forward, partition)

__all__ = ["MGRIT", "MGRITOptions", "mgrit_forward", "mgrit_adjoint", "ForwardResult",
           "AdjointResult", "SolveStats", "SerialComm", "TorchComm", "hierarchy", "partition",
           "make_parallel_model", "ParallelContext", "cost"]

