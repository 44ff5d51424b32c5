"""`stablenet experiment discretization-impact --quick`: seed 002, 'unstable' / 'medium' / 'stable'.

The claim records are recomputed here from the per-seed values in results.json by the verdict rule
written out again below (independently of stablenet.app.experiments.verdict); the stability
measurement is checked against numpy on a network whose eigenvalues are known in closed form.
"""

import json
import math

import numpy as np
import pytest
import torch

from stablenet import Antisymmetric
from stablenet.app.experiments import discretization_impact as di

from helpers import assert_png, expected_verdict, run_on_other_threads


def ab3_amplification(z):
    """max |ξ| over the roots of ξ³ − (1 + 23z/12)ξ² + (16z/12)ξ − 5z/12 (AB3 on y' = λy, z = hλ)."""
    return max(abs(r) for r in np.roots([1.0, -1 - 23 * z / 12, 16 * z / 12, -5 * z / 12]))


def test_erraticness():
    assert di.erraticness([3.0, 2.0, 1.0]) == 0.0
    assert di.erraticness([1.0, 2.0]) == 1.0
    assert di.erraticness([3.0, 1.0, 2.0, 1.0]) == pytest.approx(0.25)   # up 1 of a total variation of 4
    assert di.erraticness([2.0, 2.0]) == 0.0


def test_networks_share_opening_and_initial_weights():
    nets = di.build_networks(3)
    assert list(nets) == ["unstable", "medium", "stable"]
    u, m, s = nets["unstable"], nets["medium"], nets["stable"]
    for other in (m, s):
        assert torch.equal(u.opening[0].weight, other.opening[0].weight)
        assert u.opening[0].weight.data_ptr() != other.opening[0].weight.data_ptr()
    assert tuple(u.opening[0].weight.shape) == (8, 2) and u.opening[0].bias is None
    for (na, a), (nb, b) in zip(u.blocks[0].named_parameters(), s.blocks[0].named_parameters()):
        assert na == nb and torch.equal(a, b)
    assert [(n.blocks[0].T, n.blocks[0].steps, n.blocks[0].integrator.name, n.blocks[0].dynamics.nt)
            for n in nets.values()] == [(10.0, 32, "ab3", 32), (5.0, 32, "verlet", 32), (0.2, 32, "ab3", 32)]
    # the antisymmetric layer: ½(K − Kᵀ), no damping; weights 0.1 × stablenet's initialization
    A = u.blocks[0].dynamics.K
    assert torch.allclose(A, -A.transpose(-1, -2))
    torch.manual_seed(3)
    torch.nn.Linear(2, 8, bias=False)
    plain = Antisymmetric(8, nt=32)
    assert torch.allclose(0.1 * plain.parametrizations.K.original, u.blocks[0].dynamics.parametrizations.K.original)
    assert not torch.equal(di.build_networks(4)["unstable"].opening[0].weight, u.opening[0].weight)


def test_stability_measurement_against_closed_form():
    """Tiny inputs (tanh' = 1): J = ½(K − Kᵀ) with eigenvalues ±i, ±3i, ±0.01i and 0 (×2); at
    h = 10/32, |hλ| = 0.31 is inside AB3's region and 0.94 outside (the region holds i·[−0.72,
    0.72]); the pair ±0.01i is 'near zero' and the two zeros too, so half of the rest are outside."""
    model = di.build_networks(0)["unstable"].double()
    A = np.zeros((8, 8))
    for k, w in enumerate((1.0, 3.0, 0.01)):
        A[2 * k, 2 * k + 1], A[2 * k + 1, 2 * k] = w, -w
    with torch.no_grad():
        dyn = model.blocks[0].dynamics
        dyn.parametrizations.K.original.copy_(torch.from_numpy(A)[None].expand(32, 8, 8))  # ½(A − Aᵀ) = A
        dyn.b.zero_()
        model.opening[0].weight.fill_(1e-7)
    st = di.stability(model, torch.randn(20, 2, dtype=torch.float64))
    lam = np.linalg.eigvals(A)
    h = 10.0 / 32
    amp = np.array([ab3_amplification(h * v) for v in lam])
    keep = np.abs(lam) >= di.NEAR_ZERO
    assert st["h"] == h
    assert st["share_outside"] == pytest.approx(((amp > 1.01) & keep).sum() / keep.sum()) == 0.5
    assert st["share_near_zero"] == pytest.approx(0.5)       # ±0.01i and the two zeros of 8
    assert st["max_abs_z"] == pytest.approx(3 * h, rel=1e-6)
    assert st["max_amplification"] == pytest.approx(amp.max(), rel=1e-6)
    assert st["max_re_over_abs"] < 1e-12


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("discretization_impact")
    results, started, left = run_on_other_threads(di.run, out, quick=True)
    assert left == started                      # the one-thread run restores the caller's count
    return out, results


