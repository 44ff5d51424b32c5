"""Fixed-step integrators, found by name (``get_integrator("rk4")``) or passed as instances.

=============  ==========================  =====  ==========================================
name           scheme                      order  integrates
=============  ==========================  =====  ==========================================
``euler``      forward Euler (ResNet)      1      Y' = f(t, Y)
``midpoint``   explicit midpoint (RK2)     2      Y' = f(t, Y)
``rk3``        Kutta's third order         3      Y' = f(t, Y)
``rk4``        classical Runge–Kutta       4      Y' = f(t, Y)
``ab3``        Adams–Bashforth 3           3      Y' = f(t, Y)
``verlet``     staggered Verlet            2      y' = f_y(t, z), z' = f_z(t, y) (separable)
``leapfrog``   second-order leapfrog       2      Y'' = f(t, Y)
=============  ==========================  =====  ==========================================
"""

from .base import (Integrator, SeparableRHS, available, get_integrator, is_one_step, is_reversible,
                   register, scan_solve, solve)
from .multistep import AdamsBashforth3
from .runge_kutta import RK3, RK4, Euler, Midpoint
from .symplectic import Leapfrog, Verlet

__all__ = [
    "Integrator", "SeparableRHS", "available", "get_integrator", "is_one_step", "is_reversible",
    "register", "scan_solve", "solve",
    "Euler", "Midpoint", "RK3", "RK4", "AdamsBashforth3", "Verlet", "Leapfrog",
]
