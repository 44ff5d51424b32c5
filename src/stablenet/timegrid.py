"""Time grids: the state grid the integrator steps on, and the control grid the weights live on.

A network is the discretization of dY/dt = f(Y, θ(t)) on [0, T].  Two grids are involved
(seed 004, "control layers vs state layers"; Meganet's separate ``tTheta`` and ``tY``):

* the **state grid**: ``steps`` = N uniform steps of size h = T / N, states Y_0 … Y_N;
* the **control grid**: ``nt`` control points that carry the weights θ_0 … θ_{nt-1}.

The control points sit at the left ends of nt equal cells, τ_k = k·T/nt, k = 0 … nt−1.
θ(t) is then either

* ``"constant"``: θ(t) = θ_k on the cell [τ_k, τ_{k+1}) (the last cell is closed at T), or
* ``"linear"``: linear between τ_k and τ_{k+1}, constant θ_{nt−1} on the last cell [τ_{nt−1}, T].

With this placement the grids are *nested*: the control grid of 2·nt points contains every point of
the grid of nt points, so prolongation nt → 2nt (:meth:`ControlGrid.prolongate`, used by
multilevel training) reproduces θ(t) exactly for both interpolations.  nt = 1 means identical
layers (stationary weights); nt = N with ``"constant"`` is the classic ResNet with one weight set
per layer.

An integrator evaluates θ at *stage positions* (j, c): stage time t = (j + c)·h inside step j,
with c ∈ [0, 1].  For piecewise-constant weights a stage that falls exactly on a cell boundary
takes the cell on the side of its own step (the left limit when c > 0), so the last stage of RK4
in step j (c = 1) uses θ_j, not θ_{j+1}: the integrand is smooth inside every step and the
integrator keeps its order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import torch

from . import _checks

INTERPOLATIONS = ("constant", "linear")

# A stage position (j, c): stage time (j + c)·h inside step j of the state grid.
StagePosition = tuple[int, float]


class Coordinates(NamedTuple):
    """Indices and weights with θ = (1 − w)·θ[i0] + w·θ[i1], one entry per requested time.

    ``constant``: all w are 0 (a pure gather); ``identity``: the request is θ_0 … θ_{nt−1} in order,
    so the stored weights can be used as they are.
    """

    i0: torch.Tensor
    i1: torch.Tensor
    w: torch.Tensor
    constant: bool
    identity: bool
    #: the same (i0, i1, w) as Python numbers, one triple per time: what the per-row look-ups
    #: read, so that no tensor is turned back into numbers (``tolist`` would be a data-dependent
    #: graph break under ``torch.compile``)
    entries: tuple[tuple[int, int, float], ...] = ()


@dataclass(frozen=True)
class StateGrid:
    """N uniform steps of size h = T / N on [0, T]."""

    T: float
    steps: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "T", _checks.positive_float("T", self.T))
        object.__setattr__(self, "steps", _checks.positive_int("steps", self.steps))

    @property
    def h(self) -> float:
        """The step h = T / steps."""
        return self.T / self.steps

    def times(self) -> torch.Tensor:
        """The N + 1 state times t_j = j·h (float64)."""
        return torch.arange(self.steps + 1, dtype=torch.float64) * self.h


@dataclass(frozen=True)
class ControlGrid:
    """nt control points on [0, T] and the rule that turns them into θ(t)."""

    T: float
    nt: int
    interpolation: str = "constant"

    def __post_init__(self) -> None:
        object.__setattr__(self, "T", _checks.positive_float("T", self.T))
        object.__setattr__(self, "nt", _checks.positive_int("nt", self.nt))
        _checks.choice("interpolation", self.interpolation, INTERPOLATIONS)

    def times(self) -> torch.Tensor:
        """The control times τ_k = k·T/nt, k = 0 … nt−1 (float64)."""
        return torch.arange(self.nt, dtype=torch.float64) * (self.T / self.nt)

    # -- where a time falls on the control grid ------------------------------------------------
    def _coordinates(self, s: float, left_limit: bool) -> tuple[int, int, float]:
        """(i0, i1, w) such that θ = (1 − w)·θ_{i0} + w·θ_{i1}, for s = t·nt/T."""
        nt = self.nt
        if self.interpolation == "constant" or nt == 1:
            k = round(s)
            if abs(s - k) <= 1e-9 * max(1.0, abs(s)):
                i = k - 1 if left_limit else k
            else:
                i = math.floor(s)
            i = min(max(i, 0), nt - 1)
            return i, i, 0.0
        s = min(max(s, 0.0), nt - 1.0)
        i0 = min(math.floor(s), nt - 2)
        return i0, i0 + 1, s - i0

    def coordinates(self, times: Sequence[float], left_limit: Sequence[bool] | None = None,
                    device: torch.device | str | None = None) -> "Coordinates":
        """Where a list of times in [0, T] falls on the control grid (see :class:`Coordinates`)."""
        if left_limit is None:
            left_limit = [False] * len(times)
        scale = self.nt / self.T
        coords = [self._coordinates(t * scale, ll) for t, ll in zip(times, left_limit)]
        i0 = torch.tensor([c[0] for c in coords], dtype=torch.long, device=device)
        i1 = torch.tensor([c[1] for c in coords], dtype=torch.long, device=device)
        w = torch.tensor([c[2] for c in coords], dtype=torch.float64)
        constant = all(c[2] == 0 for c in coords)
        identity = constant and len(coords) == self.nt and all(c[0] == k for k, c in enumerate(coords))
        entries = tuple((int(a), int(b), float(c)) for a, b, c in coords)
        return Coordinates(i0, i1, w.to(device), constant, identity, entries)

    def stage_coordinates(self, positions: Sequence[StagePosition], steps: int,
                          device: torch.device | str | None = None) -> "Coordinates":
        """Coordinates of stage positions (j, c) of a state grid with ``steps`` steps on [0, T]."""
        h = self.T / steps
        times = [(j + c) * h for j, c in positions]
        return self.coordinates(times, [c > 0 for _, c in positions], device)

    def gather(self, weights: torch.Tensor, coords: "Coordinates") -> torch.Tensor:
        """θ at precomputed coordinates: a tensor (len(coords), *weights.shape[1:]).

        ``weights`` holds the control values, shape (nt, ...).  One gather (and one lerp for
        linear interpolation) for all times at once, so the cost does not grow with the number of
        Python-level steps.
        """
        if weights.shape[0] != self.nt:
            raise ValueError(f"weights have {weights.shape[0]} control points, the grid has nt={self.nt}")
        if coords.identity:
            return weights
        lower = weights.index_select(0, coords.i0)
        if coords.constant:
            return lower
        w = coords.w.to(weights.dtype).reshape(-1, *([1] * (weights.dim() - 1)))
        return torch.lerp(lower, weights.index_select(0, coords.i1), w)

    def stage_thetas(self, weights: Sequence[torch.Tensor], coords: "Coordinates", *,
                     eager: bool = True) -> "StageThetas":
        """θ at precomputed coordinates as rows of per-weight tensors, copying only what must be."""
        for w in weights:
            if w.shape[0] != self.nt:
                raise ValueError(f"weights have {w.shape[0]} control points, the grid has nt={self.nt}")
        return StageThetas(weights, coords, eager=eager)

    def evaluate(self, weights: torch.Tensor, times: Sequence[float] | torch.Tensor) -> torch.Tensor:
        """θ(t) at the given times (right-continuous for piecewise-constant weights)."""
        if isinstance(times, torch.Tensor):
            times = times.tolist()
        return self.gather(weights, self.coordinates(list(times), device=weights.device))

    # -- refinement -----------------------------------------------------------------------------
    def prolongate(self, weights: torch.Tensor) -> torch.Tensor:
        """Control values on the grid of 2·nt points that represent exactly the same θ(t)."""
        if weights.shape[0] != self.nt:
            raise ValueError(f"weights have {weights.shape[0]} control points, the grid has nt={self.nt}")
        if self.interpolation == "constant":
            return weights.repeat_interleave(2, dim=0)
        # Even new points coincide with old ones; odd ones are midpoints of old cells, and the
        # last one lies in the old constant tail.
        mid = torch.cat([0.5 * (weights[:-1] + weights[1:]), weights[-1:]], dim=0)
        return torch.stack([weights, mid], dim=1).reshape(2 * self.nt, *weights.shape[1:])

    def refined(self) -> "ControlGrid":
        """The grid with 2·nt points."""
        return ControlGrid(self.T, 2 * self.nt, self.interpolation)


class StageThetas:
    """θ at a list of times, row by row: ``thetas[r]`` is a tuple with one tensor per weight.

    A row that coincides with a control point (every row of piecewise-constant weights) is a
    *view* of that control slice, so no copy is made and memory does not grow with the number
    of stages.  Interpolated rows are computed by one batched lerp up front (``eager``; fastest,
    and autograd keeps them anyway) or on demand (``eager=False``; what the memory-lean
    gradient modes use).  :meth:`accumulate` is the adjoint of the interpolation: it adds a
    row's gradient into the gradients of the control weights.
    """

    def __init__(self, weights: Sequence[torch.Tensor], coords: Coordinates, *, eager: bool = True):
        self.weights = tuple(weights)
        if coords.entries:
            self._i0, self._i1, self._w = (list(v) for v in zip(*coords.entries))
        else:
            self._i0, self._i1, self._w = coords.i0.tolist(), coords.i1.tolist(), coords.w.tolist()
        if _checks.compiling():
            # the same views, one select each: unbind's multi-output views inside a
            # torch.utils.checkpoint region (gradient="checkpoint" compiled) defeat AOTAutograd's
            # partitioner ("cannot be saved and cannot be recomputed")
            self._slices = [[w.select(0, k) for k in range(w.shape[0])] for w in self.weights]
        else:
            self._slices = [w.unbind(0) for w in self.weights]
        self._rows: list | None = None
        if not eager:  # rows made on demand (views, or a lerp that is not kept)
            return
        self._rows = [None] * len(self._i0)
        interpolated = [r for r, w in enumerate(self._w) if w != 0.0]
        for r, w in enumerate(self._w):
            if w == 0.0:
                self._rows[r] = tuple(s[self._i0[r]] for s in self._slices)
        if interpolated:
            rows = torch.tensor(interpolated, device=coords.i0.device)
            i0, i1 = coords.i0[rows], coords.i1[rows]
            lerped = []
            for weight in self.weights:
                frac = coords.w[rows].to(weight.dtype).reshape(-1, *([1] * (weight.dim() - 1)))
                lerped.append(torch.lerp(weight.index_select(0, i0), weight.index_select(0, i1), frac).unbind(0))
            for k, r in enumerate(interpolated):
                self._rows[r] = tuple(t[k] for t in lerped)

    def __len__(self) -> int:
        return len(self._i0)

    def __getitem__(self, r: int) -> tuple[torch.Tensor, ...]:
        if self._rows is not None:
            return self._rows[r]
        w, i0 = self._w[r], self._i0[r]
        if w == 0.0:
            return tuple(s[i0] for s in self._slices)
        return tuple(torch.lerp(s[i0], s[self._i1[r]], w) for s in self._slices)

    def accumulate(self, grads: Sequence[torch.Tensor], r: int, row_grads: Sequence[torch.Tensor]) -> None:
        """grads[k] (shaped like weight k) += ∂θ_r/∂weight_kᵀ · row_grads[k]."""
        w, i0, i1 = self._w[r], self._i0[r], self._i1[r]
        for g, rg in zip(grads, row_grads):
            if w == 0.0:
                g[i0] += rg
            else:
                g[i0].add_(rg, alpha=1.0 - w)
                g[i1].add_(rg, alpha=w)