def test_quick_run_numbers(quick):
    out, results = quick
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(results))
    s, per = results["settings"], results["per_seed"]
    n = s["seeds"]
    assert n >= 2 and results["seeds"] == list(range(n))
    assert list(per) == ["unstable", "medium", "stable"]
    steps = s["steps_level_1"] + s["steps_level_2"]
    for name, p in per.items():
        for key, values in p.items():
            assert len(values) == n, (name, key)
        hist = results["history_seed_0"][name]
        assert [h["layers"] for h in hist] == [32] * s["steps_level_1"] + [64] * s["steps_level_2"]
        assert p["final_val_accuracy"][0] == hist[-1]["val_accuracy"]
        for level in (hist[:s["steps_level_1"]], hist[s["steps_level_1"]:]):
            objective = [h["objective"] for h in level]       # Gauss–Newton + line search never goes up
            assert all(b <= a * (1 + 1e-5) for a, b in zip(objective, objective[1:])), name
        curves = results["history_over_seeds"][name]["val_accuracy"]
        assert len(curves["mean"]) == steps and curves["mean"][-1] == pytest.approx(np.mean(p["final_val_accuracy"]))
        for i in range(n):
            v = p["final_val_accuracy"][i] * 5 * s["val_per_class"]
            assert math.isclose(v, round(v), abs_tol=1e-9)
            assert p["generalization_gap"][i] == pytest.approx(p["final_val_loss"][i] - p["final_train_loss"][i])
            before, after = p["prolongation_train_loss_before"][i], p["prolongation_train_loss_after"][i]
            assert p["prolongation_change"][i] == pytest.approx(abs(after / before - 1))
            assert 0 <= p["erraticness_level_1"][i] <= 1
            assert 0 <= p["share_outside_level_1"][i] <= 1
        # quick runs (7 Gauss–Newton steps on 40 points per class) end well above chance (20%)
        assert min(p["final_val_accuracy"]) > 0.4, name
        summary = results["configurations"][name]
        assert summary["final_val_accuracy"]["mean"] == pytest.approx(np.mean(p["final_val_accuracy"]), rel=1e-12)
        assert summary["h"] == [summary["T"] / 32, summary["T"] / 64]
    stable = per["stable"]
    # T = 0.2: |hλ| ≤ h‖½(K − Kᵀ)‖ is far inside AB3's region (which holds i·[−0.72, 0.72]), the
    # prolongation changes the loss by AB3's O(h³) error at h = 0.006, and a feature moves at most
    # T·√8 = 0.57 in absolute terms
    assert max(stable["max_abs_z_level_1"] + stable["max_abs_z_level_2"]) < 0.72
    assert stable["share_outside_level_1"] == stable["share_outside_level_2"] == [0.0] * n
    assert max(stable["prolongation_change"]) < 1e-3
    assert max(stable["relative_feature_movement"]) < 0.57 / 0.1
    # the antisymmetric and Hamiltonian Jacobians have imaginary spectra (to float64 rounding)
    for p in per.values():
        assert max(p["max_re_over_abs_init"] + p["max_re_over_abs_level_1"] + p["max_re_over_abs_level_2"]) < 1e-12
    for name in results["figures"]:
        assert_png(out / name)
    assert results["figures"] == ["discretization_convergence.png", "discretization_stability.png",
                                  "discretization_dynamics.png"]


def _others(per, key, name, how, scale=1.0):
    others = [o for o in per if o != name]
    return [scale * (per[name][key][i] - how(per[o][key][i] for o in others)) for i in range(len(per[name][key]))]


def test_quick_run_claims_recomputed_from_the_seeds(quick):
    _, results = quick
    per, n = results["per_seed"], results["settings"]["seeds"]
    records = results["claims"]
    assert isinstance(records, list) and len(records) == 10
    # 1: deterministic, max |Re λ| / max |λ| of the nine (three networks × seeds) trained networks, target 0
    first = records[0]
    values = [v for name in per for v in per[name]["max_re_over_abs_level_2"]]
    assert first["kind"] == "deterministic" and (first["target"], first["tolerance"]) == (0.0, 1e-9)
    assert first["values"] == pytest.approx(values, rel=1e-12, abs=0)
    assert first["verdict"] == ("supported" if max(abs(v) for v in values) <= 1e-9 + 1e-9 else "refuted")
    u, m = per["unstable"], per["medium"]
    expected = [
        (per["unstable"]["share_outside_level_1"], "greater", 0.05),
        (per["stable"]["share_outside_level_1"], "smaller", 0.01),
        (per["stable"]["relative_feature_movement"], "smaller", 0.2),
        (_others(per, "final_val_accuracy", "stable", min, 100), "smaller", 0.0),
        (_others(per, "final_val_loss", "medium", min), "smaller", 0.0),
        (_others(per, "final_val_accuracy", "medium", max, 100), "greater", 0.0),
        (_others(per, "erraticness_level_1", "unstable", max), "greater", 0.0),
        ([a - b for a, b in zip(u["generalization_gap"], m["generalization_gap"])], "greater", 0.0),
        (_others(per, "prolongation_change", "unstable", max), "greater", 0.0),
    ]
    for record, (values, kind, reference) in zip(records[1:], expected):
        assert (record["kind"], record["reference"], record["margin"]) == (kind, reference, None)
        assert record["n"] == n
        assert record["values"] == pytest.approx(values, rel=1e-12, abs=1e-12)
        mean, std, sem, interval, verdict = expected_verdict(values, kind, reference, None)
        assert record["mean"] == pytest.approx(mean, rel=1e-9, abs=1e-12)
        assert record["std"] == pytest.approx(std, rel=1e-9, abs=1e-12)
        assert record["sem"] == pytest.approx(sem, rel=1e-9, abs=1e-12)
        assert record["interval"] == pytest.approx(interval, rel=1e-9, abs=1e-12)
        assert record["verdict"] == verdict, record
    for record in records:
        assert record["seed"] and record["claim"] and record["statistic"]
    # what holds on every seed by construction: the 'stable' network's spectrum is inside AB3's region
    assert records[2]["verdict"] == "supported"
