"""`stablenet experiment verlet-longterm --quick`: seed 003 Fig. 3, the Hamiltonian network with K_v
under Verlet for N = 20 … 1000.

Every deterministic number of the claims is recomputed here by a numpy loop of seed 003's scheme
(z_{j+1/2} = z_{j−1/2} − h tanh(Kᵀy_j), y_{j+1} = y_j + h tanh(K z_{j+1/2})), independently of
stablenet's ODEBlock, and each check's verdict by its rule.
"""

import json
import math

import numpy as np
import pytest

from stablenet.app.experiments import EXPERIMENTS, verlet_longterm

from helpers import assert_png, run_on_other_threads

K = np.array([[2.0, -1.0, 0.0], [1.0, 2.0, 1.0]])          # rows k1ᵀ, k2ᵀ: K = K_vᵀ
Y0 = np.array([[0.1, 0.1], [-0.1, -0.1], [0.0, 0.5]])
H = 0.1


def log_cosh(x):
    return np.logaddexp(x, -x) - math.log(2.0)


def energy(y, p):
    return log_cosh(p).sum(-1) + log_cosh(y @ K).sum(-1)


def modified_energy(y, p, h):
    sech2 = lambda x: 1.0 / np.cosh(x) ** 2  # noqa: E731
    grad_T, grad_V = np.tanh(p), np.tanh(y @ K) @ K.T
    return energy(y, p) + h * h * ((sech2(y @ K) * (grad_T @ K) ** 2).sum(-1) / 12
                                   - (sech2(p) * grad_V ** 2).sum(-1) / 24)


def verlet(steps, h=H, method="verlet"):
    """(H_j, H̃_j, y_j, z_{j−1/2}) for j = 0 … N, the seed's staggered scheme (or forward Euler)."""
    y, z = Y0.copy(), np.zeros((3, 3))
    E, Et, ys, zs = [], [], [], []
    for j in range(steps + 1):
        p = (z - 0.5 * h * np.tanh(y @ K)) @ K.T       # synchronized p_j = K(z_{j−1/2} + z_{j+1/2})/2
        E.append(energy(y, p)), Et.append(modified_energy(y, p, h)), ys.append(y.copy()), zs.append(z.copy())
        if j == steps:
            break
        if method == "verlet":
            z = z - h * np.tanh(y @ K)
            y = y + h * np.tanh(z @ K.T)
        else:                                            # forward Euler on (y, z)
            y, z = y + h * np.tanh(z @ K.T), z - h * np.tanh(y @ K)
    return np.array(E), np.array(Et), np.array(ys), np.array(zs)


def drift(values):
    return np.abs(values / values[0] - 1).max(0)


def test_invariant_is_conserved_by_the_ode():
    # dH/dt = 0 along y' = tanh(Kz), z' = −tanh(Kᵀy): the two halves cancel exactly
    rng = np.random.default_rng(0)
    y, z = rng.normal(size=(5, 2)), rng.normal(size=(5, 3))
    dy, dz = np.tanh(z @ K.T), -np.tanh(y @ K)
    dH = (np.tanh(z @ K.T) * (dz @ K.T)).sum(-1) + (np.tanh(y @ K) * (dy @ K)).sum(-1)
    assert np.abs(dH).max() < 1e-14
    # and ε, δ from λ_max(KKᵀ) = 6 (KKᵀ = diag(5, 6))
    assert np.allclose(K @ K.T, np.diag([5.0, 6.0]))
    tol = verlet_longterm.tolerances()
    assert tol["epsilon"] == pytest.approx(H * H * 6 / 4, rel=1e-12)
    assert tol["energy"] == pytest.approx(0.015 / 0.985, rel=1e-12)


def test_forward_euler_fails_the_energy_check():
    # the check can fail: forward Euler on the same network gains energy far beyond δ
    E, *_ = verlet(1000, method="euler")
    assert drift(E).min() > 10 * verlet_longterm.tolerances()["energy"]


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("verlet_longterm")
    results, started, left = run_on_other_threads(verlet_longterm.run, out, quick=True)
    assert left == started                      # the one-thread run restores the caller's count
    return out, results


