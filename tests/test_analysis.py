"""Stability analysis: regions against known facts, eigenvalues against analytic cases,
sensitivity against exact linear propagation, and the `stablenet analyze` command."""

import json
import math
import subprocess
import sys

import pytest
import torch

import stablenet as sn
from stablenet.analysis import amplification, forward_sensitivity, is_stable, layer_jacobians, stability_summary
from stablenet.analysis.stability import boundary_locus

from helpers import assert_cli_error, assert_png


def linear_block(K, method, steps=6, T=1.0, nt=3):
    """f(Y) = K Y: identity activation, zero bias, the same K at every control point."""
    dynamics = sn.SingleLayer(K.shape[0], activation="identity", nt=nt).double()
    with torch.no_grad():
        dynamics.K.copy_(K)
        dynamics.b.zero_()
    return sn.ODEBlock(dynamics, T=T, steps=steps, method=method)


def test_known_stability_facts():
    assert float(amplification("euler", -1.0)) == 0.0
    assert float(amplification("euler", 0.1j)) == pytest.approx(math.sqrt(1.01), abs=1e-15)
    # RK4 contains the imaginary segment up to 2√2 = 2.828…
    assert bool(is_stable("rk4", 2.82j)) and not bool(is_stable("rk4", 2.84j))
    # RK4's real stability interval ends at −2.785…
    assert bool(is_stable("rk4", -2.78)) and not bool(is_stable("rk4", -2.79))
    # AB3's real stability interval is [−6/11, 0]
    assert bool(is_stable("ab3", -0.54)) and not bool(is_stable("ab3", -0.55))
    # Verlet/leapfrog: the imaginary segment i·[−2, 2] and nothing else
    assert bool(is_stable("verlet", 1.99j)) and not bool(is_stable("verlet", 2.01j))
    assert not bool(is_stable("verlet", 0.01)) and not bool(is_stable("leapfrog", -0.01 + 1j))
    # points on AB3's boundary locus have a root of modulus 1
    locus = boundary_locus(64)
    assert torch.allclose(amplification("ab3", locus[1:-1]).min(), torch.tensor(1.0, dtype=torch.float64), atol=1e-9)


@pytest.mark.parametrize("z", [-0.3 + 0.2j, 0.5j, -0.5])
def test_ab3_amplification_is_its_growth_rate(z):
    """Growth per step of AB3 on y' = λy over many steps matches the largest characteristic root."""
    h, steps = 0.1, 400
    lam = z / h
    A = torch.tensor([[lam.real, -lam.imag], [lam.imag, lam.real]], dtype=torch.float64)  # λ as a 2×2 real map
    y0 = torch.tensor([[1.0, 0.3]], dtype=torch.float64)
    ys = sn.integrate(lambda t, y: y @ A.T, y0, T=h * steps, steps=steps, method="ab3", return_states=True)
    rate = float((ys[-1].norm() / ys[-101].norm()) ** (1 / 100))
    assert rate == pytest.approx(float(amplification("ab3", z)), rel=1e-3)


@pytest.mark.parametrize("method", ["euler", "midpoint", "rk4", "ab3"])
def test_eigenvalues_of_linear_dynamics_are_eig_K(method):
    K = torch.randn(5, 5, dtype=torch.float64)
    block = linear_block(K, method)
    lam = layer_jacobians(block, torch.randn(4, 5, dtype=torch.float64)).eigenvalues()
    expected = torch.linalg.eigvals(K)
    for got in lam.reshape(-1, 5):
        # match each computed eigenvalue to its nearest exact one
        assert (got[:, None] - expected[None, :]).abs().min(dim=1).values.max() < 1e-10
    summary = stability_summary(block, torch.randn(4, 5, dtype=torch.float64))
    h = block.h
    R = {"euler": lambda z: 1 + z, "midpoint": lambda z: 1 + z + z * z / 2,
         "rk4": lambda z: 1 + z + z**2 / 2 + z**3 / 6 + z**4 / 24}
    if method in R:
        exact = max(abs(R[method](h * complex(l))) for l in expected)
        assert summary["max_amplification"] == pytest.approx(exact, rel=1e-10)
        assert summary["fraction_stable"] == pytest.approx(
            sum(abs(R[method](h * complex(l))) <= 1 + 1e-6 for l in expected) / 5)
    assert summary["max_real"] == pytest.approx(float(expected.real.max()), abs=1e-10)
    assert summary["max_abs"] == pytest.approx(float(expected.abs().max()), rel=1e-10)
    assert summary["continuous_stable"] == bool(expected.real.max() <= 0)
    # −KᵀK: symmetric negative semidefinite, rank 3 — zero eigenvalues computed to round-off count as ≤ 0
    Kr = K[:3]
    assert stability_summary(linear_block(-Kr.T @ Kr, method), torch.randn(4, 5, dtype=torch.float64))["continuous_stable"]


