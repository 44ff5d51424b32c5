"""`stablenet experiment loss-landscape --quick`: 2-D loss surfaces of 8- and 20-layer ResNets."""

import json

import pytest

from stablenet.experiments import loss_landscape


def test_quick_run_numbers_claims_and_figures(tmp_path):
    results = loss_landscape.run(tmp_path, quick=True)
    assert json.loads((tmp_path / "results.json").read_text()) == json.loads(json.dumps(results))
    assert results["experiment"] == "loss-landscape" and results["quick"] is True
    assert set(results["claims"]) == {"deeper_surface_has_fewer_nonconvex_points",
                                      "deeper_surface_has_smaller_curvature_ratio", "deeper_surface_smoother",
                                      "deeper_surface_more_convex_near_the_minimum"}
    assert all(isinstance(v, bool) for v in results["claims"].values())
    for measure, c in results["comparisons"].items():
        assert c["holds"] == (c["mean_20"] < c["mean_8"] and 2 * c["pairs_deeper_lower"] > c["pairs"])
    nets = results["networks"]
    assert [nets[k]["h"] for k in ("8", "20")] == [0.625, 0.25]
    for net in nets.values():
        assert 0 < net["center_loss"] <= net["max_loss"] and net["min_loss"] <= net["center_loss"]
        s = net["surface"]
        assert 0 <= s["fraction_nonconvex"] <= 1 and 0 <= s["mean_curvature_ratio"] <= 1
        assert 0 <= s["excess_variation"] <= 1 and s["local_minima"] >= 1
        # the interpolation θ_0 → θ* ends exactly at the surface's centre, and training lowered the loss
        interp = net["interpolation"]
        assert interp["trained_loss"] == pytest.approx(net["center_loss"], rel=1e-12)
        assert interp["trained_loss"] < interp["initial_loss"]
    assert len(results["figures"]) == 4
    for name in results["figures"]:
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
