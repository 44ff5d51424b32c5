"""Convolutional dynamics (stablenet.dynamics.conv): exact adjoints, the antisymmetric operator,
the parabolic spectrum, normalizations, and gradients through ODEBlock for every dynamics ×
integrator × exact gradient mode (gradcheck), the adjoint mode's convergence.

float64 throughout (tensors and modules made float64 explicitly; the default dtype is untouched).
Small sizes: batch 2, 2–3 channels, 4×4 images, 3 steps, nt = 2 with linear interpolation.
"""

import math

import pytest
import torch
from torch.autograd.functional import jacobian
from torch.func import functional_call

import stablenet as sn
from stablenet.dynamics import DYNAMICS
from stablenet.dynamics.conv import (AntisymmetricConvKernel, ConvAntisymmetric, ConvHamiltonian, ConvParabolic,
                                     ConvSecondOrder, ConvSingleLayer, adjoint_kernel, conv, conv_adjoint,
                                     identity_kernel, normalize)

from helpers import gradient_probe, rel_error

F64 = torch.float64
C, CZ, BATCH, HW, STEPS, NT = 3, 2, 2, 4, 3, 2


def inner(a, b):
    return float((a * b).sum().detach())


# -- the operators -------------------------------------------------------------------------------
@pytest.mark.parametrize("c_in,c_out,k,h,w", [(3, 3, 3, 5, 5), (2, 4, 3, 4, 7), (3, 2, 5, 6, 5), (1, 1, 1, 3, 3)])
def test_transposed_convolution_is_the_exact_adjoint(c_in, c_out, k, h, w):
    K = torch.randn(c_out, c_in, k, k, dtype=F64)
    x = torch.randn(2, c_in, h, w, dtype=F64)
    y = torch.randn(2, c_out, h, w, dtype=F64)
    Kx, KTy = conv(x, K), conv_adjoint(y, K)
    assert Kx.shape == y.shape and KTy.shape == x.shape
    lhs, rhs = inner(Kx, y), inner(x, KTy)
    assert abs(lhs - rhs) <= 1e-12 * max(1.0, abs(lhs)), (lhs, rhs)
    # the adjoint is itself a same-padding convolution: kernel flipped, channels swapped
    assert torch.allclose(conv(y, adjoint_kernel(K)), KTy, rtol=0, atol=1e-12)


@pytest.mark.parametrize("gamma", [0.0, 0.3])
def test_antisymmetric_operator_has_quadratic_form_minus_gamma(gamma):
    dyn = ConvAntisymmetric(C, gamma=gamma, nt=NT).to(F64)
    assert dyn.gamma == gamma and dyn.kind == "ConvAntisymmetric"
    for A in dyn.K:  # every control slice of the parametrized kernel
        for _ in range(3):
            x = torch.randn(2, C, 5, 6, dtype=F64)
            q, n2 = inner(conv(x, A), x), float(x.pow(2).sum())
            assert abs(q + gamma * n2) <= 1e-12 * n2, (q, -gamma * n2)
        # and as kernels: A + A* = −2γ I
        assert torch.allclose(A + adjoint_kernel(A), -2 * gamma * identity_kernel(C, 3, dtype=F64), atol=1e-15)


def test_antisymmetric_kernel_refuses_non_square():
    with pytest.raises(ValueError, match=r"\(\.\.\., C, C, k, k\), got shape \(2, 3, 3, 3\)"):
        AntisymmetricConvKernel(0.1)(torch.randn(2, 3, 3, 3))


def test_parabolic_jacobian_is_negative_semidefinite():
    """f(Y) = −Kᵀσ(KY + b): the dense Jacobian (1·3·4·4 = 48 unknowns, by reverse-mode autograd;
    torch.func.jacrev gives the same but costs ~2 s of one-off set-up) is symmetric with
    Re λ ≤ 1e-10."""
    dyn = ConvParabolic(C, hidden=4, nt=1).to(F64)
    with torch.no_grad():
        dyn.b.normal_()
    K, b = dyn.K[0], dyn.b[0]
    y = torch.randn(1, C, HW, HW, dtype=F64)
    with torch.no_grad():
        K, b = K.clone(), b.clone()
    J = jacobian(lambda v: dyn(v.reshape(y.shape), K, b).flatten(), y.flatten())
    assert torch.allclose(J, J.T, atol=1e-13)
    eig = torch.linalg.eigvals(J)
    assert float(eig.real.max()) <= 1e-10, eig.real.max()
    assert float(eig.real.min()) < -1e-3  # not trivially zero


def test_hamiltonian_linear_jacobian_has_imaginary_spectrum():
    """σ = identity, zero biases: the Jacobian [[0, K], [−Kᵀ, 0]] of the (y, z) system is antisymmetric."""
    dyn = ConvHamiltonian(C, CZ, activation="identity").to(F64)
    K, b_y, b_z = dyn.K[0], torch.zeros(C, dtype=F64), torch.zeros(CZ, dtype=F64)
    ny = C * HW * HW

    def f(v):
        y, z = v[:ny].reshape(1, C, HW, HW), v[ny:].reshape(1, CZ, HW, HW)
        dy, dz = dyn((y, z), K, b_y, b_z)
        return torch.cat([dy.flatten(), dz.flatten()])

    J = jacobian(f, torch.randn(ny + CZ * HW * HW, dtype=F64))
    assert torch.allclose(J, -J.T, atol=1e-14)
    assert float(torch.linalg.eigvals(J).real.abs().max()) <= 1e-10


