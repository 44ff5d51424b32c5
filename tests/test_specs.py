"""The library's plain network descriptions (stablenet.specs): the one place where names become
modules and where the defaults live, validated by the library's own rules, errors naming the
argument they are about."""

import time

import pytest
import torch

import stablenet as sn
from stablenet._checks import ArgumentError
from stablenet.block import check_compatible
from stablenet.conv_models import ConvNetSpec
from stablenet.dynamics import DYNAMICS, Antisymmetric, ConvParabolic, ConvSecondOrder, Hamiltonian, SingleLayer
from stablenet.gradients import Adjoint, Checkpoint
from stablenet.integrators import get_integrator
from stablenet.specs import BlockSpec, DenseNetSpec

GRID = dict(T=1.0, steps=4, method="rk4")


def refused(argument, fragment, make):
    with pytest.raises(ArgumentError, match=fragment) as info:
        make()
    assert info.value.argument == argument, (info.value.argument, str(info.value))
    assert "\n" not in str(info.value)


# -- BlockSpec --------------------------------------------------------------------------------------

def test_nt_defaults_to_steps_here_and_with_grid():
    spec = BlockSpec("single", 3, **GRID)
    assert spec.nt == 4 and spec.build().dynamics.nt == 4
    assert BlockSpec("single", 3, **GRID, nt=2).nt == 2
    assert spec.with_grid(8).nt == 8 and spec.with_grid(8, 2).nt == 2 and spec.with_grid(8).steps == 8


def test_build_passes_options_and_a_new_gradient_mode_per_block():
    spec = BlockSpec("antisymmetric", 5, T=2.0, steps=6, method="rk4", nt=3, controls="linear",
                     options={"gamma": 0.25, "activation": "relu", "hidden": None},
                     gradient="adjoint", gradient_options={"adjoint_steps": 12})
    a, b = spec.build(), spec.build()
    assert isinstance(a.dynamics, Antisymmetric) and a.dynamics.gamma == 0.25 and a.dynamics.activation_name == "relu"
    assert (a.T, a.steps, a.dynamics.nt, a.controls, a.integrator.name) == (2.0, 6, 3, "linear", "rk4")
    assert isinstance(a.gradient, Adjoint) and a.gradient.steps == 12 and a.gradient is not b.gradient


def test_build_draws_the_same_weights_as_building_by_hand():
    torch.manual_seed(0)
    by_spec = BlockSpec("double", 4, **GRID, options={"hidden": 6}).build()
    torch.manual_seed(0)
    by_hand = sn.ODEBlock(sn.DoubleLayer(4, 6, nt=4), **GRID)
    for p, q in zip(by_spec.parameters(), by_hand.parameters(), strict=True):
        assert torch.equal(p, q)


def test_validation_allocates_nothing_and_draws_nothing():
    state = torch.random.get_rng_state()
    start = time.perf_counter()
    BlockSpec("antisymmetric", 2**16, T=1.0, steps=2**31 - 1, method="rk4", options={"gamma": 0.5})
    ConvNetSpec(in_channels=3, n_classes=2, widths=(4, 2**16), blocks_per_stage=(1, 2**31 - 1), T=1.0, steps=2,
                method="rk4", dynamics="conv_antisymmetric", gamma=0.1)
    assert time.perf_counter() - start < 1.0  # a 2¹⁶-wide block of 2³¹ − 1 weight sets would not fit
    assert torch.equal(torch.random.get_rng_state(), state)


def test_from_flat_splits_a_config_table():
    spec = BlockSpec.from_flat({"dynamics": "hamiltonian", "width": 4, "width_z": 2, "T": 1.0, "steps": 4,
                                "method": "verlet", "gradient": "checkpoint", "checkpoint_segment": 2,
                                "adjoint_steps": None, "activation": "tanh"})
    assert spec.options == {"width_z": 2, "activation": "tanh"}
    assert spec.gradient_options == {"checkpoint_segment": 2, "adjoint_steps": None}
    block = spec.build()
    assert block.dynamics.width_z == 2 and isinstance(block.gradient, Checkpoint) and block.gradient.segment == 2


@pytest.mark.parametrize("kwargs,argument,fragment", [
    (dict(dynamics="bogus"), "dynamics", r"dynamics must be one of \[.*'single'.*\], got 'bogus'"),
    (dict(method="rk5"), "method", "method must be one of"),
    (dict(T=0.0), "T", "T must be a finite number > 0"),
    (dict(steps=0), "steps", "steps must be an integer >= 1"),
    (dict(nt=0), "nt", "nt must be an integer >= 1"),
    (dict(width=0), "width", "width must be an integer >= 1"),
    (dict(controls="cubic"), "controls", "controls must be one of"),
    (dict(options={"gamma": 0.5}), "gamma", "gamma=0.5 applies to dynamics 'antisymmetric' only, not 'single'"),
    (dict(options={"hidden": 3}), "hidden", "hidden=3 applies to dynamics 'double' and 'parabolic' only"),
    (dict(options={"kernel_size": 5}), "kernel_size", r"kernel_size=5 is not an option of dynamics 'single' \(its "
                                                      r"options: activation, normalization\)"),
    (dict(options={"activation": "sigmoid"}), "activation", "activation must be one of"),
    (dict(dynamics="antisymmetric", options={"gamma": -1.0}), "gamma", "gamma must be a finite number >= 0"),
    (dict(method="verlet"), "method", "method='verlet' needs a two-stream dynamics"),
    (dict(gradient="reversible"), "gradient", "gradient='reversible' needs a reversible integrator"),
    (dict(gradient="bogus"), "gradient", "gradient must be one of"),
    (dict(gradient="checkpoint", gradient_options={"adjoint_steps": 4}), "adjoint_steps",
     "adjoint_steps applies to gradient='adjoint' only, got it with gradient='checkpoint'"),
    (dict(gradient="adjoint", gradient_options={"adjoint_steps": 4, "adjoint_method": "ab3"}), "adjoint_method",
     "one-step Runge-Kutta"),
    (dict(gradient="checkpoint", gradient_options={"checkpoint_segment": 0}), "checkpoint_segment", "segment"),
])
def test_errors_name_their_argument(kwargs, argument, fragment):
    args = dict(dynamics="single", width=3, **GRID)
    args.update(kwargs)
    refused(argument, fragment, lambda: BlockSpec(**args))


