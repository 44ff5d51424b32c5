"""Training logs in TensorBoard (training.log = ["tensorboard"]): the event files read back with
TensorBoard's own readers, the stability figures at their epochs, resume after kill -9 without a
duplicate or missing step, config errors, --overwrite."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader  # noqa: E402

from stablenet.app import training  # noqa: E402
from stablenet.app.checkpoint import load_checkpoint  # noqa: E402
from stablenet.app.cli import main  # noqa: E402
from stablenet.app.config import ConfigError, parse_config  # noqa: E402
from stablenet.app.training import TrainingError, train  # noqa: E402

from _resume import KILLED_RUN_CONFIG, cli_train, train_and_sigkill  # noqa: E402
from helpers import raises_one_line, small_config, small_raw  # noqa: E402

EPOCH_TAGS = {"loss/train", "loss/val", "accuracy/train", "accuracy/val", "lr", "time/epoch_s", "time/total_s"}
STABILITY_TAGS = {"stability/max_re_lambda", "stability/fraction_stable", "stability/max_amplification",
                  "stability/block0/max_re_lambda", "stability/block0/fraction_stable"}


def scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar (step, value) of the run's event files, in file order, as TensorBoard's raw
    event file loader reads them (no purging, no de-duplication: what the files hold)."""
    out: dict[str, list[tuple[int, float]]] = {}
    for path in sorted((run / "tensorboard").glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                # the loader hands a scalar over as a 0-d float tensor (its own data format)
                number = value.tensor.float_val[0] if value.HasField("tensor") else value.simple_value
                out.setdefault(value.tag, []).append((event.step, number))
    return out


def accumulated(run: Path) -> EventAccumulator:
    ea = EventAccumulator(str(run / "tensorboard"))
    ea.Reload()
    return ea


def steps(series) -> list[int]:
    return [step for step, _ in series]


def test_epoch_scalars_and_stability_figures_are_read_back(tmp_path):
    run = tmp_path / "run"
    metrics = train(small_config(epochs=4, log=["tensorboard"], log_stability_every=2), run, progress=False)
    ea = accumulated(run)
    assert set(ea.Tags()["scalars"]) == EPOCH_TAGS | STABILITY_TAGS
    for tag in EPOCH_TAGS:
        assert [e.step for e in ea.Scalars(tag)] == [1, 2, 3, 4], tag
    for tag in STABILITY_TAGS:
        assert [e.step for e in ea.Scalars(tag)] == [2, 4], tag
    history = json.loads((run / "history.json").read_text())
    for key, tag in [("train_loss", "loss/train"), ("val_accuracy", "accuracy/val"), ("lr", "lr")]:
        assert [e.value for e in ea.Scalars(tag)] == pytest.approx([h[key] for h in history], rel=1e-6)
    # the Hamiltonian block's Jacobians have purely imaginary eigenvalues, inside Verlet's segment
    assert max(abs(e.value) for e in ea.Scalars("stability/max_re_lambda")) < 1e-6
    assert [e.value for e in ea.Scalars("stability/fraction_stable")] == pytest.approx([1.0, 1.0])
    # the logs leave the training untouched
    plain = train(small_config(epochs=4), tmp_path / "plain", progress=False)
    assert {k: v for k, v in metrics.items() if k not in ("wall_time_s", "config")} == \
        {k: v for k, v in plain.items() if k not in ("wall_time_s", "config")}


def test_multilevel_steps_continue_across_levels(tmp_path):
    run = tmp_path / "run"
    cfg = small_config({"model.blocks.0.steps": 8, "multilevel": {"levels": 2, "epochs_per_level": 2}},
                       log=["tensorboard"], log_stability_every=1)
    train(cfg, run, progress=False)
    found = scalars(run)
    assert steps(found["loss/train"]) == [1, 2, 3, 4]
    assert [v for _, v in found["multilevel/level"]] == [1, 1, 2, 2]
    assert [v for _, v in found["multilevel/steps"]] == [4, 4, 8, 8]
    assert steps(found["stability/fraction_stable"]) == [1, 2, 3, 4]


def test_conv_network_stability_on_the_analyze_crop(tmp_path):
    from test_conv_training import RAW

    raw = copy.deepcopy(RAW)
    raw["training"].update(epochs=2, log=["tensorboard"], log_stability_every=2, log_stability_samples=2)
    train(parse_config(raw), tmp_path / "run", progress=False)
    found = scalars(tmp_path / "run")
    for k in (0, 1):  # one block per stage (widths [4, 8])
        assert steps(found[f"stability/block{k}/max_re_lambda"]) == [2]
    # conv_parabolic: f = −Kᵀσ(K·) has a negative semidefinite Jacobian
    assert found["stability/max_re_lambda"][0][1] <= 1e-6
    assert 0 <= found["stability/fraction_stable"][0][1] <= 1


def _exactly_once(run: Path, epochs: int, every: int):
    found = scalars(run)
    assert set(found) == EPOCH_TAGS | STABILITY_TAGS
    for tag in EPOCH_TAGS:
        assert steps(found[tag]) == list(range(1, epochs + 1)), tag
    for tag in STABILITY_TAGS:
        assert steps(found[tag]) == list(range(every, epochs + 1, every)), tag
    ea = accumulated(run)  # and TensorBoard's own accumulator (with its purging) agrees
    assert [e.step for e in ea.Scalars("loss/val")] == list(range(1, epochs + 1))


def test_an_epoch_logged_but_not_checkpointed_is_logged_once_after_resume(tmp_path, monkeypatch):
    """The window a kill can hit: epoch 3's events are on disk (one of its records cut short), its
    checkpoint is not; the resume repeats epoch 3 and the files hold it once."""
    cfg = small_config(epochs=5, log=["tensorboard"], log_stability_every=1)
    run = tmp_path / "run"
    save = training.save_checkpoint
    calls = []

    def die_before_the_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return save(*args, **kwargs)

    monkeypatch.setattr(training, "save_checkpoint", die_before_the_third)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, run, progress=False)
    monkeypatch.setattr(training, "save_checkpoint", save)
    assert load_checkpoint(run)["epoch"] == 2
    assert steps(scalars(run)["loss/train"]) == [1, 2, 3]
    [events] = (run / "tensorboard").glob("events.out.tfevents.*")
    with open(events, "ab") as handle:  # a record the kill cut short
        handle.write(events.read_bytes()[-30:-10])
    reference = train(cfg, tmp_path / "reference", progress=False)
    resumed = train(cfg, run, resume=True, progress=False)
    assert resumed["val_accuracy"] == reference["val_accuracy"]
    _exactly_once(run, 5, 1)


