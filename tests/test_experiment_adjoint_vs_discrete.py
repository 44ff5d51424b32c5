"""`stablenet experiment adjoint-vs-discrete --quick`: the two gradients against h; reversible drift.

The observed orders are refitted here with numpy from the per-step rows and every check record's
verdict is recomputed by the rule (every value within the tolerance of the analytic target); the
discrete gradient is compared with finite differences of a plain numpy forward Euler, and the
reversibility of seed 002's Verlet recursion is confirmed by a numpy loop.
"""

import json
import math

import numpy as np
import pytest
import torch

from stablenet import ODEBlock, SingleLayer
from stablenet.app.experiments import adjoint_vs_discrete as avd

from helpers import assert_png, run_on_other_threads


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("adjoint_vs_discrete")
    results, started, left = run_on_other_threads(avd.run, out, quick=True)
    assert left == started                      # the one-thread run restores the caller's count
    return out, results


def assert_check(record, values, target, tolerance):
    """A deterministic record: its numbers equal ours, its verdict is the rule applied here."""
    assert record["kind"] == "deterministic" and record["claim"] and record["statistic"] and record["seed"]
    assert record["values"] == pytest.approx(list(values), rel=1e-10, abs=1e-12)
    assert (record["target"], record["tolerance"]) == (pytest.approx(target), pytest.approx(tolerance))
    slack = 1e-9 * max(1.0, abs(target), tolerance)
    holds = all(abs(v - target) <= tolerance + slack for v in values)
    assert record["verdict"] == ("supported" if holds else "refuted"), record
    return holds


def test_quick_run_claims_recomputed(quick):
    out, results = quick
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(results))
    assert results["quick"] and results["figures"] == ["adjoint_vs_discrete.png"]
    assert_png(out / "adjoint_vs_discrete.png")
    records = results["claims"]
    assert isinstance(records, list) and len(records) == 7
    orders = {}
    for name, study in results["gradients"].items():
        for method in avd.METHODS:
            rows = study[method]["rows"]
            assert [r["steps"] for r in rows] == [4, 8, 16, 32, 64]
            tail = rows[len(rows) // 2:]                       # N = 16, 32, 64
            for q in ("adjoint_vs_discrete", "discrete_vs_continuous", "adjoint_vs_continuous"):
                slope = np.polyfit(np.log([r["h"] for r in tail]), np.log([r[q] for r in tail]), 1)[0]
                assert slope == pytest.approx(results["fitted_orders"][name][method][q], abs=1e-9)
                orders[name, method, q] = slope
    tol = 0.2                                                  # quick mode's tolerance
    holds = []
    for k, (method, p) in enumerate(avd.METHODS.items()):
        holds.append(assert_check(records[k], [orders[d, method, "adjoint_vs_discrete"] for d in avd.DYNAMICS],
                                  p, tol))
        holds.append(assert_check(records[3 + k], [orders[d, method, q] for d in avd.DYNAMICS
                                                   for q in ("discrete_vs_continuous", "adjoint_vs_continuous")],
                                  p, tol))
    drift = results["reversible_drift"]
    assert set(drift) == {"float32", "float64"}
    units = [r["drift"] / float(np.finfo(dtype).eps) for dtype, rows in drift.items() for r in rows]
    holds.append(assert_check(records[6], units, 0.0, math.sqrt(256)))
    # what the theory guarantees: order p of each integrator for both routes, and a reversal exact
    # up to a few roundings (measured in quick mode: orders within 0.1 of p, drift ≤ 1 ε)
    assert all(holds)
    # the coarse differences are numbers, not claims: at N = 4 forward Euler's two gradients differ
    # by tens of percent, RK4's by far less (O(h) against O(h⁴) at h = 0.5)
    for coarse in results["coarse_difference"].values():
        assert coarse["euler"] > 0.3 and coarse["rk4"] < 0.02


def numpy_loss(K, b, x, T, steps):
    """Σ sin(Y_N)·w for forward Euler on dY/dt = tanh(Y K(t)ᵀ + b(t)), θ(t) linear between the
    control points τ_k = k·T/nt and constant after the last one."""
    nt, h = K.shape[0], T / steps
    Y = x
    for j in range(steps):
        s = j * h / (T / nt)
        k = min(int(math.floor(s + 1e-12)), nt - 1)
        a = s - k if k < nt - 1 else 0.0
        Kt = (1 - a) * K[k] + a * K[min(k + 1, nt - 1)]
        bt = (1 - a) * b[k] + a * b[min(k + 1, nt - 1)]
        Y = Y + h * np.tanh(Y @ Kt.T + bt)
    w = np.linspace(-1, 1, Y.size).reshape(Y.shape)
    return float((np.sin(Y) * w).sum())


def test_discrete_gradient_is_the_derivative_of_the_discrete_network():
    """autograd (Disc→Diff) equals central differences of a numpy forward Euler with the same
    weights, N = 8 (so that the linear interpolation between control points is exercised)."""
    torch.manual_seed(0)
    dyn = SingleLayer(4, nt=4).double()
    with torch.no_grad():
        for p in dyn.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = torch.randn(8, 4, dtype=torch.float64)
    block = ODEBlock(dyn, T=2.0, steps=8, method="euler", controls="linear")
    g = avd._gradient(block, x, "autograd", 8).numpy()
    arrays = [dyn.K.detach().numpy().copy(), dyn.b.detach().numpy().copy(), x.numpy().copy()]
    fd, eps = [], 1e-6
    for a in arrays:
        for idx in np.ndindex(a.shape):
            old = a[idx]
            a[idx] = old + eps
            up = numpy_loss(*arrays, 2.0, 8)
            a[idx] = old - eps
            down = numpy_loss(*arrays, 2.0, 8)
            a[idx] = old
            fd.append((up - down) / (2 * eps))
    assert np.allclose(g, fd, rtol=1e-6, atol=1e-8)


def test_seed_002_verlet_recursion_is_reversible_to_rounding():
    """Seed 002's Z_{j+½} = Z_{j−½} − hσ(K_jY_j + b_j), Y_{j+1} = Y_j + hσ(K_jᵀZ_{j+½} + b_j) and its
    reverse, in numpy float64: the reconstruction error stays within √N roundings."""
    rng = np.random.default_rng(0)
    N, w, h = 1024, 16, 4.0 / 1024
    K, b = rng.normal(size=(N, w, w)) / 4, rng.normal(size=(N, w)) / 4
    Y0 = rng.normal(size=(64, w))
    Y, Z = Y0.copy(), np.zeros_like(Y0)
    for j in range(N):
        Z = Z - h * np.tanh(Y @ K[j].T + b[j])
        Y = Y + h * np.tanh(Z @ K[j] + b[j])
    for j in reversed(range(N)):
        Y = Y - h * np.tanh(Z @ K[j] + b[j])
        Z = Z + h * np.tanh(Y @ K[j].T + b[j])
    drift = np.linalg.norm(Y - Y0) / np.linalg.norm(Y0) / np.finfo(np.float64).eps
    assert drift <= math.sqrt(N)
    assert np.abs(Z).max() <= math.sqrt(N) * np.finfo(np.float64).eps * 10
