"""Hamiltonian two-stream dynamics: dy/dt = σ(Kz + b_y), dz/dt = −σ(Kᵀy + b_z)."""

from __future__ import annotations

import torch.nn.functional as F

from .. import _checks
from .base import Dynamics, addmm_into


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

    def vjp(self, arg, K, b_y, b_z, *, stream=None):
        """``dy``/``dz`` with their explicit VJP (:meth:`Dynamics.vjp`; ``stream`` "dy" or "dz").

        With a = K z + b_y, s = σ(a), u = σ'(a) ⊙ v:  J_zᵀv = Kᵀu, ∂/∂K = u zᵀ, ∂/∂b_y = u,
        summed over the batch; for dz = −σ(Kᵀy + b_z) the same with K ↔ Kᵀ and a minus sign.
        """
        pull = self._activation_pullback(arg)
        if pull is None or stream not in ("dy", "dz"):
            return None
        if stream == "dy":  # arg = z
            a = F.linear(arg, K, b_y)
            s = self.activation(a)

            def pullback(v, scale, add_to, theta_grads):
                u = pull(v, a, s)
                g_K, g_b = theta_grads[0], theta_grads[1]
                g_K.addmm_(u.T, arg, alpha=scale)
                g_b.add_(u.sum(0), alpha=scale)
                return addmm_into(add_to, u, K, scale)

            return s, pullback
        KT = K.transpose(-1, -2)  # arg = y
        a = F.linear(arg, KT, b_z)
        s = self.activation(a)

        def pullback(v, scale, add_to, theta_grads):
            u = pull(v, a, s)  # the cotangent of s is −v: the minus sign goes into the scales
            g_K, g_b = theta_grads[0], theta_grads[2]
            g_K.addmm_(arg.T, u, alpha=-scale)
            g_b.add_(u.sum(0), alpha=-scale)
            return addmm_into(add_to, u, KT, -scale)

        return -s, pullback

    def extra_repr(self) -> str:
        return super().extra_repr() + f", width_z={self.width_z}"
