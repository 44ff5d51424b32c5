"""Variable projection: the inner Newton solve for (W, μ) and the reduced objective Φ(θ).

float64 throughout (models and tensors made float64 explicitly; the default dtype is untouched).
"""

import math

import pytest
import torch
import torch.nn.functional as F

import stablenet as sn
from stablenet.optim import VarPro

from helpers import loglog_slope

N, CLASSES, FEATURES = 200, 5, 8


def model(width=FEATURES, classes=CLASSES, in_features=2, seed=0):
    torch.manual_seed(seed)
    block = sn.ODEBlock(sn.SingleLayer(width, nt=2), T=1.0, steps=3, method="rk4", controls="linear")
    net = sn.ODEClassifier(in_features, classes, block).double()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return net


def features_and_labels(seed=1):
    g = torch.Generator().manual_seed(seed)
    Y = torch.randn(N, FEATURES, generator=g, dtype=torch.float64)
    # labels that depend on the features plus noise: learnable but not separable
    scores = Y @ torch.randn(FEATURES, CLASSES, generator=g, dtype=torch.float64)
    labels = (scores + 0.5 * torch.randn(N, CLASSES, generator=g, dtype=torch.float64)).argmax(1)
    return Y, labels


def psi(vp, Y, labels, W, b):
    """The inner objective written with autograd-friendly torch ops (independent of VarPro's formulas)."""
    return (vp.loss_fn(F.linear(Y, W, b), labels) + 0.5 * vp.regularization * W.pow(2).sum()
            + 0.5 * vp.bias_regularization * b.pow(2).sum())


# -- the inner problem ------------------------------------------------------------------------------
@pytest.mark.parametrize("hessian", ["dense", "cg"])
def test_inner_newton_reaches_tolerance(hessian):
    net = model()
    Y, labels = features_and_labels()
    vp = VarPro(net, "cross_entropy", regularization=1e-3, hessian=hessian, tol=1e-10, warm_start=False)
    result = vp.solve_inner(Y, labels)
    assert result.converged and result.reason == "tolerance"
    assert result.grad_norm <= 1e-10
    assert result.iterations <= 10               # measured: 8 (dense), 8 (cg)
    # independent check: the autograd gradient of ψ at the solution vanishes
    W = result.weight.clone().requires_grad_()
    b = result.bias.clone().requires_grad_()
    gW, gb = torch.autograd.grad(psi(vp, Y, labels, W, b), (W, b))
    assert math.sqrt(gW.pow(2).sum() + gb.pow(2).sum()) <= 1e-8
    # the solution was written into the classifier
    assert torch.equal(net.classifier.weight.detach(), result.weight)
    assert torch.equal(net.classifier.bias.detach(), result.bias)


def test_dense_and_cg_agree_and_quadratic_convergence():
    Y, labels = features_and_labels()
    sols, norms = [], []
    for hessian in ("dense", "cg"):
        net = model()
        vp = VarPro(net, regularization=1e-3, hessian=hessian, warm_start=False, tol=1e-12)
        sols.append(vp.solve_inner(Y, labels).weight)
        # gradient norms per iteration: run with max_iter = k
        norms.append([VarPro(net, regularization=1e-3, hessian=hessian, warm_start=False, max_iter=k)
                      .solve_inner(Y, labels, write=False).grad_norm for k in range(1, 9)])
    assert torch.allclose(sols[0], sols[1], atol=1e-9)
    dense = norms[0]
    # locally quadratic convergence: measured ‖g‖ = 6.5e-4, 1.1e-5, 2.6e-9, 1.7e-16 in
    # iterations 5-8, i.e. ‖g_{k+1}‖ ≈ 25 ‖g_k‖²
    assert dense[-1] <= 1e-14
    for before, after in zip(dense[4:-1], dense[5:]):
        assert after <= 50 * before ** 2
    # inexact Newton-CG (forcing term min(0.1, ‖g‖)) converges superlinearly
    cg = norms[1]
    assert cg[-1] <= 1e-12 and cg[-2] / cg[-3] < cg[-3] / cg[-4]


def test_warm_start_saves_iterations():
    net = model()
    Y, labels = features_and_labels()
    vp = VarPro(net, regularization=1e-3, tol=1e-10)
    cold = vp.solve_inner(Y, labels)
    warm = vp.solve_inner(Y + 1e-3 * torch.randn_like(Y), labels)
    assert warm.initial_grad_norm < 1e-2 * cold.initial_grad_norm
    assert warm.iterations < cold.iterations
    assert warm.grad_norm <= 1e-10


def test_least_squares_is_one_newton_step_and_matches_normal_equations():
    net = model()
    Y, labels = features_and_labels()
    lam = 1e-2
    vp = VarPro(net, "least_squares", regularization=lam, warm_start=False)
    result = vp.solve_inner(Y, labels)
    assert result.iterations == 1 and result.grad_norm <= 1e-12
    Z = torch.cat([Y, torch.ones(N, 1, dtype=torch.float64)], 1)
    E = F.one_hot(labels, CLASSES).double()
    What = torch.linalg.solve(Z.T @ Z / N + lam * torch.eye(FEATURES + 1, dtype=torch.float64), Z.T @ E / N).T
    assert torch.allclose(result.weight, What[:, :-1], atol=1e-12)
    assert torch.allclose(result.bias, What[:, -1], atol=1e-12)


