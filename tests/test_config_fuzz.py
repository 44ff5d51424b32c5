"""Property-based: malformed configs and --set values give clean ConfigErrors, nothing else."""

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stablenet.app.config import ConfigError, apply_overrides, parse_config
from stablenet.app.networks import build_model

BASE = {
    "seed": 0,
    "data": {"name": "peaks", "options": {"n_train_per_class": 10}},
    "model": {"opening": "duplicate",
              "blocks": [{"dynamics": "hamiltonian", "width": 4, "T": 1.0, "steps": 4, "method": "verlet"}]},
    "training": {"epochs": 2, "lr": 0.01},
}

PATHS = [("seed",), ("data", "name"), ("data", "options"), ("data", "data_dir"), ("model", "opening"),
         ("model", "blocks"), ("model", "blocks", 0, "dynamics"), ("model", "blocks", 0, "width"),
         ("model", "blocks", 0, "width_z"), ("model", "blocks", 0, "hidden"), ("model", "blocks", 0, "gamma"),
         ("model", "blocks", 0, "T"), ("model", "blocks", 0, "steps"), ("model", "blocks", 0, "nt"),
         ("model", "blocks", 0, "method"), ("model", "blocks", 0, "controls"), ("model", "blocks", 0, "activation"),
         ("training", "epochs"), ("training", "lr"), ("training", "optimizer"), ("training", "momentum"),
         ("training", "schedule"), ("training", "dtype"), ("training", "loss"), ("model", "blocks", 0, "colour"),
         ("training", "learning_rate"), ("unknown",), ("model",), ("training",), ("multilevel",)]

VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10), st.integers(-2**70, 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
    st.sampled_from(["rk4", "verlet", "euler", "hamiltonian", "single", "linear", "duplicate", "adam", "peaks"]),
    st.lists(st.integers(-3, 3), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


def set_path(raw, path, value):
    node = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PATHS), VALUES), min_size=1, max_size=4))
def test_mutated_configs_are_valid_or_rejected_cleanly(mutations):
    raw = copy.deepcopy(BASE)
    for path, value in mutations:
        try:
            set_path(raw, path, value)
        except (KeyError, IndexError, TypeError):
            continue  # the path no longer exists after an earlier mutation
    try:
        config = parse_config(raw)
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith("invalid config: ") and "\n" not in message
        return
    block = config.model.blocks[0]
    if block.width <= 64 and block.steps <= 64 and (block.nt or block.steps) <= 64 and \
            (block.width_z or 1) <= 64 and (block.hidden or 1) <= 64:
        try:
            build_model(config, in_features=2, n_classes=3)
        except ValueError as exc:  # e.g. duplicate opening with an odd width: a clean error
            assert "\n" not in str(exc)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=30), min_size=1, max_size=3))
def test_set_overrides_are_applied_or_rejected_cleanly(overrides):
    try:
        raw = apply_overrides(BASE, overrides)
    except ConfigError as exc:
        assert "\n" not in str(exc)
        return
    try:
        parse_config(raw)
    except ConfigError as exc:
        assert "\n" not in str(exc)


def test_override_syntax():
    raw = apply_overrides(BASE, ["training.epochs=7", "model.blocks.0.method=rk4", "model.blocks.0.dynamics=single",
                                 "data.options.n_train_per_class=5", "training.nesterov=true"])
    config = parse_config(raw)
    assert config.training.epochs == 7 and config.model.blocks[0].method == "rk4"
    assert config.training.nesterov is True and config.data.options == {"n_train_per_class": 5}
