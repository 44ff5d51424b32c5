"""`stablenet experiment robustness --quick`: ResNet vs stable architectures under perturbed inputs.

Every claim record is recomputed from the per-seed values in results.json by the verdict rule
written out again below (independently of stablenet.app.experiments.verdict); the units are
checked to be reused on a rerun, recomputed when missing or made with other settings, and to give
the same results when recomputed.
"""

import json
import os

import numpy as np
import pytest

from stablenet.app.experiments import EXPERIMENTS, robustness, robustness_study

from helpers import expected_verdict, run_on_other_threads


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("robustness")
    results, started, left = run_on_other_threads(robustness.run, out, quick=True)
    assert left == started
    return out, results


def test_registered():
    assert EXPERIMENTS["robustness"] is robustness and robustness.SUMMARY


def test_widths_match_the_free_parameter_counts():
    for quick in (True, False):
        for problem in robustness.problems(quick).values():
            if robustness._is_conv(problem):     # tests/test_experiment_robustness_conv.py
                continue
            for depth in problem["depths"]:
                p = robustness._for_depth(problem, depth)
                counts = {}
                for arch in robustness.ARCHS:
                    model = robustness_study.build(arch, p["widths"], in_features=p["in_features"],
                                                   n_classes=p["n_classes"], depth=depth, T=p["T"], seed=0)
                    counts[arch] = robustness_study.free_parameters(model)
                    stored = sum(q.numel() for q in model.parameters())
                    if "antisymmetric" in arch:   # K − Kᵀ: only the n(n − 1)/2 entries above the diagonal count
                        n = p["widths"][arch]
                        assert stored - counts[arch] == depth * n * (n + 1) // 2
                    else:
                        assert stored == counts[arch]
                ref = counts["resnet"]
                # within 5% in the full run; the quick run's 4 layers leave 7% (the openings weigh more)
                tolerance = 0.1 if quick else 0.05
                assert all(abs(c - ref) / ref < tolerance for c in counts.values()), (problem["name"], depth, counts)


def test_quick_run_claims_recomputed_from_the_seeds(quick):
    out, results = quick
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(results))
    assert results["quick"] is True and results["seeds"] == {"peaks": [0, 1]}
    per = results["per_seed"]["peaks"]
    depth = str(results["settings"]["peaks"]["depths"][0])
    by_claim = {c["claim"]: c for c in results["claims"]}
    n_judged = 0
    for arch in robustness.STABLE:
        for attack in ("fgsm-linf", "pgd-linf"):
            values = [100 * (a - r) for a, r in zip(per[depth][arch]["auc"][attack], per[depth]["resnet"]["auc"][attack])]
            record = next(c for k, c in by_claim.items() if f" {arch} network keeps more accuracy under {attack}" in k)
            mean, std, sem, interval, verdict = expected_verdict(values, "greater", 0.0, None)
            assert record["values"] == pytest.approx(values, abs=1e-9)
            assert (record["mean"], record["std"]) == pytest.approx((mean, std), abs=1e-9)
            assert record["verdict"] == verdict and record["n"] == 2
            n_judged += 1
        values = [100 * (a - r) for a, r in zip(per[depth][arch]["clean_accuracy"], per[depth]["resnet"]["clean_accuracy"])]
        record = next(c for k, c in by_claim.items() if f"{arch} and the ResNet are equally accurate" in k)
        assert record["verdict"] == expected_verdict(values, "within", 0.0, 1.0)[4]
    assert n_judged == 8
    adv = per["adversarial"]
    assert len(adv) == 2                      # the best and the worst architecture by PGD-L∞ AUC
    mean_auc = {a: np.mean(per[depth][a]["auc"]["pgd-linf"]) for a in robustness.ARCHS}
    assert max(mean_auc[a] for a in adv) == max(mean_auc.values())
    assert min(mean_auc[a] for a in adv) == min(mean_auc.values())
    for arch, rec in adv.items():
        gain = [100 * (a - p) for a, p in zip(rec["auc"]["pgd-linf"], per[depth][arch]["auc"]["pgd-linf"])]
        assert rec["auc_gain_points"] == pytest.approx(gain, abs=1e-9)
        record = next(c for k, c in by_claim.items() if f"raises the {arch} network's" in k)
        assert record["verdict"] == expected_verdict(gain, "greater", 0.0, None)[4]
    # the certified bound check, recomputed from every network's two constants
    bound = next(c for c in results["claims"] if c["kind"] == "deterministic")
    emp, cert = [], []
    for arch in robustness.ARCHS:
        emp += per[depth][arch]["lipschitz_empirical"]
        cert += per[depth][arch]["lipschitz_certified"]
    assert all(c is not None and c >= e for e, c in zip(emp, cert))
    assert bound["verdict"] == "supported" and bound["n"] == len(emp) + 4
    # the curves: ε = 0 is the clean accuracy, non-increasing in ε, AUC the trapezoid over the range
    eps = results["settings"]["peaks"]["eps"]
    for arch in robustness.ARCHS:
        for attack, curves in per[depth][arch]["curves"].items():
            for curve, clean, auc in zip(curves, per[depth][arch]["clean_accuracy"], per[depth][arch]["auc"][attack]):
                assert curve[0] == clean and all(b <= a for a, b in zip(curve, curve[1:]))
                assert auc == pytest.approx(np.trapezoid(curve, eps) / (eps[-1] - eps[0]), abs=1e-12)
    for figure in results["figures"]:
        assert (out / figure).is_file()
    assert any("conv" in p for p in results["pending"])


