"""Hamiltonian two-stream dynamics: dy/dt = σ(Kz + b_y), dz/dt = −σ(Kᵀy + b_z)."""

from __future__ import annotations

import torch.nn.functional as F

from .. import _checks
from .base import Dynamics


class Hamiltonian(Dynamics):
    """Two-stream dynamics (seed 003; Haber & Ruthotto 2017, Chang et al. 2018):

        dy/dt = σ(K z + b_y),    dz/dt = −σ(Kᵀ y + b_z),    K ∈ R^{w_y × w_z}.

    y and z may differ in width (``width`` and ``width_z``), hence one bias per stream.  For
    σ = identity and zero biases ‖y‖² + ‖z‖² is conserved; the Jacobian [[0, K], [−Kᵀ, 0]] has
    imaginary eigenvalues, and the staggered Verlet scheme keeps the features bounded for long
    times.  ``forward((y, z), *theta)`` returns the pair
    of time derivatives; ``dy`` and ``dz`` are the stream-wise parts Verlet needs.
    """

    two_stream = True

    def __init__(self, width: int, width_z: int | None = None, *, nt: int = 1,
                 activation: str = "tanh", normalization: str | None = None):
        super().__init__(width, nt=nt, activation=activation, normalization=normalization)
        self.width_z = width if width_z is None else _checks.positive_int("width_z", width_z)
        self._control_parameter("K", width, self.width_z, fan_in=self.width_z)
        self._control_parameter("b_y", width)
        self._control_parameter("b_z", self.width_z)

    def dy(self, z, K, b_y, b_z):
        """dy/dt = σ(K z + b_y)."""
        if self.normalization is None:
            return self.activation(F.linear(z, K, b_y))
        return self._pre_activation(F.linear(z, K), b_y)

    def dz(self, y, K, b_y, b_z):
        """dz/dt = −σ(Kᵀ y + b_z)."""
        if self.normalization is None:
            return -self.activation(F.linear(y, K.transpose(-1, -2), b_z))
        return -self._pre_activation(F.linear(y, K.transpose(-1, -2)), b_z)

    def forward(self, state, K, b_y, b_z):
        y, z = state
        return (self.dy(z, K, b_y, b_z), self.dz(y, K, b_y, b_z))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", width_z={self.width_z}"