@pytest.mark.parametrize("loss", ["cross_entropy", "least_squares"])
def test_inner_derivatives_match_autograd(loss):
    net = model()
    Y, labels = features_and_labels()
    vp = VarPro(net, loss, regularization=0.1, bias_regularization=0.02)
    Z = vp.augment(Y)
    What = 0.3 * torch.randn(CLASSES, FEATURES + 1, dtype=torch.float64)

    def flat_psi(w):
        w = w.reshape(CLASSES, FEATURES + 1)
        return psi(vp, Y, labels, w[:, :-1], w[:, -1])

    H = torch.autograd.functional.hessian(flat_psi, What.reshape(-1))
    g = torch.autograd.functional.jacobian(flat_psi, What.reshape(-1))
    assert torch.allclose(vp.inner_gradient(Z, labels, What).reshape(-1), g, atol=1e-14)
    assert torch.allclose(vp.inner_hessian(Z, What), H, atol=1e-13)
    V = torch.randn_like(What)
    assert torch.allclose(vp.inner_hessian_matvec(Z, What)(V).reshape(-1), H @ V.reshape(-1), atol=1e-13)
    for hessian in ("dense", "cg"):
        solver = VarPro(net, loss, regularization=0.1, bias_regularization=0.02, hessian=hessian)
        solve = solver.hessian_solver(Y, What[:, :-1], What[:, -1])
        assert torch.allclose(H @ solve(V).reshape(-1), V.reshape(-1), atol=1e-10)


# -- the reduced objective --------------------------------------------------------------------------
def small_problem():
    net = model(width=4, classes=3, seed=2)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(60, 2, generator=g, dtype=torch.float64)
    labels = ((x[:, 0] > 0).long() + (x[:, 1] > 0.3).long())
    return net, x, labels


def test_reduced_gradient_is_envelope_gradient():
    net, x, labels = small_problem()
    vp = VarPro(net, regularization=1e-2)
    phi = vp.reduced_objective(x, labels)
    phi.backward()
    # the classifier is a constant of Φ: its .grad is untouched
    assert net.classifier.weight.grad is None and net.classifier.bias.grad is None
    reduced = [p.grad.clone() for p in net.parameters() if p.grad is not None]
    # the joint objective at (θ, W*): same value, same θ-gradient, zero (W, μ)-gradient
    net.zero_grad(set_to_none=True)
    joint = vp.loss_fn(net(x), labels) + vp.classifier_penalty(net.classifier.weight, net.classifier.bias)
    joint.backward()
    assert float(joint.detach()) == pytest.approx(float(phi.detach()), abs=1e-14)
    theta_grads = [p.grad for n, p in net.named_parameters() if not n.startswith("classifier")]
    for a, b in zip(reduced, theta_grads):
        assert torch.allclose(a, b, atol=1e-14)
    w_grad = torch.cat([net.classifier.weight.grad.reshape(-1), net.classifier.bias.grad])
    assert float(w_grad.norm()) <= 1e-9


@pytest.mark.parametrize("loss", ["cross_entropy", "least_squares"])
def test_taylor_remainder_of_reduced_objective(loss):
    net, x, labels = small_problem()
    vp = VarPro(net, loss, regularization=1e-2, tol=1e-12)
    params = [p for n, p in net.named_parameters() if not n.startswith("classifier")]
    phi = vp.reduced_objective(x, labels)
    grads = torch.autograd.grad(phi, params)
    phi = float(phi.detach())
    g = torch.Generator().manual_seed(4)
    direction = [torch.randn(p.shape, generator=g, dtype=torch.float64) for p in params]
    slope = sum(float((a * d).sum()) for a, d in zip(grads, direction))
    theta0 = [p.detach().clone() for p in params]
    W0, b0 = net.classifier.weight.detach().clone(), net.classifier.bias.detach().clone()
    eps = [2.0 ** -k for k in range(6, 17)]   # the asymptotic range for this direction
    e0, e1 = [], []
    for h in eps:
        with torch.no_grad():
            for p, p0, d in zip(params, theta0, direction):
                p.copy_(p0 + h * d)
            net.classifier.weight.copy_(W0)     # warm start from W*(θ) for every ε
            net.classifier.bias.copy_(b0)
            value = float(vp.reduced_objective(x, labels))
        assert vp.last.grad_norm <= 1e-12
        e0.append(abs(value - phi))
        e1.append(abs(value - phi - h * slope))
    s0, s1 = loglog_slope(eps, e0), loglog_slope(eps, e1)
    # measured slopes: 0.97 / 2.00 (cross-entropy), 0.99 / 2.04 (least squares)
    assert abs(s0 - 1) <= 0.2, (s0, e0)
    assert abs(s1 - 2) <= 0.2, (s1, e1)
    assert e1[-1] < 1e-3 * e0[-1]


# -- validation -------------------------------------------------------------------------------------
def test_bad_arguments_name_parameter_and_value():
    net = model()
    with pytest.raises(ValueError, match=r"regularization must be > 0 for loss='cross_entropy'"):
        VarPro(net, regularization=0.0)
    VarPro(net, "least_squares", regularization=0.0)      # fine: the normal equations are regular
    with pytest.raises(ValueError, match=r"loss must be one of .* got 'hinge'"):
        VarPro(net, "hinge")
    with pytest.raises(ValueError, match=r"regularization must be a finite number >= 0, got -1"):
        VarPro(net, regularization=-1)
    with pytest.raises(ValueError, match=r"hessian must be one of .* got 'lu'"):
        VarPro(net, hessian="lu")
    with pytest.raises(TypeError, match=r"model must be a stablenet ODEClassifier, got Linear"):
        VarPro(torch.nn.Linear(2, 2))
    vp = VarPro(net)
    Y, labels = features_and_labels()
    with pytest.raises(ValueError, match=r"features has feature width 3 .* expected width 8"):
        vp.solve_inner(Y[:, :3], labels)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\], got values in \[0, 7\]"):
        vp.solve_inner(Y, labels.clamp(max=1) * 7)
    with pytest.raises(ValueError, match=r"labels must be an int64 tensor of shape \(200,\)"):
        vp.solve_inner(Y, labels[:10])
