"""Schemes for Hamiltonian and hyperbolic dynamics: staggered Verlet and second-order leapfrog."""

from __future__ import annotations

import torch

from ..state import axpy
from .base import Integrator, SeparableRHS, register


@register
class Verlet(Integrator):
    """Staggered (leapfrog) Verlet for separable two-stream systems, order 2.

    For dy/dt = f_y(t, z), dz/dt = f_z(t, y) the z-stream lives at half steps (seeds 002/003):

        Z_{j+1/2} = Z_{j−1/2} + h f_z(t_j, Y_j)
        Y_{j+1}   = Y_j + h f_y(t_{j+1/2}, Z_{j+1/2})

    The state is the pair (Y_j, Z_{j−1/2}): **the given z0 is Z_{−1/2}**, the value at t = −h/2,
    and after N steps the pair is (Y_N, Z_{N−1/2}).  Networks start from Z_{−1/2} = 0 as in the
    seeds.  (The seeds evaluate both half steps with θ_j; with one weight set per step and
    piecewise-constant controls, θ(t_{j+1/2}) = θ_j, so this is their scheme, and with linearly
    interpolated weights it stays second order.)

    Second order needs θ(t) smooth across the half steps (the z-update centred at t_j spans
    [t_{j−1/2}, t_{j+1/2}]).  The scheme is symplectic and exactly reversible
    (:meth:`step_back`), which gives gradients with memory independent of depth
    (``gradient="reversible"``, :mod:`stablenet.gradients`).  It accepts only right-hand sides split by stream
    (:class:`SeparableRHS`).  Reference: Hairer, Lubich & Wanner, *Geometric Numerical
    Integration*, §I.3; Chang et al., AAAI 2018.
    """

    name = "verlet"
    order = 2
    separable = True
    _offsets = (0.0, 0.5)

    def step(self, f: SeparableRHS, j, state, h, memory):
        y, z = state
        z = axpy(z, h, f.dz(j, 0.0, y))
        y = axpy(y, h, f.dy(j, 0.5, z))
        return (y, z), None

    def step_back(self, f: SeparableRHS, j, state, h, memory=None):
        """Invert step j: (Y_{j+1}, Z_{j+1/2}) → (Y_j, Z_{j−1/2}) (no memory)."""
        y, z = state
        y = torch.sub(y, f.dy(j, 0.5, z), alpha=h)
        z = torch.sub(z, f.dz(j, 0.0, y), alpha=h)
        return (y, z), None

    def step_vjp(self, vjp, j, state, memory, h, g_state, g_memory):
        """Pull the cotangents of (Y_{j+1}, Z_{j+1/2}) back through step j (``state`` is the
        pair before the step).  ``vjp(stream, c, cotangent, arg, scale, add_to)`` returns
        ``add_to + scale·J_fᵀ·cotangent``, in place in ``add_to``, for the evaluation of the
        ``stream`` ("dy"/"dz") right-hand side at stage offset c and argument ``arg`` (and adds
        its weights' share of the gradient): the shears in reverse order,

            Z̄ += h J_{f_y}ᵀ Ȳ   (through Y_{j+1} = Y_j + h f_y(Z_{j+1/2})),
            Ȳ += h J_{f_z}ᵀ Z̄   (through Z_{j+1/2} = Z_{j−1/2} + h f_z(Y_j)).
        """
        gy, gz = g_state
        gz = vjp("dy", 0.5, gy, None, h, gz)
        gy = vjp("dz", 0.0, gz, state[0], h, gy)
        return (gy, gz), None


@register
class Leapfrog(Integrator):
    """Second-order leapfrog (Störmer) for hyperbolic dynamics Y'' = f(t, Y), order 2.

        Y_{j+1} = 2 Y_j − Y_{j−1} + h² f(t_j, Y_j)

    Note the right-hand side is an *acceleration*: this integrates a second-order ODE, as in the
    hyperbolic networks of Ruthotto & Haber (JMIV 2020).  The initial velocity is zero; the first
    step is the Taylor start Y_1 = Y_0 + ½h² f(t_0, Y_0) (the leapfrog step with the symmetric
    ghost value Y_{−1} = Y_1), which keeps the global error O(h²).  Stable for real h²λ in
    [−4, 0]; like Verlet it is time-reversible (:meth:`step_back`).  The memory after step j is
    Y_j, so the pair (Y_{j+1}, Y_j) determines every earlier state.
    """

    name = "leapfrog"
    order = 2
    second_order = True
    uniform_from = 1  # step 0 is the Taylor start (no Y_{j−1} yet)
    _offsets = (0.0,)

    def step(self, f, j, y, h, memory):
        acc = f(j, 0.0, y)
        if memory is None:
            return axpy(y, 0.5 * h * h, acc), y
        return axpy(torch.sub(2.0 * y, memory), h * h, acc), y

    def step_back(self, f, j, y, h, memory):
        """Invert step j: (Y_{j+1}, memory Y_j) → (Y_j, memory Y_{j−1}); None before step 0.

        Y_{j−1} = 2 Y_j − Y_{j+1} + h² f(t_j, Y_j), explicit for every j ≥ 1 (at j = 1 it recovers
        Y_0 from the Taylor start through the leapfrog relation it satisfies).
        """
        if j == 0:
            return memory, None
        return memory, torch.add(torch.sub(2.0 * memory, y), f(j, 0.0, memory), alpha=h * h)

    def step_vjp(self, vjp, j, y, memory, h, g_state, g_memory):
        """Pull the cotangents (Ȳ_{j+1}, M̄) of (Y_{j+1}, memory Y_j) back through step j to
        (Y_j, memory Y_{j−1}); ``y``/``memory`` are the values before the step and
        ``vjp(None, 0.0, cotangent, arg, scale, add_to)`` returns ``add_to + scale·J_fᵀ·cotangent``
        (in place in ``add_to``, here always a fresh tensor) at ``arg`` = Y_j:

            Ȳ_j = 2 Ȳ_{j+1} + M̄ + h² J_fᵀ Ȳ_{j+1},   Ȳ_{j−1} = −Ȳ_{j+1}
        (at j = 0: Ȳ_0 = Ȳ_1 + M̄ + ½h² J_fᵀ Ȳ_1).
        """
        (g_mem,) = g_memory
        if memory is None:
            return vjp(None, 0.0, g_state, y, 0.5 * h * h, g_state + g_mem), None
        return vjp(None, 0.0, g_state, y, h * h, torch.add(g_mem, g_state, alpha=2.0)), -g_state
