"""Multigrid reduction in time (MGRIT) for the forward and adjoint propagation of an ODEBlock.

Forward propagation through N steps of a residual network, Y_{j+1} = Φ_j(Y_j) with Φ_j one
integrator step of the block (its stage weights θ(t) included), is the block lower-bidiagonal
nonlinear system

    A(u) = g:   u_0 = Y_0,   u_{j+1} − Φ_j(u_j) = 0,   j = 0 … N−1,

which sequential stepping solves by forward substitution.  MGRIT solves the same system
iteratively with work that can be spread over the time points (Falgout, Friedhoff, Kolev,
MacLachlan & Schroder, "Parallel time integration with multigrid", SISC 36, 2014; nonlinear
FAS form: Falgout et al., SISC 39, 2017; for ResNets: Günther, Ruthotto, Schroder, Cyr &
Gauger, "Layer-parallel training of deep residual neural networks", SIMODS 2, 2020).

Every m-th point is a C-point (plus the last point; a trailing interval of one step is merged
into the previous one, so no two C-points are neighbours); the others are F-points.

* **F-relaxation** propagates from each C-point through the F-points of its interval
  (the intervals are independent); **C-relaxation** updates each C-point from its F-point
  predecessor; **FCF** is F, C, F.
* The **coarse grid** keeps the C-points, with the propagator Φ^Δ_i = one step of the *same*
  integrator with step Δ = m·h (the distance of the C-points) and the weights θ(t) sampled
  from the control grid at the coarse stage times t_i + c·Δ.
* **FAS V-cycle**: relax, form the C-point residual r, restrict by injection v = u|_C, solve
  A_Δ(v') = A_Δ(v) + r on the coarse level (recursively: a V-cycle, or sequential stepping on
  the coarsest level), correct u|_C ← v' (on a coarse level followed by an F-relaxation, since
  its F-points are C-points of the finer level), and repeat until ‖r‖ ≤ max(atol, rtol·‖r₀‖).
  ``max_levels = 1`` is sequential stepping (exactly the block's forward).
* **FMG** (optional): the initial guess comes from nested iteration, coarsest level first.

The **adjoint** of the discrete forward map, λ_j = (∂Φ_j/∂Y_j)ᵀ λ_{j+1}, λ_N = ∂L/∂Y_N, is
the same kind of system backwards in time, linear in λ; it is solved by the same machinery in
reversed time with vector-Jacobian products at the stored forward states (coarse levels: the
transpose of the coarse forward step linearized at the forward C-point states, as in Günther
et al.).  Then ∂L/∂θ = Σ_j (∂Φ_j/∂θ)ᵀ λ_{j+1} (one independent vector-Jacobian product per
step) and ∂L/∂Y_0 = λ_0.

One-step maps only: forward Euler, midpoint, RK3, RK4 (any state), and staggered Verlet on
the pair (Y_j, Z_{j−1/2}).  For Verlet the coarse step reads the stored Z_{j−1/2} as if it were
Z_{j−Δ/2}, so the coarse propagator is only a first-order approximation of m fine steps
(the fine solution MGRIT converges to is unaffected; convergence is measured in the tests).
Adams–Bashforth 3 and leapfrog are refused: their step depends on earlier steps (the memory),
so Y_{j+1} is not a function of Y_j alone and C-points cannot be propagated independently.

The time points are split among the ranks of a communicator (:mod:`.comm`): rank r owns a
contiguous stretch of fine points, and every coarse point is owned by the owner of its fine
point.  The one-rank case is the serial algorithm; the same code runs on P ranks and computes
the same iterates (up to the summation order of the residual norm).
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from .. import _checks
from ..integrators import Integrator
from .comm import SerialComm, TorchComm

State = Any  # a tensor or a (y, z) pair


# -- state arithmetic --------------------------------------------------------------------------------
def _flat(state) -> tuple[torch.Tensor, ...]:
    return tuple(state) if isinstance(state, tuple) else (state,)


def _like(tensors, pair: bool):
    return tuple(tensors) if pair else tensors[0]


def _add(a, b):
    if b is None:
        return a
    if isinstance(a, tuple):
        return tuple(x + y for x, y in zip(a, b))
    return a + b


def _sub(a, b):
    if isinstance(a, tuple):
        return tuple(x - y for x, y in zip(a, b))
    return a - b


def _sqnorm(a) -> float:
    return float(sum(float(torch.sum(t.detach().to(torch.float64) ** 2)) for t in _flat(a)))


def _zeros(a):
    if isinstance(a, tuple):
        return tuple(torch.zeros_like(t) for t in a)
    return torch.zeros_like(a)


# -- options -----------------------------------------------------------------------------------------
_RELAX = re.compile(r"F(CF)*")


@dataclass(frozen=True)
class MGRITOptions:
    """Settings of an MGRIT solve (XBraid's names in brackets).

    Args:
        m: coarsening factor (≥ 2) [cfactor].
        max_levels: number of grid levels (1: sequential stepping, 2: two-level) [max_levels].
        min_coarse: coarsen only while the coarse level keeps at least this many steps
            [min_coarse].
        relax: ``"F"``, ``"FCF"`` or more sweeps ``"FCFCF"`` … (pattern F(CF)*) [nrelax].
        max_iter: most V-cycles [max_iter].
        rtol: stop when ‖r‖ ≤ rtol·‖r₀‖ (r₀: the residual of the initial guess after relaxation).
        atol: … or when ‖r‖ ≤ atol [tol].  The residual is the 2-norm over all C-points.
        fmg: start from a full-multigrid (nested iteration) guess [fmg].
    """

    m: int = 4
    max_levels: int = 10
    min_coarse: int = 2
    relax: str = "FCF"
    max_iter: int = 30
    rtol: float = 1e-8
    atol: float = 0.0
    fmg: bool = False

    def __post_init__(self) -> None:
        m = _checks.positive_int("m", self.m)
        if m < 2:
            raise ValueError(f"m (coarsening factor) must be an integer >= 2, got {m}")
        _checks.positive_int("max_levels", self.max_levels)
        _checks.positive_int("min_coarse", self.min_coarse)
        if not isinstance(self.relax, str) or not _RELAX.fullmatch(self.relax):
            raise ValueError(f"relax must be 'F', 'FCF', 'FCFCF', … (pattern F(CF)*), got {self.relax!r}")
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, int) or self.max_iter < 0:
            raise ValueError(f"max_iter must be an integer >= 0, got {self.max_iter!r}")
        _checks.nonnegative_float("rtol", self.rtol)
        _checks.nonnegative_float("atol", self.atol)
        if not isinstance(self.fmg, bool):
            raise ValueError(f"fmg must be True or False, got {self.fmg!r}")


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


# -- grids -------------------------------------------------------------------------------------------
def coarsen(n: int, m: int) -> list[int]:
    """Positions of the C-points among n + 1 points: 0, m, 2m, … and n (no two neighbours)."""
    c = list(range(0, n, m))
    if len(c) > 1 and n - c[-1] == 1:
        c.pop()
    return c + [n]


def hierarchy(steps: int, options: MGRITOptions) -> list[list[int]]:
    """The fine indices of the points of every level, finest first."""
    levels = [list(range(steps + 1))]
    while len(levels) < options.max_levels:
        n = len(levels[-1]) - 1
        cpos = coarsen(n, options.m)
        if len(cpos) - 1 < max(options.min_coarse, 2) or len(cpos) - 1 >= n:
            break
        levels.append([levels[-1][p] for p in cpos])
    return levels


def partition(steps: int, size: int, m: int) -> list[int]:
    """Start indices s_0 = 0 ≤ s_1 ≤ … of the fine points owned by ranks 0 … size−1.

    Rank r owns fine points [s_r, s_{r+1}) (the last rank up to N inclusive).  Starts are
    rounded to multiples of m, so with N/P ≥ m every rank's stretch begins with a C-point.
    """
    starts = [0]
    for r in range(1, size):
        s = m * round(r * steps / (size * m)) if steps >= size * m else round(r * steps / size)
        starts.append(min(max(s, starts[-1]), steps))
    return starts


# -- the solver --------------------------------------------------------------------------------------
class Problem:
    """A time-stepping system solved by :class:`Solver`.

    ``points[l]``: the (increasing) time indices of level l's points, 0 … N;
    ``step(l, i, u)``: the propagator from point i to point i + 1 of level l;
    ``owner(x)``: the rank that owns time index x; ``template``: a state of the right shape.
    """

    points: list[list[int]]
    template: State

    def step(self, level: int, i: int, u: State) -> State:  # pragma: no cover - abstract
        raise NotImplementedError

    def owner(self, x: int) -> int:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass
class SolveStats:
    """What one MGRIT solve did."""

    residuals: list[float] = field(default_factory=list)
    iterations: int = 0
    converged: bool = False
    levels: list[int] = field(default_factory=list)   # steps per level
    evaluations: list[int] = field(default_factory=list)  # propagator calls per level (this rank)
    messages: int = 0

    @property
    def relative_residuals(self) -> list[float]:
        r0 = self.residuals[0] if self.residuals else 0.0
        return [r / r0 if r0 > 0 else 0.0 for r in self.residuals]


class Solver:
    """FAS MGRIT on a :class:`Problem` with g = (g_0, 0, …, 0), on the ranks of ``comm``.

    ``u[l]`` and ``g[l]`` are dicts {position: state} holding the points of level l that this
    rank owns (g: absent means zero).
    """

    def __init__(self, problem: Problem, options: MGRITOptions, comm=None, device=None):
        self.p, self.opt = problem, options
        self.comm = comm if comm is not None else SerialComm()
        self.device = device
        self.L = len(problem.points)
        self.n = [len(pts) - 1 for pts in problem.points]
        self.owners = [[problem.owner(x) for x in pts] for pts in problem.points]
        rank = self.comm.rank
        self.range = []
        for own in self.owners:
            mine = [i for i, o in enumerate(own) if o == rank]
            self.range.append((mine[0], mine[-1] + 1) if mine else (0, 0))
        self.is_c, self.cpos = [], []
        for l in range(self.L - 1):
            where = {x: i for i, x in enumerate(problem.points[l])}
            cpos = [where[x] for x in problem.points[l + 1]]
            flags = [False] * (self.n[l] + 1)
            for i in cpos:
                flags[i] = True
            self.cpos.append(cpos)
            self.is_c.append(flags)
        self.u = [dict() for _ in range(self.L)]
        self.g = [dict() for _ in range(self.L)]
        self.tag = 0
        self.evaluations = [0] * self.L

    # -- communication ---------------------------------------------------------------------------
    def _next_tag(self) -> int:
        self.tag += 1
        return self.tag

    def _shift(self, l: int, values: dict, cond: Callable[[int], bool]):
        """Send u[b−1] to the owner of b if cond(b); receive u[a−1] if cond(a) (a > 0)."""
        tag = self._next_tag()
        a, b = self.range[l]
        if a >= b:
            return None
        handles = []
        if b <= self.n[l] and cond(b):
            handles = self.comm.isend(values[b - 1], self.owners[l][b], tag)
        ghost = None
        if a > 0 and cond(a):
            ghost = self.comm.recv(self.p.template, self.owners[l][a - 1], tag)
        self.comm.wait(handles)
        return ghost

    def _apply(self, l: int, i: int, u, gi):
        """Φ^l_i(u) + g_{i+1}."""
        self.evaluations[l] += 1
        return _add(self.p.step(l, i, u), gi)

    # -- relaxation --------------------------------------------------------------------------------
    def _sweep(self, l: int, lo: int, hi: int, prev) -> None:
        u, g = self.u[l], self.g[l]
        for i in range(lo, hi):
            u[i] = prev = self._apply(l, i - 1, prev, g.get(i))

    def _f_relax(self, l: int) -> None:
        """u_i ← Φ(u_{i−1}) + g_i through the F-points of every interval, in order."""
        tag = self._next_tag()
        a, b = self.range[l]
        if a >= b:
            return
        n, is_c, u = self.n[l], self.is_c[l], self.u[l]
        first_c = next((i for i in range(a, b) if is_c[i]), None)
        handles = []
        if first_c is not None:
            i = first_c
            while i < b:  # intervals that start here: no waiting
                j = i + 1
                while j < b and not is_c[j]:
                    j += 1
                self._sweep(l, i + 1, j, u[i])
                i = j
            if b <= n and not is_c[b]:
                handles = self.comm.isend(u[b - 1], self.owners[l][b], tag)
            if a > 0 and not is_c[a]:  # the tail of an interval that starts on a previous rank
                self._sweep(l, a, first_c, self.comm.recv(self.p.template, self.owners[l][a - 1], tag))
        else:
            self._sweep(l, a, b, self.comm.recv(self.p.template, self.owners[l][a - 1], tag))
            if b <= n and not is_c[b]:
                handles = self.comm.isend(u[b - 1], self.owners[l][b], tag)
        self.comm.wait(handles)

    def _c_relax(self, l: int) -> None:
        """u_c ← Φ(u_{c−1}) + g_c at every C-point c > 0 (all from old F-point values)."""
        is_c, u, g = self.is_c[l], self.u[l], self.g[l]
        ghost = self._shift(l, u, lambda i: is_c[i])
        a, b = self.range[l]
        for i in range(max(a, 1), b):
            if is_c[i]:
                u[i] = self._apply(l, i - 1, u[i - 1] if i - 1 >= a else ghost, g.get(i))

    def _relax(self, l: int) -> None:
        for sweep in self.opt.relax:
            self._f_relax(l) if sweep == "F" else self._c_relax(l)

    def _residual(self, l: int) -> dict:
        """r_c = g_c − u_c + Φ(u_{c−1}) at the owned C-points c > 0."""
        is_c, u, g = self.is_c[l], self.u[l], self.g[l]
        ghost = self._shift(l, u, lambda i: is_c[i])
        a, b = self.range[l]
        r = {}
        for i in range(max(a, 1), b):
            if is_c[i]:
                r[i] = _sub(self._apply(l, i - 1, u[i - 1] if i - 1 >= a else ghost, g.get(i)), u[i])
        return r

    def _sequential(self, l: int) -> None:
        """Forward substitution on level l (the coarsest; or the whole solve for one level)."""
        tag = self._next_tag()
        a, b = self.range[l]
        if a >= b:
            return
        u, g = self.u[l], self.g[l]
        if a == 0:
            u[0] = g[0]
            prev, lo = u[0], 1
        else:
            prev, lo = self.comm.recv(self.p.template, self.owners[l][a - 1], tag), a
        self._sweep(l, lo, b, prev)
        if b <= self.n[l]:
            self.comm.wait(self.comm.isend(u[b - 1], self.owners[l][b], tag))

    # -- cycles ------------------------------------------------------------------------------------
    def _coarse_correct(self, l: int, r: dict) -> None:
        """FAS: restrict by injection, cycle on level l + 1, correct the C-points of level l."""
        c, cpos, ul = l + 1, self.cpos[l], self.u[l]
        a, b = self.range[c]
        v = {k: ul[cpos[k]] for k in range(a, b)}
        ghost = self._shift(c, v, lambda k: True)
        gc = {}
        for k in range(a, b):
            if k == 0:
                gc[0] = ul[0]
            else:
                coarse_step = self._apply(c, k - 1, v[k - 1] if k - 1 >= a else ghost, None)
                gc[k] = _add(_sub(v[k], coarse_step), r[cpos[k]])
        self.u[c], self.g[c] = v, gc
        self._cycle(c)
        uc = self.u[c]
        for k in range(a, b):
            ul[cpos[k]] = uc[k]

    def _cycle(self, l: int) -> None:
        if l == self.L - 1:
            self._sequential(l)
            return
        self._relax(l)
        self._coarse_correct(l, self._residual(l))
        self._f_relax(l)  # level l's F-points are C-points of level l − 1: interpolate them

    def _fmg(self, l: int, g0) -> None:
        """Nested iteration: solve the coarsest level, then F-relax and V-cycle level by level."""
        a, b = self.range[l]
        self.g[l] = {0: g0} if a == 0 and b > 0 else {}
        if l == self.L - 1:
            self._sequential(l)
            return
        self._fmg(l + 1, g0)
        uc, cpos = self.u[l + 1], self.cpos[l]
        self.g[l] = {0: g0} if a == 0 and b > 0 else {}
        self.u[l] = {cpos[k]: uc[k] for k in range(*self.range[l + 1])}
        self._f_relax(l)
        if l > 0:
            self._cycle(l)

    def _norm(self, r: dict) -> float:
        local = sum(_sqnorm(v) for v in r.values())
        return math.sqrt(max(self.comm.allreduce_sum(local, device=self.device), 0.0))

    def solve(self, g0, initial: Callable[[int], State]) -> SolveStats:
        """Solve A(u) = (g0, 0, …, 0); ``initial(x)`` is the initial guess at time index x.

        Returns the statistics; the solution is ``self.u[0]`` (owned points).
        """
        stats = SolveStats(levels=self.n[:])
        a, b = self.range[0]
        own0 = a == 0 and b > 0
        if self.L == 1:
            self.g[0] = {0: g0} if own0 else {}
            self._sequential(0)
            stats.residuals, stats.converged = [0.0], True
        else:
            if self.opt.fmg:
                self._fmg(0, g0)
            else:
                pts = self.p.points[0]
                self.u[0] = {i: initial(pts[i]) for i in range(a, b)}
                self.g[0] = {0: g0} if own0 else {}
            if own0:
                self.u[0][0] = g0
            self.g[0] = {0: g0} if own0 else {}
            for it in range(self.opt.max_iter + 1):
                self._relax(0)
                r = self._residual(0)
                norm = self._norm(r)
                stats.residuals.append(norm)
                if not math.isfinite(norm):
                    break
                if norm <= max(self.opt.atol, self.opt.rtol * stats.residuals[0]):
                    stats.converged = True
                    break
                if it == self.opt.max_iter:
                    break
                self._coarse_correct(0, r)
            stats.iterations = len(stats.residuals) - 1
        stats.evaluations = self.evaluations[:]
        stats.messages = getattr(self.comm, "messages", 0)
        return stats


def make_comm(distributed: bool, group=None):
    """The communicator: :class:`SerialComm` or a :class:`TorchComm` on ``group``."""
    return TorchComm(group) if distributed else SerialComm()


# -- the block's forward and adjoint propagation as MGRIT problems ------------------------------------
class _Owners:
    """Ownership of fine indices: rank r owns [starts[r], starts[r+1])."""

    def __init__(self, steps: int, size: int, m: int):
        self.starts = partition(steps, size, m)

    def __call__(self, x: int) -> int:
        return bisect.bisect_right(self.starts, x) - 1


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
        device = _flat(template)[0].device
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
            leaves = [t.detach().requires_grad_() for t in _flat(y)]
            out = self.fwd.step(l, i, _like(leaves, pair))
            grads = torch.autograd.grad(_flat(out), leaves, _flat(mu), allow_unused=True)
        return _like([torch.zeros_like(x) if g is None else g for g, x in zip(grads, leaves)], pair)


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
        seq = [self.states[k] for k in keys]
        if isinstance(seq[0], tuple):
            return tuple(torch.stack(s) for s in zip(*seq))
        return torch.stack(seq)


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
    owners = _Owners(steps, comm.size, options.m)
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
    adj.template = _zeros(grad_final)
    solver = Solver(adj, options, comm, device=fwd.device)
    zero = adj.template
    stats = solver.solve(grad_final, lambda x: zero)
    # θ-gradient: Σ_j (∂Φ_j/∂θ)ᵀ λ_{j+1}; λ_0 = (∂Φ_0/∂Y_0)ᵀ λ_1.  Adjoint point k+1 (fine j =
    # N − k − 1) needs λ_{j+1} = μ_k from its predecessor.
    from ..gradients.base import backprop_steps

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
                                    states[j], None, pair, list(_flat(lam)), [], w_grads)
        if j == 0:
            grad_y0 = _like(list(g_state), pair)
    if steps == 0:  # pragma: no cover - steps >= 1 is checked
        grad_y0 = grad_final
    comm.allreduce_tensors(w_grads)
    grad_y0 = comm.broadcast(grad_y0, fwd.owner(0), zero)
    stats.messages = getattr(comm, "messages", 0)
    return AdjointResult(grad_y0, w_grads, stats)
