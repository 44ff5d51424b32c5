"""`stablenet experiment rk4-vs-euler --quick`: seed 004 Fig. 3.9, RK4 with 4h vs forward Euler.

The claim records are recomputed here from the per-seed values in results.json (and the
deterministic ones from a numpy recomputation of the objective functions), by the verdict rule
written out again below, independently of stablenet.app.experiments.verdict.
"""

import json
import math
import types

import numpy as np
import pytest
import torch

from stablenet import SingleLayer
from stablenet.app import cli
from stablenet.app.experiments import EXPERIMENTS, rk4_vs_euler

from helpers import assert_png, expected_verdict, numpy_step, run_on_other_threads


def test_kernel_is_the_seeds_circulant():
    K = rk4_vs_euler.kernel(torch.tensor(0.5), torch.tensor(2.0))
    assert torch.equal(K, torch.tensor([[-2.5, 0.5, 2.0], [2.0, -2.5, 0.5], [0.5, 2.0, -2.5]]))
    assert torch.allclose(K.sum(-1), torch.zeros(3))


def test_networks_share_weights_and_have_the_listings_opening():
    euler = rk4_vs_euler.build_network("euler", 32, seed=3)
    rk4 = rk4_vs_euler.with_integrator(euler, "rk4", 8)
    # the learned opening tanh(K0 x): 8 × 2 weights, no bias (the listing's thetaOpen, 16 numbers)
    assert [tuple(p.shape) for p in euler.opening.parameters()] == [(8, 2)]
    x = torch.tensor([[0.3, -1.2]])
    assert torch.allclose(euler.opening(x), torch.tanh(x @ euler.opening[0].weight.T))
    for (na, a), (nb, b) in zip(euler.named_parameters(), rk4.named_parameters()):
        assert na == nb and torch.equal(a, b) and a.data_ptr() != b.data_ptr()
    assert (euler.blocks[0].steps, rk4.blocks[0].steps) == (32, 8)
    assert rk4.blocks[0].dynamics.nt == 8
    # the listing's th0 = 1e-1*initTheta: the network weights are 0.1 × stablenet's initialization
    torch.manual_seed(3)
    plain = SingleLayer(8, nt=8, activation="tanh")
    for p, q in zip(plain.parameters(), euler.blocks[0].dynamics.parameters()):
        assert torch.allclose(0.1 * p, q)
    # a different seed, different weights
    other = rk4_vs_euler.build_network("euler", 32, seed=4)
    assert not torch.equal(other.opening[0].weight, euler.opening[0].weight)


def numpy_objective(theta, Y0, C, steps, method):
    """Φ(θ) = ½‖Y_N − C‖² on the θ grid, dY/dt = tanh(K(θ)Y) on [0, 10], by a numpy loop that
    uses K's circulant structure: (K y)_i = −(θ1 + θ2) y_i + θ1 y_(i+1) + θ2 y_(i+2)."""
    t1, t2 = (t[:, :, None, None] for t in np.meshgrid(theta, theta, indexing="ij"))
    f = lambda Y: np.tanh(-(t1 + t2) * Y + t1 * Y[..., [1, 2, 0]] + t2 * Y[..., [2, 0, 1]])  # noqa: E731
    h = rk4_vs_euler.T / steps
    Y = np.broadcast_to(Y0, (len(theta), len(theta), *Y0.shape))
    for _ in range(steps):
        Y = numpy_step(method, f, Y, h)
    return 0.5 * ((Y - C) ** 2).sum((-2, -1))


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("rk4_vs_euler")
    results, started, left = run_on_other_threads(rk4_vs_euler.run, out, quick=True)
    assert left == started                      # the one-thread run restores the caller's count
    return out, results


def test_quick_run_objective_functions(quick):
    out, results = quick
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(results))
    fine = results["objective_functions"]["fine"]
    assert (fine["euler_steps"], fine["rk4_steps"]) == (100, 25)
    for split in ("train", "test"):
        # RK4 with h = 0.4 is closer to the ODE's objective than Euler with h = 0.1 ...
        assert fine["rel_error_rk4_vs_reference"][split] < fine["rel_error_euler_vs_reference"][split]
        # ... but not with h = 2 for RK4 (outside its stability interval for large θ)
        assert results["objective_functions"]["coarse"]["rel_diff_rk4_vs_euler"][split] > 1.0

    # the two deterministic claims, from the objective functions recomputed in numpy (float64)
    s = results["settings"]
    theta = np.linspace(0.2, 2.0, s["n_theta"])
    g = torch.Generator().manual_seed(0)
    inputs = {split: torch.randn(s["points"], 3, generator=g, dtype=torch.float64).numpy()
              for split in ("train", "test")}
    K11 = np.array([[-2.0, 1.0, 1.0], [1.0, -2.0, 1.0], [1.0, 1.0, -2.0]])
    rel, order = {}, {}
    for split, Y0 in inputs.items():
        C = Y0.copy()
        for _ in range(200):                                  # C = Y_200(1, 1), forward Euler, h = 0.05
            C = C + 0.05 * np.tanh(C @ K11.T)
        euler, rk4 = numpy_objective(theta, Y0, C, 100, "euler"), numpy_objective(theta, Y0, C, 25, "rk4")
        ref, euler2 = numpy_objective(theta, Y0, C, 400, "rk4"), numpy_objective(theta, Y0, C, 200, "euler")
        rel[split] = float(np.linalg.norm(rk4 - euler) / np.linalg.norm(euler))
        order[split] = math.log2(np.linalg.norm(euler - ref) / np.linalg.norm(euler2 - ref))
        assert math.isclose(fine["rel_diff_rk4_vs_euler"][split], rel[split], rel_tol=1e-9), split
        assert math.isclose(results["objective_functions"]["convergence"]["euler_order"][split], order[split],
                            rel_tol=1e-9), split
    similarity, first_order = results["claims"][:2]
    for record, values, target, tolerance in ((similarity, rel, 0.0, 0.10), (first_order, order, 1.0, 0.1)):
        assert record["kind"] == "deterministic"
        assert (record["target"], record["tolerance"]) == (target, tolerance)
        assert record["values"] == pytest.approx([values["train"], values["test"]], rel=1e-9)
        holds = all(abs(v - target) <= tolerance for v in values.values())
        assert record["verdict"] == ("supported" if holds else "refuted")
    # measured on the quick 9 × 9 grid: 0.069 / 0.077 and orders 1.06 / 1.07
    assert max(rel.values()) < 0.09 and all(abs(p - 1) < 0.1 for p in order.values())


