"""`stablenet experiment multilevel-newton --quick`: seed 002's ellipses and swiss roll, multilevel
2 → 16 layers with VarPro + Gauss–Newton, 2 seeds.

The claim records are recomputed from the per-seed values in results.json by the verdict rule
written out again below, independently of stablenet.app.experiments.verdict; one seed's training
is repeated here and its best weights re-evaluated (the trainer's bookkeeping is not trusted).
"""

import json
import math

import numpy as np
import pytest
import torch

from stablenet.app.checkpoint import load_weights
from stablenet.app.config import parse_config
from stablenet.app.experiments import EXPERIMENTS, multilevel_newton
from stablenet.app.networks import build_model
from stablenet.app.training import train
from stablenet.data import load_dataset

from helpers import assert_png, expected_verdict, run_on_other_threads

N_VAL = {"ellipses": 2000, "swiss_roll": 256}


def test_configs_follow_the_seed():
    for problem, width, n_train, n_val, T in [("ellipses", 2, 1000, 2000, 5.0), ("swiss_roll", 4, 256, 256, 20.0)]:
        cfg = parse_config(multilevel_newton.config(problem, multilevel_newton.EPOCHS, seed=3))
        block = cfg.model.blocks[0]
        assert (block.dynamics, block.method, block.activation, block.width) == ("hamiltonian", "verlet", "tanh", width)
        assert block.T == T and cfg.seed == 3
        assert (cfg.data.options["n_train"], cfg.data.options["n_val"]) == (n_train, n_val)
        assert [grid[0][0] for grid in cfg.level_grids()] == [2 ** k for k in range(1, 11)]  # 2 … 1024 layers
        assert cfg.training.optimizer == "gauss_newton" and cfg.training.varpro
        assert cfg.training.batch_size == n_train and cfg.training.weight_decay > 0
        assert cfg.training.smoothness == pytest.approx(5e-3 / 2)   # Meganet's h-scaled (α/2)Σ‖Δθ‖²/h
    assert EXPERIMENTS["multilevel-newton"] is multilevel_newton
    assert multilevel_newton.reference_level([0.9, 0.995, 0.98, 1.0]) == 1
    assert multilevel_newton.reference_level([0.9, 0.95, 0.93]) == 1      # none reaches 99%: the best


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One quick run, started with a thread count other than the one-thread training uses."""
    out = tmp_path_factory.mktemp("multilevel_newton")
    results, started, left = run_on_other_threads(multilevel_newton.run, out, quick=True)
    assert left == started
    return out, results


def test_quick_run_claims_recomputed_from_the_seeds(quick):
    out, results = quick
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(results))
    seeds = results["seeds"]
    assert len(seeds) >= 2 and seeds == list(range(len(seeds)))
    levels = len(multilevel_newton.QUICK_EPOCHS)
    per = results["per_seed"]
    records = results["claims"]
    assert isinstance(records, list) and len(records) == 4
    for k, problem in enumerate(("ellipses", "swiss_roll")):
        ps = per[problem]
        assert ps["layers"] == [2 ** (i + 1) for i in range(levels)]
        for key in ("val_accuracy", "train_accuracy", "test_accuracy", "level_seconds"):
            assert len(ps[key]) == len(seeds) and all(len(v) == levels for v in ps[key]), key
        for acc in ps["val_accuracy"]:
            assert all(math.isclose(a * N_VAL[problem], round(a * N_VAL[problem]), abs_tol=1e-9) for a in acc)
        # the seeds draw different data / initial weights: not every level's accuracies coincide
        assert len({tuple(a) for a in ps["val_accuracy"] + ps["test_accuracy"]}) > 1
        finest = [100 * acc[-1] for acc in ps["val_accuracy"]]
        refs = []
        for acc in ps["val_accuracy"]:
            reached = [i for i, a in enumerate(acc) if round(a * N_VAL[problem]) * 100 >= 99 * N_VAL[problem]]
            refs.append(reached[0] if reached else int(np.argmax(acc)))
        kept = [100 * (acc[-1] - acc[i]) for acc, i in zip(ps["val_accuracy"], refs)]
        assert ps["reference_layers"] == [ps["layers"][i] for i in refs]
        assert ps["final_val_accuracy"] == [acc[-1] for acc in ps["val_accuracy"]]
        for record, values, kind, reference, margin in ((records[2 * k], finest, "greater", 99.0, None),
                                                         (records[2 * k + 1], kept, "within", 0.0, 1.0)):
            assert record["claim"].startswith(problem)
            assert (record["kind"], record["reference"], record["margin"]) == (kind, reference, margin)
            assert record["n"] == len(seeds)
            assert record["values"] == pytest.approx(values, rel=1e-12, abs=1e-12)
            mean, std, sem, interval, verdict = expected_verdict(values, kind, reference, margin)
            assert record["mean"] == pytest.approx(mean, rel=1e-9, abs=1e-12)
            assert record["std"] == pytest.approx(std, rel=1e-9, abs=1e-12)
            assert record["sem"] == pytest.approx(sem, rel=1e-9, abs=1e-12)
            assert record["interval"] == pytest.approx(interval, rel=1e-9, abs=1e-12)
            assert record["verdict"] == verdict, record
            assert record["seed"] and record["statistic"]
    # well above chance (0.5) after 10 Gauss–Newton steps per level on every seed
    assert min(min(a) for p in per.values() for a in p["val_accuracy"]) > 0.6
    assert results["figures"] == ["accuracy_per_level.png", "decision_regions_per_level.png"]
    for name in results["figures"]:
        assert_png(out / name)


def test_one_seed_repeated_and_its_weights_reevaluated(quick, tmp_path):
    """Seed 1's swiss roll trained again here (one thread: the same numbers), each level's best
    weights evaluated here on the validation and test sets; the objective never increases within a
    level (Gauss–Newton with an Armijo line search on the full batch)."""
    _, results = quick
    raw = multilevel_newton.config("swiss_roll", multilevel_newton.QUICK_EPOCHS, seed=1)
    cfg = parse_config(raw)
    threads = torch.get_num_threads()
    try:
        metrics = train(cfg, tmp_path / "run", overwrite=True, progress=False)
    finally:
        torch.set_num_threads(threads)
    ps = results["per_seed"]["swiss_roll"]
    assert [level["val_accuracy"] for level in metrics["levels"]] == ps["val_accuracy"][1]
    data = load_dataset(cfg.data.name, seed=1, **cfg.data.options)
    for level, (val, test) in enumerate(zip(ps["val_accuracy"][1], ps["test_accuracy"][1]), start=1):
        model = build_model(cfg, data.in_features, data.n_classes, level=level)
        load_weights(tmp_path / "run" / f"best-level-{level}.safetensors", model)
        model.eval()
        with torch.no_grad():
            for split, value in ((data.val, val), (data.test, test)):
                assert int((model(split.x).argmax(-1) == split.y).sum()) == round(value * len(split.y))
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    for level in range(1, len(multilevel_newton.QUICK_EPOCHS) + 1):
        J = [h["train_loss"] for h in history if h["level"] == level]
        assert len(J) == multilevel_newton.QUICK_EPOCHS[level - 1]
        assert all(b <= a * (1 + 1e-5) for a, b in zip(J, J[1:])), (level, J)