# -- normalizations ------------------------------------------------------------------------------
def test_normalizations():
    x = 3.0 + 2.0 * torch.randn(4, 3, 5, 5, dtype=F64)
    bn = normalize(x, "batch")
    assert torch.allclose(bn.mean(dim=(0, 2, 3)), torch.zeros(3, dtype=F64), atol=1e-12)
    assert torch.allclose(bn.var(dim=(0, 2, 3), unbiased=False), torch.ones(3, dtype=F64), atol=1e-5)
    inn = normalize(x, "instance")
    assert torch.allclose(inn.mean(dim=(2, 3)), torch.zeros(4, 3, dtype=F64), atol=1e-12)
    assert torch.allclose(inn.var(dim=(2, 3), unbiased=False), torch.ones(4, 3, dtype=F64), atol=1e-5)
    tv = normalize(x, "tv")
    length = x.pow(2).sum(1)
    assert torch.allclose(tv.pow(2).sum(1), length / (length + 1e-4), atol=1e-14)
    assert normalize(x, None) is x


def test_batch_normalization_uses_batch_statistics_in_eval_mode_too():
    """No running statistics: the dynamics is the same function of (Y, θ) in train and eval."""
    dyn = ConvParabolic(C, normalization="batch").to(F64)
    y = torch.randn(3, C, 4, 4, dtype=F64)
    out_train = dyn(y, dyn.K[0], dyn.b[0])
    dyn.eval()
    assert torch.equal(dyn(y, dyn.K[0], dyn.b[0]), out_train)
    assert list(dyn.buffers()) == []


