"""A critical-path cost model of MGRIT across P ranks, and the speedup it predicts.

The model replays the operation sequence of :class:`~stablenet.parallel.solver.Solver` (same
grids: :func:`~.solver.hierarchy`; same ownership: :func:`~.solver.partition`) and charges

* ``t_step`` per propagator evaluation (one integrator step, fine or coarse: the same cost),
* ``t_msg`` per point-to-point message on the critical path (latency + size / bandwidth),
* ``2·⌈log₂ P⌉·t_msg`` per all-reduce of the residual norm,

assuming every operation (an F- or C-sweep, a residual, a restriction, the coarsest sequential
solve) ends on all ranks before the next begins (bulk-synchronous: an upper bound, the real
ranks only wait for their neighbour).  Inside an F-sweep the model follows the code: a rank
first sweeps the intervals that start on it, then the tail of an interval that started on its
predecessor, so intervals split across ranks chain their ranks.

The serial reference is sequential stepping: N·t_step (forward).  Speedup = serial / MGRIT.
Reference for the structure of the model: Falgout et al., SISC 36 (2014), §4 (its
per-iteration critical path, with the F-sweep 2-level count (m−1)·N/(mP) + …).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .solver import MGRITOptions, Owners, coarsen, hierarchy


@dataclass
class Cost:
    """Predicted critical path of an MGRIT solve."""

    time: float                      # in the units of t_step / t_msg
    steps: float                     # propagator evaluations on the critical path
    messages: float                  # message latencies on the critical path
    evaluations: list[int] = field(default_factory=list)  # per rank, all levels (work)
    serial_time: float = 0.0

    @property
    def speedup(self) -> float:
        """The predicted speedup ``serial_time / time`` (∞ for zero time)."""
        return self.serial_time / self.time if self.time > 0 else math.inf


class _Model:
    def __init__(self, steps, size, options: MGRITOptions, t_step, t_msg):
        self.opt, self.P, self.ts, self.tm = options, size, t_step, t_msg
        self.points = hierarchy(steps, options)
        owner = Owners(steps, size, options.m)
        self.owner = [[owner(x) for x in pts] for pts in self.points]
        self.n = [len(p) - 1 for p in self.points]
        self.is_c = []
        for l in range(len(self.points) - 1):
            flags = [False] * (self.n[l] + 1)
            for i in coarsen(self.n[l], options.m):
                flags[i] = True
            self.is_c.append(flags)
        self.time = 0.0
        self.evals = [0] * size

    def _ranges(self, l):
        out = {}
        for i, r in enumerate(self.owner[l]):
            a, b = out.get(r, (i, i))
            out[r] = (min(a, i), i + 1)
        return [out.get(r, (0, 0)) for r in range(self.P)]

    def _local(self, l, count_fn, needs_recv):
        """An operation where each rank evaluates count_fn(a, b) steps after at most one message."""
        end = 0.0
        for r, (a, b) in enumerate(self._ranges(l)):
            if a >= b:
                continue
            k = count_fn(a, b)
            self.evals[r] += k
            end = max(end, k * self.ts + (self.tm if needs_recv(a) else 0.0))
        self.time += end

    def f_relax(self, l):
        is_c = self.is_c[l]
        send, end = {}, 0.0   # send[r]: when rank r's last value leaves
        for r, (a, b) in enumerate(self._ranges(l)):
            if a >= b:
                continue
            first_c = next((i for i in range(a, b) if is_c[i]), None)
            arrive = send.get(self.owner[l][a - 1], 0.0) + self.tm if a > 0 else 0.0
            if first_c is not None:
                local = sum(1 for i in range(first_c, b) if not is_c[i])
                lead = first_c - a
                t = local * self.ts
                send[r] = t
                if lead:
                    t = max(t, arrive) + lead * self.ts
                self.evals[r] += local + lead
            else:
                t = arrive + (b - a) * self.ts
                send[r] = t
                self.evals[r] += b - a
            end = max(end, t)
        self.time += end

    def c_like(self, l):
        is_c = self.is_c[l]
        self._local(l, lambda a, b: sum(1 for i in range(max(a, 1), b) if is_c[i]),
                    lambda a: a > 0 and is_c[a])

    def relax(self, l):
        for sweep in self.opt.relax:
            self.f_relax(l) if sweep == "F" else self.c_like(l)

    def sequential(self, l):
        t = 0.0
        for r, (a, b) in enumerate(self._ranges(l)):
            if a >= b:
                continue
            k = b - max(a, 1)
            self.evals[r] += k
            t = t + (self.tm if a > 0 else 0.0) + k * self.ts
        self.time += t

    def restrict(self, c):
        self._local(c, lambda a, b: b - max(a, 1), lambda a: a > 0)

    def norm(self):
        if self.P > 1:
            self.time += 2 * math.ceil(math.log2(self.P)) * self.tm

    def cycle(self, l):
        if l == len(self.points) - 1:
            self.sequential(l)
            return
        self.relax(l)
        self.c_like(l)          # residual
        self.restrict(l + 1)
        self.cycle(l + 1)
        self.f_relax(l)

    def solve(self, iterations: int):
        if len(self.points) == 1:
            self.sequential(0)
            return
        if self.opt.fmg:
            self.fmg(0)
        for it in range(iterations + 1):
            self.relax(0)
            self.c_like(0)
            self.norm()
            if it < iterations:
                self.restrict(1)
                self.cycle(1)

    def fmg(self, l):
        if l == len(self.points) - 1:
            self.sequential(l)
            return
        self.fmg(l + 1)
        self.f_relax(l)
        if l > 0:
            self.cycle(l)


def mgrit_cost(steps: int, ranks: int, options: MGRITOptions | None = None, *, iterations: int,
               t_step: float = 1.0, t_msg: float = 0.0) -> Cost:
    """The predicted critical path of an MGRIT solve with ``iterations`` V-cycles on ``ranks``.

    ``iterations`` as in :class:`~.mgrit.SolveStats` (coarse corrections; every solve ends with
    one more relaxation and residual).  Evaluations per rank are exact counts of what the
    solver does (tests check them); times are the bulk-synchronous estimate described above.
    """
    options = options if options is not None else MGRITOptions()
    model = _Model(steps, ranks, options, t_step, t_msg)
    model.solve(iterations)
    time = model.time
    steps_only = _Model(steps, ranks, options, 1.0, 0.0)
    steps_only.solve(iterations)
    msgs = _Model(steps, ranks, options, 0.0, 1.0)
    msgs.solve(iterations)
    return Cost(time=time, steps=steps_only.time, messages=msgs.time, evaluations=model.evals,
                serial_time=steps * t_step)


def speedup_table(steps_list, ranks_list, options: MGRITOptions, iterations: int, t_step: float,
                  t_msg: float) -> list[dict]:
    """Rows {steps, ranks, speedup, critical steps, messages} over a grid of N and P."""
    rows = []
    for n in steps_list:
        for p in ranks_list:
            if p > n:
                continue
            c = mgrit_cost(n, p, options, iterations=iterations, t_step=t_step, t_msg=t_msg)
            rows.append({"steps": n, "ranks": p, "speedup": c.speedup, "critical_steps": c.steps,
                         "critical_messages": c.messages, "time": c.time})
    return rows