def test_an_unset_option_of_another_dynamics_is_accepted():
    """One table of options (a config block) builds every dynamics: an option this dynamics does
    not take is dropped at its unset value (None, or the default of every dynamics that takes it)."""
    table = {"activation": "tanh", "normalization": None, "gamma": 0.0, "hidden": None, "width_z": None}
    for name, cls in DYNAMICS.items():
        if cls.feature_dim == -1:
            method = "verlet" if cls.two_stream else "rk4"
            assert isinstance(BlockSpec(name, 4, T=1.0, steps=2, method=method, options=table).build().dynamics, cls)
    assert isinstance(SingleLayer.from_options(3, gamma=0, hidden=None), SingleLayer)
    refused("gamma", "gamma=0.5 applies to dynamics 'antisymmetric' only, not 'single'",
            lambda: SingleLayer.from_options(3, gamma=0.5))


def test_options_are_the_constructor_parameters():
    assert set(SingleLayer.options()) == {"activation", "normalization"}
    assert Hamiltonian.options()["width_z"] is None and Antisymmetric.options()["gamma"] == 0.0
    assert set(ConvParabolic.options()) == {"hidden", "activation", "normalization", "kernel_size"}


# -- the pairing rule -------------------------------------------------------------------------------

@pytest.mark.parametrize("dynamics,method,argument", [
    (SingleLayer, "verlet", "method"), (Hamiltonian, "leapfrog", "method"), (ConvSecondOrder, "rk4", "dynamics"),
    (ConvSecondOrder, "verlet", "method"),
    (SingleLayer, "leapfrog", None), (ConvParabolic, "leapfrog", None), (ConvSecondOrder, "leapfrog", None),
    (Hamiltonian, "rk4", None), (Hamiltonian, "verlet", None),
])
def test_check_compatible_takes_classes_and_instances(dynamics, method, argument):
    for subject in (dynamics, dynamics(3)):
        if argument is None:
            check_compatible(subject, get_integrator(method))
        else:
            refused(argument, method, lambda s=subject: check_compatible(s, get_integrator(method)))


def test_an_acceleration_needs_a_second_order_method():
    refused("dynamics", r"dynamics='conv_second_order' needs method 'leapfrog' \(its f is the acceleration in "
                        r"Y'' = f\(Y\)\), got method='rk4'",
            lambda: sn.ODEBlock(ConvSecondOrder(3), T=1.0, steps=2, method="rk4"))


# -- networks ---------------------------------------------------------------------------------------

def test_dense_net_spec_builds_the_classifier_on_its_grids():
    blocks = (BlockSpec("hamiltonian", 4, T=1.0, steps=4, method="verlet"), BlockSpec("single", 6, **GRID))
    spec = DenseNetSpec(2, 3, blocks, opening="duplicate")
    net = spec.with_grids([(8, 2), (2, 2)]).build()
    assert isinstance(net, sn.ODEClassifier) and net(torch.zeros(5, 2)).shape == (5, 3)
    assert [(b.steps, b.dynamics.nt) for b in net.blocks] == [(8, 2), (2, 2)]
    refused("opening", "opening must be one of", lambda: DenseNetSpec(2, 3, blocks, opening="cubic"))
    refused("blocks", "blocks\\[0\\] has dynamics 'conv_single' on images",
            lambda: DenseNetSpec(2, 3, [BlockSpec("conv_single", 4, **GRID)]))


def test_conv_net_spec_keeps_one_block_spec_per_stage():
    spec = ConvNetSpec(in_channels=1, n_classes=2, widths=(4, 6), blocks_per_stage=(2, 1), T=1.0, steps=2,
                       method="leapfrog", dynamics="conv_second_order", gradient="reversible")
    assert [(s.width, n) for s, n in spec.stage_specs()] == [(4, 2), (6, 1)]
    assert spec.block_spec(4).options == {"activation": "relu", "normalization": "instance", "gamma": 0.0,
                                          "kernel_size": 3}
    net = spec.build()
    assert [type(b.dynamics) for b in net.blocks] == [ConvSecondOrder] * 3
    refused("dynamics", "needs method 'leapfrog'", lambda: ConvNetSpec(
        in_channels=1, n_classes=2, T=1.0, steps=2, method="rk4", dynamics="conv_second_order"))
