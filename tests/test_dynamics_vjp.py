"""The dynamics' explicit vector-Jacobian products (``Dynamics.vjp``) against autograd, and the
reversible gradient that uses them (or autograd where a dynamics offers none) against the exact
discrete gradient for every dynamics × reversible integrator × activation (float64)."""

import pytest
import torch

import stablenet as sn
from stablenet.dynamics import ACTIVATIONS, ConvHamiltonian
from stablenet.dynamics.base import ACTIVATION_PULLBACKS

from helpers import gradient_probe, rel_error

ACTS = sorted(ACTIVATIONS)

# name -> (dynamics from (width, activation), streams that have an explicit VJP)
DENSE = {
    "single": (lambda w, act: sn.SingleLayer(w, nt=3, activation=act), [None]),
    "double": (lambda w, act: sn.DoubleLayer(w, hidden=w + 2, nt=3, activation=act), [None]),
    "antisymmetric": (lambda w, act: sn.Antisymmetric(w, gamma=0.1, nt=3, activation=act), [None]),
    "parabolic": (lambda w, act: sn.Parabolic(w, hidden=w + 1, nt=3, activation=act), [None]),
    "hamiltonian": (lambda w, act: sn.Hamiltonian(w, w + 1, nt=3, activation=act), ["dy", "dz"]),
}
SHAPES = [(1, 1), (5, 3), (16, 7)]  # (batch, width)


def test_every_activation_has_an_explicit_pullback():
    assert set(ACTIVATION_PULLBACKS) == set(ACTIVATIONS)


def close(a, b, tol=1e-13):
    return float((a - b).abs().max()) <= tol * (1 + float(b.abs().max()))


def random_dynamics(name, width, act):
    torch.manual_seed(width)
    dyn = DENSE[name][0](width, act).double()
    with torch.no_grad():  # non-zero biases, and pre-activations on both sides of relu's kinks
        for p in dyn.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return dyn


def argument(dyn, stream, batch):
    width = dyn.width_z if stream == "dy" else dyn.width  # dy(z), dz(y)
    return torch.randn(batch, width, dtype=torch.float64)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("batch,width", SHAPES)
@pytest.mark.parametrize("name", sorted(DENSE))
def test_explicit_vjp_equals_autograd(name, batch, width, act):
    """out equals the method it stands for exactly; add_to + scale·J_argᵀv and the θ-gradients
    (added into the given buffers) equal autograd's to round-off."""
    dyn = random_dynamics(name, width, act)
    for stream in DENSE[name][1]:
        arg = argument(dyn, stream, batch)
        theta = tuple(t[1].detach() for t in dyn.control_weights())
        method = dyn.forward if stream is None else getattr(dyn, stream)
        linear = dyn.vjp(arg, *theta, stream=stream)
        assert linear is not None, (name, stream, act)
        out, pullback = linear
        assert torch.equal(out, method(arg, *theta))

        leaf = arg.clone().requires_grad_()
        leaves = [t.clone().requires_grad_() for t in theta]
        ref_out = method(leaf, *leaves)
        v = torch.randn_like(ref_out)
        ref = torch.autograd.grad(ref_out, [leaf, *leaves], v, allow_unused=True)
        ref = [torch.zeros_like(t) if g is None else g for g, t in zip(ref, [leaf, *leaves])]

        scale, add_to = -0.37, torch.randn_like(arg)
        start = [torch.randn_like(t) for t in theta]  # the buffers already hold something
        buffers = tuple(s.clone() for s in start)
        expected_arg = add_to + scale * ref[0]
        got_arg = pullback(v, scale, add_to, buffers)
        assert got_arg is add_to  # added in place
        assert close(got_arg, expected_arg)
        for got, s, g in zip(buffers, start, ref[1:]):
            assert close(got - s, scale * g)
        # without add_to: a new tensor scale·J_argᵀv
        _, pullback = dyn.vjp(arg, *theta, stream=stream)
        fresh = pullback(v, 2.0, None, tuple(torch.zeros_like(t) for t in theta))
        assert close(fresh, 2.0 * ref[0])


