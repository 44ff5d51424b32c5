"""TrainState is exactly what a checkpoint holds: a round trip state → checkpoint → state is exact,
a checkpoint of an older stablenet (without the newer keys) loads with the documented defaults, and
the checkpoint's keys are the state's fields, all of which a resume reads."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from stablenet.app.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from stablenet.app.config import parse_saved_config
from stablenet.app.train_state import NO_BEST, TrainState, level_record
from stablenet.app.training import Trainer, train
from stablenet.data import load_dataset
from stablenet.parallel.context import ParallelContext

from helpers import small_config

FIELDS = {f.name for f in dataclasses.fields(TrainState)}
OLD_RUN = Path(__file__).parent / "data" / "run-0.1.0-interrupted"
#: the keys a checkpoint of stablenet 0.1.0 lacks (or, for level/levels/scaler, earlier builds)
NEWER_KEYS = ("best_model", "scaler", "level", "levels")


def assert_same(a, b, where="checkpoint"):
    """Nested dicts/lists/tensors equal exactly: same keys and order, tensors of equal dtype and values."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), (where, list(a), list(b))
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}.{i}")
    else:
        assert type(a) is type(b) and a == b, (where, a, b)


def without_times(saved):
    """A checkpoint without its wall times (the only entries two equal runs may differ in)."""
    levels = [{k: v for k, v in r.items() if k != "wall_time_s"} for r in saved["levels"]]
    return {**{k: v for k, v in saved.items() if k != "wall_time_s"}, "levels": levels}


def trainer(config, run: Path) -> Trainer:
    data = load_dataset(config.data.name, seed=config.seed, **config.data.options)
    return Trainer(config, run, data, ParallelContext.from_config(None))


def trained_state(config, run: Path, epochs: int) -> TrainState:
    """A new run of ``config`` in ``run`` after ``epochs`` epochs (checkpoints written as train() does)."""
    t = trainer(config, run)
    state = t.start(resume=False, overwrite=False, config_text=None, announce=None)
    for _ in range(epochs):
        t.run_epoch(state)
    return state


def resumed_state(config, run: Path) -> TrainState:
    return trainer(config, run).start(resume=True, overwrite=False, config_text=None, announce=None)


def multilevel_adam():
    """Two levels of one epoch, Adam with a step schedule and a float16 loss scale: every field holds state."""
    return small_config({"multilevel": {"levels": 2, "epochs_per_level": [1, 2]},
                         "model.blocks.0.steps": 4, "model.blocks.0.nt": 4},
                        optimizer="adam", lr=0.01, schedule="step", lr_step_epochs=1, mixed_precision="float16")


CONFIGS = {"lbfgs": lambda: small_config(optimizer="lbfgs", lr=0.5, batch_size=200),
           "multilevel-adam": multilevel_adam,
           "gauss-newton-varpro": lambda: small_config(optimizer="gauss_newton", varpro=True, lr=1.0,
                                                       classifier_weight_decay=1e-4, batch_size=200,
                                                       hessian_samples=40)}


# -- the round trip ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", CONFIGS)
def test_state_checkpoint_state_round_trip_is_exact(tmp_path, name):
    config = CONFIGS[name]()
    state = trained_state(config, tmp_path / "run", epochs=2)
    written = state.to_checkpoint()
    save_checkpoint(tmp_path / "copy", written, tag="00002")
    restored = resumed_state(config, tmp_path / "run")  # the trainer's own resume
    assert_same(restored.to_checkpoint(), written)
    assert_same(load_checkpoint(tmp_path / "copy"), load_checkpoint(tmp_path / "run"))
    # the objects themselves: weights, and the batch order still to come
    for (key, a), (_, b) in zip(state.model.state_dict().items(), restored.model.state_dict().items()):
        assert torch.equal(a, b), key
    assert torch.equal(torch.randperm(100, generator=state.generator), torch.randperm(100, generator=restored.generator))
    if name == "multilevel-adam":
        assert restored.level == 2 and [r["level"] for r in restored.levels] == [1, 2]
        assert restored.scaler.state_dict()["_growth_tracker"] > 0 and restored.scheduler.last_epoch == 1
        assert restored.best_model is not None and restored.best["epoch"] == 2


def test_a_resumed_state_continues_like_the_uninterrupted_one(tmp_path):
    config = multilevel_adam()
    straight = trained_state(config, tmp_path / "straight", epochs=3)
    trained_state(config, tmp_path / "stopped", epochs=2)
    t = trainer(config, tmp_path / "stopped")
    resumed = t.start(resume=True, overwrite=False, config_text=None, announce=None)
    t.run_epoch(resumed)
    assert_same(without_times(resumed.to_checkpoint()), without_times(straight.to_checkpoint()))