def test_a_resume_may_start_logging(tmp_path, monkeypatch):
    """The logging keys may change on resume (they change what is written beside the run, not the
    run): a run started without logs, interrupted after epoch 2 and resumed with
    training.log = ["tensorboard"], logs epochs 3-4 and ends as the run without logs; any other
    change is still refused."""
    plain = small_config(epochs=4)
    run = tmp_path / "run"
    save = training.save_checkpoint

    def die_after_the_second(*args, **kwargs):
        path = save(*args, **kwargs)
        if load_checkpoint(args[0])["epoch"] == 2:
            raise KeyboardInterrupt
        return path

    monkeypatch.setattr(training, "save_checkpoint", die_after_the_second)
    with pytest.raises(KeyboardInterrupt):
        train(plain, run, progress=False)
    monkeypatch.setattr(training, "save_checkpoint", save)
    resumed = train(small_config(epochs=4, log=["tensorboard"], log_stability_every=1), run, resume=True,
                    progress=False)
    reference = train(plain, tmp_path / "reference", progress=False)
    assert resumed["val_accuracy"] == reference["val_accuracy"]
    assert steps(scalars(run)["loss/train"]) == [3, 4]
    with raises_one_line(TrainingError, "training.lr"):
        train(small_config(epochs=4, lr=0.5), run, resume=True, progress=False)