def test_hamiltonian_jacobians_have_imaginary_spectrum_and_verlet_verdict():
    block = sn.ODEBlock(sn.Hamiltonian(4, 3, nt=4).double(), T=2.0, steps=8, method="verlet")
    lj = layer_jacobians(block, torch.randn(6, 4, dtype=torch.float64))
    assert lj.jacobians.shape == (8, 6, 7, 7)
    lam = lj.eigenvalues()
    assert lam.real.abs().max() < 1e-10
    summary = stability_summary(block, torch.randn(6, 4, dtype=torch.float64))
    inside = (lam.imag.abs() * block.h <= 2).double().mean()
    assert summary["fraction_stable"] == pytest.approx(float(inside))


def test_leapfrog_uses_h_sqrt_mu():
    K = -torch.diag(torch.tensor([1.0, 4.0, 100.0], dtype=torch.float64))  # Y'' = K Y, μ = −1, −4, −100
    block = linear_block(K, "leapfrog", steps=5, T=1.0)  # h = 0.2: h√|μ| = 0.2, 0.4, 2.0
    summary = stability_summary(block, torch.randn(2, 3, dtype=torch.float64))
    assert summary["fraction_stable"] == pytest.approx(1.0)
    block.steps = 4  # h = 0.25: h√100 = 2.5 > 2
    summary = stability_summary(block, torch.randn(2, 3, dtype=torch.float64))
    assert summary["fraction_stable"] == pytest.approx(2 / 3)


def test_sensitivity_of_linear_euler_network_is_exact():
    K = torch.randn(4, 4, dtype=torch.float64)
    block = linear_block(K, "euler", steps=10, T=2.0, nt=1)
    x = torch.randn(3, 4, dtype=torch.float64)
    M = torch.linalg.matrix_power(torch.eye(4, dtype=torch.float64) + block.h * K, 10)
    worst = forward_sensitivity(block, x, direction="worst", iterations=100)
    assert worst["mean"][-1] == pytest.approx(float(torch.linalg.matrix_norm(M, ord=2)), rel=1e-6)
    assert worst["mean"][0] == pytest.approx(1.0)
    random = forward_sensitivity(block, x, generator=torch.Generator().manual_seed(1))
    assert random["mean"][-1] <= worst["mean"][-1] + 1e-9


def test_stable_architecture_is_less_sensitive_than_an_unstable_one():
    torch.manual_seed(3)
    K = 2.0 * torch.randn(6, 6, dtype=torch.float64)
    unstable = linear_block(K + 3 * torch.eye(6, dtype=torch.float64), "euler", steps=40, T=4.0, nt=1)
    stable = linear_block(K - K.T, "rk4", steps=40, T=4.0, nt=1)
    x = torch.randn(5, 6, dtype=torch.float64)
    s_unstable = forward_sensitivity(unstable, x, direction="worst")["mean"][-1]
    s_stable = forward_sensitivity(stable, x, direction="worst")["mean"][-1]
    assert s_stable == pytest.approx(1.0, abs=1e-3)  # RK4 on K − Kᵀ with h·ρ < 2.8: norm preserved
    assert s_unstable > 1e4


def test_analysis_rejects_bad_input():
    block = sn.ODEBlock(sn.SingleLayer(3), T=1.0, steps=2, method="euler")
    with pytest.raises(ValueError, match="x has feature width 4"):
        layer_jacobians(block, torch.zeros(2, 4))
    with pytest.raises(TypeError, match="block must be an ODEBlock"):
        layer_jacobians(torch.nn.Linear(3, 3), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="direction must be one of"):
        forward_sensitivity(block, torch.zeros(2, 3), direction="best")
    with pytest.raises(ValueError, match="method must be one of"):
        amplification("rk5", 0.1)


def test_analyze_command(tmp_path):
    from stablenet.app.config import parse_config
    from stablenet.app.training import train

    config = parse_config({
        "data": {"name": "ellipses", "options": {"n_train": 100, "n_val": 50, "n_test": 50}},
        "model": {"opening": "duplicate", "blocks": [
            {"dynamics": "antisymmetric", "width": 4, "T": 2.0, "steps": 4, "method": "rk4"},
            {"dynamics": "hamiltonian", "width": 4, "width_z": 2, "T": 1.0, "steps": 4, "method": "verlet"}]},
        "training": {"epochs": 1, "threads": 1}})
    train(config, tmp_path / "run", progress=False)
    proc = subprocess.run([sys.executable, "-m", "stablenet.app.cli", "analyze", str(tmp_path / "run")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "run" / "analysis" / "stability.json").read_text())
    assert [b["dynamics"] for b in report["blocks"]] == ["Antisymmetric", "Hamiltonian"]
    assert [len(b["layers"]) for b in report["blocks"]] == [4, 4]
    assert abs(report["blocks"][1]["max_real"]) < 1e-10  # Hamiltonian: imaginary spectrum
    assert report["blocks"][1]["continuous_stable"] and all(lay["continuous_stable"] for lay in report["blocks"][1]["layers"])
    for name in report["figures"]:
        assert_png(tmp_path / "run" / "analysis" / name)
    for bad in [tmp_path / "missing", tmp_path]:
        proc = subprocess.run([sys.executable, "-m", "stablenet.app.cli", "analyze", str(bad)],
                              capture_output=True, text=True)
        assert proc.returncode == 2, proc.stderr
        assert_cli_error(proc.stderr)
