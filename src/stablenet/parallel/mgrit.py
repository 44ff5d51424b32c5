"""MGRIT for the forward and adjoint propagation of an ODEBlock (the algorithm: :mod:`.solver`).

Forward propagation through N steps of a residual network, Y_{j+1} = Φ_j(Y_j) with Φ_j one
integrator step of the block (its stage weights θ(t) included), is the block lower-bidiagonal
nonlinear system

    A(u) = g:   u_0 = Y_0,   u_{j+1} − Φ_j(u_j) = 0,   j = 0 … N−1,

which sequential stepping solves by forward substitution and MGRIT (:class:`.solver.Solver`)
iteratively, with work that can be spread over the time points (for ResNets: Günther,
Ruthotto, Schroder, Cyr & Gauger, "Layer-parallel training of deep residual neural networks",
SIMODS 2, 2020).  On a coarse level the propagator Φ^Δ_i is one step of the *same* integrator
with step Δ = m·h (the distance of the C-points) and the weights θ(t) sampled from the control
grid at the coarse stage times t_i + c·Δ.  ``max_levels = 1`` is exactly the block's forward.

The **adjoint** of the discrete forward map, λ_j = (∂Φ_j/∂Y_j)ᵀ λ_{j+1}, λ_N = ∂L/∂Y_N, is
the same kind of system backwards in time, linear in λ; it is solved by the same machinery in
reversed time with vector-Jacobian products at the stored forward states (coarse levels: the
transpose of the coarse forward step linearized at the forward C-point states, as in Günther
et al.).  Then ∂L/∂θ = Σ_j (∂Φ_j/∂θ)ᵀ λ_{j+1} (one independent vector-Jacobian product per
step) and ∂L/∂Y_0 = λ_0.

One-step maps only (:func:`check_one_step`): forward Euler, midpoint, RK3, RK4 (any state), and
staggered Verlet on the pair (Y_j, Z_{j−1/2}).  For Verlet the coarse step reads the stored
Z_{j−1/2} as if it were Z_{j−Δ/2}, so the coarse propagator is only a first-order approximation
of m fine steps (the fine solution MGRIT converges to is unaffected; convergence is measured in
the tests).  Adams–Bashforth 3 and leapfrog are refused: their step depends on earlier steps
(the memory), so Y_{j+1} is not a function of Y_j alone and C-points cannot be propagated
independently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .. import _checks
from ..gradients.backprop import backprop_steps
from ..integrators import Integrator
from ..state import State, device_of, flat, stack, unflat, zeros_for_none, zeros_like
from .solver import (MGRITOptions, Owners, Problem, SolveStats, Solver, coarsen, hierarchy, make_comm,
                     partition)

__all__ = ["MGRITOptions", "SolveStats", "ForwardResult", "AdjointResult", "check_one_step", "coarsen",
           "hierarchy", "partition", "make_comm", "mgrit_forward", "mgrit_adjoint", "BlockForward",
           "BlockAdjoint"]


def check_one_step(integrator: Integrator) -> None:
    """Refuse integrators whose step is not a map Y_{j+1} = Φ_j(Y_j) of the state alone."""
    if integrator.multistep:
        raise ValueError(
            f"MGRIT needs a one-step map Y_{{j+1}} = Φ_j(Y_j); method={integrator.name!r} is a "
            f"multistep scheme whose step also uses f at Y_{{j-1}}, Y_{{j-2}} (its memory), so "
            f"C-points cannot be propagated independently; use euler, midpoint, rk3, rk4 or verlet")
    if integrator.second_order:
        raise ValueError(
            f"MGRIT needs a one-step map Y_{{j+1}} = Φ_j(Y_j); method={integrator.name!r} "
            f"computes Y_{{j+1}} from Y_j and Y_{{j-1}} (its memory); use verlet on a two-stream "
            f"dynamics or a Runge-Kutta method")


# -- the block's forward and adjoint propagation as MGRIT problems ------------------------------------
class BlockForward(Problem):
    """Y_{j+1} = Φ_j(Y_j): one step of the block's integrator with its stage weights.

    Level 0 uses the block's own right-hand side and stage table (so one level reproduces the
    block's forward bit for bit); level l > 0 steps between its points with Δ = (x_{i+1} − x_i)·h
    and θ sampled from the control grid at the coarse stage times.
    """

    def __init__(self, block, weights, steps: int, template, points, owners: Callable[[int], int]):
        self.block, self.weights, self.steps = block, tuple(weights), steps
        self.h = block.T / steps
        self.integrator = block.integrator
        self.points, self.template, self._owners = points, template, owners
        device = device_of(template)
        self.device = device
        self.fine_thetas, self.fine_index = block.stage_weights(steps, device, self.weights, eager=False)
        self._rhs = {0: block.rhs(self.fine_thetas, self.fine_index)}
        self._dts = {0: None}

    def owner(self, x: int) -> int:
        return self._owners(x)

    def coarse_rhs(self, l: int):
        """(f, step sizes) of level l > 0, built once."""
        if l not in self._rhs:
            pts, h, integ = self.points[l], self.h, self.integrator
            times, left, index = [], [], []
            for i in range(len(pts) - 1):
                offsets = integ.stage_offsets(i)
                index.append({c: len(times) + k for k, c in enumerate(offsets)})
                for c in offsets:
                    times.append((pts[i] + c * (pts[i + 1] - pts[i])) * h)
                    left.append(c > 0)
            grid = self.block.control_grid
            coords = grid.coordinates(times, left, self.device)
            thetas = grid.stage_thetas(self.weights, coords, eager=True)
            self._rhs[l] = self.block.rhs(thetas, index)
            self._dts[l] = [(pts[i + 1] - pts[i]) * h for i in range(len(pts) - 1)]
        return self._rhs[l], self._dts[l]

    def step(self, l: int, i: int, u):
        if l == 0:
            return self.integrator.step(self._rhs[0], i, u, self.h, None)[0]
        f, dts = self.coarse_rhs(l)
        return self.integrator.step(f, i, u, dts[i], None)[0]


class BlockAdjoint(Problem):
    """λ_j = (∂Φ_j/∂Y_j)ᵀ λ_{j+1} in reversed time k = N − j, at the stored forward states.

    Level l uses the transpose of level l's forward step linearized at the forward states of its
    points (a vector-Jacobian product per step; the forward step is recomputed under autograd).
    """

    def __init__(self, forward: BlockForward, states: dict):
        self.fwd, self.states = forward, states
        N = forward.steps
        self.N = N
        self.points = [[N - x for x in reversed(pts)] for pts in forward.points]
        self.template = forward.template

    def owner(self, x: int) -> int:
        return self.fwd.owner(self.N - x)

    def step(self, l: int, k: int, mu):
        n = len(self.points[l]) - 1
        i = n - k - 1                        # forward step i of level l: point i → i + 1
        y = self.states[self.fwd.points[l][i]]
        pair = isinstance(y, tuple)
        with torch.enable_grad():
            leaves = [t.detach().requires_grad_() for t in flat(y)]
            out = self.fwd.step(l, i, unflat(leaves, pair))
            grads = torch.autograd.grad(flat(out), leaves, flat(mu), allow_unused=True)
        return unflat(zeros_for_none(grads, leaves), pair)


@dataclass
class ForwardResult:
    """An MGRIT forward solve: Y_N, this rank's states {fine index: Y_j}, statistics."""

    final: State
    states: dict
    stats: SolveStats

    def stacked(self):
        """All N + 1 states stacked (serial solves only; each stream stacked for pairs)."""
        keys = sorted(self.states)
        if keys != list(range(len(keys))):
            raise ValueError("stacked() needs every state on this rank (a serial solve), "
                             f"got {len(keys)} of them")
        return stack([self.states[k] for k in keys])


