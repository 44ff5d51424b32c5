"""`stablenet experiment discretization-impact --quick`: seed 002, T = 10 / 5 / 0.2, 32 → 64 layers."""

import json
import math

from stablenet.experiments import discretization_impact


def test_erraticness():
    assert discretization_impact.erraticness([3.0, 2.0, 1.0]) == 0.0
    assert discretization_impact.erraticness([3.0, 1.0, 2.0, 1.0]) == 0.5


def test_quick_run_numbers(tmp_path):
    results = discretization_impact.run(tmp_path, quick=True)
    assert json.loads((tmp_path / "results.json").read_text()) == json.loads(json.dumps(results))
    configs = results["configurations"]
    assert list(configs) == ["unstable", "medium", "stable"]
    E = results["settings"]["epochs_per_level"]
    for name, c in configs.items():
        hist = results["history"][name]
        assert [h["layers"] for h in hist] == [32] * E + [64] * E
        assert not c["diverged"]
        assert 0.0 <= c["final_val_accuracy"] <= 1.0 and math.isfinite(c["final_train_loss"])
        assert c["prolongation"]["nt_after"] == c["prolongation"]["steps_after"] == 64
    # T = 0.2: prolongation changes nothing visible, the features hardly move (|Y_N − Y_0| ≤ T·√w)
    stable = configs["stable"]
    assert abs(stable["prolongation"]["train_loss_after"] - stable["prolongation"]["train_loss_before"]) < 1e-3
    assert stable["dynamics_trained"]["relative_feature_movement"] < 0.2
    assert configs["unstable"]["dynamics_trained"]["relative_feature_movement"] > 0.3
    assert results["claims"]["stable_T02_barely_moves_the_features"]
    assert all(isinstance(v, bool) for v in results["claims"].values())
    for name in results["figures"]:
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
