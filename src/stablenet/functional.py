"""``integrate``: fixed-step integration of any right-hand side func(t, y)."""

from __future__ import annotations

from . import _checks
from .integrators import Integrator, SeparableRHS, get_integrator, solve


def _is_pair(x) -> bool:
    return isinstance(x, (tuple, list)) and len(x) == 2


def integrate(func, y0, *, T: float, steps: int, method: str | Integrator,
              return_states: bool = False, t0: float = 0.0):
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

    if separable:
        f_y, f_z = func
        rhs = SeparableRHS(lambda j, c, z: f_y(t0 + (j + c) * h, z),
                           lambda j, c, y: f_z(t0 + (j + c) * h, y))
    else:
        def rhs(j, c, y):
            out = func(t0 + (j + c) * h, y)
            return tuple(out) if two_stream else out

    return solve(integrator, rhs, y0, h, steps, return_states)


__all__ = ["integrate"]
