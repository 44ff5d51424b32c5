"""Verdicts on the seed experiments' claims: one rule for all, fixed here before any run (issue 17).

A claim is judged from the values of one statistic.  Two kinds:

**Measured over seeds** (:func:`judge`): x_1 … x_n, one value per seed (data and initialization),
n ≥ 2, for instance the difference "RK4 − Euler" in validation accuracy of two networks trained on
the same data from the same initial weights.  With the mean m, the sample standard deviation s
(n − 1 in the denominator), the standard error SE = s/√n and the interval I = [m − 2·SE, m + 2·SE]:

* ``direction="greater"`` (the statistic exceeds ``reference``): **supported** if m − 2·SE >
  reference (the mean effect exceeds two standard errors in the claimed direction), **refuted** if
  m + 2·SE < reference (two standard errors in the opposite direction), otherwise
  **inconclusive**;
* ``direction="smaller"``: the mirror image (supported if m + 2·SE < reference, refuted if
  m − 2·SE > reference);
* ``direction="within"`` (an equivalence claim: the statistic is ``reference ± margin``):
  **supported** if I lies inside [reference − margin, reference + margin] (ends included),
  **refuted** if I lies entirely outside it (m − 2·SE > reference + margin or
  m + 2·SE < reference − margin), otherwise **inconclusive**.

s = 0 (all values equal) is allowed: then SE = 0, I is the single point m, and the rule reads
"supported/refuted by the sign of m − reference" (an effect of exactly zero is inconclusive for a
direction, and supported for an equivalence).  Every comparison allows a rounding slack of
1e-9·max(1, |reference|, margin), so that, say, a difference of exactly 2 points computed in
floating point counts as "within 2 points".  n = 1 is refused: one seed has no standard error.

**Deterministic** (:func:`check`): a computation with no seed noise (an analytic fact, a
landscape of fixed inputs) compared with the value the claim states: **supported** if every value
is within ``tolerance`` of ``target`` (|v − target| ≤ tolerance, same slack), otherwise
**refuted**; never inconclusive.  Several values (e.g. training and test inputs) must all pass.

Both return a JSON-serializable record ``{claim, statistic, values, n, mean, std, sem, verdict,
…}`` (plus ``kind``, the rule's parameters, the interval, ``rule`` in words and, if given,
``seed``: what the seed itself reports, for the summary table).  :func:`describe` formats a record
as "mean ± std (n = …)" for the command line and the docs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

#: the verdict words
SUPPORTED, REFUTED, INCONCLUSIVE = "supported", "refuted", "inconclusive"
DIRECTIONS = ("greater", "smaller", "within")
#: standard errors either side of the mean
K_SE = 2.0


def _values(values: Iterable[float], minimum: int) -> list[float]:
    if isinstance(values, (str, bytes)):
        raise TypeError("values must be a sequence of numbers, got a string")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) and not hasattr(v, "__float__"):
            raise TypeError(f"values must be numbers, got {v!r}")
        f = float(v)
        if not math.isfinite(f):
            raise ValueError(f"values must be finite, got {v!r} (a diverged run must be reported, not averaged)")
        out.append(f)
    if len(out) < minimum:
        raise ValueError(f"need at least {minimum} value{'s' if minimum > 1 else ''} (one per seed), got {len(out)}"
                         + ("; one seed has no standard error, run more seeds" if minimum > 1 else ""))
    return out


def _mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1; 0 for a single value); exactly (v, 0) if all
    values are equal, without rounding noise."""
    if max(values) == min(values):
        return values[0], 0.0
    n = len(values)
    mean = math.fsum(values) / n
    if n == 1:
        return mean, 0.0
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))


def _slack(*scales: float) -> float:
    return 1e-9 * max([1.0] + [abs(s) for s in scales])


