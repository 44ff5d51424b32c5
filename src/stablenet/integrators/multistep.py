"""Linear multistep schemes: Adams–Bashforth 3."""

from __future__ import annotations

from ..state import combine
from .base import Integrator, register
from .runge_kutta import RK3


@register
class AdamsBashforth3(Integrator):
    """Third-order Adams–Bashforth, order 3 (seed 002's stable alternative to forward Euler).

        Y_{j+1} = Y_j + h/12 (23 F_j − 16 F_{j−1} + 5 F_{j−2}),   F_i = f(t_i, Y_i).

    The two start-up steps (j = 0, 1) use Kutta's third-order Runge–Kutta method, which keeps the
    global error O(h³); F_0 and F_1 are the first stages of those steps, so afterwards every step
    costs one evaluation of f.  Third order needs θ(t) smooth over the three-step history: at a
    kink or jump of the weights in time the extrapolation straddles it.  Reference: Hairer, Nørsett & Wanner, *Solving ODEs I*, §III.1.
    """

    name = "ab3"
    order = 3
    multistep = True
    uniform_from = 2  # the two start-up steps are RK3 steps
    _startup = (0.0, 0.5, 1.0)

    def stage_offsets(self, j):
        return self._startup if j < 2 else (0.0,)

    def step(self, f, j, y, h, memory):
        fj = f(j, 0.0, y)
        if j < 2:
            history = (fj,) if memory is None else (memory[0], fj)
            return RK3.step_from(f, j, y, h, fj), history
        f2, f1 = memory
        y_next = combine(y, h, ((23 / 12, fj), (-16 / 12, f1), (5 / 12, f2)))
        return y_next, (f1, fj)
