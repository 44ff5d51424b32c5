"""Conjugate gradients on flat vectors: the one CG of the optimizers (the Newton-type θ steps and
VarPro's inner Hessian solves)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .. import _checks


@dataclass
class CGResult:
    """Outcome of :func:`conjugate_gradient`.

    Attributes:
        x: the approximate solution (flat).
        iterations: operator products used.
        relative_residual: ‖b − A x‖ / ‖b‖ (recurrence residual).
        converged: relative_residual ≤ rtol.
        negative_curvature: CG stopped at a direction p with pᵀAp ≤ 0.
    """

    x: torch.Tensor
    iterations: int
    relative_residual: float
    converged: bool
    negative_curvature: bool


def conjugate_gradient(matvec: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, *, rtol: float,
                       max_iter: int, preconditioner: Callable[[torch.Tensor], torch.Tensor] | None = None
                       ) -> CGResult:
    """(Preconditioned) conjugate gradients for A x = b from x₀ = 0, with negative-curvature exit.

    Stops when ‖r‖ ≤ rtol‖b‖, after ``max_iter`` products, or at a search direction p with
    pᵀAp ≤ 0.  In the last case the iterate so far is returned, or — when that happens in the first
    iteration — the (preconditioned) right-hand side M b: for b = −g that is the steepest-descent
    direction, so the result is always a descent direction of the quadratic model (Steihaug-type
    truncation without a trust region).  ``preconditioner`` applies M ≈ A⁻¹ (symmetric positive
    definite).  Cost: ``iterations`` products with A (and M), O(n) vector work each.
    """
    rtol = _checks.positive_float("rtol", rtol)
    max_iter = _checks.positive_int("max_iter", max_iter)
    precond = preconditioner or (lambda r: r)
    x = torch.zeros_like(b)
    bnorm = float(torch.linalg.vector_norm(b))
    if bnorm == 0.0:
        return CGResult(x, 0, 0.0, True, False)
    r = b.clone()
    z = precond(r)
    p = z.clone()
    rz = torch.dot(r, z)
    rel = 1.0
    for k in range(max_iter):
        ap = matvec(p)
        curvature = torch.dot(p, ap)
        if not float(curvature) > 0:
            if k == 0:
                x = p
            return CGResult(x, k + 1, rel, False, True)
        alpha = rz / curvature
        x = x + alpha * p
        r = r - alpha * ap
        rel = float(torch.linalg.vector_norm(r)) / bnorm
        if rel <= rtol:
            return CGResult(x, k + 1, rel, True, False)
        z = precond(r)
        rz_new = torch.dot(r, z)
        p = z + (rz_new / rz) * p
        rz = rz_new
    return CGResult(x, max_iter, rel, False, False)
