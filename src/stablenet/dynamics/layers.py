"""One-stream dynamics: single layer, double layer, parabolic.

Batch-first: a state Y is (batch, width) and KY means ``Y @ K.T``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import _checks
from .base import Dynamics, addmm_into


class SingleLayer(Dynamics):
    """f(Y, θ) = σ(KY + b), θ = (K, b), K ∈ R^{w×w} (seeds 000–002).

    Forward Euler on this is the classic ResNet  Y_{j+1} = Y_j + h σ(K_j Y_j + b_j).  Its Jacobian
    diag(σ'(KY + b)) K can have eigenvalues with large positive real part: not stable by design.
    """

    def __init__(self, width: int, *, nt: int = 1, activation: str = "tanh",
                 normalization: str | None = None):
        super().__init__(width, nt=nt, activation=activation, normalization=normalization)
        self._control_parameter("K", width, width, fan_in=width)
        self._control_parameter("b", width)

    def forward(self, y, K, b):
        if self.normalization is None:
            return self.activation(F.linear(y, K, b))
        return self._pre_activation(F.linear(y, K), b)

    def vjp(self, y, K, b, *, stream=None):
        """f with its explicit VJP (:meth:`Dynamics.vjp`): with a = KY + b, u = σ'(a) ⊙ v,
        J_Yᵀv = Kᵀu, ∂/∂K = u Yᵀ, ∂/∂b = u (summed over the batch)."""
        pull = self._activation_pullback(y)
        if pull is None or stream is not None:
            return None
        a = F.linear(y, K, b)
        s = self.activation(a)

        def pullback(v, scale, add_to, theta_grads):
            u = pull(v, a, s)
            theta_grads[0].addmm_(u.T, y, alpha=scale)
            theta_grads[1].add_(u.sum(0), alpha=scale)
            return addmm_into(add_to, u, K, scale)

        return s, pullback


class DoubleLayer(Dynamics):
    """f(Y, θ) = K₂ σ(K₁Y + b), θ = (K₁, b, K₂), K₁ ∈ R^{m×w}, K₂ ∈ R^{w×m} (m = ``hidden``)."""

    def __init__(self, width: int, hidden: int | None = None, *, nt: int = 1,
                 activation: str = "tanh", normalization: str | None = None):
        super().__init__(width, nt=nt, activation=activation, normalization=normalization)
        self.hidden = width if hidden is None else _checks.positive_int("hidden", hidden)
        self._control_parameter("K1", self.hidden, width, fan_in=width)
        self._control_parameter("b", self.hidden)
        self._control_parameter("K2", width, self.hidden, fan_in=self.hidden)

    def forward(self, y, K1, b, K2):
        if self.normalization is None:
            return F.linear(self.activation(F.linear(y, K1, b)), K2)
        return F.linear(self._pre_activation(F.linear(y, K1), b), K2)

    def vjp(self, y, K1, b, K2, *, stream=None):
        """f with its explicit VJP (:meth:`Dynamics.vjp`): with a = K₁Y + b, s = σ(a),
        u = σ'(a) ⊙ K₂ᵀv: J_Yᵀv = K₁ᵀu, ∂/∂K₁ = u Yᵀ, ∂/∂b = u, ∂/∂K₂ = v sᵀ."""
        pull = self._activation_pullback(y)
        if pull is None or stream is not None:
            return None
        a = F.linear(y, K1, b)
        s = self.activation(a)

        def pullback(v, scale, add_to, theta_grads):
            u = pull(torch.mm(v, K2), a, s)
            theta_grads[0].addmm_(u.T, y, alpha=scale)
            theta_grads[1].add_(u.sum(0), alpha=scale)
            theta_grads[2].addmm_(v.T, s, alpha=scale)
            return addmm_into(add_to, u, K1, scale)

        return F.linear(s, K2), pullback


class Parabolic(Dynamics):
    """f(Y, θ) = −Kᵀ σ(KY + b), K ∈ R^{m×w} (m = ``hidden``): negative semidefinite dynamics.

    For a monotone activation (σ' ≥ 0) the Jacobian −Kᵀ diag(σ') K is symmetric negative
    semidefinite, so the continuous dynamics are stable for any K (Ruthotto & Haber, JMIV 2020,
    "parabolic CNN").  Forward Euler needs h·λ_max ≤ 2 on top of that.
    """

    def __init__(self, width: int, hidden: int | None = None, *, nt: int = 1,
                 activation: str = "tanh", normalization: str | None = None):
        super().__init__(width, nt=nt, activation=activation, normalization=normalization)
        self.hidden = width if hidden is None else _checks.positive_int("hidden", hidden)
        self._control_parameter("K", self.hidden, width, fan_in=width)
        self._control_parameter("b", self.hidden)

    def forward(self, y, K, b):
        if self.normalization is None:
            s = self.activation(F.linear(y, K, b))
        else:
            s = self._pre_activation(F.linear(y, K), b)
        return -torch.matmul(s, K)

    def vjp(self, y, K, b, *, stream=None):
        """f with its explicit VJP (:meth:`Dynamics.vjp`): with a = KY + b, s = σ(a),
        u = σ'(a) ⊙ Kv: J_Yᵀv = −Kᵀu, ∂/∂K = −(u Yᵀ + s vᵀ), ∂/∂b = −u."""
        pull = self._activation_pullback(y)
        if pull is None or stream is not None:
            return None
        a = F.linear(y, K, b)
        s = self.activation(a)

        def pullback(v, scale, add_to, theta_grads):
            u = pull(F.linear(v, K), a, s)
            theta_grads[0].addmm_(u.T, y, alpha=-scale).addmm_(s.T, v, alpha=-scale)
            theta_grads[1].add_(u.sum(0), alpha=-scale)
            return addmm_into(add_to, u, K, -scale)

        return -torch.matmul(s, K), pullback
