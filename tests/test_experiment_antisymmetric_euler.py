"""`stablenet experiment antisymmetric-euler --quick`: seeds 000/001, forward Euler on K − Kᵀ grows
for every h; RK4 (h·ρ ≤ 2√2) and leapfrog on Y'' = −AᵀA Y (h·ρ ≤ 2) do not."""

import json
import math

import numpy as np
import pytest
import torch

from stablenet import integrate
from stablenet.app.experiments import antisymmetric_euler as ae

from helpers import assert_png, numpy_step


def test_integrators_match_closed_forms():
    A = ae.random_antisymmetric()
    assert torch.allclose(A, -A.transpose(-1, -2))
    assert torch.allclose(torch.linalg.eigvals(A).abs().amax(-1), torch.ones(3, dtype=torch.float64), atol=1e-12)
    h, steps = 0.7, 10
    eye = torch.eye(6, dtype=torch.float64).expand_as(A).clone()
    YN = integrate(lambda t, y: y @ A.transpose(-1, -2), eye, T=steps * h, steps=steps, method="euler")
    assert torch.allclose(YN, torch.linalg.matrix_power(eye + h * A, steps).transpose(-1, -2), atol=1e-12)
    # leapfrog with zero initial velocity on y'' = −ω² y: y_j = cos(jφ) y_0, cos φ = 1 − (hω)²/2
    omega, h = 1.3, 1.1
    states = integrate(lambda t, y: -omega**2 * y, torch.ones(1, 1, dtype=torch.float64), T=50 * h, steps=50,
                       method="leapfrog", return_states=True)
    phi = math.acos(1 - (h * omega) ** 2 / 2)
    expected = torch.cos(phi * torch.arange(51, dtype=torch.float64))
    assert torch.allclose(states[:, 0, 0], expected, atol=1e-12)


def numpy_nonlinear(A, Y0, hs, method):
    """(‖Y_N‖_F/‖Y_0‖_F)^(1/N) of dY/dt = tanh(AY), N = ae.STEPS, every h at once: (matrices, h)."""
    f = lambda Y: np.tanh(Y @ np.swapaxes(A, -1, -2))  # noqa: E731
    h = hs[:, None, None, None]
    Y = np.broadcast_to(Y0, (len(hs), *Y0.shape)).copy()
    for _ in range(ae.STEPS):
        Y = numpy_step(method, f, Y, h)
    ratio = np.linalg.norm(Y, axis=(-1, -2)) / np.linalg.norm(Y0, axis=(-1, -2))
    return (ratio ** (1 / ae.STEPS)).T


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("antisymmetric_euler")
    return out, ae.run(out, quick=True)


