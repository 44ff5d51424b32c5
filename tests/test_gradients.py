"""Gradients through every dynamics × integrator pair: gradcheck and a Taylor-remainder test.

float64; small widths and grids so that finite differences are cheap.  Linear control
interpolation with nt = 2 and 5 state steps exercises interpolation, both AB3 start-up steps and
two AB3 steps.
"""


import pytest
import torch
from torch.func import functional_call

import stablenet as sn
from stablenet import gradients

from helpers import loglog_slope

WIDTH, WIDTH_Z, BATCH, STEPS, NT = 3, 2, 2, 5, 2

ONE_STREAM = {
    "single": lambda: sn.SingleLayer(WIDTH, nt=NT),
    "single_layernorm": lambda: sn.SingleLayer(WIDTH, nt=NT, normalization="layer"),
    "single_smooth_relu": lambda: sn.SingleLayer(WIDTH, nt=NT, activation="smooth_relu"),
    "double": lambda: sn.DoubleLayer(WIDTH, hidden=4, nt=NT),
    "antisymmetric": lambda: sn.Antisymmetric(WIDTH, gamma=0.1, nt=NT),
    "parabolic": lambda: sn.Parabolic(WIDTH, hidden=4, nt=NT),
}
TWO_STREAM = {
    "hamiltonian": lambda: sn.Hamiltonian(WIDTH, WIDTH_Z, nt=NT),
    "hamiltonian_layernorm": lambda: sn.Hamiltonian(WIDTH, WIDTH_Z, nt=NT, normalization="layer"),
}


def allowed(dyn_name, method, gradient="autograd"):
    """Whether the block refuses nothing of dynamics × integrator × gradient mode (the library's
    own rules; the global random state is left as it was)."""
    with torch.random.fork_rng():
        try:
            sn.ODEBlock({**ONE_STREAM, **TWO_STREAM}[dyn_name](), T=1.0, steps=STEPS, method=method,
                        gradient=gradient)
        except ValueError:
            return False
    return True


# every registered integrator with every dynamics it accepts, and every registered gradient mode
# that claims the exact discrete gradient (the adjoint's is the continuous one, MGRIT's exact to
# its tolerance: tests/test_gradient_modes.py, tests/test_mgrit.py)
CASES = [(d, m) for d in {**ONE_STREAM, **TWO_STREAM} for m in sn.available() if allowed(d, m)]
EXACT_MODES = [g for g in gradients.available() if gradients.mode_class(g).exact]
MODE_CASES = [(d, m, g) for d, m in CASES for g in EXACT_MODES if allowed(d, m, g)]


def test_the_cases_come_from_the_registries():
    assert {m for _, m in CASES} == set(sn.available())
    assert {"autograd", "checkpoint", "reversible"} <= set(EXACT_MODES)
    assert ("hamiltonian", "verlet", "reversible") in MODE_CASES
    assert ("single", "leapfrog", "reversible") in MODE_CASES and ("single", "rk4", "reversible") not in MODE_CASES


def make_block(dyn_name, method, gradient="autograd"):
    dynamics = {**ONE_STREAM, **TWO_STREAM}[dyn_name]().double()
    with torch.no_grad():  # non-zero biases so that every weight matters
        for p in dynamics.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return sn.ODEBlock(dynamics, T=1.0, steps=STEPS, method=method, controls="linear",
                       gradient=gradient)


def inputs_for(block):
    y0 = torch.randn(BATCH, WIDTH, dtype=torch.float64)
    if block.dynamics.two_stream:
        return (y0, 0.5 * torch.randn(BATCH, WIDTH_Z, dtype=torch.float64))
    return y0


def as_function(block):
    """(y0 tensors..., weights...) -> output tensors, for gradcheck and the Taylor test."""
    names = [n for n, _ in block.named_parameters()]
    two = block.dynamics.two_stream

    def fn(*args):
        n_state = 2 if two else 1
        state = tuple(args[:n_state]) if two else args[0]
        params = dict(zip(names, args[n_state:]))
        out = functional_call(block, params, (state,))
        return out if two else (out,)

    return fn, names


@pytest.mark.parametrize("dyn_name,method,gradient", MODE_CASES)
def test_gradcheck(dyn_name, method, gradient):
    block = make_block(dyn_name, method, sn.Checkpoint(segment=2) if gradient == "checkpoint" else gradient)
    state = inputs_for(block)
    fn, _ = as_function(block)
    state_args = list(state) if isinstance(state, tuple) else [state]
    args = [a.clone().requires_grad_() for a in state_args] + \
           [p.detach().clone().requires_grad_() for p in block.parameters()]
    assert torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-7, rtol=1e-5)


def taylor_remainders(fn, args, direction, weights, epsilons):
    """|L(x + εv) − L(x)| and |L(x + εv) − L(x) − ε ∇L·v| for L = Σ w ⊙ fn(x)."""

    def loss(xs):
        return sum((w * o).sum() for w, o in zip(weights, fn(*xs)))

    xs = [a.detach().clone().requires_grad_() for a in args]
    L0 = loss(xs)
    grads = torch.autograd.grad(L0, xs, allow_unused=True)
    dL = sum(float((g * v).sum()) for g, v in zip(grads, direction) if g is not None)
    zeroth, first = [], []
    with torch.no_grad():
        for eps in epsilons:
            L = float(loss([a + eps * v for a, v in zip(args, direction)]))
            zeroth.append(abs(L - float(L0)))
            first.append(abs(L - float(L0) - eps * dL))
    return zeroth, first


@pytest.mark.parametrize("dyn_name,method,gradient", MODE_CASES)
def test_taylor_remainder(dyn_name, method, gradient):
    """The first-order remainder |L(x + εv) − L(x) − ε∇L·v| decays like ε² (a wrong gradient
    leaves an O(ε) term and a fitted slope near 1)."""
    block = make_block(dyn_name, method, gradient)
    state = inputs_for(block)
    fn, _ = as_function(block)
    args = (list(state) if isinstance(state, tuple) else [state]) + [p.detach() for p in block.parameters()]
    direction = [torch.randn_like(a) for a in args]
    weights = [torch.randn_like(o) for o in fn(*args)]
    epsilons = [1e-3 * 2.0 ** -k for k in range(6)]
    zeroth, first = taylor_remainders(fn, args, direction, weights, epsilons)
    assert abs(loglog_slope(epsilons, first) - 2) < 0.15, (first, zeroth)
    assert first[-1] < zeroth[-1], (first, zeroth)


def test_gradient_of_functional_integrate_wrt_initial_state():
    """integrate() is differentiable in y0 through every method (checked on y' = A y)."""
    A = torch.randn(3, 3, dtype=torch.float64)
    for method in ["euler", "midpoint", "rk3", "rk4", "ab3", "leapfrog"]:
        y0 = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(
            lambda y: sn.integrate(lambda t, x: torch.tanh(x @ A.T), y, T=1.0, steps=4, method=method), (y0,))
