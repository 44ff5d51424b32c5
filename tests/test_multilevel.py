"""Multilevel (cascadic) training in depth: prolongation keeps the network, per-level records,
resume across levels, config errors (Haber & Ruthotto 2017; Meganet)."""

import copy
import json
import math

import pytest
import torch

from stablenet.app import training
from stablenet.app.checkpoint import load_checkpoint, load_weights, weights_metadata
from stablenet.app.cli import main
from stablenet.app.config import ConfigError, parse_config
from stablenet.data import load_dataset
from stablenet.models import softmax_cross_entropy
from stablenet.app.networks import build_model
from stablenet.app.training import evaluate, load_run, refine, train

from _resume import interrupted_run_resumes_exactly
from helpers import assert_cli_error, assert_png, raises_one_line

PEAKS = {"name": "peaks", "options": {"n_train_per_class": 40, "n_val_per_class": 20, "n_test_per_class": 10}}
VERLET = {"dynamics": "hamiltonian", "width": 4, "T": 2.0, "steps": 8, "method": "verlet"}
RK4 = {"dynamics": "antisymmetric", "width": 4, "gamma": 0.01, "T": 2.0, "steps": 8, "method": "rk4"}


def config(block=VERLET, multilevel=None, **training_options):
    raw = {"seed": 3, "data": PEAKS, "model": {"opening": "duplicate", "blocks": [dict(block)]},
           "training": {"batch_size": 50, "lr": 0.02, "threads": 1, **training_options}}
    if multilevel is not None:
        raw["multilevel"] = multilevel
    return parse_config(raw)


# -- (a) prolongation changes the network only by the discretization error ------------------------
def _trained(block, steps):
    """A float64 network with ``steps`` steps (nt = steps, constant controls) after 30 Adam steps."""
    cfg = parse_config({"seed": 0, "model": {"opening": "duplicate", "blocks": [dict(block, steps=steps)]},
                        "training": {"dtype": "float64"}})
    data = load_dataset("peaks", seed=0, n_train_per_class=40, n_val_per_class=10, n_test_per_class=5)
    x, y = data.train.x.double(), data.train.y
    model = build_model(cfg, 2, 5)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(30):
        optimizer.zero_grad()
        softmax_cross_entropy(model(x), y).backward()
        optimizer.step()
    return model, x, y


@torch.no_grad()
def _loss(model, x, y):
    return float(softmax_cross_entropy(model(x), y))


@torch.no_grad()
def _perturbed_loss_changes(model, x, y, relative, seeds=5):
    """|Δ loss| for random perturbations of every control weight by ``relative`` of its norm."""
    base, changes = _loss(model, x, y), []
    for seed in range(seeds):
        g = torch.Generator().manual_seed(seed)
        other = copy.deepcopy(model)
        for block in other.blocks:
            for p in block.dynamics.parameters():
                r = torch.randn(p.shape, generator=g, dtype=p.dtype)
                p.add_(r * (relative * p.norm() / r.norm()))
        changes.append(abs(_loss(other, x, y) - base))
    return sorted(changes)


def _refinement_changes(model, x, y, times=3):
    """|Δ loss| of ``times`` successive refinements steps, nt → 2·steps, 2·nt."""
    losses = [_loss(model, x, y)]
    for _ in range(times):
        steps = 2 * model.blocks[0].steps
        refine(model, [(steps, steps)])
        assert model.blocks[0].dynamics.nt == steps and model.blocks[0].steps == steps
        losses.append(_loss(model, x, y))
    return [abs(a - b) for a, b in zip(losses[:-1], losses[1:])]


