"""`stablenet experiment antisymmetric-euler --quick`: seeds 000/001, forward Euler on K − Kᵀ grows
for every h; RK4 (h·ρ ≤ 2√2) and leapfrog on Y'' = −AᵀA Y (h·ρ ≤ 2) do not."""

import json
import math

import torch

from stablenet import integrate
from stablenet.experiments import antisymmetric_euler as ae


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


def test_quick_run_numbers(tmp_path):
    results = ae.run(tmp_path, quick=True)
    assert json.loads((tmp_path / "results.json").read_text()) == json.loads(json.dumps(results))
    assert results["experiment"] == "antisymmetric-euler"
    assert all(results["claims"].values()), results["claims"]
    for name in results["figures"]:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

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