def test_quick_run_training_claims_recomputed_from_the_seeds(quick):
    out, results = quick
    s = results["settings"]
    n = s["seeds"]
    assert n >= 2 and results["seeds"] == list(range(n))
    per, hist, curves = results["per_seed"], results["history_seed_0"], results["history_over_seeds"]
    nets = results["networks"]
    assert nets["euler"]["f_evaluations"] == nets["rk4"]["f_evaluations"] == 32
    sizes = {"final_train_accuracy": 5 * s["per_class"], "final_val_accuracy": 5 * s["val_per_class"],
             "test_accuracy": 5 * s["test_per_class"], "val_accuracy_on_fine_rk4_grid": 5 * s["val_per_class"]}
    for name in ("euler", "rk4"):
        assert len(hist[name]) == s["newton_steps"]
        assert per[name]["final_val_accuracy"][0] == hist[name][-1]["val_accuracy"]
        assert per[name]["final_objective"][0] == hist[name][-1]["objective"]
        # the objective falls (Gauss–Newton with a line search never goes up)
        objective = [h["objective"] for h in hist[name]]
        assert all(b <= a * (1 + 1e-5) for a, b in zip(objective, objective[1:])), name
        # the curves over seeds end at the per-seed final numbers
        for key, final in (("val_accuracy", "final_val_accuracy"), ("objective", "final_objective")):
            c = curves[name][key]
            assert len(c["mean"]) == len(c["min"]) == len(c["max"]) == s["newton_steps"]
            assert c["mean"][-1] == pytest.approx(np.mean(per[name][final]), rel=1e-12)
            assert (c["min"][-1], c["max"][-1]) == (min(per[name][final]), max(per[name][final]))
            assert all(lo <= m <= hi for lo, m, hi in zip(c["min"], c["mean"], c["max"]))
        for key, values in per[name].items():
            assert len(values) == n, key
        for i in range(n):
            for key, size in sizes.items():
                v = per[name][key][i]
                assert math.isclose(v * size, round(v * size), abs_tol=1e-9), key
            assert per[name]["truncation_error"][i] > 0
        # quick runs (8 Gauss–Newton steps on 40 points per class) end at 69–85% (chance is 20%)
        assert min(per[name]["final_val_accuracy"]) > 0.4
        for key in ("final_val_accuracy", "truncation_error"):
            assert nets[name][key]["mean"] == pytest.approx(np.mean(per[name][key]), rel=1e-12)
            assert nets[name][key]["std"] == pytest.approx(np.std(per[name][key], ddof=1), rel=1e-12)

    d_acc = [100 * (r - e) for e, r in zip(per["euler"]["final_val_accuracy"], per["rk4"]["final_val_accuracy"])]
    log_ratio = [math.log10(e / r) for e, r in zip(per["euler"]["truncation_error"], per["rk4"]["truncation_error"])]
    records = results["claims"]
    assert isinstance(records, list) and len(records) == 5
    expected = [(records[2], d_acc, "within", 0.0, 2.0), (records[3], d_acc, "greater", 0.0, None),
                (records[4], log_ratio, "greater", 0.0, None)]
    for record, values, kind, reference, margin in expected:
        assert (record["kind"], record["reference"], record["margin"]) == (kind, reference, margin)
        assert record["n"] == n
        assert record["values"] == pytest.approx(values, rel=1e-12, abs=1e-12)
        mean, std, sem, interval, verdict = expected_verdict(values, kind, reference, margin)
        assert record["mean"] == pytest.approx(mean, rel=1e-9, abs=1e-12)
        assert record["std"] == pytest.approx(std, rel=1e-9, abs=1e-12)
        assert record["sem"] == pytest.approx(sem, rel=1e-9, abs=1e-12)
        assert record["interval"] == pytest.approx(interval, rel=1e-9, abs=1e-12)
        assert record["verdict"] == verdict, record
    for record in records:
        assert record["seed"] and record["claim"] and record["statistic"]
    for name in results["figures"]:
        assert_png(out / name)


def test_cli_prints_each_verdict_with_mean_std_n(quick, monkeypatch, capsys, tmp_path):
    _, results = quick
    fake = types.SimpleNamespace(SUMMARY="", run=lambda out, quick=False: results)
    monkeypatch.setitem(EXPERIMENTS, "rk4-vs-euler", fake)
    assert cli.main(["experiment", "rk4-vs-euler", "--quick", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    for record, line in zip(results["claims"], lines):
        assert line.split()[0] == record["verdict"] and record["claim"] in line
        if record["kind"] == "deterministic":
            assert f"(target {record['target']:.3g} ± {record['tolerance']:.3g})" in line
        else:
            assert line.endswith(f"{record['mean']:.3g} ± {record['std']:.2g} (n = {record['n']})")
    assert lines[len(results["claims"])].startswith("rk4-vs-euler: done")
