"""Armijo backtracking, the line search of the Newton-type θ steps and of VarPro's inner solve."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class LineSearchResult:
    """Outcome of :func:`backtracking`.

    Attributes:
        step: the accepted step length t (0 if none was accepted).
        value: φ(t) at the accepted t (the starting value if none was).
        backtracks: step reductions made (``max_backtracks + 1`` when none was accepted).
        accepted: whether a trial was accepted.
        info: what ``trial`` returned with the accepted value (``None`` if none was accepted).
    """

    step: float
    value: float
    backtracks: int
    accepted: bool
    info: Any = None


def backtracking(trial: Callable[[float], tuple[float, Any]], value: float, slope: float, *, step: float,
                 c1: float, factor: float, max_backtracks: int, tolerance: float = 0.0,
                 accept: Callable[[float, float, Any], bool] | None = None) -> LineSearchResult:
    """The first t = step·factor^k, k = 0 … ``max_backtracks``, that passes the Armijo test

        φ(t) finite  and  φ(t) ≤ value + c₁·t·slope + tolerance,

    where ``trial(t)`` evaluates the trial point and returns (φ(t), info), ``value`` = φ(0) and
    ``slope`` = φ'(0) < 0.  ``tolerance`` admits values within rounding of the test (Hager &
    Zhang's approximate Armijo condition, SIAM J. Optim. 2005).  ``accept(t, φ(t), info)``, if
    given, is asked about a trial that fails the test and may accept it (VarPro's inner solve:
    when φ no longer resolves the decrease, a smaller gradient).  Cost: one ``trial`` per t.
    """
    t, backtracks = step, 0
    for _ in range(max_backtracks + 1):
        phi, info = trial(t)
        if math.isfinite(phi) and phi <= value + c1 * t * slope + tolerance:
            return LineSearchResult(t, phi, backtracks, True, info)
        if accept is not None and accept(t, phi, info):
            return LineSearchResult(t, phi, backtracks, True, info)
        t *= factor
        backtracks += 1
    return LineSearchResult(0.0, value, backtracks, False, None)
