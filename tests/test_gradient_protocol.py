"""The block ↔ gradient-mode protocol, the gradient-mode registry (lazy entries) and the
autograd-only rule."""

import subprocess
import sys

import pytest
import torch

import stablenet as sn
from stablenet import gradients
from stablenet.gradients import GradientBlock, base


def block():
    return sn.ODEBlock(sn.Hamiltonian(3, nt=2), T=1.0, steps=4, method="verlet")


def test_an_ode_block_is_a_gradient_block():
    b = block()
    assert isinstance(b, GradientBlock) and isinstance(b.dynamics, gradients.BlockDynamics)
    for member in ("T", "integrator", "dynamics", "control_grid", "stage_weights", "rhs"):
        assert hasattr(b, member), member
    thetas, index = b.stage_weights(4, torch.device("cpu"))
    assert len(index) == 4 and callable(b.rhs(thetas, index))


def test_a_plain_object_with_the_protocol_is_enough_for_a_mode():
    """A mode uses nothing of the block beyond the protocol: a stand-in that delegates only the
    protocol's members gives the block's own gradient."""
    b = block()

    class StandIn:
        T, integrator, dynamics = b.T, b.integrator, b.dynamics
        control_grid = b.control_grid

        def stage_weights(self, *args, **kwargs):
            return b.stage_weights(*args, **kwargs)

        def rhs(self, *args, **kwargs):
            return b.rhs(*args, **kwargs)

    y0 = (torch.randn(2, 3), torch.zeros(2, 3))
    for mode in (sn.Reversible(), sn.Checkpoint(segment=2), sn.Autograd()):
        b.zero_grad()
        mode.solve(StandIn(), y0, 4)[0].sum().backward()
        got = [p.grad.clone() for p in b.parameters()]
        b.zero_grad()
        sn.Autograd().solve(b, y0, 4)[0].sum().backward()
        assert all(torch.allclose(g, p.grad, atol=1e-6) for g, p in zip(got, b.parameters())), mode


def test_mgrit_is_a_lazy_registry_entry():
    code = ("import sys, torch, stablenet as sn\n"
            "assert 'stablenet.parallel' not in sys.modules, 'import stablenet loaded stablenet.parallel'\n"
            "assert 'mgrit' in sn.gradients.available()\n"
            "b = sn.ODEBlock(sn.SingleLayer(3), T=1.0, steps=4, method='rk4', gradient='mgrit')\n"
            "assert type(b.gradient).__module__ == 'stablenet.parallel.gradient'\n"
            "b(torch.randn(2, 3)).sum().backward()\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)


def test_lazy_entries_resolve_once_and_are_checked(monkeypatch):
    monkeypatch.setitem(base._REGISTRY, "later", "stablenet.gradients.adjoint:Adjoint")
    with pytest.raises(TypeError, match="is not a GradientMode named 'later'"):
        gradients.mode_class("later")
    monkeypatch.setitem(base._REGISTRY, "adjoint2", "stablenet.gradients.adjoint:Adjoint")
    monkeypatch.setattr(gradients.Adjoint, "name", "adjoint2")
    assert gradients.mode_class("adjoint2") is gradients.Adjoint
    assert base._REGISTRY["adjoint2"] is gradients.Adjoint  # resolved once, then a class entry
    with pytest.raises(ValueError, match="'module:Class'"):
        gradients.register_lazy("x", "no_colon")
    with pytest.raises(ValueError, match="gradient must be one of"):
        gradients.get_gradient_mode("nonexistent")


def test_modes_declare_whether_their_gradient_is_exact():
    declared = {"autograd": True, "checkpoint": True, "reversible": True, "adjoint": False, "mgrit": False}
    assert {g: gradients.mode_class(g).exact for g in declared} == declared


def test_autograd_only_rule():
    gradients.require_autograd("autograd", "unused")
    gradients.require_autograd(sn.Autograd(), "unused")
    for mode in ("reversible", sn.Checkpoint(3), sn.Adjoint()):
        name = mode if isinstance(mode, str) else mode.name
        with pytest.raises(ValueError, match=rf"^block 'b' uses gradient='{name}'; use autograd$"):
            gradients.require_autograd(mode, "block 'b' uses gradient={gradient}; use autograd")
