"""`stablenet experiment discretization-impact --quick`: seed 002, T = 10 / 5 / 0.2, 32 → 64 layers."""

import json
import math

import numpy as np

from stablenet.app.experiments import discretization_impact

from helpers import assert_png


def test_erraticness():
    assert discretization_impact.erraticness([3.0, 2.0, 1.0]) == 0.0
    assert discretization_impact.erraticness([3.0, 1.0, 2.0, 1.0]) == 0.5


def my_erraticness(values) -> float:
    """Σ of the increases of the curve / (first value − minimum); ∞ when it never drops."""
    v = np.asarray([x for x in values if math.isfinite(x)])
    drop = v[0] - v.min()
    return float(np.clip(np.diff(v), 0, None).sum() / drop) if drop > 0 else math.inf


def test_quick_run_numbers(tmp_path):
    results = discretization_impact.run(tmp_path, quick=True)
    assert json.loads((tmp_path / "results.json").read_text()) == json.loads(json.dumps(results))
    configs = results["configurations"]
    assert list(configs) == ["unstable", "medium", "stable"]
    E = results["settings"]["epochs_per_level"]
    # Margins from 12 quick runs (data, initial weights, batch order at seeds 0–5, native kernels and
    # ATEN_CPU_CAPABILITY=default MKL_CBWR=AVX2; the two kernels gave identical numbers): final
    # validation accuracy 0.50–0.76 (chance 0.2), final training loss 0.76–1.27 (ln 5 = 1.61 for a
    # uniform guess), no divergence
    for name, c in configs.items():
        hist = results["history"][name]
        assert [h["layers"] for h in hist] == [32] * E + [64] * E
        assert not c["diverged"]
        assert c["final_val_accuracy"] > 0.35 and c["final_train_loss"] < 1.45, name
        assert c["prolongation"]["nt_after"] == c["prolongation"]["steps_after"] == 64
    # T = 0.2: the features hardly move (measured 0.047–0.076 of their size; T = 10: 1.13–2.21) and
    # prolongation (same θ(t), half the step) changes the loss by ≤ 4.4e-4 of itself, T = 10's by
    # 0.020–0.085: the change is the discretization error, which scales with h
    stable, unstable = configs["stable"], configs["unstable"]
    change = {n: abs(c["prolongation"]["train_loss_after"] / c["prolongation"]["train_loss_before"] - 1)
              for n, c in configs.items()}
    assert change["stable"] < 1e-3 and change["unstable"] > 10 * change["stable"]
    assert stable["dynamics_trained"]["relative_feature_movement"] < 0.2
    assert unstable["dynamics_trained"]["relative_feature_movement"] > 0.6
    for name in results["figures"]:
        assert_png(tmp_path / name)

    # the claims, recomputed from the per-epoch history ("final" = mean over the last 5 epochs),
    # the prolongation losses and the feature movements; in quick mode (2 epochs per level) most
    # of them are decided by noise (measured: 3 to 5 of 7 hold), so each must equal its rule
    tail = {n: [h for h in results["history"][n] if "val_loss" in h][-5:] for n in configs}
    acc = {n: np.mean([h["val_accuracy"] for h in t]) for n, t in tail.items()}
    loss = {n: np.mean([h["val_loss"] for h in t]) for n, t in tail.items()}
    gap = {n: np.mean([h["val_loss"] - h["train_loss"] for h in t]) for n, t in tail.items()}
    err = {n: my_erraticness([h["val_loss"] for h in results["history"][n] if h["layers"] == 32]) for n in configs}
    jump = {n: c["prolongation"]["train_loss_after"] / c["prolongation"]["train_loss_before"]
            for n, c in configs.items()}
    for n, c in configs.items():
        assert math.isclose(c["last_epochs_val_accuracy"], acc[n], rel_tol=1e-12)
        assert math.isclose(c["last_epochs_val_loss"], loss[n], rel_tol=1e-12)
        assert c["val_loss_erraticness_level_1"] == err[n] or math.isclose(c["val_loss_erraticness_level_1"], err[n])
    move = {n: c["dynamics_trained"]["relative_feature_movement"] for n, c in configs.items()}
    assert results["claims"] == {
        "stable_T02_barely_moves_the_features": move["stable"] < 0.2,
        "stable_T02_learns_worst": acc["stable"] < min(acc["unstable"], acc["medium"]),
        "medium_verlet_lowest_validation_loss": loss["medium"] < min(loss["unstable"], loss["stable"]),
        "medium_verlet_highest_validation_accuracy": acc["medium"] > max(acc["unstable"], acc["stable"]),
        "unstable_T10_trains_most_erratically": err["unstable"] > max(err["medium"], err["stable"]),
        "unstable_T10_generalizes_worse_than_medium": gap["unstable"] > gap["medium"],
        "unstable_T10_suffers_most_from_prolongation": jump["unstable"] > max(jump["medium"], jump["stable"]),
    }
    assert results["claims"]["stable_T02_barely_moves_the_features"]
