"""Training end to end: run directory, determinism, resume after SIGKILL, bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from stablenet.app.checkpoint import CheckpointError, load_checkpoint
from stablenet.app.cli import main
from stablenet.app.config import ConfigError, parse_config
from stablenet.app.training import TrainingError, train

from _resume import KILLED_RUN_CONFIG, cli_train, train_and_sigkill
from helpers import SMALL, assert_cli_error, assert_png, raises_one_line, small_config, small_raw


def without_time(metrics):
    return {k: v for k, v in metrics.items() if k != "wall_time_s"}


def test_run_directory_contents(tmp_path):
    metrics = train(small_config(), tmp_path / "run", progress=False)
    run = tmp_path / "run"
    for name in ["config.json", "checkpoint.json", "best.safetensors", "history.json", "history.csv", "metrics.json"]:
        assert (run / name).exists(), name
    on_disk = json.loads((run / "metrics.json").read_text())
    assert on_disk == json.loads(json.dumps(metrics))
    for key in ["train_accuracy", "val_accuracy", "test_accuracy", "val_loss", "epochs", "wall_time_s",
                "n_params", "config", "stablenet_version"]:
        assert key in on_disk, key
    assert on_disk["epochs"] == 3
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert max(h["val_accuracy"] for h in history) == on_disk["val_accuracy"]
    assert (run / "history.csv").read_text().splitlines()[0].startswith("epoch,train_loss")
    assert list(run.glob("checkpoint-*.safetensors")) == [run / "checkpoint-00003.safetensors"]


def test_same_seed_same_metrics_and_different_seed_differs(tmp_path):
    a = train(small_config(), tmp_path / "a", progress=False)
    b = train(small_config(), tmp_path / "b", progress=False)
    assert without_time(a) == without_time(b)
    raw = small_raw()
    raw["seed"] = 4
    c = train(parse_config(raw), tmp_path / "c", progress=False)
    assert c["val_loss"] != a["val_loss"]


@pytest.mark.parametrize("optimizer", ["sgd", "lbfgs"])
def test_other_optimizers_and_schedules_train(tmp_path, optimizer):
    cfg = small_config(optimizer=optimizer, lr=0.5 if optimizer == "lbfgs" else 0.05, nesterov=optimizer == "sgd",
                       schedule="step", lr_step_epochs=1, weight_decay=1e-4, classifier_weight_decay=1e-4,
                       batch_size=200)
    metrics = train(cfg, tmp_path / optimizer, progress=False)
    history = json.loads((tmp_path / optimizer / "history.json").read_text())
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert [round(h["lr"], 6) for h in history][:2] != [history[0]["lr"]] * 2  # the step schedule acted
    assert metrics["epochs"] == 3


def test_label_smoothing_changes_the_training_loss_only(tmp_path):
    """With a negligible step the network stays at its initial weights: the training loss must be
    the label-smoothed cross-entropy of those weights on the training set, the validation loss
    the plain one (equal for both runs)."""
    from stablenet.app.training import load_run

    runs = {}
    for eps in (0.0, 0.2):
        cfg = small_config(epochs=1, lr=1e-12, smoothness=0.0, label_smoothing=eps)
        train(cfg, tmp_path / str(eps), progress=False)
        runs[eps] = json.loads((tmp_path / str(eps) / "history.json").read_text())[0]
    _, model, data = load_run(tmp_path / "0.2")
    with torch.no_grad():
        scores = model(data.train.x.float())
    smoothed = float(torch.nn.functional.cross_entropy(scores, data.train.y, label_smoothing=0.2))
    plain = float(torch.nn.functional.cross_entropy(scores, data.train.y))
    assert abs(smoothed - plain) > 1e-3
    assert runs[0.2]["train_loss"] == pytest.approx(smoothed, abs=1e-5)
    assert runs[0.0]["train_loss"] == pytest.approx(plain, abs=1e-5)
    assert runs[0.2]["val_loss"] == pytest.approx(runs[0.0]["val_loss"], abs=1e-7)
    for change, expected in [({"label_smoothing": 1.0}, "training.label_smoothing: Input should be less than 1"),
                             ({"label_smoothing": 0.1, "loss": "least_squares"},
                              "training.label_smoothing: 0.1 applies to loss 'cross_entropy'")]:
        with pytest.raises(ConfigError, match=expected):
            small_config(**change)


def test_mixed_precision_is_refused_with_parallel_and_recomputing_gradient_modes():
    raw = small_raw()
    raw["training"]["mixed_precision"] = "bfloat16"
    parse_config(raw)                                            # dense, autograd: accepted
    with pytest.raises(ConfigError, match=r"training.mixed_precision: 'bfloat16' with \[parallel\]"):
        parse_config({**raw, "parallel": {"layer_ranks": 1}})
    raw["model"]["blocks"][0]["gradient"] = "reversible"
    with pytest.raises(ConfigError, match="model.blocks.0.gradient: 'reversible' with training.mixed_precision"):
        parse_config(raw)


def test_resume_refuses_a_changed_config_and_a_run_without_checkpoint(tmp_path):
    train(small_config(epochs=2), tmp_path / "run", progress=False)
    with pytest.raises(TrainingError, match="configuration differs from the run's"):
        train(small_config(epochs=4, lr=0.5), tmp_path / "run", resume=True, progress=False)
    with pytest.raises(TrainingError, match="holds no checkpoint"):
        train(small_config(), tmp_path / "empty", resume=True, progress=False)


def test_sigkill_then_resume_gives_the_uninterrupted_metrics(tmp_path):
    cfg_path = tmp_path / "small.toml"
    cfg_path.write_text(KILLED_RUN_CONFIG)
    reference = tmp_path / "reference"
    assert cli_train(cfg_path, reference).returncode == 0
    run = tmp_path / "killed"
    train_and_sigkill(cfg_path, run, after_epoch=3)
    assert not (run / "metrics.json").exists()
    load_checkpoint(run)  # the checkpoint left behind by the killed process is intact
    done = cli_train(cfg_path, run, "--resume")
    assert done.returncode == 0, done.stderr
    a = json.loads((reference / "metrics.json").read_text())
    b = json.loads((run / "metrics.json").read_text())
    assert without_time(a) == without_time(b)
    assert json.loads((reference / "history.json").read_text()) == json.loads((run / "history.json").read_text())


def test_existing_run_directory_is_refused_without_resume_or_overwrite(tmp_path):
    train(small_config(epochs=1), tmp_path / "run", progress=False)
    before = (tmp_path / "run" / "metrics.json").read_bytes()
    with pytest.raises(TrainingError, match="already exists; pass --resume to continue it or --overwrite"):
        train(small_config(epochs=1), tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "metrics.json").read_bytes() == before
    train(small_config(epochs=2), tmp_path / "run", overwrite=True, progress=False)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs"] == 2
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "precious.txt").write_text("keep me")
    with pytest.raises(TrainingError, match="not a stablenet run directory"):
        train(small_config(epochs=1), tmp_path / "other", overwrite=True, progress=False)
    assert (tmp_path / "other" / "precious.txt").read_text() == "keep me"


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    run = tmp_path / "run"
    train(small_config(epochs=1), run, progress=False)
    state_before = (run / "checkpoint.json").read_bytes()
    # resume into a diverging continuation is a config change; instead diverge a fresh run
    with pytest.raises(TrainingError, match=r"non-finite loss \((nan|inf)\) in epoch 1, batch \d+"):
        train(small_config(optimizer="sgd", lr=1e30, momentum=0.0), tmp_path / "diverge", progress=False)
    assert not (tmp_path / "diverge" / "checkpoint.json").exists()
    assert (run / "checkpoint.json").read_bytes() == state_before


def test_truncated_or_foreign_checkpoint_gives_a_clear_error(tmp_path):
    run = tmp_path / "run"
    train(small_config(epochs=1), run, progress=False)
    tensors = next(run.glob("checkpoint-*.safetensors"))
    tensors.write_bytes(tensors.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_checkpoint(run)
    (run / "checkpoint.json").write_text('{"hello": 1}')
    with pytest.raises(CheckpointError, match="is not a stablenet checkpoint"):
        load_checkpoint(run)
    (run / "best.safetensors").write_bytes(b"\x00" * 10)
    assert main(["evaluate", str(run)]) == 2


def test_weights_of_another_network_give_a_clear_error(tmp_path):
    """best.safetensors loaded into a model of another width: a CheckpointError naming the file,
    the tensor and both shapes, and the model keeps its weights."""
    from stablenet.app.checkpoint import load_weights
    from stablenet.app.networks import build_model

    run = tmp_path / "run"
    train(small_config(epochs=1), run, progress=False)
    wider = build_model(small_config({"model.blocks.0.width": 6}), 2, 5)
    before = {k: v.clone() for k, v in wider.state_dict().items()}
    with raises_one_line(CheckpointError, str(run / "best.safetensors"), "has shape (", "the model expects (") as info:
        load_weights(run / "best.safetensors", wider)
    key = str(info.value).split(": ")[1].split(" has shape")[0]
    assert key in before, info.value  # it names a tensor of the model
    assert all(torch.equal(before[k], v) for k, v in wider.state_dict().items())
    # a file with other tensor names: missing and unexpected keys are named
    deeper = build_model(small_config({"model.blocks": [SMALL["model"]["blocks"][0]] * 2}), 2, 5)
    with raises_one_line(CheckpointError, "does not fit this model: missing ['blocks.1."):
        load_weights(run / "best.safetensors", deeper)


def test_cli_train_evaluate_plot(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[data]\nname = "ellipses"\noptions = { n_train = 200, n_val = 100, n_test = 100 }\n'
                   '[model]\nopening = "duplicate"\n[[model.blocks]]\ndynamics = "antisymmetric"\nwidth = 4\n'
                   'T = 2.0\nsteps = 4\nmethod = "rk4"\n[training]\nepochs = 2\nthreads = 1\n')
    out = tmp_path / "run"
    assert main(["train", str(cfg), "--out", str(out), "--quiet", "--set", "training.epochs=3"]) == 0
    text = capsys.readouterr().out
    assert "best validation accuracy" in text and "decision_regions.png" in text
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 3
    assert main(["evaluate", str(out), "--split", "val"]) == 0  # the best weights on their own grid
    assert json.loads(capsys.readouterr().out)["accuracy"] == metrics["val_accuracy"]
    for png in ["curves.png", "decision_regions.png", "feature_paths.png"]:
        assert_png(out / png)
    assert main(["evaluate", str(out), "--steps", "16", "--split", "val"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["steps"] == [16] and result["split"] == "val"
    # 16 instead of 4 RK4 steps on T = 2: the discretization error is small, so few of the 100
    # validation points change class (measured: none)
    assert abs(result["accuracy"] - metrics["val_accuracy"]) <= 0.05
    assert result["batch_size"] == 4096
    # a dense network has no batch statistics: any evaluation batch size gives the same numbers
    assert main(["evaluate", str(out), "--steps", "16", "--split", "val", "--batch-size", "7"]) == 0
    small_batches = json.loads(capsys.readouterr().out)
    assert small_batches["batch_size"] == 7 and small_batches["accuracy"] == result["accuracy"]
    assert small_batches["loss"] == pytest.approx(result["loss"], rel=1e-5)
    with pytest.raises(SystemExit) as exit_info:  # refused by the argument parser, one line
        main(["evaluate", str(out), "--batch-size", "0"])
    assert exit_info.value.code == 2
    assert_cli_error(capsys.readouterr().err, "argument --batch-size: expected an integer >= 1, got 0",
                     prefix="stablenet evaluate: error: ")
    (out / "curves.png").unlink()
    assert main(["plot", str(out)]) == 0
    assert_png(out / "curves.png")


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "stablenet.app.cli", *args], capture_output=True, text=True)


def test_cli_errors_are_one_line_with_exit_code_2(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[model]\n[[model.blocks]]\nT = 1.0\nsteps = -3\nmethod = "rk5"\ncolour = "red"\n')
    proc = run_cli("train", str(cfg), "--out", str(tmp_path / "x"))
    assert proc.returncode == 2
    assert_cli_error(proc.stderr, "model.blocks.0.steps", "model.blocks.0.method", "model.blocks.0.colour: unknown key")
    assert not (tmp_path / "x").exists()
    missing_data = run_cli("train", str(Path(__file__).parent.parent / "configs" / "fashion-mnist.toml"),
                           "--out", str(tmp_path / "fm"), "--data-dir", str(tmp_path / "no-such-dir"))
    assert missing_data.returncode == 2
    assert_cli_error(missing_data.stderr, "dataset-fashion-mnist", str(tmp_path / "no-such-dir"))
    assert not (tmp_path / "fm").exists()  # nothing written for a run that could not start
    for args, expected in [(("train", str(tmp_path / "missing.toml")), "does not exist"),
                           (("evaluate", str(tmp_path / "nope")), "does not exist"),
                           (("plot", str(tmp_path)), "not a stablenet run directory")]:
        proc = run_cli(*args)
        assert proc.returncode == 2, proc.stderr
        assert_cli_error(proc.stderr, expected)


def test_train_help_is_short_and_points_to_the_config_reference():
    """`train --help` fits a screen and names `stablenet config-docs`, one command away, which
    documents every key (of [[model.blocks]] and [training] here; tests/test_cli.py checks every table)."""
    proc = run_cli("train", "--help")
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) <= 40, proc.stdout
    assert "stablenet config-docs" in proc.stdout
    for option in ["--out", "--set", "--resume", "--overwrite", "--data-dir", "--quiet"]:
        assert option in proc.stdout, option
    docs = run_cli("config-docs")
    assert docs.returncode == 0, docs.stderr
    from stablenet.app.config import BlockConfig, TrainingConfig
    for key in BlockConfig.model_fields:
        assert f"`{key}`" in docs.stdout, key
    for key in TrainingConfig.model_fields:      # a sub-table has a section of its own
        assert (f"[training.{key}]" if key == "adversarial" else f"`{key}`") in docs.stdout, key


def test_configuration_docs_are_generated_from_the_schema():
    from stablenet.app.config import config_reference

    docs = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    assert docs.rstrip().endswith(config_reference().rstrip())


@pytest.mark.parametrize("config", sorted((Path(__file__).parent.parent / "configs").glob("*.toml")),
                         ids=lambda p: p.stem)
def test_shipped_configs_are_valid(config):
    from stablenet.app.config import load_config

    cfg, _ = load_config(config)
    assert cfg.model.blocks or cfg.model.kind == "conv"