@dataclass
class AdjointResult:
    """An MGRIT adjoint solve: ∂L/∂Y_0, ∂L/∂(control weights), statistics."""

    grad_y0: State
    grad_weights: list
    stats: SolveStats


def _template_state(block, y0):
    dyn = block.dynamics
    if dyn.two_stream and not isinstance(y0, tuple):
        shape = list(y0.shape)
        shape[dyn.feature_dim] = dyn.width_z
        return (y0, y0.new_zeros(shape))
    return y0


def forward_problem(block, y0, steps: int, options: MGRITOptions, comm, weights=None) -> BlockForward:
    check_one_step(block.integrator)
    weights = tuple(w.detach() for w in (block.dynamics.control_weights() if weights is None else weights))
    owners = Owners(steps, comm.size, options.m)
    return BlockForward(block, weights, steps, y0, hierarchy(steps, options), owners)


def mgrit_forward(block, y0, *, steps: int | None = None, options: MGRITOptions | None = None,
                  distributed: bool = False, group=None, comm=None, weights=None,
                  **kwargs) -> ForwardResult:
    """Y_N of ``block`` from ``y0`` by MGRIT (no autograd graph); see the module docstring.

    ``y0`` is a tensor (a two-stream block gets Z_{−1/2} = 0) or a (y, z) pair.  Options come
    as ``options=MGRITOptions(...)`` or keywords (``m=4, max_levels=3, relax="FCF", …``).  With
    ``distributed=True`` every rank of ``group`` calls this with the same ``y0``; each keeps the
    states of the time points it owns and gets Y_N.
    """
    options = options if options is not None else MGRITOptions(**kwargs)
    steps = block.steps if steps is None else _checks.positive_int("steps", steps)
    comm = comm if comm is not None else make_comm(distributed, group)
    y0 = _template_state(block, y0)
    with torch.no_grad():
        problem = forward_problem(block, y0, steps, options, comm, weights)
        solver = Solver(problem, options, comm, device=problem.device)
        stats = solver.solve(y0, lambda x: y0)
        states = {problem.points[0][i]: v for i, v in solver.u[0].items()}
        last = problem.owner(steps)
        final = comm.broadcast(states.get(steps), last, y0)
    return ForwardResult(final, states, stats)