def test_sigkill_then_resume_logs_every_epoch_exactly_once(tmp_path):
    cfg_path = tmp_path / "small.toml"
    cfg_path.write_text(KILLED_RUN_CONFIG + 'log = ["tensorboard"]\nlog_stability_every = 2\n')
    run = tmp_path / "killed"
    train_and_sigkill(cfg_path, run, after_epoch=3)
    assert not (run / "metrics.json").exists()
    killed_at = load_checkpoint(run)["epoch"]
    assert 3 <= killed_at < 12
    done = cli_train(cfg_path, run, "--resume")
    assert done.returncode == 0, done.stderr
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 2  # one per process
    _exactly_once(run, 12, 2)


@pytest.mark.parametrize("training_keys,expected", [
    ({"log": ["mlflow"]}, "training.log.0: Input should be 'tensorboard' (got 'mlflow')"),
    ({"log": ["tensorboard", "tensorboard"]}, "training.log: ['tensorboard', 'tensorboard'] names a logger twice"),
    ({"log_stability_every": 5}, 'training.log_stability_every: 5 needs a training log; expected training.log = '
                                 '["tensorboard"]'),
    ({"log_stability_samples": 8}, "training.log_stability_samples: 8 needs a training log"),
    ({"log": ["tensorboard"], "log_stability_every": -1}, "training.log_stability_every: Input should be greater "
                                                          "than or equal to 0"),
    ({"log": ["tensorboard"], "log_stability_samples": 0}, "training.log_stability_samples: Input should be "
                                                           "greater than or equal to 1"),
])
def test_config_errors_name_the_key(training_keys, expected):
    with raises_one_line(ConfigError, expected):
        parse_config(small_raw(**training_keys))


def test_stability_figures_with_parallel_are_refused():
    raw = small_raw({"parallel": {"layer_ranks": 1}}, log=["tensorboard"], log_stability_every=1)
    with raises_one_line(ConfigError, "training.log_stability_every: 1 with [parallel]", "expected 0"):
        parse_config(raw)


def test_missing_tensorboard_is_one_error_naming_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    run = tmp_path / "run"
    with raises_one_line(TrainingError, "training.log: 'tensorboard' needs the tensorboard package",
                         "pip install 'stablenet[tensorboard]'"):
        train(small_config(log=["tensorboard"]), run, progress=False)
    assert not run.exists()  # refused before the run directory is touched
    config = tmp_path / "run.toml"
    config.write_text('[model]\nopening = "duplicate"\n[[model.blocks]]\ndynamics = "hamiltonian"\nwidth = 4\n'
                      'T = 1.0\nsteps = 2\nmethod = "verlet"\n[training]\nlog = ["tensorboard"]\n')
    assert main(["train", str(config), "--out", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'stablenet[tensorboard]'" in err


def test_overwrite_removes_the_logs_but_not_the_users_files(tmp_path):
    run = tmp_path / "run"
    train(small_config(epochs=2, log=["tensorboard"]), run, progress=False)
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    train(small_config(epochs=1), run, overwrite=True, progress=False)
    assert not (run / "tensorboard").exists()  # no stale curves of the old run
    train(small_config(epochs=2, log=["tensorboard"]), run, overwrite=True, progress=False)
    (run / "tensorboard" / "notes.txt").write_text("mine")
    train(small_config(epochs=1, log=["tensorboard"]), run, overwrite=True, progress=False)
    assert (run / "tensorboard" / "notes.txt").read_text() == "mine"
    assert steps(scalars(run)["loss/train"]) == [1]  # only the new run's events


def test_import_stablenet_does_not_load_tensorboard():
    code = ("import sys, stablenet, stablenet.app.training, stablenet.app.cli\n"
            "print(sorted(m for m in sys.modules if m.startswith(('tensorboard', 'torch.utils.tensorboard'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
