"""MGRIT, the algorithm: FAS V-cycles on a time-stepping system, on the ranks of a communicator.

A :class:`Problem` is a system u_0 = g_0, u_{i+1} = Φ^l_i(u_i) on the points of every level l
(:func:`hierarchy`); :class:`Solver` solves it iteratively with work that can be spread over the
time points (Falgout, Friedhoff, Kolev, MacLachlan & Schroder, "Parallel time integration with
multigrid", SISC 36, 2014; nonlinear FAS form: Falgout et al., SISC 39, 2017).  What the states
and propagators are (an ODE block's forward or adjoint steps) is :mod:`.mgrit`'s business.

Every m-th point is a C-point (plus the last point; a trailing interval of one step is merged
into the previous one, so no two C-points are neighbours); the others are F-points.

* **F-relaxation** propagates from each C-point through the F-points of its interval
  (the intervals are independent); **C-relaxation** updates each C-point from its F-point
  predecessor; **FCF** is F, C, F.
* The **coarse grid** keeps the C-points, with the problem's coarse propagator Φ^Δ.
* **FAS V-cycle**: relax, form the C-point residual r, restrict by injection v = u|_C, solve
  A_Δ(v') = A_Δ(v) + r on the coarse level (recursively: a V-cycle, or sequential stepping on
  the coarsest level), correct u|_C ← v' (on a coarse level followed by an F-relaxation, since
  its F-points are C-points of the finer level), and repeat until ‖r‖ ≤ max(atol, rtol·‖r₀‖).
  ``max_levels = 1`` is sequential stepping.
* **FMG** (optional): the initial guess comes from nested iteration, coarsest level first.

The time points are split among the ranks of a communicator (:mod:`.comm`): rank r owns a
contiguous stretch of fine points (:func:`partition`), and every coarse point is owned by the
owner of its fine point.  The one-rank case is the serial algorithm; the same code runs on P
ranks and computes the same iterates (up to the summation order of the residual norm).
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass, field
from typing import Callable

from .. import _checks
from ..state import State, add, sqnorm, sub
from .comm import SerialComm, TorchComm


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


class Owners:
    """Ownership of fine indices: rank r owns [starts[r], starts[r+1]) (:func:`partition`)."""

    def __init__(self, steps: int, size: int, m: int):
        self.starts = partition(steps, size, m)

    def __call__(self, x: int) -> int:
        return bisect.bisect_right(self.starts, x) - 1


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
        """The residual norms divided by the first one (all 0 if the first is 0)."""
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
        return add(self.p.step(l, i, u), gi)

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
                r[i] = sub(self._apply(l, i - 1, u[i - 1] if i - 1 >= a else ghost, g.get(i)), u[i])
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
                gc[k] = add(sub(v[k], coarse_step), r[cpos[k]])
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
        local = sum(sqnorm(v) for v in r.values())
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