def _number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def judge(claim: str, statistic: str, values: Iterable[float], direction: str, *, reference: float = 0.0,
          margin: float | None = None, seed: str | None = None) -> dict:
    """The verdict on a claim measured over seeds (module docstring: the rule).

    Args:
        claim: the claim in words (what the seed says, as we test it).
        statistic: what each value is, e.g. "RK4 − Euler, final validation accuracy (points)".
        values: one value of the statistic per seed (n ≥ 2, finite).
        direction: ``"greater"`` / ``"smaller"`` (than ``reference``) or ``"within"``
            (``reference ± margin``).
        reference: the value the statistic is compared with (default 0: "no effect").
        margin: the half-width of the equivalence interval; required for ``"within"`` (> 0) and
            not allowed otherwise.
        seed: optional, what the seed itself reports for this claim (a number or a quote).
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    reference = _number("reference", reference)
    if direction == "within":
        if margin is None or _number("margin", margin) <= 0:
            raise ValueError(f"direction 'within' needs a margin > 0, got {margin!r}")
        margin = float(margin)
    elif margin is not None:
        raise ValueError(f"margin applies to direction 'within' only, got margin={margin!r} with {direction!r}")
    xs = _values(values, 2)
    n = len(xs)
    mean, std = _mean_std(xs)
    sem = std / math.sqrt(n)
    lo, hi = mean - K_SE * sem, mean + K_SE * sem
    eps = _slack(reference, margin or 0.0)
    if direction == "greater":
        verdict = SUPPORTED if lo > reference + eps else REFUTED if hi < reference - eps else INCONCLUSIVE
        rule = (f"supported if mean − 2·SE > {reference:g}, refuted if mean + 2·SE < {reference:g}, "
                "else inconclusive")
    elif direction == "smaller":
        verdict = SUPPORTED if hi < reference - eps else REFUTED if lo > reference + eps else INCONCLUSIVE
        rule = (f"supported if mean + 2·SE < {reference:g}, refuted if mean − 2·SE > {reference:g}, "
                "else inconclusive")
    else:
        low, high = reference - margin, reference + margin
        if lo >= low - eps and hi <= high + eps:
            verdict = SUPPORTED
        elif lo > high + eps or hi < low - eps:
            verdict = REFUTED
        else:
            verdict = INCONCLUSIVE
        rule = (f"supported if mean ± 2·SE lies inside [{low:g}, {high:g}], refuted if it lies outside, "
                "else inconclusive")
    record = {"claim": claim, "statistic": statistic, "kind": direction, "reference": reference,
              "margin": margin, "values": xs, "n": n, "mean": mean, "std": std, "sem": sem,
              "interval": [lo, hi], "rule": rule, "verdict": verdict}
    if seed is not None:
        record["seed"] = str(seed)
    return record


def check(claim: str, statistic: str, values: Iterable[float], *, target: float, tolerance: float,
          seed: str | None = None) -> dict:
    """The verdict on a deterministic claim: every value within ``tolerance`` of ``target``.

    ``values``: one or more results of a computation without seed noise (e.g. one per input set).
    ``mean``/``std`` of the record summarize them; ``sem`` is 0 (there is no sampling error).
    """
    target = _number("target", target)
    tolerance = _number("tolerance", tolerance)
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance!r}")
    xs = _values(values, 1)
    mean, std = _mean_std(xs)
    deviation = max(abs(v - target) for v in xs)
    verdict = SUPPORTED if deviation <= tolerance + _slack(target, tolerance) else REFUTED
    record = {"claim": claim, "statistic": statistic, "kind": "deterministic", "target": target,
              "tolerance": tolerance, "values": xs, "n": len(xs), "mean": mean, "std": std, "sem": 0.0,
              "max_deviation": deviation,
              "rule": f"supported if every value is within {tolerance:g} of {target:g}, else refuted",
              "verdict": verdict}
    if seed is not None:
        record["seed"] = str(seed)
    return record


def _g(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}g}"


def describe(record: dict) -> str:
    """The record's numbers in one line: "m ± s (n = k)" over seeds, or the values against the
    target for a deterministic check."""
    if record.get("kind") == "deterministic":
        values = ", ".join(_g(v) for v in record["values"])
        return f"{values} (target {_g(record['target'])} ± {_g(record['tolerance'])})"
    return f"{_g(record['mean'])} ± {_g(record['std'], 2)} (n = {record['n']})"


__all__ = ["DIRECTIONS", "INCONCLUSIVE", "REFUTED", "SUPPORTED", "check", "describe", "judge"]
