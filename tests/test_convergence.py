"""Empirical convergence order of every registered integrator against exact solutions.

The integrators come from the registry (``sn.available()``), each checked at the ``order`` it
declares, on the kind of system its flags say it integrates: Y' = f(t, Y) (Runge–Kutta,
multistep; also with a (y, z) pair as one state), a separable pair y' = f_y(z), z' = f_z(y) with
the staggered convention z0 = z(−h/2) (``separable``), or Y'' = f(t, Y) from rest
(``second_order``).  A new integrator is tested by registering it.
"""

import math

import pytest
import torch

import stablenet as sn

from helpers import convergence_order

STEPS = (8, 16, 32, 64)
T = 1.0

INTEGRATORS = {name: sn.get_integrator(name) for name in sn.available()}
FIRST_ORDER = [n for n, i in INTEGRATORS.items() if not (i.separable or i.second_order)]
SEPARABLE = [n for n, i in INTEGRATORS.items() if i.separable and not i.second_order]
SECOND_ORDER = [n for n, i in INTEGRATORS.items() if i.second_order and not i.separable]


def test_every_registered_integrator_is_tested_at_a_declared_order():
    assert set(FIRST_ORDER) | set(SEPARABLE) | set(SECOND_ORDER) == set(INTEGRATORS)
    assert {"euler", "rk4", "ab3", "verlet", "leapfrog"} <= set(INTEGRATORS)  # the registry is really read
    for name, integrator in INTEGRATORS.items():
        assert isinstance(integrator.order, int) and integrator.order >= 1, name


def fitted_order(errors, steps=STEPS):
    """Least-squares slope of log(error) against log(h)."""
    return convergence_order(steps, errors)


def antisymmetric_matrix(n, seed):
    g = torch.Generator().manual_seed(seed)
    K = torch.randn(n, n, generator=g, dtype=torch.float64)
    return K - K.T


def negative_real_matrix(n, seed):
    """A non-normal matrix with eigenvalues −0.5 … −2 (real, negative)."""
    g = torch.Generator().manual_seed(seed)
    V = torch.randn(n, n, generator=g, dtype=torch.float64) + 2 * torch.eye(n, dtype=torch.float64)
    D = torch.diag(-torch.linspace(0.5, 2.0, n, dtype=torch.float64))
    return V @ D @ torch.linalg.inv(V)


MATRICES = {"antisymmetric": antisymmetric_matrix, "negative_real": negative_real_matrix}


@pytest.mark.parametrize("kind", MATRICES)
@pytest.mark.parametrize("method", FIRST_ORDER)
def test_first_order_linear_system(kind, method):
    order = INTEGRATORS[method].order
    A = MATRICES[kind](4, seed=1)
    y0 = torch.randn(3, 4, dtype=torch.float64)  # batch of 3 row vectors: dy/dt = y Aᵀ
    exact = y0 @ torch.linalg.matrix_exp(T * A).T
    errors = []
    for n in STEPS:
        yN = sn.integrate(lambda t, y: y @ A.T, y0, T=T, steps=n, method=method)
        errors.append(float((yN - exact).norm()))
    p = fitted_order(errors)
    assert abs(p - order) <= 0.2, f"{method} on {kind}: fitted order {p:.3f}, errors {errors}"


@pytest.mark.parametrize("method", FIRST_ORDER)
def test_time_dependent_right_hand_side_keeps_order(method):
    """Non-autonomous y' = cos(t)·y has y(T) = y0·exp(sin T): stage times must be right."""
    order = INTEGRATORS[method].order
    y0 = torch.tensor([[1.0, -0.5]], dtype=torch.float64)
    exact = y0 * math.exp(math.sin(2.0))
    steps = (64, 128, 256, 512)
    errors = [float((sn.integrate(lambda t, y: math.cos(t) * y, y0, T=2.0, steps=n, method=method)
                     - exact).norm()) for n in steps]
    p = fitted_order(errors, steps)
    assert abs(p - order) <= 0.2, (method, p, errors)


@pytest.mark.parametrize("method", SEPARABLE)
@pytest.mark.parametrize("kind", ["coupling", "wide_z"])
def test_separable_linear_system(kind, method):
    """y' = B z, z' = −Bᵀ y (y, z of different widths); z0 is z(−h/2) in the staggered scheme."""
    order = INTEGRATORS[method].order
    g = torch.Generator().manual_seed(3)
    wy, wz = (3, 3) if kind == "coupling" else (2, 4)
    B = torch.randn(wy, wz, generator=g, dtype=torch.float64)
    M = torch.zeros(wy + wz, wy + wz, dtype=torch.float64)
    M[:wy, wy:] = B
    M[wy:, :wy] = -B.T
    x0 = torch.randn(2, wy + wz, generator=g, dtype=torch.float64)  # exact (y, z) at t = 0

    def exact(t):
        return x0 @ torch.linalg.matrix_exp(t * M).T

    errors = []
    for n in STEPS:
        h = T / n
        y0 = x0[:, :wy]
        z_half = exact(-h / 2)[:, wy:]
        yN, zN = sn.integrate((lambda t, z: z @ B.T, lambda t, y: -(y @ B)), (y0, z_half),
                              T=T, steps=n, method=method)
        err = (yN - exact(T)[:, :wy]).norm() + (zN - exact(T - h / 2)[:, wy:]).norm()
        errors.append(float(err))
    p = fitted_order(errors)
    assert abs(p - order) <= 0.2, (p, errors)


@pytest.mark.parametrize("method", SECOND_ORDER)
@pytest.mark.parametrize("kind", MATRICES)
def test_second_order_system(kind, method):
    """y'' = A y with y'(0) = 0: exact solution from the first-order system (y, v)' = [[0, I], [A, 0]]."""
    order = INTEGRATORS[method].order
    n = 4
    A = MATRICES[kind](n, seed=2)
    M = torch.zeros(2 * n, 2 * n, dtype=torch.float64)
    M[:n, n:] = torch.eye(n, dtype=torch.float64)
    M[n:, :n] = A
    y0 = torch.randn(3, n, dtype=torch.float64)
    x0 = torch.cat([y0, torch.zeros_like(y0)], dim=1)
    exact = (x0 @ torch.linalg.matrix_exp(T * M).T)[:, :n]
    errors = [float((sn.integrate(lambda t, y: y @ A.T, y0, T=T, steps=k, method=method) - exact).norm())
              for k in STEPS]
    p = fitted_order(errors)
    assert abs(p - order) <= 0.2, (p, errors)


@pytest.mark.parametrize("method", FIRST_ORDER)
def test_two_stream_pair_is_one_state_for_one_step_methods(method):
    """A Hamiltonian pair integrated by a Runge–Kutta or multistep method converges as one state."""
    g = torch.Generator().manual_seed(4)
    B = torch.randn(2, 3, generator=g, dtype=torch.float64)
    M = torch.zeros(5, 5, dtype=torch.float64)
    M[:2, 2:] = B
    M[2:, :2] = -B.T
    x0 = torch.randn(2, 5, generator=g, dtype=torch.float64)
    exact = x0 @ torch.linalg.matrix_exp(T * M).T
    order = INTEGRATORS[method].order
    errors = []
    for n in STEPS:
        yN, zN = sn.integrate(lambda t, s: (s[1] @ B.T, -(s[0] @ B)), (x0[:, :2], x0[:, 2:]),
                              T=T, steps=n, method=method)
        errors.append(float((torch.cat([yN, zN], 1) - exact).norm()))
    assert abs(fitted_order(errors) - order) <= 0.2