# -- keys and fields ---------------------------------------------------------------------------------
class Reads(dict):
    """A checkpoint dict that records which keys are read."""

    def __init__(self, *args):
        super().__init__(*args)
        self.read = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)


def fresh_objects(config, saved):
    """The training objects a resume builds for ``saved`` (the trainer's set-up, without a run directory)."""
    t = trainer(config, Path("unused"))
    level = TrainState.level_of(saved)
    return t.training_objects(t.network(level), level)


@pytest.mark.parametrize("name", CONFIGS)
def test_a_checkpoint_holds_exactly_the_fields_and_a_resume_reads_them_all(tmp_path, name):
    config = CONFIGS[name]()
    train(config, tmp_path / "run", progress=False)
    saved = load_checkpoint(tmp_path / "run")
    assert set(saved) == FIELDS  # nothing saved that is not state
    assert list(saved) == [f.name for f in dataclasses.fields(TrainState)]  # in the fields' order
    recording = Reads(saved)
    TrainState.from_checkpoint(recording, config, **fresh_objects(config, saved))
    assert recording.read == FIELDS  # nothing saved that a resume ignores


# -- older checkpoints -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["lbfgs", "multilevel-adam"])
def test_a_checkpoint_without_the_newer_keys_gets_the_documented_defaults(tmp_path, name):
    config = CONFIGS[name]()
    state = trained_state(config, tmp_path / "run", epochs=1)  # level 1 (a multilevel run refines after it)
    old = {k: v for k, v in load_checkpoint(tmp_path / "run").items() if k not in NEWER_KEYS}
    objects = fresh_objects(config, old)
    fresh_scaler = dict(objects["scaler"].state_dict())
    restored = TrainState.from_checkpoint(old, config, **objects)
    assert restored.level == 1 and restored.best_model is None
    assert restored.levels == ([level_record(1, config.level_grids()[0])] if config.multilevel else [])
    assert restored.scaler.state_dict() == fresh_scaler
    assert_same({k: v for k, v in restored.to_checkpoint().items() if k not in NEWER_KEYS}, old)
    assert restored.epoch == state.epoch == 1


def test_the_checkpoint_of_stablenet_0_1_0_loads(tmp_path):
    saved = load_checkpoint(OLD_RUN)
    assert "best_model" not in saved
    config = parse_saved_config(json.loads((OLD_RUN / "config.json").read_text()))
    restored = TrainState.from_checkpoint(saved, config, **fresh_objects(config, saved))
    assert (restored.epoch, restored.level, restored.levels, restored.best_model) == (2, 1, [], None)
    assert restored.best == saved["best"] and restored.history == saved["history"]
    assert_same(restored.model.state_dict(), saved["model"])
    assert torch.equal(restored.generator.get_state(), saved["generator"])


# -- refusals and bookkeeping ------------------------------------------------------------------------
def test_a_checkpoint_of_another_configuration_or_inconsistent_epoch_is_refused(tmp_path):
    config = CONFIGS["lbfgs"]()
    trained_state(config, tmp_path / "run", epochs=1)
    saved = load_checkpoint(tmp_path / "run")
    other = small_config(optimizer="lbfgs", lr=0.25, batch_size=200)
    with pytest.raises(CheckpointError, match=r"another configuration: training.lr: 0.5 in the run, 0.25 now"):
        TrainState.from_checkpoint(saved, other, **fresh_objects(other, saved))
    with pytest.raises(CheckpointError, match="after epoch 5 but holds 1 history rows"):
        TrainState.from_checkpoint({**saved, "epoch": 5}, config, **fresh_objects(config, saved))


def test_a_new_state_and_the_epochs_it_counts(tmp_path):
    config = multilevel_adam()
    objects = fresh_objects(config, {})
    state = TrainState.start(config, **objects)
    assert (state.epoch, state.history, state.best, state.best_model, state.level) == (0, [], NO_BEST, None, 1)
    row = {"epoch": 1, "train_loss": 1.0, "train_accuracy": 0.5, "val_loss": 0.9, "val_accuracy": 0.6, "lr": 0.01}
    assert state.add_epoch(row, 2.0)
    assert not state.add_epoch({**row, "epoch": 2, "val_accuracy": 0.6}, 1.0)  # not better: the best stays
    assert state.best == {"val_accuracy": 0.6, "val_loss": 0.9, "epoch": 1, "train_accuracy": 0.5}
    assert state.levels[0]["epochs"] == 2 and state.levels[0]["wall_time_s"] == state.wall_time_s == 3.0
    state.begin_level(objects["optimizer"], None)
    assert state.level == 2 and state.best == NO_BEST and state.levels[-1] == level_record(2, config.level_grids()[1])
    assert state.best is not NO_BEST  # a copy: the constant is never changed
