"""Adversarial training, ``[training.adversarial]`` (issue 18 part 2): the table's errors, the mixed
batch (inside the domain, inside the ε-ball, the configured share), training with it, and a resume
that is exact bit for bit although PGD starts at random points."""

import json
import random

import numpy as np
import pytest
import torch

from stablenet.app import adversarial as adversarial_module
from stablenet.app.adversarial import AdversarialBatches, adversarial_count, batch_seed
from stablenet.app.checkpoint import load_checkpoint
from stablenet.app.cli import main
from stablenet.app.config import ConfigError, config_reference, parse_config
from stablenet.app.networks import build_model
from stablenet.app.training import TrainingError, train
from stablenet.data import load_dataset
from stablenet.robustness._art import MissingDependencyError

from _resume import interrupted_run_resumes_exactly
from helpers import assert_cli_error, raises_one_line, small_config, small_raw

PGD = {"attack": "pgd-linf", "eps": 0.2}


def adversarial(table=None, changes=None, **training):
    """The small peaks config with ``[training.adversarial] = table`` (default PGD)."""
    return small_config({"training.adversarial": dict(PGD if table is None else table), **(changes or {})},
                        **training)


# -- the table ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("table,fragments", [
    ({"attack": "autoattack-linf", "eps": 0.1},
     ("training.adversarial.attack: ", "evaluation ensemble", "'autoattack-linf'", "fgsm-linf, fgsm-l2, pgd-linf, pgd-l2")),
    ({"attack": "gaussian", "eps": 0.1}, ("training.adversarial.attack: random noise", "'gaussian'")),
    ({"attack": "pgd-l1", "eps": 0.1}, ("training.adversarial.attack: expected one of fgsm-linf", "'pgd-l1'")),
    ({"attack": "pgd-linf", "eps": -0.1}, ("training.adversarial.eps: ", "greater than or equal to 0", "-0.1")),
    ({"attack": "pgd-linf", "eps": float("nan")}, ("training.adversarial.eps: ", "finite", "nan")),
    ({"attack": "pgd-linf", "eps": float("inf")}, ("training.adversarial.eps: ", "finite", "inf")),
    ({"attack": "pgd-linf", "eps": True}, ("training.adversarial.eps: expected a number", "True")),
    ({"attack": "pgd-linf"}, ("training.adversarial.eps: required key is missing",)),
    ({"eps": 0.1}, ("training.adversarial.attack: required key is missing",)),
    ({**PGD, "fraction": 0}, ("training.adversarial.fraction: expected a fraction in (0, 1]", "(got 0)")),
    ({**PGD, "fraction": 1.5}, ("training.adversarial.fraction: expected a fraction in (0, 1]", "(got 1.5)")),
    ({**PGD, "steps": 0}, ("training.adversarial.steps: ", "greater than or equal to 1", "(got 0)")),
    ({**PGD, "step_size": 0.0}, ("training.adversarial.step_size: ", "greater than 0")),
    ({**PGD, "restarts": -1}, ("training.adversarial.restarts: ", "greater than or equal to 0")),
    ({"attack": "fgsm-linf", "eps": 0.1, "steps": 5},
     ("training.adversarial.steps: 5 applies to pgd attacks only", "'fgsm-linf'")),
    ({"attack": "fgsm-l2", "eps": 0.1, "restarts": 1}, ("training.adversarial.restarts: 1 applies to pgd",)),
    ({**PGD, "colour": "red"}, ("training.adversarial.colour: unknown key",)),
])
def test_bad_tables_are_refused_in_one_line_naming_the_key(table, fragments):
    with raises_one_line(ConfigError, *fragments):
        parse_config(small_raw({"training.adversarial": table}))


def test_layer_parallel_training_refuses_the_table():
    with raises_one_line(ConfigError, "training.adversarial: 'pgd-linf' with [parallel]", "expected [parallel] or "
                         "[training.adversarial] unset"):
        parse_config(small_raw({"training.adversarial": PGD, "parallel": {"layer_ranks": 1}}))