@pytest.mark.parametrize("kwargs,message", [
    (dict(normalization="layer"),
     r"normalization must be one of \[None, 'batch', 'instance', 'tv'\], got 'layer'"),
    (dict(kernel_size=4), "kernel_size must be an odd integer >= 1, got 4"),
    (dict(activation="sigmoid"), "activation must be one of"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ConvParabolic(C, **kwargs)


def test_block_checks_channels_along_dimension_1():
    block = sn.ODEBlock(ConvParabolic(C), T=1.0, steps=2, method="euler")
    assert block(torch.randn(2, C, 4, 4)).shape == (2, C, 4, 4)
    with pytest.raises(ValueError, match=r"y0 has feature width 4 along dimension 1 .*expected width 3"):
        block(torch.randn(2, 4, C, C))


def test_registry_names():
    expected = {"conv_single": ConvSingleLayer, "conv_parabolic": ConvParabolic,
                "conv_second_order": ConvSecondOrder, "conv_antisymmetric": ConvAntisymmetric,
                "conv_hamiltonian": ConvHamiltonian}
    for name, cls in expected.items():
        assert DYNAMICS[name] is cls and cls.feature_dim == 1


# -- gradients through ODE blocks -----------------------------------------------------------------
DYN = {  # name -> (channels -> dynamics)
    "single": lambda c: ConvSingleLayer(c, nt=NT),
    "parabolic": lambda c: ConvParabolic(c, hidden=2, nt=NT),
    "parabolic_batch": lambda c: ConvParabolic(c, nt=NT, normalization="batch"),
    "parabolic_instance": lambda c: ConvParabolic(c, nt=NT, normalization="instance"),
    "parabolic_tv": lambda c: ConvParabolic(c, nt=NT, normalization="tv"),
    "antisymmetric": lambda c: ConvAntisymmetric(c, gamma=0.1, nt=NT),
    "second_order": lambda c: ConvSecondOrder(c, hidden=2, nt=NT),
    "hamiltonian": lambda c: ConvHamiltonian(c, CZ, nt=NT),
    "hamiltonian_tv": lambda c: ConvHamiltonian(c, CZ, nt=NT, normalization="tv"),
}
METHODS = {
    "single": ["euler"], "parabolic": ["euler", "rk4", "ab3"], "parabolic_batch": ["rk4"],
    "parabolic_instance": ["rk4"], "parabolic_tv": ["rk4"], "antisymmetric": ["euler", "rk4", "ab3"],
    "second_order": ["leapfrog"], "hamiltonian": ["verlet", "rk4"], "hamiltonian_tv": ["verlet"],
}
CASES = [(d, m, g) for d, ms in METHODS.items() for m in ms for g in ("autograd", "checkpoint", "reversible")
         if g != "reversible" or m in ("verlet", "leapfrog")]


def make_block(name, method, gradient="autograd", steps=STEPS, channels=C):
    dyn = DYN[name](channels).to(F64)
    with torch.no_grad():  # non-zero biases so that every weight matters
        for p in dyn.parameters():
            p.add_(0.3 * torch.randn_like(p))
    if gradient == "checkpoint":
        gradient = sn.Checkpoint(segment=2)
    return sn.ODEBlock(dyn, T=1.0, steps=steps, method=method, controls="linear", gradient=gradient)


def inputs_for(block):
    dyn = block.dynamics
    y0 = torch.randn(BATCH, dyn.width, HW, HW, dtype=F64)
    if dyn.two_stream:
        return [y0, 0.5 * torch.randn(BATCH, dyn.width_z, HW, HW, dtype=F64)]
    return [y0]


FULL_CASES = [("parabolic", "rk4", "autograd"), ("antisymmetric", "ab3", "checkpoint"),
              ("second_order", "leapfrog", "reversible"), ("hamiltonian", "verlet", "reversible")]


def gradcheck_block(block, fast_mode):
    names = [n for n, _ in block.named_parameters()]
    state = inputs_for(block)
    n_state = len(state)

    def fn(*args):
        s = tuple(args[:n_state]) if n_state == 2 else args[0]
        out = functional_call(block, dict(zip(names, args[n_state:])), (s,))
        return out if n_state == 2 else (out,)

    args = [a.requires_grad_() for a in state] + [p.detach().clone().requires_grad_() for p in block.parameters()]
    return torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-7, rtol=1e-5, fast_mode=fast_mode)


@pytest.mark.parametrize("name,method,gradient", CASES)
def test_gradcheck(name, method, gradient):
    """Every case in gradcheck's fast mode (random projections uᵀJv against finite differences,
    for every input: the state(s) and every weight)."""
    assert gradcheck_block(make_block(name, method, gradient), fast_mode=True)


@pytest.mark.parametrize("name,method,gradient", FULL_CASES)
def test_gradcheck_full_jacobian(name, method, gradient):
    """Representative cases with the full Jacobian compared entry by entry (2 channels)."""
    assert gradcheck_block(make_block(name, method, gradient, channels=2), fast_mode=False)


def test_reversible_equals_autograd_conv_hamiltonian():
    block = make_block("hamiltonian", "verlet", steps=16)
    x = torch.randn(BATCH, C, 5, 5, dtype=F64)
    err = rel_error(gradient_probe(block, x, "reversible"), gradient_probe(block, x, "autograd"))
    assert err <= 1e-12, err


def discrete_and_adjoint_gradients(block, x):
    """(autograd, adjoint) gradients of L = Σ sin(Y_N)·w with respect to the weights and x."""
    return [gradient_probe(block, x, mode) for mode in ("autograd", "adjoint")]


@pytest.mark.parametrize("name,method,order,Ns", [("parabolic", "euler", 1, (4, 8, 16, 32)),
                                                  ("hamiltonian", "rk4", 4, (8, 16, 32))])
def test_adjoint_gradient_converges_to_autograd(name, method, order, Ns):
    """The adjoint mode's (continuous) gradient tends to the exact discrete one as h → 0, the gap
    shrinking by ≈ 2^p per halving of h (p the integrator's order)."""
    x = torch.randn(BATCH, C, HW, HW, dtype=F64)
    errs = []
    for N in Ns:
        torch.manual_seed(5)
        exact, adjoint = discrete_and_adjoint_gradients(make_block(name, method, steps=N), x)
        errs.append(rel_error(adjoint, exact))
    ratios = [a / b for a, b in zip(errs[:-1], errs[1:])]
    assert errs[0] > 1e-6, errs  # differentiate→discretize really differs from the discrete gradient
    assert all(r > 1.3 for r in ratios), (errs, ratios)       # shrinks at every refinement
    assert abs(math.log2(ratios[-1]) - order) < 0.25, (errs, ratios)


def test_prolongate_keeps_theta():
    block = make_block("antisymmetric", "rk4", steps=4)
    x = torch.randn(BATCH, C, HW, HW, dtype=F64)
    with torch.no_grad():
        before = block(x)
        block.prolongate()
        after = block(x)
    assert block.dynamics.nt == 2 * NT
    assert torch.allclose(before, after, rtol=0, atol=1e-13)


def test_second_order_leapfrog_conserves_energy_when_linear():
    """Y'' = −KᵀK Y (σ = identity, b = 0): leapfrog keeps ½‖Y'‖² + ½‖KY‖² bounded (no drift)."""
    torch.manual_seed(1)
    dyn = ConvSecondOrder(2, activation="identity", nt=1).to(F64)
    with torch.no_grad():
        dyn.K.mul_(0.5)
    block = sn.ODEBlock(dyn, T=40.0, steps=800, method="leapfrog")
    y0 = torch.randn(1, 2, 6, 6, dtype=F64)
    with torch.no_grad():
        Y = block(y0, return_states=True)
        K = dyn.K[0]
        v = (Y[2:] - Y[:-2]) / (2 * block.h)        # central differences, O(h²)
        potential = conv(Y[1:-1].flatten(0, 1), K).reshape(len(v), -1).pow(2).sum(1)
        energy = 0.5 * v.pow(2).flatten(1).sum(1) + 0.5 * potential
        e0 = float(0.5 * conv(y0, K).pow(2).sum())   # at rest: Y'(0) = 0
    rel = float((energy - e0).abs().max()) / e0
    assert math.isfinite(rel) and rel < 5e-3, rel
