"""The convolutional parts of `stablenet experiment robustness` (robustness_conv.py), in quick mode.

`run_part(tmp, "conv", quick=True)`: two tiny seeds of the five conv architectures, trained by the
app's trainer (one epoch on 256 images) and attacked (FGSM, PGD, AutoAttack L∞).  Checked: the
part is described, never judged (3 seeds < 5), every descriptive figure is recomputed from the
per-seed values, a rerun reuses the units, and the widths match the free parameter counts.
"""

import json
import statistics

import numpy as np
import pytest
import torch

from stablenet.app.experiments import robustness, robustness_conv

from helpers import run_on_other_threads


@pytest.fixture(scope="module")
def conv_quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("robustness_conv")
    results, started, left = run_on_other_threads(robustness.run_part, out, problem="conv", quick=True)
    assert left == started
    return out, results


def test_conv_quick_part_is_described_not_judged(conv_quick):
    out, results = conv_quick
    problem = results["settings"]["conv"]
    assert results["seeds"] == {"conv": [0, 1]}
    assert results["claims"] == []                # peaks was not run; the conv part is never judged
    records = [d for d in results["descriptive"] if d["part"] == problem["name"]]
    assert [d["architecture"] for d in records] == list(robustness_conv.CONV_ARCHITECTURES)
    per = results["per_seed"]["conv"][str(problem["depths"][0])]
    for d in records:
        assert "not judged" in d["note"] and "n = 2 seed(s)" in d["note"]
        row = per[d["architecture"]]
        clean = [100 * a for a in row["clean_accuracy"]]
        assert d["clean_accuracy_points"]["n"] == len(clean) == 2
        assert d["clean_accuracy_points"]["mean"] == pytest.approx(statistics.fmean(clean))
        assert d["clean_accuracy_points"]["std"] == pytest.approx(statistics.stdev(clean))
        for attack in problem["attacks"]:
            assert d["auc_points"][attack]["values"] == pytest.approx([100 * v for v in row["auc"][attack]])
            if d["architecture"] != "resnet":
                diff = [100 * (a - r) for a, r in zip(row["auc"][attack], per["resnet"]["auc"][attack])]
                assert d["minus_resnet"]["auc_points"][attack]["values"] == pytest.approx(diff)
            eps = problem.get("attack_eps", {}).get(attack, problem["eps"])
            for curve, c0, auc in zip(row["curves"][attack], row["clean_accuracy"], row["auc"][attack]):
                assert curve[0] == c0 and all(b <= a for a, b in zip(curve, curve[1:]))
                assert auc == pytest.approx(np.trapezoid(curve, eps) / (eps[-1] - eps[0]), abs=1e-12)
        assert all(v > 0 for v in row["lipschitz_empirical"])
        assert row["lipschitz_certified"] == [None, None]      # no certified bound for conv networks
    assert "autoattack-linf" in problem["attacks"]
    assert results["parts"]["conv"]["units"] == results["parts"]["conv"]["units_expected"] == 10
    for figure in results["figures"]:
        assert (out / figure).is_file()
    # the trainer's run directories stay, with the calibrated batch-norm statistics
    runs = sorted((out / "runs").iterdir())
    assert len(runs) == 10 and all((r / "best.safetensors").is_file() for r in runs)
    assert all((r / "batch_norm_statistics.safetensors").is_file() for r in runs)
    # full mode: the conv part lists nothing under claims; the shipped pair is still to be run
    assert any("conv-shipped" in p and "not run" in p for p in results["pending"])


def test_conv_rerun_reuses_the_units(conv_quick, monkeypatch):
    out, first = conv_quick
    calls = []
    monkeypatch.setattr(robustness_conv, "compute_unit", lambda *a: calls.append(a[1:3]))
    second = robustness.run_part(out, "conv", quick=True)
    assert calls == []
    for key in ("descriptive", "per_seed", "seeds", "settings", "claims"):
        assert second[key] == first[key], key
    unit = json.loads(next((out / "units").glob("fashion-mnist-conv__resnet__*seed0.json")).read_text())
    assert unit["run_dir"] in {p.name for p in (out / "runs").iterdir()}


def test_conv_widths_match_the_free_parameter_counts():
    for quick in (True, False):
        problem = robustness.problems(quick)["conv"]
        widths = problem["widths_by_depth"][str(problem["depths"][0])]
        counts = {a: robustness_conv.free_parameters(robustness_conv.build(problem["layout"], a, w))
                  for a, w in widths.items()}
        tolerance = 0.1 if quick else 0.02
        assert all(abs(c - counts["resnet"]) / counts["resnet"] < tolerance for c in counts.values()), counts
        assert widths["antisymmetric-rk4"] != widths["resnet"]        # half the kernel entries are free


def test_conv_antisymmetric_free_entries_are_the_rank_of_k_minus_its_adjoint():
    """(C²k² − C)/2: the dimension of {K − K*} (K* the adjoint kernel), counted as a matrix rank."""
    from stablenet.dynamics.conv import ConvAntisymmetric

    for c, k in ((2, 3), (3, 3), (2, 5)):
        n = c * c * k * k
        basis = torch.eye(n, dtype=torch.float64).reshape(n, c, c, k, k)
        adjoint = basis.transpose(1, 2).flip(-1, -2)
        rank = torch.linalg.matrix_rank((basis - adjoint).reshape(n, n)).item()
        model = torch.nn.Module()
        model.dyn = ConvAntisymmetric(c, kernel_size=k)
        free = robustness_conv.free_parameters(model) - sum(p.numel() for p in model.parameters() if p.dim() != 5)
        assert free == rank == (n - c) // 2


def test_shipped_pair_is_the_shipped_configuration_and_its_resnet_twin():
    problem = robustness.problems(False)["conv-shipped"]
    assert "missing" not in problem and problem["seeds"] == 1
    shipped = problem["shipped_config"]
    parabolic = robustness_conv.raw_config(problem, "parabolic-euler", 0)
    resnet = robustness_conv.raw_config(problem, "resnet", 0)
    # the shipped file, but for one thread (and the data options it already has)
    expect = json.loads(json.dumps(shipped))
    expect["training"]["threads"] = 1
    expect["data"]["options"] = shipped["data"].get("options", {})
    assert parabolic == expect
    assert resnet["model"] == {**shipped["model"], "dynamics": "conv_single"}
    assert {k: v for k, v in resnet.items() if k != "model"} == {k: v for k, v in parabolic.items() if k != "model"}
    assert robustness.problems(False)["conv"]["seeds"] == 3
