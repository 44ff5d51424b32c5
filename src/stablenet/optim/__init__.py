"""Second-order training: variable projection and Newton-type optimizers (see docs/optimizers.md).

* :class:`VarPro` eliminates the linear classifier (W, μ) by an inner Newton solve and gives the
  reduced objective Φ(θ) whose autograd gradient is the reduced gradient.
* :class:`GaussNewtonCG` (Gauss–Newton–Krylov) and :class:`NewtonCG` (Hessian-free Newton with
  negative-curvature detection) take inexact Newton steps in θ with an Armijo line search, on the
  full batch or with sub-sampled curvature, optionally on VarPro's reduced objective.
* :class:`BlockCoordinateDescent` alternates the inner solve and a Newton-type θ step.

Modules: ``newton`` (the optimizers), ``curvature`` (Gauss–Newton and Hessian products),
``cg`` (conjugate gradients), ``line_search`` (Armijo backtracking), ``varpro``,
``block_coordinate``.
"""

from .block_coordinate import BlockCoordinateDescent, BlockStepInfo
from .cg import CGResult, conjugate_gradient
from .newton import (GaussNewtonCG, NewtonCG, NewtonTypeOptimizer, QuadraticModel, StepInfo,
                     check_twice_differentiable, network_parameters)
from .varpro import InnerResult, VarPro, score_gradient, score_hessian

__all__ = [
    "VarPro", "InnerResult", "score_gradient", "score_hessian",
    "GaussNewtonCG", "NewtonCG", "NewtonTypeOptimizer", "BlockCoordinateDescent", "BlockStepInfo",
    "StepInfo", "QuadraticModel", "CGResult", "conjugate_gradient", "network_parameters",
    "check_twice_differentiable",
]
