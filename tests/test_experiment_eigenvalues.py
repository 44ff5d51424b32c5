"""`stablenet experiment eigenvalues --quick`: seed 004 Figs. 3.4–3.6, the Jacobian spectra of trained
8/16/32-layer ResNets against forward Euler's region.

The spectra of seed 0 are recomputed here from the saved weights (numpy forward Euler, the closed-form
Jacobian diag(1 − tanh²(K y + b)) K, numpy eigenvalues) and the claim records from results.json's
per-seed values, by the verdict rule written out again below.
"""

import json

import numpy as np
import pytest
import torch

from stablenet.app.experiments import eigenvalues
from stablenet.data import load_dataset

from helpers import assert_png, expected_verdict, run_on_other_threads


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("eigenvalues")
    results, started, left = run_on_other_threads(eigenvalues.run, out, quick=True)
    assert left == started                      # the one-thread run restores the caller's count
    return out, results


def test_spectrum_measures_on_known_eigenvalues():
    lam = np.array([0.01, 0.1, -0.5, 0.04j, -2.5, 0.03 + 0.2j])
    m = eigenvalues.spectrum_measures(lam, 1.0)
    # |λ| < 0.05: 0.01 and 0.04i, set aside; of the other four, |1 + λ| = 1.1, 0.5, 1.5, 1.0492
    assert m["near_zero_share"] == pytest.approx(2 / 6)
    assert m["outside_share"] == pytest.approx(2 / 4)
    assert m["positive_share"] == pytest.approx(1 / 4)          # only 0.1 has Re λ > 0.05
    assert (m["max_real"], m["max_abs_h_lambda"], m["max_amplification"]) == pytest.approx((0.1, 2.5, 1.5))
    assert m["outside_share_any"] == pytest.approx(5 / 6)       # the former count: all but −0.5
    # h scales z = hλ but not the eigenvalue-level shares
    half = eigenvalues.spectrum_measures(lam, 0.5)
    assert half["positive_share"] == m["positive_share"] and half["max_real"] == m["max_real"]
    # at h = ½: |1 + 0.05| = 1.05 (not beyond), |1 − 0.25|, |1 − 1.25| = 0.25, |1.015 + 0.1i| = 1.02
    assert half["outside_share"] == 0.0