def test_no_explicit_vjp_where_it_does_not_apply():
    """None: with a normalization, for a state that is not (batch, width), for the wrong stream,
    for convolutional dynamics (the base class's default) and an activation without a pullback."""
    y = torch.randn(4, 3)
    ham = sn.Hamiltonian(3, nt=1)
    theta = tuple(t[0] for t in ham.control_weights())
    assert ham.vjp(y, *theta, stream="dy") is not None
    assert ham.vjp(y, *theta, stream=None) is None
    assert sn.Hamiltonian(3, nt=1, normalization="layer").vjp(y, *theta, stream="dy") is None
    single = sn.SingleLayer(3, nt=1)
    s_theta = tuple(t[0] for t in single.control_weights())
    assert single.vjp(y, *s_theta) is not None
    assert single.vjp(y, *s_theta, stream="dy") is None
    assert single.vjp(torch.randn(2, 4, 3), *s_theta) is None
    single.activation_name = "not-in-the-table"
    assert single.vjp(y, *s_theta) is None
    conv = ConvHamiltonian(2, nt=1)
    c_theta = tuple(t[0] for t in conv.control_weights())
    assert conv.vjp(torch.randn(1, 2, 4, 4), *c_theta, stream="dy") is None


# -- the reversible gradient through them ---------------------------------------------------------
REVERSIBLE = {  # dynamics factory, integrator
    "hamiltonian": (lambda act, norm: sn.Hamiltonian(4, 3, nt=4, activation=act, normalization=norm), "verlet"),
    "single": (lambda act, norm: sn.SingleLayer(4, nt=4, activation=act, normalization=norm), "leapfrog"),
    "double": (lambda act, norm: sn.DoubleLayer(4, hidden=5, nt=4, activation=act, normalization=norm),
               "leapfrog"),
    "antisymmetric": (lambda act, norm: sn.Antisymmetric(4, nt=4, activation=act, normalization=norm),
                      "leapfrog"),
    "parabolic": (lambda act, norm: sn.Parabolic(4, hidden=3, nt=4, activation=act, normalization=norm),
                  "leapfrog"),
}


def reversible_cases():
    """Every (registered dense dynamics, reversible integrator it accepts): the table above must
    cover them."""
    cases = set()
    for name in ("single", "double", "antisymmetric", "parabolic", "hamiltonian"):
        for method in sn.available():
            try:
                sn.ODEBlock(sn.dynamics.DYNAMICS[name](4, nt=1), T=1.0, steps=2, method=method,
                            gradient="reversible")
            except ValueError:
                continue
            cases.add((name, method))
    return cases


def test_the_reversible_table_covers_every_dense_dynamics_and_reversible_integrator():
    assert reversible_cases() == {(name, method) for name, (_, method) in REVERSIBLE.items()}


@pytest.mark.parametrize("controls", ["constant", "linear"])
@pytest.mark.parametrize("norm", [None, "layer"])  # "layer": no explicit VJP, autograd per stage
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("name", sorted(REVERSIBLE))
def test_reversible_equals_autograd_float64(name, act, norm, controls):
    factory, method = REVERSIBLE[name]
    torch.manual_seed(0)
    dyn = factory(act, norm).double()
    with torch.no_grad():
        for p in dyn.parameters():
            p.add_(0.2 * torch.randn_like(p))
    block = sn.ODEBlock(dyn, T=2.0, steps=24, method=method, controls=controls)
    x = torch.randn(6, 4, dtype=torch.float64)
    err = rel_error(gradient_probe(block, x, "reversible"), gradient_probe(block, x, "autograd"))
    assert err <= 1e-10, err


def test_conv_dynamics_take_the_autograd_path():
    torch.manual_seed(0)
    block = sn.ODEBlock(ConvHamiltonian(2, nt=3).double(), T=1.0, steps=6, method="verlet")
    x = torch.randn(2, 2, 5, 5, dtype=torch.float64)
    err = rel_error(gradient_probe(block, x, "reversible"), gradient_probe(block, x, "autograd"))
    assert err <= 1e-10, err


def test_explicit_vjp_builds_no_autograd_graph(monkeypatch):
    """With an explicit VJP the backward pass calls ``torch.autograd.grad`` nowhere: one
    evaluation (the reconstruction) and one hand-written VJP per stage."""
    torch.manual_seed(0)
    block = sn.ODEBlock(sn.Hamiltonian(4, nt=2), T=1.0, steps=8, method="verlet", gradient="reversible")
    calls = []
    real = torch.autograd.grad
    monkeypatch.setattr(torch.autograd, "grad", lambda *a, **k: calls.append(1) or real(*a, **k))
    block(torch.randn(3, 4))[0].sum().backward()
    assert calls == []
    block.dynamics.normalization = "layer"  # no explicit VJP: one autograd.grad per stage
    block(torch.randn(3, 4))[0].sum().backward()
    assert len(calls) == 2 * 8
