"""`stablenet experiment loss-landscape --quick`: seed 004 Figs. 3.7–3.8, VarPro-objective landscapes of
8- and 20-layer ResNets on the thesis' grid.

The convexity / smoothness measures of seed 0 are recomputed here in numpy from the saved surfaces,
and the claim records from results.json's per-seed values, by the verdict rule written out again
below.
"""

import json

import numpy as np
import pytest
import torch

from stablenet.app.experiments import loss_landscape

from helpers import assert_png, expected_verdict, run_on_other_threads


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("loss_landscape")
    results, started, left = run_on_other_threads(loss_landscape.run, out, quick=True)
    assert left == started                      # the one-thread run restores the caller's count
    return out, results


def test_the_listings_grid():
    full = loss_landscape.grid(1)
    assert len(full) == 40 and full == pytest.approx([0.05 * a - 1 for a in range(1, 41)])
    assert full[19] == 0 and full[-1] == 1 and full[0] == pytest.approx(-0.95)
    for stride, size in ((2, 20), (5, 8)):
        sub = loss_landscape.grid(stride)
        assert len(sub) == size and 0.0 in sub and sub[-1] == 1.0
        assert np.allclose(np.diff(sub), 0.05 * stride)


def test_directions_follow_the_listing():
    model = loss_landscape.build_network(8, seed=1)
    groups = loss_landscape.groups(model)
    # the listing's Q: the 16 opening weights, then per layer its 64 weights and its bias (8 here)
    assert [sum(t.numel() for t in g) for g in groups] == [16] + [72] * 8
    d1, d2 = loss_landscape.directions(model, "average", seed=0)
    for g, u in zip(groups, d1):
        theta = torch.cat([t.detach().reshape(-1).double() for t in g])
        d = torch.cat([x.reshape(-1) for x in u])
        assert float(d.mean()) == pytest.approx(float(theta.mean()), rel=1e-9)    # mean_g(d·θ̄/d̄) = θ̄
    assert not torch.equal(d1[1][0], d2[1][0])
    f1, _ = loss_landscape.directions(model, "frobenius", seed=0)
    for g, u in zip(groups, f1):
        theta = torch.cat([t.detach().reshape(-1).double() for t in g])
        assert float(torch.cat([x.reshape(-1) for x in u]).norm()) == pytest.approx(float(theta.norm()), rel=1e-9)
    # the 20-layer network starts from the 8-layer θ(t)
    deep = loss_landscape.resample(model, 20)
    K8, K20 = model.blocks[0].dynamics.K, deep.blocks[0].dynamics.K
    assert all(torch.equal(K20[k], K8[(8 * k) // 20]) for k in range(20))
    assert deep.blocks[0].T == 5.0 and deep.blocks[0].steps == 20


def numpy_measures(f, a):
    """Share of interior points with a negative Hessian eigenvalue (central differences, below
    −1e-6 × the largest |eigenvalue|), the mean ratio |λ_min|/max|λ| there, and the excess variation."""
    f = np.asarray(f, dtype=np.float64)
    h = a[1] - a[0]
    faa = (f[2:, 1:-1] - 2 * f[1:-1, 1:-1] + f[:-2, 1:-1]) / h ** 2
    fbb = (f[1:-1, 2:] - 2 * f[1:-1, 1:-1] + f[1:-1, :-2]) / h ** 2
    fab = (f[2:, 2:] - f[2:, :-2] - f[:-2, 2:] + f[:-2, :-2]) / (4 * h * h)
    mid, rad = (faa + fbb) / 2, np.sqrt(((faa - fbb) / 2) ** 2 + fab ** 2)     # 2 × 2 eigenvalues in closed form
    lmin, lmax = mid - rad, mid + rad
    big = np.maximum(np.abs(lmin), np.abs(lmax))
    neg = lmin < -1e-6 * big.max()
    ratio = np.where(neg, -lmin / np.maximum(big, 1e-300), 0.0)
    tv = valley = 0.0
    for g in (f, f.T):
        tv += np.abs(np.diff(g, axis=1)).sum()
        valley += (g[:, 0] + g[:, -1] - 2 * g.min(1)).sum()
    return {"fraction_nonconvex": neg.mean(), "mean_curvature_ratio": ratio.mean(),
            "excess_variation": max(0.0, (tv - valley) / tv) if tv > 0 else 0.0}


def test_quick_run_surfaces_recomputed(quick):
    out, results = quick
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(results))
    s = results["settings"]
    for n in ("8", "20"):
        per = results["per_seed"][n]
        for norm in ("average", "frobenius"):
            surf = results["surfaces_seed_0"][n][norm]
            a = np.array(surf["alphas"])
            assert a.tolist() == pytest.approx(s["grids"][norm]) and len(a) == 8
            f = np.array(surf["objective"])
            c = int(np.argmin(np.abs(a)))
            mine = numpy_measures(f, a)
            central = np.abs(a) <= 0.5 + 1e-9
            mine["central_fraction_nonconvex"] = numpy_measures(f[np.ix_(central, central)], a[central])[
                "fraction_nonconvex"]
            data = np.array(surf["data_term"])
            assert np.all(data <= f + 1e-12)                   # Φ = data term + regularizers ≥ data term
            for key, value in numpy_measures(data, a).items():
                mine[f"data_term_{key}"] = value
            for key, value in mine.items():
                assert per[norm][key][0] == pytest.approx(value, rel=1e-9, abs=1e-12), (n, norm, key)
            # the surface is centred at θ*: the same objective the training ended with (float32 there)
            assert per[norm]["centre_objective"][0] == pytest.approx(f[c, c], rel=1e-12)
            assert f[c, c] == pytest.approx(per["final_objective"][0], rel=1e-4)
            assert all(len(v) == s["seeds"] for v in per[norm].values())
            assert sum(per[norm]["inner_unconverged"]) == 0
        assert per["frobenius"]["group_scale_max"][0] == pytest.approx(1.0, rel=1e-9)
        assert min(per["final_val_accuracy"]) > 0.4          # quick training: well above chance (20%)


def test_quick_run_claims_recomputed_from_the_seeds(quick):
    out, results = quick
    per = results["per_seed"]
    pairs = (("average", "fraction_nonconvex"), ("average", "mean_curvature_ratio"), ("average", "excess_variation"),
             ("average", "central_fraction_nonconvex"), ("frobenius", "fraction_nonconvex"),
             ("frobenius", "excess_variation"), ("average", "data_term_fraction_nonconvex"),
             ("average", "data_term_excess_variation"))
    records = results["claims"]
    assert isinstance(records, list) and len(records) == len(pairs)
    for record, (norm, key) in zip(records, pairs):
        values = [b - a for a, b in zip(per["8"][norm][key], per["20"][norm][key])]
        assert (record["kind"], record["reference"], record["margin"]) == ("smaller", 0.0, None)
        assert record["n"] == results["settings"]["seeds"] >= 2
        assert record["values"] == pytest.approx(values, rel=1e-12, abs=1e-12)
        mean, std, sem, interval, verdict = expected_verdict(values, "smaller", 0.0, None)
        assert record["mean"] == pytest.approx(mean, rel=1e-9, abs=1e-12)
        assert record["std"] == pytest.approx(std, rel=1e-9, abs=1e-12)
        assert record["interval"] == pytest.approx(interval, rel=1e-9, abs=1e-12)
        assert record["verdict"] == verdict, record
        assert record["seed"] and record["claim"] and key.replace("data_term_", "") in record["statistic"]
    assert results["figures"] == ["loss_landscape_surfaces.png", "loss_landscape_claims.png"]
    for name in results["figures"]:
        assert_png(out / name)