def mgrit_adjoint(block, states: dict, grad_final, *, steps: int | None = None,
                  options: MGRITOptions | None = None, distributed: bool = False, group=None,
                  comm=None, weights=None, **kwargs) -> AdjointResult:
    """∂L/∂Y_0 and ∂L/∂(control weights) from ∂L/∂Y_N by MGRIT on the discrete adjoint.

    ``states`` are this rank's forward states {fine index: Y_j} (``mgrit_forward(...).states``);
    the result is the gradient of the discrete network to the solver's tolerance (exact for
    ``max_levels=1``).  Collective with ``distributed=True``: every rank gets the same gradients.
    """
    options = options if options is not None else MGRITOptions(**kwargs)
    steps = block.steps if steps is None else _checks.positive_int("steps", steps)
    comm = comm if comm is not None else make_comm(distributed, group)
    weights = tuple(w.detach() for w in (block.dynamics.control_weights() if weights is None else weights))
    y_template = next(iter(states.values())) if states else grad_final
    fwd = forward_problem(block, y_template, steps, options, comm, weights)
    adj = BlockAdjoint(fwd, states)
    adj.template = zeros_like(grad_final)
    solver = Solver(adj, options, comm, device=fwd.device)
    zero = adj.template
    stats = solver.solve(grad_final, lambda x: zero)
    # θ-gradient: Σ_j (∂Φ_j/∂θ)ᵀ λ_{j+1}; λ_0 = (∂Φ_0/∂Y_0)ᵀ λ_1.  Adjoint point k+1 (fine j =
    # N − k − 1) needs λ_{j+1} = μ_k from its predecessor.
    mu = solver.u[0]
    ghost = solver._shift(0, mu, lambda k: True)
    a, b = solver.range[0]
    pair = isinstance(zero, tuple)
    w_grads = [torch.zeros_like(w) for w in weights]
    grad_y0 = None
    for k1 in range(max(a, 1), b):
        j = steps - k1
        lam = mu[k1 - 1] if k1 - 1 >= a else ghost
        g_state, _ = backprop_steps(block, fwd.fine_thetas, fwd.fine_index, range(j, j + 1),
                                    states[j], None, pair, list(flat(lam)), [], w_grads)
        if j == 0:
            grad_y0 = unflat(list(g_state), pair)
    if steps == 0:  # pragma: no cover - steps >= 1 is checked
        grad_y0 = grad_final
    comm.allreduce_tensors(w_grads)
    grad_y0 = comm.broadcast(grad_y0, fwd.owner(0), zero)
    stats.messages = getattr(comm, "messages", 0)
    return AdjointResult(grad_y0, w_grads, stats)
