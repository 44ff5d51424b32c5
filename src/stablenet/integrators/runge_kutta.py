"""Explicit one-step Runge–Kutta schemes: forward Euler, midpoint, Kutta's RK3, classical RK4.

All of them advance Y' = f(t, Y) and accept any state the arithmetic helpers accept, so a
two-stream pair (y, z) is simply one state to them.  Reference: Hairer, Nørsett & Wanner,
*Solving Ordinary Differential Equations I*, §II.1.
"""

from __future__ import annotations

from ..state import axpy, combine
from .base import Integrator, register


@register
class Euler(Integrator):
    """Forward Euler, order 1: Y_{j+1} = Y_j + h f(t_j, Y_j).

    A ResNet layer is one forward-Euler step (seeds 000/002).  Stable for h·λ in the disc
    |1 + z| ≤ 1, which excludes the whole imaginary axis: on antisymmetric dynamics forward Euler
    grows for every h > 0.
    """

    name = "euler"
    order = 1
    _offsets = (0.0,)

    def step(self, f, j, y, h, memory):
        return axpy(y, h, f(j, 0.0, y)), None


@register
class Midpoint(Integrator):
    """Explicit midpoint rule (RK2), order 2.

    k1 = f(t_j, Y_j),  k2 = f(t_j + h/2, Y_j + h/2 k1),  Y_{j+1} = Y_j + h k2.
    Stability polynomial R(z) = 1 + z + z²/2.
    """

    name = "midpoint"
    order = 2
    _offsets = (0.0, 0.5)

    def step(self, f, j, y, h, memory):
        k1 = f(j, 0.0, y)
        k2 = f(j, 0.5, axpy(y, 0.5 * h, k1))
        return axpy(y, h, k2), None


@register
class RK3(Integrator):
    """Kutta's third-order method, order 3 (the start-up of Adams–Bashforth 3).

    k1 = f(t_j, Y_j), k2 = f(t_j + h/2, Y_j + h/2 k1), k3 = f(t_j + h, Y_j − h k1 + 2h k2),
    Y_{j+1} = Y_j + h/6 (k1 + 4 k2 + k3).  Stability polynomial R(z) = 1 + z + z²/2 + z³/6.
    """

    name = "rk3"
    order = 3
    _offsets = (0.0, 0.5, 1.0)

    def step(self, f, j, y, h, memory):
        return self.step_from(f, j, y, h, f(j, 0.0, y)), None

    @staticmethod
    def step_from(f, j, y, h, k1):
        """One step given k1 = f(t_j, Y_j) (lets a multistep method reuse it)."""
        k2 = f(j, 0.5, axpy(y, 0.5 * h, k1))
        k3 = f(j, 1.0, combine(y, h, ((-1.0, k1), (2.0, k2))))
        return combine(y, h, ((1 / 6, k1), (4 / 6, k2), (1 / 6, k3)))


@register
class RK4(Integrator):
    """Classical Runge–Kutta, order 4.

    k1 = f(t_j, Y_j), k2 = f(t_j + h/2, Y_j + h/2 k1), k3 = f(t_j + h/2, Y_j + h/2 k2),
    k4 = f(t_j + h, Y_j + h k3),  Y_{j+1} = Y_j + h/6 (k1 + 2k2 + 2k3 + k4).
    Stability polynomial R(z) = 1 + z + z²/2 + z³/6 + z⁴/24, whose region contains the imaginary
    segment |Im z| ≤ 2√2: RK4 is stable on antisymmetric dynamics for small enough h.
    """

    name = "rk4"
    order = 4
    _offsets = (0.0, 0.5, 1.0)

    def step(self, f, j, y, h, memory):
        k1 = f(j, 0.0, y)
        k2 = f(j, 0.5, axpy(y, 0.5 * h, k1))
        k3 = f(j, 0.5, axpy(y, 0.5 * h, k2))
        k4 = f(j, 1.0, axpy(y, h, k3))
        return combine(y, h, ((1 / 6, k1), (1 / 3, k2), (1 / 3, k3), (1 / 6, k4))), None
