"""Antisymmetric dynamics: σ(½(K − Kᵀ − γI) Y + b), stable by construction."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from .. import _checks
from .layers import SingleLayer


class AntisymmetricKernel(nn.Module):
    """The parametrization K ↦ ½(K − Kᵀ − γI) of a stack of square matrices (…, w, w).

    Its eigenvalues are −γ/2 + i·ℝ: purely imaginary for γ = 0, shifted into the left half-plane
    by the damping γ ≥ 0.
    """

    def __init__(self, gamma: float = 0.0):
        super().__init__()
        self.gamma = _checks.nonnegative_float("gamma", gamma)

    def forward(self, K: torch.Tensor) -> torch.Tensor:
        A = 0.5 * (K - K.transpose(-1, -2))
        if self.gamma:  # − ½γI, on the diagonal only (no w×w identity is allocated)
            A.diagonal(dim1=-2, dim2=-1).sub_(0.5 * self.gamma)
        return A

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}"


class Antisymmetric(SingleLayer):
    """f(Y, θ) = σ(½(K − Kᵀ − γI) Y + b), γ ≥ 0 (seed 003; Haber & Ruthotto 2017).

    The constraint is a torch parametrization of the stored K (``self.K`` returns the constrained
    matrix; the free parameter is ``self.parametrizations.K.original``), so the dynamics is a
    single layer to every integrator, to interpolation and to prolongation.  The Jacobian
    diag(σ') A has eigenvalues near the imaginary axis: stable continuous dynamics, for which
    forward Euler is unstable for every h (pair it with RK4 or AB3; leapfrog would read f as an
    acceleration, Y'' = f(Y), whose linearization Y'' = AY grows for imaginary eigenvalues of A).
    """

    def __init__(self, width: int, *, gamma: float = 0.0, nt: int = 1, activation: str = "tanh",
                 normalization: str | None = None):
        super().__init__(width, nt=nt, activation=activation, normalization=normalization)
        parametrize.register_parametrization(self, "K", AntisymmetricKernel(gamma))

    @property
    def gamma(self) -> float:
        """The damping γ ≥ 0 of K ↦ ½(K − Kᵀ − γI): the eigenvalues lie on Re λ = −γ/2."""
        return self.parametrizations.K[0].gamma
