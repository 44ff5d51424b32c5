"""Jacobians J = ∂f/∂Y of a block's dynamics along its trajectory, their eigenvalues, and the
stability verdict of the block's integrator at h·λ (seed 004 §3.2; seed 002 "stability of
forward propagation": the ODE is stable where Re λ(J) ≤ 0, the discretization where h·λ lies in
the integrator's stability region).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.func import jacrev, vmap

from .. import _checks
from ..block import ODEBlock
from .stability import amplification, leapfrog_z


@dataclass
class LayerJacobians:
    """J[j, b] = ∂f/∂Y at state Y_j of sample b with the weights θ(t_j), j = 0 … N−1.

    For a two-stream block the state is (y, z) concatenated and J the Jacobian of the
    first-order system (f_y, f_z).
    """

    jacobians: torch.Tensor     # (N, batch, n, n)
    h: float
    method: str
    second_order: bool          # leapfrog: f is an acceleration, z = h·√μ
    _eigenvalues: torch.Tensor | None = field(default=None, repr=False)

    def eigenvalues(self) -> torch.Tensor:
        """Eigenvalues λ of every J, complex (N, batch, n), computed once."""
        if self._eigenvalues is None:
            self._eigenvalues = torch.linalg.eigvals(self.jacobians.to(torch.float64))
        return self._eigenvalues

    def z(self) -> torch.Tensor:
        """h·λ (for leapfrog: h·√μ), where the integrator's stability is judged."""
        lam = self.eigenvalues()
        return leapfrog_z(self.h, lam) if self.second_order else self.h * lam


def _states(block: ODEBlock, x: torch.Tensor, steps: int) -> torch.Tensor:
    """States Y_0 … Y_{N−1} (for two-stream blocks (y, z) concatenated), shape (N, batch, n)."""
    dyn = block.dynamics
    with torch.no_grad():
        if dyn.two_stream:
            ys, zs = block((x, x.new_zeros(*x.shape[:-1], dyn.width_z)), steps=steps, return_states=True)
            return torch.cat([ys, zs], dim=-1)[:-1]
        return block(x, steps=steps, return_states=True)[:-1]


def layer_jacobians(block: ODEBlock, x: torch.Tensor, *, steps: int | None = None) -> LayerJacobians:
    """Per-layer, per-sample Jacobians of the block's dynamics at its propagated states.

    Batched with torch.func (``vmap`` over layers and samples of ``jacrev``): one call, no Python
    loop over samples.
    """
    if not isinstance(block, ODEBlock):
        raise TypeError(f"block must be an ODEBlock, got {type(block).__name__}")
    N = block.steps if steps is None else _checks.positive_int("steps", steps)
    _checks.finite_state("x", x, block.dynamics.width)
    dyn = block.dynamics
    states = _states(block, x, N)
    h = block.T / N
    thetas = tuple(w.detach() for w in block.weights_at([j * h for j in range(N)]))
    wy = dyn.width

    if dyn.two_stream:
        def f(state, theta):
            dy, dz = dyn((state[None, :wy], state[None, wy:]), *theta)
            return torch.cat([dy[0], dz[0]])
    else:
        def f(state, theta):
            return dyn(state[None], *theta)[0]

    per_sample = vmap(jacrev(f), in_dims=(0, None))       # over the batch, shared θ_j
    per_layer = vmap(per_sample, in_dims=(0, 0))            # over layers j with θ_j
    with torch.no_grad():
        J = per_layer(states, thetas)
    integrator = block.integrator
    return LayerJacobians(J, h, integrator.name, integrator.second_order)


def summarize(lj: LayerJacobians, tol: float = 1e-6) -> dict:
    """Per layer and for the whole block: max Re λ, max amplification of the integrator's step at
    h·λ, and the fraction of h·λ inside the stability region (amplification ≤ 1 + tol)."""
    lam, z = lj.eigenvalues(), lj.z()
    A = amplification(lj.method, z)
    inside = (A <= 1 + tol).double()
    layers = [{"layer": j, "t": j * lj.h, "max_real": float(lam[j].real.max()),
               "max_amplification": float(A[j].max()), "fraction_stable": float(inside[j].mean())}
              for j in range(lam.shape[0])]
    return {
        "method": lj.method, "h": lj.h, "steps": lam.shape[0], "samples": lam.shape[1],
        "max_real": float(lam.real.max()), "max_amplification": float(A.max()),
        "fraction_stable": float(inside.mean()), "max_abs_z": float(z.abs().max()),
        "max_real_z": float(z.real.max()), "layers": layers,
    }


def stability_summary(block: ODEBlock, x: torch.Tensor, *, steps: int | None = None,
                      tol: float = 1e-6) -> dict:
    """:func:`summarize` of the block's Jacobians at the states propagated from ``x``."""
    return summarize(layer_jacobians(block, x, steps=steps), tol)
