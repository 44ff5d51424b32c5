"""The registries are the one seam between names and objects: every (dynamics, method, gradient)
combination they hold is accepted or refused alike in Python (ODEBlock, BlockSpec) and in a TOML
configuration, for the same reason; and adding an integrator or a dynamics is its own code plus a
registration, nothing else (a toy of each, registered here, trains from a config naming them)."""

import copy
import itertools
import re

import pytest
import torch

import stablenet as sn
from stablenet._checks import ArgumentError
from stablenet.app.config import TABLE_MODES, ConfigError, config_reference, parse_config
from stablenet.conv_models import ConvNetSpec
from stablenet.dynamics import DYNAMICS, Dynamics, register
from stablenet.dynamics.conv import ConvDynamics
from stablenet.gradients import available as gradient_modes
from stablenet.integrators import Integrator
from stablenet.integrators import available as methods
from stablenet.integrators import base as integrator_base
from stablenet.specs import BlockSpec

from helpers import SMALL, small_raw

CONV = {"seed": 0, "data": {"name": "digits"}, "training": {"epochs": 1},
        "model": {"kind": "conv", "widths": [2], "T": 1.0, "steps": 2, "normalization": "none"}}
DENSE_NAMES = [n for n, c in DYNAMICS.items() if c.feature_dim == -1]
CONV_NAMES = [n for n, c in DYNAMICS.items() if issubclass(c, ConvDynamics)]
COMBINATIONS = [(kind, d, m, g) for kind, names in (("dense", DENSE_NAMES), ("conv", CONV_NAMES))
                for d, m, g in itertools.product(names, methods(), gradient_modes())]


def python_outcome(dynamics, method, gradient):
    """None if ODEBlock and BlockSpec accept the combination, else their (equal) message."""
    messages = []
    for make in (lambda: sn.ODEBlock(DYNAMICS[dynamics](2, nt=2), T=1.0, steps=2, method=method, gradient=gradient),
                 lambda: BlockSpec(dynamics, 2, T=1.0, steps=2, method=method, gradient=gradient)):
        try:
            make()
            messages.append(None)
        except ValueError as error:
            messages.append(str(error))
    assert messages[0] == messages[1], messages
    return messages[0]


def toml_config(kind, dynamics, method, gradient):
    """The raw config of the combination: the gradient mode by its key, or by its own table."""
    table = {"gradient": gradient} if gradient not in TABLE_MODES else {}
    if kind == "dense":
        raw = small_raw({"model.blocks.0.width": 2, "model.blocks.0.steps": 2})
        raw["model"]["blocks"][0].update(dynamics=dynamics, method=method, **table)
    else:
        raw = copy.deepcopy(CONV)
        raw["model"].update(dynamics=dynamics, method=method, **table)
    if gradient in TABLE_MODES:
        raw[TABLE_MODES[gradient].strip("[]")] = {}
    return raw


def toml_outcome(raw):
    try:
        parse_config(raw)
        return None
    except ConfigError as error:
        return str(error).removeprefix("invalid config: ")


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_python_and_toml_agree_on_every_registered_combination(kind):
    """Both accept, or both refuse with the same message core (the TOML line is `key: core`, the
    Python message `argument=core`).  The one difference by design: layer-parallel training
    ([parallel], gradient 'mgrit') is not offered for conv models by the config."""
    cases = [c for c in COMBINATIONS if c[0] == kind]
    assert len(cases) == len(DENSE_NAMES if kind == "dense" else CONV_NAMES) * len(methods()) * len(gradient_modes())
    for _, dynamics, method, gradient in cases:
        py = python_outcome(dynamics, method, gradient)
        toml = toml_outcome(toml_config(kind, dynamics, method, gradient))
        case = (dynamics, method, gradient, py, toml)
        if kind == "conv" and gradient in TABLE_MODES:  # refused by the config's policy, or for the block itself
            assert toml is not None, case
            assert toml.startswith("parallel: layer-parallel training is not available for model.kind 'conv'") \
                or py is not None, case
            continue
        assert (py is None) == (toml is None), case
        if py is not None:
            core = re.sub(r"^\w+=", "", py)
            assert toml.endswith(core) and re.match(r"model\.(blocks\.0\.)?\w+: ", toml), case
            assert toml.count(": ") >= 1 and "\n" not in toml


