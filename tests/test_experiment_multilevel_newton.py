"""`stablenet experiment multilevel-newton --quick`: seed 002's ellipses and swiss roll, multilevel
2 → 8 layers with VarPro + Gauss–Newton."""

import json

import pytest
import torch

from stablenet.app.checkpoint import load_weights
from stablenet.app.config import parse_config
from stablenet.data import load_dataset
from stablenet.app.experiments import EXPERIMENTS, multilevel_newton
from stablenet.app.networks import build_model

from helpers import assert_png, run_on_other_threads

# Margins below come from 16 quick runs: seeds 0–5 (config "seed": data and initial weights) and,
# for seed 0, lr = 1 ± 1e-6, each with the native CPU kernels and with ATEN_CPU_CAPABILITY=default
# MKL_CBWR=AVX2.  Seed 0 itself gave final validation accuracies 0.671–0.849 (ellipses) and
# 0.891–0.977 (swiss roll) over those kernels and learning rates.


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


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One quick run, started with a thread count other than the one-thread training uses."""
    out = tmp_path_factory.mktemp("multilevel_newton")
    results, probe, threads_after = run_on_other_threads(multilevel_newton.run, out, quick=True)
    return out, results, probe, threads_after


def test_run_restores_the_thread_count(quick_run):
    _, _, probe, threads_after = quick_run
    assert threads_after == probe


def test_quick_run_numbers(quick_run):
    tmp_path, results, _, _ = quick_run
    assert json.loads((tmp_path / "results.json").read_text()) == json.loads(json.dumps(results))
    for problem in ("ellipses", "swiss_roll"):
        r = results[problem]
        assert r["layers"] == [2, 4, 8]
        assert r["final_val_accuracy"] == r["val_accuracy"][-1]
        # each level's best weights, evaluated here on the validation and test sets, give the
        # recorded accuracies (the trainer's bookkeeping is not trusted)
        cfg = parse_config(multilevel_newton.config(problem, multilevel_newton.QUICK_EPOCHS))
        data = load_dataset(cfg.data.name, seed=cfg.seed, **cfg.data.options)
        for level in (1, 2, 3):
            model = build_model(cfg, data.in_features, data.n_classes, level=level)
            load_weights(tmp_path / problem / f"best-level-{level}.safetensors", model)
            model.eval()
            with torch.no_grad():
                for split, key in ((data.val, "val_accuracy"), (data.test, "test_accuracy")):
                    correct = int((model(split.x).argmax(-1) == split.y).sum())
                    assert correct == round(r[key][level - 1] * len(split.y)), (problem, level, key)
        # Gauss–Newton with an Armijo line search on the full batch: the objective (VarPro loss +
        # weight decay + smoothness) never increases within a level (up to the inner solve's
        # tolerance), and each level lowers it by ≥ 5 % (measured ≥ 12 % in the 16 runs)
        history = json.loads((tmp_path / problem / "history.json").read_text())
        for level in (1, 2, 3):
            J = [h["train_loss"] for h in history if h["level"] == level]
            assert len(J) == multilevel_newton.QUICK_EPOCHS[level - 1]
            assert all(b <= a * (1 + 1e-5) for a, b in zip(J, J[1:])), (problem, level, J)
            assert J[-1] < 0.95 * J[0], (problem, level, J)
    # well above chance (0.5, two classes) after 10 Gauss–Newton steps per level: measured final
    # validation accuracy ≥ 0.671 (ellipses) and ≥ 0.891 (swiss roll) in the 16 runs, 0.766 and
    # 0.918 for seed 0 with the native kernels; the default run reaches 100 % from 16 up to 1024 layers
    assert results["ellipses"]["final_val_accuracy"] > 0.6 and results["swiss_roll"]["final_val_accuracy"] > 0.8
    # the swiss roll needs depth: 8 layers beat 2 by 0.22–0.31 for seed 0 (every kernel / lr above)
    assert results["swiss_roll"]["val_accuracy"][-1] > results["swiss_roll"]["val_accuracy"][0] + 0.1
    # the claims: 99 % is out of reach in quick mode for seed 0 but not for other seeds (the 10 runs
    # of seeds 1–5 reach it on the ellipses), so each claim is its rule on the recorded accuracies, in
    # correctly classified points (2000 / 256 validation points)
    n_val = {"ellipses": 2000, "swiss_roll": 256}
    points = {p: [round(a * n_val[p]) for a in results[p]["val_accuracy"]] for p in n_val}
    assert results["claims"] == {
        "ellipses_reaches_99_percent_validation_accuracy": 100 * points["ellipses"][-1] >= 99 * 2000,
        "swiss_roll_reaches_99_percent_validation_accuracy": 100 * points["swiss_roll"][-1] >= 99 * 256,
        "refining_in_depth_keeps_the_accuracy (finest level within 1 point of the best level)": all(
            100 * (max(points[p]) - points[p][-1]) <= n_val[p] for p in n_val),
    }
    assert results["figures"] == ["decision_regions_per_level.png"]
    assert_png(tmp_path / results["figures"][0])