def test_quick_run_claims_recomputed(quick):
    out, results = quick
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(results))
    assert EXPERIMENTS["verlet-longterm"] is verlet_longterm
    tol = verlet_longterm.tolerances()
    steps = [20, 50, 100, 200, 500, 1000]
    assert results["settings"]["steps"] == steps
    E, Et, ys, zs = verlet(1000)
    # the N-layer network is the first N layers of the 1000-layer one (identical layers)
    energy_drift = [v for n in steps for v in drift(E[:n + 1])]
    for n in steps:
        net = results["networks"][str(n)]
        assert net["final_norms"] == pytest.approx(np.linalg.norm(ys[n], axis=1), rel=1e-10)
        assert net["modified_energy_drift"] == pytest.approx(drift(Et[:n + 1]), rel=1e-8)
    # the O(h²), O(h⁴) orders over t ≤ 100 at h and h/2
    D = {h: verlet(round(100 / h), h) for h in (H, H / 2)}
    order = np.log2(drift(D[H][0]) / drift(D[H / 2][0]))
    modified_order = np.log2(drift(D[H][1]) / drift(D[H / 2][1]))
    ratio = np.sqrt(E[1000] / E[20])

    records = results["claims"]
    assert isinstance(records, list) and len(records) == 6
    expected = [(energy_drift, 0.0, tol["energy"], 1e-8), (order, 2.0, 0.1, 1e-6), (modified_order, 4.0, 0.25, 1e-5),
                (None, 0.0, 1e-6, None), (None, 0.0, 1e-12, None), (ratio, 1.0, tol["norm_ratio"], 1e-10)]
    for record, (values, target, tolerance, rel) in zip(records, expected):
        assert record["kind"] == "deterministic"
        assert (record["target"], record["tolerance"]) == (target, pytest.approx(tolerance, rel=1e-12))
        if values is not None:
            assert record["values"] == pytest.approx(list(values), rel=rel)
        holds = all(abs(v - target) <= tolerance for v in record["values"])
        assert record["verdict"] == ("supported" if holds else "refuted")
        assert record["seed"] and record["claim"] and record["statistic"]
    # what the method guarantees: leapfrog's energy oscillation within δ (measured 0.0133 / 0.0152),
    # orders 2 and 4 (measured 1.985 and 3.96–3.99), reversibility to rounding (measured 4e-14)
    assert [r["verdict"] for r in records] == ["supported"] * 6
    assert len(records[0]["values"]) == 18 and len(records[4]["values"]) == 6


def test_reversal_and_flow_recomputed(quick):
    _, results = quick
    # backwards through the seed's scheme from (Y_N, Z_{N−1/2}) recovers (Y_0, 0) to rounding
    for n in (20, 1000):
        _, _, ys, zs = verlet(n)
        y, z = ys[-1].copy(), zs[-1].copy()
        for _ in range(n):
            y = y - H * np.tanh(z @ K.T)
            z = z + H * np.tanh(y @ K)
        err = max(np.abs(y - Y0).max(), np.abs(z).max()) / 0.5
        assert err < 1e-12 and results["networks"][str(n)]["reversal_error"] < 1e-12
    # the ODE's own H along RK4, h = 0.01, t ≤ 100 (synchronized z: p = Kz)
    f = lambda s: np.concatenate([np.tanh(s[:, 2:] @ K.T), -np.tanh(s[:, :2] @ K)], 1)  # noqa: E731
    s, h = np.concatenate([Y0, np.zeros((3, 3))], 1), 0.01
    E0 = energy(Y0, np.zeros((3, 2)))
    worst = np.zeros(3)
    for _ in range(10000):
        k1 = f(s); k2 = f(s + h / 2 * k1); k3 = f(s + h / 2 * k2); k4 = f(s + h * k3)  # noqa: E702
        s = s + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        worst = np.maximum(worst, np.abs(energy(s[:, :2], s[:, 2:] @ K.T) / E0 - 1))
    assert results["claims"][3]["values"] == pytest.approx(worst, rel=1e-3, abs=1e-12)
    assert worst.max() < 1e-6
    # the Euclidean norm ratio |y_1000|/|y_20| is not 1 (recorded only); the envelopes are kept
    lt = results["long_term"]
    assert max(abs(r - 1) for r in lt["euclidean_norm_ratio"]) > 0.1
    assert all(abs(r - 1) < 0.05 for r in lt["envelope_ratio"])


def test_quick_run_figures(quick):
    out, results = quick
    assert results["figures"] == ["verlet_longterm.png", "verlet_energy.png"]
    for name in results["figures"]:
        assert_png(out / name)
