"""`stablenet experiment state-layers --quick`: seed 004 Fig. 3.3, control vs state layers."""

import json

from stablenet.experiments import state_layers


def test_quick_run_numbers(tmp_path):
    results = state_layers.run(tmp_path, quick=True)
    assert json.loads((tmp_path / "results.json").read_text()) == json.loads(json.dumps(results))
    grids = results["state_layers"]
    assert grids == [8, 16, 32]
    for name in ("val_accuracy_trained_with", "train_accuracy_trained_with", "test_accuracy_trained_with"):
        matrix = results[name]
        assert list(matrix) == [str(n) for n in grids]
        assert all(len(row) == len(grids) and all(0.0 <= v <= 1.0 for v in row) for row in matrix.values())
    val = results["val_accuracy_trained_with"]
    diag = results["diagonal_val_accuracy"]
    assert diag == [val[str(n)][k] for k, n in enumerate(grids)]
    # every network learns on its own grid (5 classes: chance is 20 %)
    assert min(diag) > 0.6
    # Euler stages on 8 state layers sit on every other one of the 16 control points: half the
    # weights never get a gradient; finer grids reach all of them
    assert results["controls_updated"] == {"8": 8, "16": 16, "32": 16}
    # weights trained on 8 state layers lose accuracy on finer grids, and the finer-grid weights
    # lose it on 8 state layers
    assert max(val["8"][1:]) < diag[0] - 0.15
    assert max(val["16"][0], val["32"][0]) < min(diag[1:]) - 0.3
    assert all(isinstance(v, bool) for v in results["claims"].values())
    assert results["claims"]["other_weights_fail_on_8_state_layers"]
    assert results["figures"] == ["state_layers_accuracy.png", "state_layers_regions.png"]
    for name in results["figures"]:
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