def test_full_mode_judges_only_claims_with_five_seeds(quick):
    out, _ = quick
    problem = robustness.problems(True)["peaks"]
    found = robustness._units(out / "units", problem, compute=False)
    claims, pending, _ = robustness.assess(problem, found, 5)
    assert claims == [] and len(pending) == 4 * 3 + 2 and all("2 of 5 seeds" in p for p in pending)


def test_rerun_reuses_units_and_recomputes_only_missing_or_stale_ones(quick, monkeypatch):
    out, first = quick
    units = sorted((out / "units").iterdir())
    assert len(units) == first["parts"]["peaks"]["units_expected"] == 14
    calls = []
    compute = robustness_study.compute_unit
    monkeypatch.setattr(robustness_study, "compute_unit", lambda *a: calls.append(a[1:]) or compute(*a))
    second = robustness.run(out, quick=True)
    assert calls == []
    for key in ("claims", "per_seed", "seeds", "settings", "pending", "figures"):
        assert second[key] == first[key], key
    # one unit deleted, one made with other settings: exactly those two are recomputed, to the same numbers
    gone, stale = units[0], units[1]
    gone.unlink()
    record = json.loads(stale.read_text())
    record["fingerprint"] = "other settings"
    stale.write_text(json.dumps(record))
    third = robustness.run(out, quick=True)
    assert len(calls) == 2
    assert third["claims"] == first["claims"]
    assert timeless(third["per_seed"]) == timeless(first["per_seed"])
    assert json.loads(stale.read_text())["fingerprint"] != "other settings"


def timeless(per_seed):
    """per_seed without the measured seconds (a recomputed unit takes its own time)."""
    if isinstance(per_seed, dict):
        return {k: timeless(v) for k, v in per_seed.items() if k not in ("seconds", "cpu_seconds")}
    return per_seed


def test_parts_from_the_environment(monkeypatch):
    monkeypatch.setenv(robustness.ENV_PARTS, "peaks")
    assert robustness.selected_parts(False) == ["peaks"]
    monkeypatch.setenv(robustness.ENV_PARTS, "peaks,nope")
    with pytest.raises(ValueError, match="unknown part"):
        robustness.selected_parts(False)
    monkeypatch.delenv(robustness.ENV_PARTS)
    assert robustness.selected_parts(False) == ["peaks", "fashion-mnist", "conv", "conv-shipped"]
    assert robustness.selected_parts(True) == ["peaks"]          # the conv quick parts run on their own
    assert os.environ.get(robustness.ENV_PARTS) is None