def test_deeper_networks_start_from_the_same_function():
    base = eigenvalues.build_network(8, seed=3)
    deep = eigenvalues.resample(base, 32)
    K8, K32 = base.blocks[0].dynamics.K.detach(), deep.blocks[0].dynamics.K.detach()
    b8, b32 = base.blocks[0].dynamics.b.detach(), deep.blocks[0].dynamics.b.detach()
    for k in range(32):
        assert torch.equal(K32[k], K8[k // 4]) and torch.equal(b32[k], b8[k // 4])
    assert torch.equal(deep.opening[0].weight, base.opening[0].weight)
    assert deep.blocks[0].steps == 32 and deep.blocks[0].T == 10.0
    # the thesis' init: 0.1 × stablenet's initialization, another seed other weights
    assert float(K8.abs().max()) < 0.2
    assert not torch.equal(eigenvalues.build_network(8, seed=4).blocks[0].dynamics.K, base.blocks[0].dynamics.K)


def saved_weights(path, layers):
    """The ``layers``-layer network's weights from the experiment's safetensors file, as numpy."""
    from safetensors.numpy import load_file

    prefix = f"{layers}."
    return {k[len(prefix):]: v for k, v in load_file(path).items() if k.startswith(prefix)}


def numpy_spectrum(state, x, layers):
    """λ of every layer's Jacobian at every point of x, by numpy forward Euler on the saved weights."""
    K0 = np.asarray(state["opening.0.weight"], dtype=np.float64)
    K = np.asarray(state["blocks.0.dynamics.K"], dtype=np.float64)
    b = np.asarray(state["blocks.0.dynamics.b"], dtype=np.float64)
    h = 10.0 / layers
    Y = np.tanh(x @ K0.T)
    lam = []
    for j in range(layers):
        pre = Y @ K[j].T + b[j]
        J = (1 - np.tanh(pre) ** 2)[:, :, None] * K[j][None]
        lam.append(np.linalg.eigvals(J))
        Y = Y + h * np.tanh(pre)
    return np.array(lam), h


def test_quick_run_spectra_recomputed(quick):
    out, results = quick
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(results))
    s = results["settings"]
    assert [results["networks"][str(n)]["h"] for n in (8, 16, 32)] == [1.25, 0.625, 0.3125]
    data = load_dataset("peaks", seed=0, n_train_per_class=s["per_class"], n_val_per_class=s["val_per_class"],
                        n_test_per_class=s["test_per_class"])
    idx = torch.randperm(len(data.train.x), generator=torch.Generator().manual_seed(0))[:s["jacobian_points"]]
    x = data.train.x[idx].double().numpy()
    for n in (8, 16, 32):
        lam, h = numpy_spectrum(saved_weights(out / results["weights_seed_0"], n), x, n)
        assert lam.shape == (n, s["jacobian_points"], 8)
        lam = lam.reshape(-1)
        far = np.abs(lam) >= 0.05
        amp = np.abs(1 + h * lam)
        mine = {"near_zero_share": 1 - far.mean(), "outside_share": (far & (amp > 1.05)).sum() / far.sum(),
                "positive_share": (far & (lam.real > 0.05)).sum() / far.sum(), "max_real": lam.real.max(),
                "max_abs_h_lambda": np.abs(h * lam).max(), "max_amplification": amp.max(),
                "outside_share_any": (amp > 1 + 1e-9).mean()}
        per = results["per_seed"][str(n)]
        for key, value in mine.items():
            # shares are counts over n × points × 8 eigenvalues: one eigenvalue at a threshold may flip
            tol = 1.5 / far.sum() if key.endswith("share") or key.endswith("any") else 1e-9
            assert per[key][0] == pytest.approx(float(value), abs=tol, rel=1e-9), (n, key)
        for key, values in per.items():
            assert len(values) == s["seeds"], key
        # quick training (8 Gauss–Newton steps, 40 points per class): well above chance (20%)
        assert min(per["final_val_accuracy"]) > 0.4
        assert all(0 <= v <= 1 for key in ("near_zero_share", "outside_share", "positive_share") for v in per[key])


def test_quick_run_claims_recomputed_from_the_seeds(quick):
    out, results = quick
    per = results["per_seed"]
    records = results["claims"]
    expected = []
    for key, a, b in (("outside_share", 8, 16), ("outside_share", 16, 32), ("positive_share", 8, 16),
                      ("positive_share", 16, 32), ("max_real", 8, 16), ("max_real", 16, 32),
                      ("max_abs_h_lambda", 8, 32), ("max_amplification", 8, 32)):
        expected.append(([v - u for u, v in zip(per[str(a)][key], per[str(b)][key])], 0.0))
    expected.append((per["32"]["outside_share"], 0.01))
    assert isinstance(records, list) and len(records) == len(expected) == 9
    for record, (values, reference) in zip(records, expected):
        assert (record["kind"], record["reference"], record["margin"]) == ("smaller", reference, None)
        assert record["n"] == results["settings"]["seeds"] >= 2
        assert record["values"] == pytest.approx(values, rel=1e-12, abs=1e-12)
        mean, std, sem, interval, verdict = expected_verdict(values, "smaller", reference, None)
        assert record["mean"] == pytest.approx(mean, rel=1e-9, abs=1e-12)
        assert record["std"] == pytest.approx(std, rel=1e-9, abs=1e-12)
        assert record["interval"] == pytest.approx(interval, rel=1e-9, abs=1e-12)
        assert record["verdict"] == verdict, record
        assert record["seed"] and record["claim"] and record["statistic"]
    assert results["figures"] == ["eigenvalues_seed0.png", "eigenvalues_claims.png"]
    for name in results["figures"]:
        assert_png(out / name)
