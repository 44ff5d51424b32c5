"""`stablenet experiment multilevel-newton --quick`: seed 002's ellipses and swiss roll, multilevel
2 → 8 layers with VarPro + Gauss–Newton."""

import json

from stablenet.config import parse_config
from stablenet.experiments import EXPERIMENTS, multilevel_newton


def test_configs_follow_the_seed():
    for problem, width, n_train, n_val in [("ellipses", 2, 1000, 2000), ("swiss_roll", 4, 256, 256)]:
        cfg = parse_config(multilevel_newton.config(problem, multilevel_newton.EPOCHS))
        block = cfg.model.blocks[0]
        assert (block.dynamics, block.method, block.activation, block.width) == ("hamiltonian", "verlet", "tanh", width)
        assert (cfg.data.options["n_train"], cfg.data.options["n_val"]) == (n_train, n_val)
        assert [grid[0][0] for grid in cfg.level_grids()] == [2 ** k for k in range(1, 11)]  # 2 … 1024 layers
        assert cfg.training.optimizer == "gauss_newton" and cfg.training.varpro
        assert cfg.training.batch_size == n_train and cfg.training.weight_decay > 0
    assert EXPERIMENTS["multilevel-newton"] is multilevel_newton


def test_quick_run_numbers(tmp_path):
    results = multilevel_newton.run(tmp_path, quick=True)
    assert json.loads((tmp_path / "results.json").read_text()) == json.loads(json.dumps(results))
    for problem in ("ellipses", "swiss_roll"):
        r = results[problem]
        assert r["layers"] == [2, 4, 8]
        assert all(0.0 <= a <= 1.0 for a in r["val_accuracy"] + r["train_accuracy"] + r["test_accuracy"])
        assert r["final_val_accuracy"] == r["val_accuracy"][-1]
    # measured: ellipses 0.80, 0.79, 0.86; swiss roll 0.68, 0.79, 0.90 validation accuracy at 2, 4, 8 layers
    # (10 Gauss–Newton steps per level); the default run reaches 100% from 16 up to 1024 layers
    assert results["ellipses"]["final_val_accuracy"] > 0.8 and results["swiss_roll"]["final_val_accuracy"] > 0.8
    assert results["swiss_roll"]["val_accuracy"][-1] > results["swiss_roll"]["val_accuracy"][0]
    assert all(isinstance(v, bool) for v in results["claims"].values())
    for name in results["figures"]:
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