def test_quick_run_numbers(quick_run):
    tmp_path, results = quick_run
    assert json.loads((tmp_path / "results.json").read_text()) == json.loads(json.dumps(results))
    assert results["experiment"] == "antisymmetric-euler"
    for name in results["figures"]:
        assert_png(tmp_path / name)

    h = torch.tensor(results["h"], dtype=torch.float64)
    amp = {k: torch.tensor(v, dtype=torch.float64) for k, v in results["amplification"].items()}
    assert math.isclose(float(h[0]), 0.01) and math.isclose(float(h[-1]), 3.0)
    # Euler: √(1 + (hρ)²) with ρ = 1, integrated and exact, at every h (smallest: 1 + 5e-5)
    closed = torch.sqrt(1 + h**2)
    assert float((amp["euler_empirical"] - closed).abs().max()) < 1e-10
    assert float((amp["euler_exact"] - closed).abs().max()) < 1e-12
    assert float(amp["euler_empirical"][:, 0].min()) > 1.0 + 4e-5
    # RK4: integrated = stability polynomial; ≤ 1 up to h·ρ = 2.5, > 1 beyond 2√2
    assert float((amp["rk4_empirical"] - amp["rk4_exact"]).abs().max()) < 1e-8
    assert float(amp["rk4_exact"][:, h <= 2.5].max()) <= 1.0 + 1e-12
    assert float(amp["rk4_exact"][:, h > 2 * math.sqrt(2)].min()) > 1.0
    # at h·ρ = 3 the ω = 1 mode gives |R(3i)| = √(1 − 3⁶/72 + 3⁸/576)
    assert abs(float(amp["rk4_exact"][:, -1].max()) - math.sqrt(1 - 3**6 / 72 + 3**8 / 576)) < 1e-12
    # leapfrog on Y'' = −AᵀA Y: never above ‖Y_0‖ for h·ρ ≤ 2;
    # at h·ρ = 3 the amplification is the root of ξ² − (2 − 9)ξ + 1 = 0
    lf_max = torch.tensor(results["leapfrog_max_norm_ratio"], dtype=torch.float64)
    assert float(lf_max[:, h <= 2].max()) <= 1.0 + 1e-12
    assert float(lf_max[:, h > 2].min()) > 1e3
    root = 3.5 + math.sqrt(3.5**2 - 1)
    assert abs(float(amp["leapfrog_exact"][:, -1].max()) - root) < 1e-12
    emp = amp["leapfrog_empirical"][:, -1]
    assert bool(((emp <= root * (1 + 1e-12)) & (emp >= root * 0.5 ** (1 / 100) * (1 - 1e-9))).all())
    # nonlinear tanh(AY): Euler adds growth over RK4 at every h
    assert float((amp["nonlinear_euler"] / amp["nonlinear_rk4"]).min()) > 1.0
    assert results["summary"]["max_relative_disagreement"]["rk4_empirical_vs_exact"] < 1e-10