def test_prolongation_rk4_antisymmetric_changes_the_loss_at_fourth_order():
    # measured (float64, T = 2, width 4, 4 → 8 → 16 → 32 steps): changes 1.6e-5, 4.9e-7, 1.3e-9,
    # ratios 33 and 380 (RK4: 2^4 = 16 or better); a random 12.5% (= 1/steps) perturbation of the
    # weights changes the loss by 6.8e-4 … 4.9e-3.
    model, x, y = _trained(dict(RK4, T=2.0), steps=4)
    perturbations = _perturbed_loss_changes(model, x, y, relative=1 / 8)
    changes = _refinement_changes(model, x, y)
    assert changes[0] < 1e-4
    assert changes[0] / changes[1] > 10 and changes[1] / changes[2] > 10  # ~2^4 per halving of h
    assert changes[0] < 0.1 * perturbations[len(perturbations) // 2]  # far below a random change


def test_prolongation_verlet_hamiltonian_changes_the_loss_at_first_order():
    # Verlet networks start from Z_{-1/2} = 0, a time that moves with h, and the z half-step
    # straddles the jumps of piecewise-constant weights: re-discretized they converge at first
    # order (see ODEBlock), with an O(h²) term behind it, so the observed order between successive
    # refinements is 1 − O(h) and its deficit roughly halves with h.  Measured (float64, T = 2,
    # width 4, 8 → 16 → … → 256 steps, model seeds 0-5): orders 0.35-0.72, 0.73-0.89,
    # 0.875-0.95, 0.94-0.98; the change at 32 → 64 steps is below the 9e-3 … 1.6e-2 that a random
    # 10% perturbation of the weights gives.
    model, x, y = _trained(VERLET, steps=8)
    perturbations = _perturbed_loss_changes(model, x, y, relative=0.1)
    changes = _refinement_changes(model, x, y, times=5)
    orders = [math.log2(a / b) for a, b in zip(changes[:-1], changes[1:])]
    assert changes[0] < 0.03
    assert orders == sorted(orders), orders  # approaching the asymptotic order from below …
    assert abs(orders[-1] - 1) < 0.1, orders  # … which is 1 (2 would be second order)
    assert changes[2] < 0.8 * perturbations[len(perturbations) // 2]


def test_refine_keeps_theta_exactly_and_refuses_an_unreachable_grid():
    model, x, _ = _trained(dict(RK4, controls="linear"), steps=2)
    block = model.blocks[0]
    times = torch.linspace(0, 2.0, 9, dtype=torch.float64)
    before = [w.clone() for w in block.weights_at(times)]
    refine(model, [(8, 8)])
    assert (block.steps, block.dynamics.nt) == (8, 8)
    for a, b in zip(before, block.weights_at(times)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="cannot prolongate nt = 16 to 12"):
        refine(model, [(12, 12)])


# -- (b) a multilevel run: per-level records, every optimizer, load_run / evaluate / plot -----------
def test_multilevel_run_records_every_level(tmp_path, capsys):
    cfg = config(VERLET, {"levels": 3, "epochs_per_level": [2, 1, 2]})
    run = tmp_path / "run"
    metrics = train(cfg, run, progress=False)
    history = json.loads((run / "history.json").read_text())
    assert [(h["epoch"], h["level"], h["steps"]) for h in history] == [
        (1, 1, 2), (2, 1, 2), (3, 2, 4), (4, 3, 8), (5, 3, 8)]
    assert (run / "history.csv").read_text().splitlines()[0].endswith(",lr,level,steps")
    levels = metrics["levels"]
    assert [(r["level"], r["steps"], r["nt"], r["epochs"]) for r in levels] == [
        (1, [2], [2], 2), (2, [4], [4], 1), (3, [8], [8], 2)]
    _, _, data = load_run(run)
    for record in levels:
        rows = [h for h in history if h["level"] == record["level"]]
        assert record["val_accuracy"] == max(h["val_accuracy"] for h in rows)
        assert record["wall_time_s"] > 0
        weights = run / f"best-level-{record['level']}.safetensors"
        assert weights_metadata(weights)["level"] == str(record["level"])
        # the level's test accuracy is that of its best weights on the level's own state grid
        coarse = build_model(cfg, 2, 5, level=record["level"])
        load_weights(weights, coarse)
        assert [b.steps for b in coarse.blocks] == record["steps"]
        assert evaluate(coarse, data.test.x, data.test.y, softmax_cross_entropy)[1] == record["test_accuracy"]
    # top level: the best of the finest level; the epochs of all levels
    assert metrics["val_accuracy"] == levels[-1]["val_accuracy"] and metrics["best_epoch"] in (4, 5)
    assert metrics["epochs"] == 5 and metrics["test_accuracy"] == levels[-1]["test_accuracy"]
    assert json.loads((run / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    assert load_checkpoint(run)["level"] == 3
    _, model, _ = load_run(run)
    assert (model.blocks[0].steps, model.blocks[0].dynamics.nt) == (8, 8)
    assert main(["evaluate", str(run)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["steps"] == [8] and result["accuracy"] == metrics["test_accuracy"]
    assert main(["plot", str(run)]) == 0
    assert_png(run / "curves.png")


@pytest.mark.parametrize("block,optimizer,schedule", [(RK4, "adam", "cosine"), (RK4, "lbfgs", "constant"),
                                                      (VERLET, "sgd", "step"), (VERLET, "lbfgs", "constant")],
                         ids=["rk4-adam", "rk4-lbfgs", "verlet-sgd", "verlet-lbfgs"])
def test_every_optimizer_trains_across_levels(tmp_path, block, optimizer, schedule):
    lr = {"adam": 0.02, "sgd": 0.05, "lbfgs": 0.5}[optimizer]
    cfg = config(dict(block, steps=4, nt=8), {"levels": 2, "epochs_per_level": 2, "start_steps": 1},
                 optimizer=optimizer, lr=lr, schedule=schedule, lr_step_epochs=1, batch_size=200)
    metrics = train(cfg, tmp_path / "run", progress=False)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    # start_steps = 1 keeps nt/steps = 2: levels (1 step, 2 controls) then (2, 4)
    assert [(r["steps"], r["nt"]) for r in metrics["levels"]] == [([1], [2]), ([2], [4])]
    assert [h["steps"] for h in history] == [1, 1, 2, 2]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    if schedule != "constant":  # the schedule restarts with every level
        assert history[2]["lr"] == history[0]["lr"] != history[1]["lr"]


# -- resume ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("stop_after", [2, 3], ids=["at-a-level-end", "inside-a-level"])
def test_interrupted_multilevel_run_resumes_to_the_uninterrupted_metrics(tmp_path, monkeypatch, stop_after):
    cfg = config(RK4, {"levels": 3, "epochs_per_level": [2, 2, 1]}, optimizer="lbfgs", lr=0.5, batch_size=100,
                 smoothness=1e-3)
    def at_interruption(saved, run):
        assert saved["level"] == (1 if stop_after == 2 else 2)
        assert not (run / "metrics.json").exists()

    interrupted_run_resumes_exactly(cfg, tmp_path, monkeypatch, stop_after, at_interruption)


def test_resume_refuses_a_checkpoint_at_the_wrong_level(tmp_path):
    cfg = config(VERLET, {"levels": 2, "epochs_per_level": 1})
    train(cfg, tmp_path / "run", progress=False)
    index = json.loads((tmp_path / "run" / "checkpoint.json").read_text())
    index["state"]["__dict__"] = [[k, 1 if k == "level" else v] for k, v in index["state"]["__dict__"]]
    (tmp_path / "run" / "checkpoint.json").write_text(json.dumps(index))
    with pytest.raises(training.TrainingError, match="checkpoint is at level 1 after epoch 2, expected level 2"):
        train(cfg, tmp_path / "run", resume=True, progress=False)


# -- (c) configuration errors ----------------------------------------------------------------------
@pytest.mark.parametrize("multilevel,block,expected", [
    ({"levels": 4, "epochs_per_level": 2}, dict(RK4, steps=12),
     "multilevel.levels: 4 levels start from model.blocks.0.steps / 2^(levels − 1) = 12/8, not a whole number; "
     "expected steps divisible by 8 (or set multilevel.start_steps)"),
    ({"levels": 3, "epochs_per_level": 1}, dict(RK4, nt=2),
     "multilevel.levels: 3 levels start from model.blocks.0.nt / 2^(levels − 1) = 2/4"),
    ({"levels": 2, "epochs_per_level": 1, "start_steps": 3}, dict(RK4, steps=8, nt=4),
     "multilevel.start_steps: 3 steps with model.blocks.0's nt/steps = 4/8 give 1.5 control points on the first "
     "level; expected start_steps·nt/steps to be a whole number"),
    ({"levels": 3, "epochs_per_level": [1, 2]}, RK4,
     "multilevel.epochs_per_level: [1, 2] has 2 entries; expected 3, one per level"),
    ({"levels": 2, "epochs_per_level": 0}, RK4,
     "multilevel.epochs_per_level: expected an integer ≥ 1 or a non-empty list of integers ≥ 1, one per level (got 0)"),
    ({"levels": 2, "epochs_per_level": [2, -1]}, RK4, "multilevel.epochs_per_level: expected an integer ≥ 1"),
    ({"levels": 2, "epochs_per_level": "many"}, RK4, "(got 'many')"),
    ({"levels": 0, "epochs_per_level": 1}, RK4, "multilevel.levels: Input should be greater than or equal to 1 (got 0)"),
    ({"levels": 17, "epochs_per_level": 1}, RK4, "multilevel.levels: Input should be less than or equal to 16"),
    ({"levels": 2, "epochs_per_level": 1, "start_steps": 0}, RK4, "multilevel.start_steps: Input should be greater"),
    ({"levels": 2}, RK4, "multilevel.epochs_per_level: required key is missing"),
    ({"levels": 2, "epochs_per_level": 1, "depth": 3}, RK4, "multilevel.depth: unknown key"),
    (5, RK4, "multilevel: Input should be a valid dictionary"),
])
def test_bad_multilevel_values_are_one_line_errors_naming_the_key(multilevel, block, expected):
    with raises_one_line(ConfigError, expected):
        config(block, multilevel)


def test_cli_multilevel_override_and_error(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[data]\nname = "moons"\noptions = { n_train = 100, n_val = 50, n_test = 50 }\n[model]\n'
                   'opening = "duplicate"\n[[model.blocks]]\ndynamics = "antisymmetric"\nwidth = 4\nT = 1.0\n'
                   'steps = 4\nmethod = "rk4"\n[training]\nthreads = 1\n')
    out = tmp_path / "run"
    assert main(["train", str(cfg), "--out", str(out), "--quiet", "--set", "multilevel.levels=2",
                 "--set", "multilevel.epochs_per_level=[1, 1]"]) == 0
    assert [r["steps"] for r in json.loads((out / "metrics.json").read_text())["levels"]] == [[2], [4]]
    capsys.readouterr()
    assert main(["train", str(cfg), "--out", str(tmp_path / "bad"), "--set", "multilevel.levels=4",
                 "--set", "multilevel.epochs_per_level=1"]) == 2
    assert_cli_error(capsys.readouterr().err, "multilevel.levels: 4 levels start from model.blocks.0.steps")
    assert not (tmp_path / "bad").exists()
