"""`stablenet experiment eigenvalues --quick`: trained ResNets' Jacobian spectra vs the Euler disc."""

import json

from stablenet.experiments import eigenvalues


def test_quick_run_numbers(tmp_path):
    results = eigenvalues.run(tmp_path, quick=True)
    assert json.loads((tmp_path / "results.json").read_text()) == json.loads(json.dumps(results))
    nets = results["networks"]
    assert [nets[k]["h"] for k in ("8", "16", "32")] == [1.25, 0.625, 0.3125]
    # halving h shrinks the spread of h·λ and the largest Euler amplification |1 + hλ|
    assert nets["8"]["max_abs_h_lambda"] > nets["16"]["max_abs_h_lambda"] > nets["32"]["max_abs_h_lambda"]
    assert results["claims"]["violations_shrink_with_more_time_points"]
    # trained single-layer ResNets are not stable by design: some Re λ > 0, outside the disc
    assert nets["8"]["max_real"] > 0 and nets["8"]["fraction_outside_euler_disc"] > 0
    for name in results["figures"]:
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