def test_the_pairing_rule_in_both_paths():
    """The unified rule: verlet needs two streams, leapfrog one, and conv_second_order (an
    acceleration) needs leapfrog; any other one-stream dynamics may be read as an acceleration."""
    accepted = {(d, m) for kind, d, m, g in COMBINATIONS if g == "autograd" and python_outcome(d, m, g) is None}
    for name in DENSE_NAMES + CONV_NAMES:
        cls = DYNAMICS[name]
        assert ((name, "verlet") in accepted) == cls.two_stream
        assert ((name, "leapfrog") in accepted) == (not cls.two_stream)
        assert ((name, "rk4") in accepted) == (not cls.second_order)
    assert ("conv_parabolic", "leapfrog") in accepted and ("parabolic", "leapfrog") in accepted


# -- adding one: its code and a registration ----------------------------------------------------------

class ToyHeun(Integrator):
    """Heun's method (explicit trapezoid), order 2: a registered integrator defined by a test."""

    name = "toy_heun"
    order = 2
    _offsets = (0.0, 1.0)

    def step(self, f, j, y, h, memory):
        k1 = f(j, 0.0, y)
        k2 = f(j, 1.0, y + h * k1)
        return y + 0.5 * h * (k1 + k2), None


class ToyDamped(Dynamics):
    """f(Y) = σ(KY + b) − Y: a single layer with linear damping, defined by a test."""

    def __init__(self, width, *, nt=1, activation="tanh", normalization=None):
        super().__init__(width, nt=nt, activation=activation, normalization=normalization)
        self._control_parameter("K", width, width, fan_in=width)
        self._control_parameter("b", width)

    def forward(self, y, K, b):
        return self._pre_activation(torch.nn.functional.linear(y, K), b) - y


@pytest.fixture
def toys(monkeypatch):
    """ToyHeun and ToyDamped registered for one test (the registries are restored after)."""
    monkeypatch.setitem(integrator_base._REGISTRY, ToyHeun.name, ToyHeun)
    monkeypatch.setitem(DYNAMICS, "toy_damped", ToyDamped)
    register("toy_damped", ToyDamped)  # the public way; same class, so accepted again
    yield
    assert "toy_damped" in DYNAMICS and "toy_heun" in methods()


def test_a_registered_integrator_and_dynamics_train_from_a_config(toys, tmp_path):
    from stablenet.app.training import load_run, train

    raw = small_raw({"model.blocks.0.dynamics": "toy_damped", "model.blocks.0.method": "toy_heun",
                     "model.blocks.0.steps": 4}, epochs=2)
    config = parse_config(raw)
    metrics = train(config, tmp_path / "run", progress=False)
    assert metrics["val_accuracy"] > 0
    _, model, _ = load_run(tmp_path / "run")
    block = model.blocks[0]
    assert isinstance(block.dynamics, ToyDamped) and isinstance(block.integrator, ToyHeun)
    reference = config_reference()  # config-docs lists the registered names
    assert "`toy_damped`" in reference and "`toy_heun`" in reference
    with pytest.raises(ConfigError, match=r"model.blocks.0.method: 'verlet' needs a two-stream dynamics \(y, z\) "
                                          r"such as 'hamiltonian', got one-stream 'toy_damped'; use .*'toy_heun'"):
        parse_config(small_raw({"model.blocks.0.dynamics": "toy_damped"}))


def test_the_toys_are_gone_after_the_test():
    assert "toy_damped" not in DYNAMICS and "toy_heun" not in methods()
    assert "`toy_heun`" not in config_reference()
    with pytest.raises(ConfigError, match=r"model.blocks.0.dynamics: Input should be 'single'.* \(got 'toy_damped'\)"):
        parse_config(small_raw({"model.blocks.0.dynamics": "toy_damped"}))


def test_register_refuses_a_taken_name():
    with pytest.raises(ValueError, match="dynamics name 'single' is taken by SingleLayer"):
        register("single", ToyDamped)
    with pytest.raises(TypeError, match="must be a Dynamics subclass"):
        register("toy", int)


def test_conv_spec_agrees_with_its_config_table():
    """ConvNetSpec (Python) and [model] kind = "conv" (TOML) are one description: a config table's
    keys are the spec's, and the spec refuses what the table refuses, with the same message."""
    raw = copy.deepcopy(CONV)
    raw["model"].update(dynamics="conv_single", method="rk4", gamma=0.3)
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    with pytest.raises(ArgumentError) as spec_info:
        ConvNetSpec(in_channels=1, n_classes=10, widths=(2,), T=1.0, steps=2, method="rk4", dynamics="conv_single",
                    gamma=0.3, normalization=None)
    assert spec_info.value.argument == "gamma"
    assert str(info.value) == f"invalid config: model.gamma: {str(spec_info.value).removeprefix('gamma=')}"
    assert SMALL["model"]["blocks"][0]["method"] == "verlet"  # the helpers' config is left alone
