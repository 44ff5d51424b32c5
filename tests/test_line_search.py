"""stablenet.optim.line_search: Armijo backtracking, shared by the Newton-type θ steps and VarPro's
inner solve; and the one conjugate gradient both use."""

import torch

from stablenet.optim.cg import conjugate_gradient
from stablenet.optim.line_search import backtracking


def test_backtracking_accepts_the_first_armijo_step():
    calls = []

    def trial(t):
        calls.append(t)
        return (1 - t) ** 2, {"t": t}           # φ(t) = (1 − t)², φ(0) = 1, φ'(0) = −2

    res = backtracking(trial, 1.0, -2.0, step=4.0, c1=1e-4, factor=0.5, max_backtracks=10)
    assert res.accepted and res.step == 1.0 and res.backtracks == 2 and res.value == 0.0
    assert calls == [4.0, 2.0, 1.0] and res.info == {"t": 1.0}


def test_backtracking_failure_tolerance_and_fallback():
    def trial(t):
        return 1.0 + t, None                    # never decreases

    res = backtracking(trial, 1.0, -1.0, step=1.0, c1=1e-4, factor=0.5, max_backtracks=3)
    assert not res.accepted and res.step == 0.0 and res.value == 1.0 and res.backtracks == 4
    res = backtracking(trial, 1.0, -1.0, step=1.0, c1=1e-4, factor=0.5, max_backtracks=3, tolerance=0.3)
    assert res.accepted and res.step == 0.25   # 1.25 ≤ 1 − 0.25e-4 + 0.3
    res = backtracking(trial, 1.0, -1.0, step=1.0, c1=1e-4, factor=0.5, max_backtracks=3,
                       accept=lambda t, phi, info: t < 0.6)
    assert res.accepted and res.step == 0.5 and res.backtracks == 1
    nan = backtracking(lambda t: (float("nan"), None), 1.0, -1.0, step=1.0, c1=1e-4, factor=0.5,
                       max_backtracks=0)
    assert not nan.accepted


def test_conjugate_gradient_solves_spd_systems_with_and_without_preconditioner():
    g = torch.Generator().manual_seed(0)
    M = torch.randn(12, 12, generator=g, dtype=torch.float64)
    A = M @ M.T + 12 * torch.eye(12, dtype=torch.float64)
    b = torch.randn(12, generator=g, dtype=torch.float64)
    for pre in (None, lambda r: r / A.diagonal()):
        res = conjugate_gradient(lambda v: A @ v, b, rtol=1e-12, max_iter=100, preconditioner=pre)
        assert res.converged and not res.negative_curvature
        assert torch.allclose(A @ res.x, b, atol=1e-9)
    zero = conjugate_gradient(lambda v: A @ v, torch.zeros(12, dtype=torch.float64), rtol=1e-8, max_iter=5)
    assert zero.iterations == 0 and zero.converged and not zero.x.any()
