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


def layer_jacobians(block: ODEBlock, x: torch.Tensor, *, steps: int | None = None, crop: int = 6,
                    samples: int | None = None) -> LayerJacobians:
    """Per-layer, per-sample Jacobians of the block's dynamics at its propagated states.

    Batched with torch.func (``vmap`` over layers and samples of ``jacrev``): one call, no Python
    loop over samples.

    Convolutional blocks (image states (batch, C, H, W)): see :func:`conv_layer_jacobians`
    (``crop``, ``samples``); the Jacobians are of the flattened states.
    """
    if not isinstance(block, ODEBlock):
        raise TypeError(f"block must be an ODEBlock, got {type(block).__name__}")
    N = block.steps if steps is None else _checks.positive_int("steps", steps)
    if getattr(block.dynamics, "feature_dim", -1) == 1:
        return conv_layer_jacobians(block, x, steps=N, crop=crop, samples=samples)
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


def conv_layer_jacobians(block: ODEBlock, x: torch.Tensor, *, steps: int | None = None, crop: int = 6,
                         samples: int | None = None) -> LayerJacobians:
    """Jacobians of a convolutional block's dynamics, ∂f/∂Y of the flattened image state.

    The states Y_0 … Y_{N−1} are propagated from the whole batch ``x`` (batch, C, H, W) (z_0 = 0
    for two-stream blocks); at every layer j the Jacobian is taken for the first ``samples``
    images (default all) on the centre ``crop`` × ``crop`` window of Y_j (the whole image when
    it is smaller): f restricted to that window with zero values outside it, the zero "same"
    padding of the convolutions (a full 28×28×16 Jacobian would have 12544² entries).  For the
    parabolic dynamics the restriction keeps the structure −K̃ᵀ diag(σ') K̃ with K̃ the windowed
    convolution, so its spectrum is still ≤ 0.

    ``normalization = "batch"`` normalizes with the statistics of the whole batch; the Jacobian is
    taken with those statistics recorded at Y_j and held fixed
    (:func:`stablenet.dynamics.conv.frozen_batch_statistics`): the per-sample Jacobian of a large
    batch, where one image's effect on the statistics (O(1/batch)) vanishes.  N is then a
    positive per-channel scaling and −Kᵀ diag(σ'/s) K stays negative semidefinite.  Instance and
    TV normalizations act per image and are differentiated exactly.
    """
    from ..dynamics.conv import frozen_batch_statistics

    N = block.steps if steps is None else _checks.positive_int("steps", steps)
    crop = _checks.positive_int("crop", crop)
    dyn = block.dynamics
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError(f"x must be image states (batch, {dyn.width}, H, W), got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    _checks.finite_state("x", x, dyn.width, 1)
    B = x.shape[0] if samples is None else min(_checks.positive_int("samples", samples), x.shape[0])
    with torch.no_grad():
        if dyn.two_stream:
            ys, zs = block((x, x.new_zeros(x.shape[0], dyn.width_z, *x.shape[2:])), steps=N, return_states=True)
        else:
            ys, zs = block(x, steps=N, return_states=True), None
    h = block.T / N
    thetas = tuple(w.detach() for w in block.weights_at([j * h for j in range(N)]))
    H, W = x.shape[-2:]
    ch, cw = min(crop, H), min(crop, W)
    r0, c0 = (H - ch) // 2, (W - cw) // 2

    def window(t):
        return t[:B, :, r0:r0 + ch, c0:c0 + cw]

    ny = dyn.width * ch * cw
    Js = []
    for j in range(N):
        theta = tuple(w[j] for w in thetas)
        with torch.no_grad(), frozen_batch_statistics() as stats:   # the whole batch's statistics
            dyn((ys[j], zs[j]) if dyn.two_stream else ys[j], *theta)
        if dyn.two_stream:
            flat = torch.cat([window(ys[j]).reshape(B, -1), window(zs[j]).reshape(B, -1)], dim=1)

            def f(state, theta=theta, stats=stats):
                y = state[:ny].reshape(1, dyn.width, ch, cw)
                z = state[ny:].reshape(1, dyn.width_z, ch, cw)
                with frozen_batch_statistics(stats):
                    dy, dz = dyn((y, z), *theta)
                return torch.cat([dy.reshape(-1), dz.reshape(-1)])
        else:
            flat = window(ys[j]).reshape(B, -1)

            def f(state, theta=theta, stats=stats):
                with frozen_batch_statistics(stats):
                    return dyn(state.reshape(1, dyn.width, ch, cw), *theta).reshape(-1)
        with torch.no_grad():
            Js.append(vmap(jacrev(f))(flat))
    integrator = block.integrator
    return LayerJacobians(torch.stack(Js), h, integrator.name, integrator.second_order)


def summarize(lj: LayerJacobians, tol: float = 1e-6, real_tol: float = 1e-10) -> dict:
    """Per layer and for the whole block: max Re λ, max |λ|, max amplification of the
    integrator's step at h·λ, the fraction of h·λ inside the stability region (amplification
    ≤ 1 + tol), and ``continuous_stable``: whether every Re λ ≤ real_tol·max|λ|, i.e. ≤ 0 up to
    the round-off of float64 eigenvalues (about n·ε·‖J‖), so the ODE itself does not amplify
    perturbations whatever the integrator."""
    lam, z = lj.eigenvalues(), lj.z()
    A = amplification(lj.method, z)
    inside = (A <= 1 + tol).double()

    def spectrum(lam: torch.Tensor) -> dict:
        max_real, max_abs = float(lam.real.max()), float(lam.abs().max())
        return {"max_real": max_real, "max_abs": max_abs, "continuous_stable": max_real <= real_tol * max_abs}

    layers = [{"layer": j, "t": j * lj.h, **spectrum(lam[j]),
               "max_amplification": float(A[j].max()), "fraction_stable": float(inside[j].mean())}
              for j in range(lam.shape[0])]
    return {
        "method": lj.method, "h": lj.h, "steps": lam.shape[0], "samples": lam.shape[1],
        **spectrum(lam), "max_amplification": float(A.max()),
        "fraction_stable": float(inside.mean()), "max_abs_z": float(z.abs().max()),
        "max_real_z": float(z.real.max()), "layers": layers,
    }


def stability_summary(block: ODEBlock, x: torch.Tensor, *, steps: int | None = None,
                      tol: float = 1e-6) -> dict:
    """:func:`summarize` of the block's Jacobians at the states propagated from ``x``."""
    return summarize(layer_jacobians(block, x, steps=steps), tol)