def test_claims_against_closed_forms_and_an_independent_integration(quick_run):
    """Each claim: what the stability polynomials say for the recorded ω (computed here from
    numpy's eigenvalues, in real arithmetic), and the nonlinear runs redone by a numpy loop."""
    _, results = quick_run
    records = results["claims"]
    assert isinstance(records, list) and len(records) == 8
    A = ae.random_antisymmetric().numpy()
    omegas = np.sort(np.abs(np.linalg.eigvals(A).imag), axis=-1)          # ±iω_k, each ω twice
    assert np.allclose(np.sort(results["omegas"], axis=-1), omegas, atol=1e-12)
    h = np.array(results["h"])
    y = h[None, :, None] * omegas[:, None, :]                               # h·ω_k: (matrix, h, k)
    euler = np.sqrt(1 + y**2).max(-1)
    rk4 = np.sqrt(1 - y**6 / 72 + y**8 / 576).max(-1)                      # |R(iy)|² of RK4
    b = np.abs(2 - y**2) / 2
    leapfrog = np.where(y <= 2, 1.0, b + np.sqrt(np.clip(b**2 - 1, 0, None))).max(-1)
    amp = {k: np.array(v) for k, v in results["amplification"].items()}
    for key, closed in (("euler", euler), ("rk4", rk4)):
        assert np.allclose(amp[f"{key}_exact"], closed, rtol=1e-12, atol=0), key
        assert np.allclose(amp[f"{key}_empirical"], closed, rtol=1e-10, atol=0), key
    assert np.allclose(amp["leapfrog_exact"], leapfrog, rtol=1e-12, atol=0)

    # ρ(A) = 1, so h·ω ≤ h: Euler's √(1 + (hω)²) > 1 for every h > 0; RK4's |R| ≤ 1 while h ≤ 2.5 < 2√2
    # and > 1 for h > 2√2 (the ω = 1 mode); leapfrog's root 1 for h ≤ 2, > 1 + 1e-3 beyond, so its
    # norm ratio grows at least like that root^N / 2: the stability claims are theorems here
    assert (euler > 1).all()
    assert rk4[:, h <= ae.RK4_SAFE].max() <= 1 + 1e-15 and rk4[:, h > ae.RK4_LIMIT].min() > 1
    assert leapfrog[:, h > 2].min() > 1 + 1e-3

    # nonlinear dY/dt = tanh(AY) from the experiment's unit vectors (generator seed 1)
    g = torch.Generator().manual_seed(1)
    Y0 = torch.randn(A.shape[0], 16, A.shape[-1], generator=g, dtype=torch.float64)
    Y0 = (Y0 / Y0.norm(dim=-1, keepdim=True)).numpy()
    nonlinear = {m: numpy_nonlinear(A, Y0, h, m) for m in ("euler", "rk4")}
    for m in nonlinear:
        assert np.allclose(amp[f"nonlinear_{m}"], nonlinear[m], rtol=1e-10, atol=0), m

    # leapfrog's norms from the Chebyshev recurrence (exact for zero initial velocity), in numpy
    c = 1 - y**2 / 2
    t_prev, t = np.ones_like(c), c.copy()
    cheb = np.maximum(1.0, np.abs(c))
    for _ in range(2, ae.STEPS + 1):
        t_prev, t = t, 2 * c * t - t_prev
        cheb = np.maximum(cheb, np.abs(t))
    cheb = cheb.max(-1)                                                     # (matrix, h)
    lf_max = np.array(results["leapfrog_max_norm_ratio"])
    assert np.allclose(lf_max, cheb, rtol=1e-10, atol=0)

    # each record against the analytic value, to float64 rounding (1e-10), verdict by the rule here
    h0, h1 = h[0], h[-1]
    x = 1 - h1**2 / 2                                                       # T_N(x), |x| > 1
    ours = [
        (amp["euler_empirical"][:, 0] - 1, math.sqrt(1 + h0**2) - 1, 1e-10),
        (np.abs(amp["euler_empirical"] / np.sqrt(1 + h**2) - 1).max(-1), 0.0, 1e-10),
        (amp["rk4_empirical"][:, h <= ae.RK4_SAFE].max(-1), 1.0, 1e-10),
        (amp["rk4_empirical"][:, -1], math.sqrt(1 - h1**6 / 72 + h1**8 / 576), 1e-10),
        (lf_max[:, h <= ae.LEAPFROG_LIMIT].max(-1), 1.0, 1e-10),
        (amp["leapfrog_empirical"][:, -1], math.cosh(ae.STEPS * math.acosh(abs(x))) ** (1 / ae.STEPS), 1e-10),
        (None, 0.0, 1e-10),
        ((nonlinear["rk4"] / nonlinear["euler"]).max(-1), 0.5, 0.5),       # "Euler > RK4": RK4/Euler in [0, 1]
    ]
    for record, (values, target, tolerance) in zip(records, ours):
        assert record["kind"] == "deterministic" and record["claim"] and record["statistic"] and record["seed"]
        if values is None:                                                  # the integrators' self-check
            values = list(results["summary"]["max_relative_disagreement"].values())
        assert record["values"] == pytest.approx(list(values), rel=1e-9, abs=1e-12), record["claim"]
        assert (record["target"], record["tolerance"]) == pytest.approx((target, tolerance), rel=1e-12)
        slack = 1e-9 * max(1.0, abs(target), tolerance)
        holds = all(abs(v - target) <= tolerance + slack for v in values)
        assert record["verdict"] == ("supported" if holds else "refuted"), record
    # the analytic values themselves: Euler > 1 already at h·ρ = 0.01, RK4 1.505 and leapfrog 6.807 at 3
    assert records[0]["target"] > 4e-5 and records[3]["target"] > 1.5 and records[5]["target"] > 6.8
    # Euler exceeds RK4 at every h by a margin (measured max RK4/Euler 0.99998 < 1)
    assert max(records[7]["values"]) < 1 - 1e-6
    assert all(r["verdict"] == "supported" for r in records), records
