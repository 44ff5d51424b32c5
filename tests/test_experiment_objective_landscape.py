"""`stablenet experiment objective-landscape --quick`: seeds 000/001, the objective over (θ1, θ2)
for N = 5 (unstable) vs N = 100 (stable) layers, train vs test inputs."""

import json
import math

import pytest
import torch

from stablenet.experiments import objective_landscape as ol


def _manual_resnet(K, Y0, layers):
    """Y_{j+1} = Y_j + (10/N) tanh(K Y_j), columns = examples, written out as in the slides."""
    Y = Y0.T.clone()
    for _ in range(layers):
        Y = Y + (10.0 / layers) * torch.tanh(K @ Y)
    return Y.T


def test_kernel_and_forward_follow_the_seed():
    t1, t2 = torch.tensor(0.3, dtype=torch.float64), torch.tensor(1.7, dtype=torch.float64)
    K = ol.kernel(t1, t2)
    expected = torch.tensor([[-2.0, 0.3, 1.7], [1.7, -2.0, 0.3], [0.3, 1.7, -2.0]], dtype=torch.float64)
    assert torch.allclose(K, expected, atol=1e-15)
    # eigenvalues 0 and -(3/2)(θ1+θ2) ± i(√3/2)(θ1−θ2); the stability function uses the nonzero pair
    lam = torch.linalg.eigvals(K)
    lam = lam[lam.abs().argsort()]
    assert abs(lam[0]) < 1e-12
    assert abs(lam[1].real + 3.0) < 1e-12 and abs(abs(lam[1].imag) - math.sqrt(3) / 2 * 1.4) < 1e-12
    for h in (2.0, 0.1):
        assert abs(float(ol.euler_amplification(t1, t2, h)) - float((1 + h * lam[1]).abs())) < 1e-12
    Y0 = torch.randn(7, 3, dtype=torch.float64)
    for layers in (5, 100):
        assert torch.allclose(ol.forward(K, Y0, layers), _manual_resnet(K, Y0, layers), atol=1e-13, rtol=0)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("objective_landscape")
    return out, ol.run(out, quick=True)


def test_quick_run_numbers(quick_run):
    tmp_path, results = quick_run
    assert json.loads((tmp_path / "results.json").read_text()) == json.loads(json.dumps(results))
    assert results["experiment"] == "objective-landscape"
    assert all(results["claims"].values()), results["claims"]
    for name in results["figures"]:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    s5, s100 = results["N"]["5"], results["N"]["100"]
    assert (s5["h"], s100["h"]) == (2.0, 0.1)
    # the gap: ~4.2 at N = 5 vs ~0.012 at N = 100, a ratio of ~330 (measured); assert 100 with margin
    assert results["gap_ratio_N5_over_N100"] > 100
    assert 1.0 < s5["gap_mean"] < 20.0 and 1e-3 < s100["gap_mean"] < 0.05
    # N = 100 (h = 0.1) reproduces the N = 200 data closely at the reference θ; N = 5 (h = 2) does not
    assert s100["train_at_reference"] < 1e-3 and s5["train_at_reference"] > 5.0
    assert s100["train_argmin_distance_to_reference"] < 0.1 < 0.5 < s5["train_argmin_distance_to_reference"]
    # linear stability |1 + 2λ| ≤ 1 holds only near the corner θ1 + θ2 ≲ 2/3 for N = 5
    assert 0.95 < s5["fraction_linearly_unstable"] < 1.0
    assert abs(s5["max_euler_amplification"] - 11.0) < 1e-12  # |1 − 2·6| at θ = (2, 2)
    assert s100["fraction_linearly_unstable"] == 0.0
    assert s5["local_minima_train"] > 10 and s100["local_minima_train"] == 1


def test_objective_at_reference_matches_a_direct_computation(quick_run):
    _, results = quick_run
    g = torch.Generator().manual_seed(0)
    Y_train = torch.randn(20, 3, generator=g, dtype=torch.float64)
    Y_test = torch.randn(20, 3, generator=g, dtype=torch.float64)
    K = ol.kernel(torch.tensor(1.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
    for Y0, key in ((Y_train, "train_at_reference"), (Y_test, "test_at_reference")):
        C = _manual_resnet(K, Y0, 200)
        for layers in (5, 100):
            phi = 0.5 * float(((_manual_resnet(K, Y0, layers) - C) ** 2).sum())
            assert math.isclose(results["N"][str(layers)][key], phi, rel_tol=1e-10)
    # the grid contains θ = (1, 1) in quick mode (step 0.04): the landscape minimum is at most that
    for layers in ("5", "100"):
        assert results["N"][layers]["train_min"] <= results["N"][layers]["train_at_reference"] * (1 + 1e-12)