def test_defaults_resolve_as_the_robustness_package():
    pgd = adversarial().training.adversarial
    assert pgd.fraction == 0.5
    spec = pgd.attack_spec()
    assert (spec.method, spec.norm, spec.steps, spec.step_size, spec.restarts) == ("pgd", "linf", 10, None, 1)
    spec = adversarial({"attack": "pgd-l2", "eps": 1, "steps": 3, "step_size": 0.5, "restarts": 0}
                       ).training.adversarial.attack_spec()
    assert (spec.method, spec.norm, spec.steps, spec.step_size, spec.restarts) == ("pgd", "l2", 3, 0.5, 0)
    fgsm = adversarial({"attack": "fgsm-l2", "eps": 0.1, "steps": 1}).training.adversarial.attack_spec()
    assert (fgsm.method, fgsm.norm, fgsm.steps) == ("fgsm", "l2", 1)


def test_config_docs_document_the_table():
    text = config_reference()
    assert "### [training.adversarial] (optional)" in text
    for key in ("attack", "eps", "fraction", "steps", "step_size", "restarts"):
        assert f"| `{key}` |" in text.split("### [training.adversarial]")[1], key


def test_cli_refuses_a_bad_table_in_one_line_and_writes_nothing(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text('[model]\n[[model.blocks]]\nT = 1.0\nsteps = 2\nmethod = "euler"\n[training.adversarial]\n'
                      'attack = "autoattack-linf"\neps = 0.1\n')
    assert main(["train", str(config), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert_cli_error(capsys.readouterr().err, "training.adversarial.attack", "autoattack-linf")
    assert not (tmp_path / "run").exists()


def test_a_missing_toolbox_is_one_line_before_the_run_directory_is_made(tmp_path, monkeypatch):
    def missing():
        raise MissingDependencyError("adversarial attacks need the Adversarial Robustness Toolbox; install it "
                                     "with pip install 'stablenet[robustness]'")

    monkeypatch.setattr(adversarial_module, "require_art", missing)
    with raises_one_line(TrainingError, "training.adversarial: ", "pip install 'stablenet[robustness]'"):
        train(adversarial(), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


# -- the mixed batch -----------------------------------------------------------------------------------
@pytest.mark.parametrize("fraction,batch,expected", [(0.5, 50, 25), (0.3, 7, 2), (0.25, 10, 3), (0.01, 10, 1),
                                                     (1.0, 13, 13), (0.999, 1, 1)])
def test_the_share_of_adversarial_points(fraction, batch, expected):
    assert adversarial_count(fraction, batch) == expected


def peaks_batch(config):
    """The tiny network of ``config`` and a batch of peaks points with the box's corners among them."""
    data = load_dataset(config.data.name, seed=config.seed, **config.data.options)
    model = build_model(config, data.in_features, data.n_classes)
    x = data.train.x[:40].clone()
    x[:4] = torch.tensor([[-3.0, -3.0], [3.0, 3.0], [-3.0, 3.0], [3.0, -3.0]])
    return data, model, x, data.train.y[:40]


def norms(delta, norm):
    return delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)


@pytest.mark.parametrize("attack,eps,fraction", [("pgd-linf", 0.3, 0.5), ("pgd-l2", 0.5, 0.25),
                                                 ("fgsm-linf", 0.3, 1.0), ("fgsm-l2", 0.5, 0.75)])
def test_adversarial_points_stay_in_the_domain_and_the_ball_and_the_rest_is_clean(attack, eps, fraction):
    config = adversarial({"attack": attack, "eps": eps, "fraction": fraction})
    data, model, x, y = peaks_batch(config)
    mixer = AdversarialBatches(config, data)
    mixed, k = mixer.mix(model, x, y, seed=7)
    assert k == adversarial_count(fraction, len(x)) and mixed.shape == x.shape and mixed.dtype == x.dtype
    assert torch.equal(mixed[k:], x[k:])  # the clean part is untouched
    delta = (mixed[:k] - x[:k]).double()
    assert float(norms(delta, attack.split("-")[1]).max()) <= eps * (1 + 1e-5) + 1e-6
    assert bool(mixer.domain.contains(mixed, tol=0.0))  # corners stay corners where the attack pushes outwards
    assert float(norms(delta, attack.split("-")[1]).max()) > 0.5 * eps  # the attack moved points
    loss = torch.nn.functional.cross_entropy
    with torch.no_grad():
        assert float(loss(model(mixed[:k]), y[:k])) > float(loss(model(x[:k]), y[:k]))  # and made them worse
    assert model.training and all(p.requires_grad for p in model.parameters())  # the model as it was


def test_the_attack_is_reproducible_from_its_seed_and_leaves_global_generators_alone():
    # one short step from the random start: the result shows where the start was
    config = adversarial({"attack": "pgd-linf", "eps": 0.3, "steps": 1, "step_size": 0.1, "restarts": 1})
    data, model, x, y = peaks_batch(config)
    mixer = AdversarialBatches(config, data)
    np_state, py_state, torch_state = np.random.get_state(), random.getstate(), torch.get_rng_state()
    a, _ = mixer.mix(model, x, y, seed=batch_seed(3, 1, 0))
    b, _ = mixer.mix(model, x, y, seed=batch_seed(3, 1, 0))
    c, _ = mixer.mix(model, x, y, seed=batch_seed(3, 1, 1))
    assert torch.equal(a, b) and not torch.equal(a, c)  # the random start depends on the seed only
    assert np.array_equal(np.random.get_state()[1], np_state[1]) and random.getstate() == py_state
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert len({batch_seed(s, e, b) for s in range(3) for e in range(3) for b in range(3)}) == 27


def test_images_stay_in_the_pixel_box():
    raw = {"seed": 0, "data": {"name": "digits"},
           "model": {"opening": "linear", "blocks": [{"width": 8, "T": 1.0, "steps": 2, "method": "euler"}]},
           "training": {"adversarial": {"attack": "pgd-l2", "eps": 2.0, "fraction": 1.0, "steps": 3}}}
    config = parse_config(raw)
    data = load_dataset("digits", seed=0)
    model = build_model(config, data.in_features, data.n_classes)
    x, y = data.train.x[:16], data.train.y[:16]
    mixed, k = AdversarialBatches(config, data).mix(model, x, y, seed=0)
    assert k == 16 and float(mixed.min()) >= 0.0 and float(mixed.max()) <= 1.0
    assert float((mixed - x).double().norm(dim=1).max()) <= 2.0 * (1 + 1e-5) + 1e-6
    assert float((mixed - x).abs().max()) > 0.1


# -- training -------------------------------------------------------------------------------------------
def test_training_with_the_option_runs_differs_from_plain_and_repeats(tmp_path):
    plain = train(small_config(), tmp_path / "plain", progress=False)
    adv = train(adversarial(), tmp_path / "adv", progress=False)
    again = train(adversarial(), tmp_path / "again", progress=False)
    history = json.loads((tmp_path / "adv" / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert all(0 <= row["adversarial_accuracy"] <= 1 for row in history)
    assert "adversarial_accuracy" not in json.loads((tmp_path / "plain" / "history.json").read_text())[0]
    assert adv["val_loss"] != plain["val_loss"]
    assert history == json.loads((tmp_path / "again" / "history.json").read_text())
    assert {k: v for k, v in adv.items() if k != "wall_time_s"} == {k: v for k, v in again.items()
                                                                    if k != "wall_time_s"}
    weights = load_checkpoint(tmp_path / "adv")["model"]
    assert all(torch.equal(w, load_checkpoint(tmp_path / "again")["model"][k]) for k, w in weights.items())


def test_eps_zero_trains_exactly_like_plain_training(tmp_path):
    """ε = 0 gives clean copies, and the batch order is not touched: the very run of plain training."""
    plain = train(small_config(), tmp_path / "plain", progress=False)
    zero = train(adversarial({"attack": "pgd-linf", "eps": 0.0, "fraction": 1.0}), tmp_path / "zero", progress=False)
    history = json.loads((tmp_path / "zero" / "history.json").read_text())
    plain_history = json.loads((tmp_path / "plain" / "history.json").read_text())
    for row, clean in zip(history, plain_history):
        assert row["adversarial_accuracy"] == row["train_accuracy"]
        assert {k: v for k, v in row.items() if k != "adversarial_accuracy"} == clean
    assert zero["test_accuracy"] == plain["test_accuracy"]


def test_the_reported_training_loss_is_that_of_the_mixed_batches(tmp_path, monkeypatch):
    """train_loss is the mean loss of the batches the optimizer stepped on (adversarial share included)."""
    seen = []
    mix = AdversarialBatches.mix

    def recording(self, model, xb, yb, seed):
        mixed, k = mix(self, model, xb, yb, seed)
        with torch.no_grad():
            seen.append(float(torch.nn.functional.cross_entropy(model(mixed), yb, reduction="sum")))
        return mixed, k

    monkeypatch.setattr(AdversarialBatches, "mix", recording)
    cfg = adversarial(epochs=1, smoothness=0.0)
    train(cfg, tmp_path / "run", progress=False)
    row = json.loads((tmp_path / "run" / "history.json").read_text())[0]
    assert row["train_loss"] == pytest.approx(sum(seen) / 200, rel=1e-6)  # 200 training points


CONV = {"seed": 2, "data": {"name": "digits", "augment": {"padding": 1, "flip": True, "normalize": True}},
        "model": {"kind": "conv", "widths": [4, 8], "normalization": "batch", "method": "euler", "T": 1.0,
                  "steps": 2},
        "training": {"epochs": 1, "batch_size": 128, "optimizer": "adam", "lr": 0.01, "threads": 1,
                     "mixed_precision": "bfloat16", "adversarial": {"attack": "pgd-l2", "eps": 0.5, "steps": 2}}}


@pytest.mark.parametrize("name", ["adam-pgd", "multilevel-pgd-l2", "gauss-newton-fgsm", "conv-augment-bfloat16"])
def test_other_trainers_take_the_option(tmp_path, name):
    cfg = {"adam-pgd": lambda: adversarial(optimizer="adam", epochs=1),
           "conv-augment-bfloat16": lambda: parse_config(CONV),
           "multilevel-pgd-l2": lambda: adversarial({"attack": "pgd-l2", "eps": 0.3, "steps": 3, "restarts": 2},
                                                    {"multilevel": {"levels": 2, "epochs_per_level": 1}}),
           "gauss-newton-fgsm": lambda: adversarial({"attack": "fgsm-linf", "eps": 0.2}, optimizer="gauss_newton",
                                                    epochs=1, batch_size=200)}[name]()
    metrics = train(cfg, tmp_path / "run", progress=False)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert all(0 <= row["adversarial_accuracy"] <= 1 for row in history) and metrics["epochs"] == len(history)


# -- exact resume -------------------------------------------------------------------------------------------
RESUMED = {
    "adam-pgd-restarts": lambda: adversarial({"attack": "pgd-linf", "eps": 0.3, "steps": 3, "restarts": 2},
                                             optimizer="adam"),
    "multilevel-pgd-l2": lambda: adversarial({"attack": "pgd-l2", "eps": 0.4, "steps": 2, "fraction": 1.0},
                                             {"multilevel": {"levels": 2, "epochs_per_level": [1, 2]}}),
}


@pytest.mark.parametrize("name", RESUMED)
def test_a_run_stopped_after_epoch_1_of_3_resumes_bit_for_bit(tmp_path, monkeypatch, name):
    cfg = RESUMED[name]()
    interrupted_run_resumes_exactly(cfg, tmp_path, monkeypatch, stop_after=1)
    reference, resumed = load_checkpoint(tmp_path / "reference"), load_checkpoint(tmp_path / "killed")
    assert resumed["epoch"] == reference["epoch"] == 3
    for key, weight in reference["model"].items():
        assert torch.equal(weight, resumed["model"][key]), key
    for key, weight in reference["best_model"].items():
        assert torch.equal(weight, resumed["best_model"][key]), key
