"""``integrate``: fixed-step integration of any right-hand side func(t, y)."""

from __future__ import annotations

from . import _checks
from .integrators import Integrator, SeparableRHS, get_integrator, solve


def _is_pair(x) -> bool:
    return isinstance(x, (tuple, list)) and len(x) == 2


def _check_result(name: str, out, like, like_name: str) -> None:
    """Check a right-hand side's result against the state it is the derivative of: a tensor of
    ``like``'s shape, device and dtype (any dtype under ``torch.autocast``), or for a pair state
    ``like`` = (y, z) a pair of such tensors, stream by stream.  Metadata only: no synchronization."""
    if isinstance(like, tuple):
        if not _is_pair(out):
            raise TypeError(f"{name} must return a pair (dy/dt, dz/dt) for the state pair {like_name}, "
                            f"got {type(out).__name__}")
        for i in range(2):
            _check_result(f"{name}[{i}]", out[i], like[i], f"{like_name}[{i}]")
        return
    _checks.tensor(f"{name} result", out)
    _checks.same_shape(f"{name} result", out, like, like_name,
                       hint="; func must return the derivative with the state's shape (no broadcasting)")
    _checks.same_device_and_dtype(f"{name} result", out, like, like_name)


def _checked(func, time, name: str, like, like_name: str, where, check_finite: bool):
    """f(j, c, x) = func(time(j, c), x) with its results checked: the first one by
    :func:`_check_result` against ``like`` (once, when the solve starts), and with
    ``check_finite`` every one for NaN/Inf by :func:`_check_finite`, ``where(j, c)`` saying at
    which time and step.  A pair result (for a pair ``like``) is passed on as a tuple."""
    pair = isinstance(like, tuple)
    unchecked = True

    def f(j, c, x):
        nonlocal unchecked
        out = func(time(j, c), x)
        if pair and _is_pair(out):
            out = tuple(out)
        if unchecked:
            _check_result(name, out, like, like_name)
            unchecked = False
        if check_finite:
            _check_finite(name, where(j, c), out, x)
        return out

    return f


def _streams(out):
    """(suffix, tensor) per stream of a state or result: ("", y), or ("[0]", y), ("[1]", z)."""
    return tuple((f"[{i}]", s) for i, s in enumerate(out)) if isinstance(out, tuple) else (("", out),)


def _check_finite(name: str, where: str, out, x) -> None:
    """Raise if the result ``out`` of ``name`` evaluated at ``x`` (``where``: at which time and
    step) has a NaN/Inf, saying whether ``x`` already had one (the solution overflowed)."""
    for suffix, stream in _streams(out):
        try:
            _checks.finite(f"{name}{suffix} result{where}", stream)
        except ValueError as error:
            if all(bool(s.isfinite().all()) for _, s in _streams(x)):
                raise
            raise ValueError(f"{error}; its argument was already non-finite: the solution overflowed, "
                             f"try more steps or a stable method") from None


def _rhs(func, y0, separable: bool, time, where, check_finite: bool):
    """The integrator's right-hand side f(j, c, state): func at t = ``time(j, c)``, its results
    checked by :func:`_checked` (``where(j, c)`` names the time and step in messages)."""
    if separable:
        f_y, f_z = func
        return SeparableRHS(_checked(f_y, time, "func[0](t, z)", y0[0], "y0[0]", where, check_finite),
                            _checked(f_z, time, "func[1](t, y)", y0[1], "y0[1]", where, check_finite))
    name = "func(t, (y, z))" if isinstance(y0, tuple) else "func(t, y)"
    return _checked(func, time, name, y0, "y0", where, check_finite)


def integrate(func, y0, *, T: float, steps: int, method: str | Integrator,
              return_states: bool = False, t0: float = 0.0, check_finite: bool = False):
    """Integrate dy/dt = func(t, y) from t0 to t0 + T with ``steps`` fixed steps of ``method``.

    Args:
        func: the right-hand side ``func(t, y)``, t a Python float.  For a two-stream system the
            state is a pair (y, z) and func returns the pair (dy/dt, dz/dt); alternatively pass a
            pair of callables ``(f_y, f_z)`` with dy/dt = f_y(t, z), dz/dt = f_z(t, y), which is
            the form ``verlet`` requires.  For ``leapfrog``, func is the acceleration of
            y'' = func(t, y) (zero initial velocity).
        y0: initial state, a tensor or a pair of tensors.  For ``verlet`` the pair is
            (y(t0), z(t0 − h/2)): the z-stream is staggered by half a step.
        T: length of the interval (> 0).  steps: number N of steps (≥ 1), h = T / N.
        method: integrator name or instance (see :mod:`stablenet.integrators`).
        return_states: return all N + 1 states stacked on a new leading dimension (for a pair,
            one stack per stream) instead of the final state.
        check_finite: also check every result of func, and the returned state(s), for NaN/Inf,
            raising a ``ValueError`` that names func, the step and the time.  Costs one device
            synchronization per evaluation, so it is off by default, as in
            :class:`~stablenet.ODEBlock`, which checks its input but not the steps.

    Checks (``ValueError``/``TypeError`` naming the parameter, the value and what was expected):
    y0 (each stream of a pair) must be a finite floating tensor, always.  The first result of
    func (of each of f_y, f_z) is checked once against the state it is the derivative of
    (y0, or for f_y / f_z the stream y0[0] / y0[1]): a tensor (a pair for a pair state) of the
    same shape — no silent broadcasting —, device and dtype; under ``torch.autocast`` the dtype
    may differ.  These are metadata comparisons, no per-step cost.

    Returns:
        y(t0 + T) (for ``verlet``: (Y_N, Z_{N−1/2})), or the stacked states.
    """
    T = _checks.positive_float("T", T)
    steps = _checks.positive_int("steps", steps)
    integrator = get_integrator(method)
    h = T / steps

    separable = _is_pair(func) and all(callable(g) for g in func)
    if not separable and not callable(func):
        raise TypeError(f"func must be callable func(t, y) or a pair (f_y, f_z), got {type(func).__name__}")
    two_stream = _is_pair(y0)
    if two_stream:
        y0 = (y0[0], y0[1])
        _checks.finite_state("y0[0]", y0[0])
        _checks.finite_state("y0[1]", y0[1])
    else:
        _checks.finite_state("y0", y0)

    if integrator.separable and not (separable and two_stream):
        raise ValueError(
            f"method={integrator.name!r} integrates separable two-stream systems: pass func as a pair "
            f"(f_y, f_z) with dy/dt = f_y(t, z), dz/dt = f_z(t, y) and y0 as a pair (y0, z0); "
            f"got func={type(func).__name__}, y0={'pair' if two_stream else 'tensor'}"
        )
    if separable and not two_stream:
        raise ValueError("func is a pair (f_y, f_z) of a two-stream system, so y0 must be a pair (y0, z0)")
    if integrator.second_order and two_stream:
        raise ValueError(f"method={integrator.name!r} integrates one-stream y'' = f(t, y): y0 must be a tensor")

    def time(j, c):
        return t0 + (j + c) * h

    def where(j, c):
        return f" at t = {time(j, c):g} (step {j + 1} of {steps})"

    rhs = _rhs(func, y0, separable, time, where, check_finite)
    out = solve(integrator, rhs, y0, h, steps, return_states)
    if check_finite:
        for suffix, stream in _streams(out):
            _checks.finite(f"integrate's result{suffix}", stream,
                           hint="; func's results were finite, so the solution overflowed: try more steps "
                                "or a stable method")
    return out


__all__ = ["integrate"]
