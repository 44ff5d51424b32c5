"""Newton-type optimizers: CG, curvature products against dense derivatives, convergence, determinism.

float64 models and tensors are created explicitly (``.double()``); the default dtype is untouched.
"""

import math

import pytest
import torch
from torch.func import functional_call

import stablenet as sn
from stablenet.optim import (BlockCoordinateDescent, GaussNewtonCG, NewtonCG, VarPro, conjugate_gradient,
                             network_parameters)
from stablenet.app.training import smoothness

D = torch.float64


# -- problems ---------------------------------------------------------------------------------------
def tiny(seed=0, n=20, classes=3):
    """Width-3 network (33 network weights + 12 classifier weights) and n points in 2-D."""
    torch.manual_seed(seed)
    block = sn.ODEBlock(sn.SingleLayer(3, nt=2), T=1.0, steps=2, method="rk4", controls="linear")
    net = sn.ODEClassifier(2, classes, block).double()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    g = torch.Generator().manual_seed(seed + 100)
    x = torch.randn(n, 2, generator=g, dtype=D)
    labels = torch.randint(0, classes, (n,), generator=g)
    return net, x, labels


def sectors(seed=0, n=100):
    """Three classes (an inner disc and two sectors) for a width-4, 3-step network."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 2, generator=g, dtype=D) * 2 - 1
    angle = torch.atan2(x[:, 1], x[:, 0])
    labels = ((angle + math.pi) / (2 * math.pi / 3)).long().clamp(max=2)
    labels = torch.where(x.norm(dim=1) < 0.4, torch.zeros_like(labels), labels)
    torch.manual_seed(seed)
    block = sn.ODEBlock(sn.SingleLayer(4, nt=2), T=1.0, steps=3, method="rk4", controls="linear")
    return sn.ODEClassifier(2, 3, block).double(), x, labels


def flat_names(net):
    return [n for n, _ in net.named_parameters() if not n.startswith("classifier")]


def unflatten(net, names, v):
    shapes = dict(net.named_parameters())
    out, start = {}, 0
    for n in names:
        k = shapes[n].numel()
        out[n] = v[start:start + k].view_as(shapes[n])
        start += k
    return out


def theta_of(net, names):
    params = dict(net.named_parameters())
    return torch.cat([params[n].detach().reshape(-1) for n in names])


def penalty_of(net, alpha=0.1):
    return lambda: alpha * smoothness(net)


def regularizer_hessian(net, names, wd, alpha=0.1):
    """Dense Hessian of wd/2‖θ‖² + α·smoothness(θ) by autograd."""
    def R(v):
        with torch.nn.utils.stateless._reparametrize_module(net, unflatten(net, names, v)):
            return alpha * smoothness(net) + 0.5 * wd * v.pow(2).sum()
    return torch.autograd.functional.hessian(R, theta_of(net, names))


def dense_operator(matvec, n):
    return torch.stack([matvec(e) for e in torch.eye(n, dtype=D)], 1)


# -- conjugate gradients ----------------------------------------------------------------------------
def test_cg_spd_preconditioned_and_negative_curvature():
    g = torch.Generator().manual_seed(0)
    Q = torch.linalg.qr(torch.randn(30, 30, generator=g, dtype=D))[0]
    A = Q @ torch.diag(torch.logspace(0, 3, 30, dtype=D)) @ Q.T
    b = torch.randn(30, generator=g, dtype=D)
    res = conjugate_gradient(lambda v: A @ v, b, rtol=1e-10, max_iter=200)
    assert res.converged and not res.negative_curvature
    assert float(torch.linalg.norm(A @ res.x - b) / torch.linalg.norm(b)) <= 1e-9
    inverse = torch.linalg.inv(A)
    exact = conjugate_gradient(lambda v: A @ v, b, rtol=1e-10, max_iter=200, preconditioner=lambda r: inverse @ r)
    assert exact.iterations == 1 and torch.allclose(exact.x, res.x, atol=1e-8)
    # a badly scaled diagonal: Jacobi preconditioning needs far fewer iterations
    scale = torch.logspace(-3, 3, 30, dtype=D)
    B = torch.diag(scale) @ (torch.eye(30, dtype=D) + 0.01 * A / 1e3) @ torch.diag(scale)
    plain = conjugate_gradient(lambda v: B @ v, b, rtol=1e-8, max_iter=500)
    jacobi = conjugate_gradient(lambda v: B @ v, b, rtol=1e-8, max_iter=500,
                                preconditioner=lambda r: r / B.diagonal())
    assert jacobi.converged and jacobi.iterations < plain.iterations / 3
    # negative curvature at once: steepest descent (b); later: the iterate so far, a descent direction
    first = conjugate_gradient(lambda v: -v, b, rtol=1e-8, max_iter=10)
    assert first.negative_curvature and first.iterations == 1 and torch.equal(first.x, b)
    C = torch.diag(torch.cat([torch.linspace(1, 2, 29, dtype=D), torch.tensor([-5.0], dtype=D)]))
    later = conjugate_gradient(lambda v: C @ v, torch.ones(30, dtype=D), rtol=1e-12, max_iter=30)
    assert later.negative_curvature and later.iterations > 1
    assert float(torch.dot(later.x, torch.ones(30, dtype=D))) > 0       # −gᵀp > 0 for b = −g


# -- curvature products -----------------------------------------------------------------------------
@pytest.mark.parametrize("loss", ["cross_entropy", "least_squares"])
@pytest.mark.parametrize("jvp_mode", ["reverse", "forward"])
def test_gauss_newton_product_is_jt_h_j_plus_regularizer(loss, jvp_mode):
    net, x, labels = tiny()
    names = flat_names(net)
    opt = GaussNewtonCG(network_parameters(net), net, loss=loss, weight_decay=0.01, jvp_mode=jvp_mode)
    qm = opt.quadratic_model(x, labels, penalty_of(net))
    theta = theta_of(net, names)
    J = torch.autograd.functional.jacobian(
        lambda v: functional_call(net, unflatten(net, names, v), (x,)).reshape(-1), theta)
    scores = net(x).detach()
    H = torch.autograd.functional.hessian(lambda s: sn.get_loss(loss)(s.reshape(scores.shape), labels),
                                          scores.reshape(-1))
    expected = J.T @ H @ J + regularizer_hessian(net, names, 0.01)
    assert torch.allclose(dense_operator(qm.matvec, len(theta)), expected, atol=1e-13)


@pytest.mark.parametrize("loss", ["cross_entropy", "least_squares"])
def test_newton_product_is_the_hessian(loss):
    net, x, labels = tiny()
    names = flat_names(net)
    opt = NewtonCG(network_parameters(net), net, loss=loss, weight_decay=0.01)
    qm = opt.quadratic_model(x, labels, penalty_of(net))
    theta = theta_of(net, names)
    reg = penalty_of(net)

    def objective(v):
        with torch.nn.utils.stateless._reparametrize_module(net, unflatten(net, names, v)):
            return sn.get_loss(loss)(net(x), labels) + reg() + 0.005 * v.pow(2).sum()

    H = torch.autograd.functional.hessian(objective, theta)
    assert torch.allclose(dense_operator(qm.matvec, len(theta)), H, atol=1e-13)
    assert torch.allclose(qm.gradient, torch.autograd.functional.jacobian(objective, theta), atol=1e-14)
    # and finite differences of the gradient (central, ε = 1e-5: error O(ε²))
    v = torch.randn(len(theta), dtype=D)
    eps = 1e-5
    fd = (torch.autograd.functional.jacobian(objective, theta + eps * v)
          - torch.autograd.functional.jacobian(objective, theta - eps * v)) / (2 * eps)
    assert float((fd - qm.matvec(v)).abs().max()) <= 1e-8 * float(fd.abs().max())


@pytest.mark.parametrize("loss,inner_hessian", [("cross_entropy", "dense"), ("least_squares", "dense"),
                                                ("cross_entropy", "cg")])
def test_varpro_gauss_newton_is_schur_complement_of_joint_gauss_newton(loss, inner_hessian):
    net, x, labels = tiny()
    names = flat_names(net)
    lam = 0.05
    vp = VarPro(net, loss, regularization=lam, hessian=inner_hessian)
    opt = GaussNewtonCG(network_parameters(net), net, loss=loss, weight_decay=0.01, varpro=vp)
    qm = opt.quadratic_model(x, labels, penalty_of(net))        # solves the inner problem
    nt = len(theta_of(net, names))
    joint = torch.cat([theta_of(net, names), net.classifier.weight.detach().reshape(-1),
                       net.classifier.bias.detach()])

    def scores(u):
        W = u[nt:nt + 9].reshape(3, 3)
        with torch.nn.utils.stateless._reparametrize_module(net, unflatten(net, names, u[:nt])):
            return torch.nn.functional.linear(net.features(x), W, u[nt + 9:]).reshape(-1)

    J = torch.autograd.functional.jacobian(scores, joint)
    s = scores(joint).detach()
    H = torch.autograd.functional.hessian(lambda z: sn.get_loss(loss)(z.reshape(-1, 3), labels), s)
    G = J.T @ H @ J
    G[:nt, :nt] += regularizer_hessian(net, names, 0.01)
    G[nt:, nt:] += lam * torch.eye(12, dtype=D)
    schur = G[:nt, :nt] - G[:nt, nt:] @ torch.linalg.solve(G[nt:, nt:], G[nt:, :nt])
    assert torch.allclose(dense_operator(qm.matvec, nt), schur, atol=1e-12)


@pytest.mark.parametrize("loss", ["cross_entropy", "least_squares"])
def test_varpro_newton_product_is_derivative_of_reduced_gradient(loss):
    net, x, labels = tiny()
    params = network_parameters(net)
    vp = VarPro(net, loss, regularization=0.05, tol=1e-13)
    opt = NewtonCG(params, net, loss=loss, weight_decay=0.01, varpro=vp)
    pen = penalty_of(net)
    qm = opt.quadratic_model(x, labels, pen)
    v = torch.randn(len(qm.gradient), dtype=D)
    Hv = qm.matvec(v)
    theta0 = [p.detach().clone() for p in params]
    W0, b0 = net.classifier.weight.detach().clone(), net.classifier.bias.detach().clone()

    def reduced_gradient(eps):
        with torch.no_grad():
            for p, p0, d in zip(params, theta0, opt._unflat(eps * v)):
                p.copy_(p0 + d)
            net.classifier.weight.copy_(W0)
            net.classifier.bias.copy_(b0)
        return opt.quadratic_model(x, labels, pen).gradient

    eps = 1e-5
    fd = (reduced_gradient(eps) - reduced_gradient(-eps)) / (2 * eps)
    # measured max error 8.3e-10 (cross-entropy) and 1.3e-9 (least squares) against max|Hv| ~ 1;
    # it falls as ε² (8.3e-6, 8.3e-8, 8.3e-10 for ε = 1e-3, 1e-4, 1e-5)
    assert float((fd - Hv).abs().max()) <= 1e-8 * float(fd.abs().max())
    # the reduced Hessian is not the θθ block: the coupling term matters
    plain = NewtonCG(params + list(net.classifier.parameters()), net, loss=loss)
    assert float((fd - plain.quadratic_model(x, labels).matvec(torch.cat([v, torch.zeros(12, dtype=D)]))[:len(v)])
                 .abs().max()) > 1e-3


def test_subsampled_curvature_uses_the_subsample_and_full_gradient():
    net, x, labels = tiny(n=40)
    opt = GaussNewtonCG(network_parameters(net), net, hessian_samples=0.25, seed=7)
    sample = opt._sample(len(x))
    assert sample is not None and len(sample) == 10
    qm = opt.quadratic_model(x, labels, sample=sample)
    full = GaussNewtonCG(network_parameters(net), net).quadratic_model(x, labels)
    sub = GaussNewtonCG(network_parameters(net), net).quadratic_model(x[sample], labels[sample])
    v = torch.randn(len(qm.gradient), dtype=D)
    assert torch.allclose(qm.gradient, full.gradient, atol=1e-15)
    assert torch.allclose(qm.matvec(v), sub.matvec(v), atol=1e-14)
    assert not torch.allclose(qm.matvec(v), full.matvec(v), atol=1e-3)


# -- convergence ------------------------------------------------------------------------------------
WD = 0.1      # weight decay on θ and on (W, μ): a well-posed problem with isolated minima
SMOOTH = 1e-3
ITERATIONS = 15


def objective(net, x, labels):
    return (sn.get_loss("cross_entropy")(net(x), labels) + SMOOTH * smoothness(net)
            + 0.5 * WD * sum(p.pow(2).sum() for p in net.parameters()))


def gradient_descent(net, x, labels, iterations):
    """Steepest descent with the same Armijo backtracking (from t = 1) as the Newton-type methods."""
    params = list(net.parameters())
    values = []
    for _ in range(iterations):
        f = objective(net, x, labels)
        grads = torch.autograd.grad(f, params)
        gg = float(sum(g.pow(2).sum() for g in grads))
        values.append(float(f.detach()))
        start = [p.detach().clone() for p in params]
        t = 1.0
        while True:
            with torch.no_grad():
                for p, p0, g in zip(params, start, grads):
                    p.copy_(p0 - t * g)
                if float(objective(net, x, labels)) <= values[-1] - 1e-4 * t * gg:
                    break
            t *= 0.5
    return values, math.sqrt(gg)


@pytest.fixture(scope="module")
def gd_reference():
    """Measured: J = 1.739 → 0.881 in 15 iterations, final ‖∇J‖ = 0.10."""
    net, x, labels = sectors()
    return gradient_descent(net, x, labels, ITERATIONS)


def run(opt, net, x, labels, iterations=ITERATIONS):
    return [float(opt.step(x, labels, lambda: SMOOTH * smoothness(net))) for _ in range(iterations)]


def test_newton_cg_converges_quadratically_and_beats_gradient_descent(gd_reference):
    gd, gd_grad = gd_reference
    net, x, labels = sectors()
    opt = NewtonCG([{"params": network_parameters(net)}, {"params": list(net.classifier.parameters())}],
                   net, weight_decay=WD, cg_rtol=1e-2, cg_max_iter=50)
    values, grads = [], []
    for _ in range(ITERATIONS):
        values.append(float(opt.step(x, labels, lambda: SMOOTH * smoothness(net))))
        grads.append(opt.last.grad_norm)
    assert values[0] == pytest.approx(gd[0], abs=1e-14)     # the same objective
    assert all(n < g for n, g in zip(values[1:], gd[1:]))
    assert values[-1] < gd[-1] - 0.1                # measured 0.752 vs 0.881
    # measured ‖∇J‖ in the last four iterations: 8e-7, 8e-9, 6e-11, 2e-13 (vs 0.10 for GD)
    assert grads[-1] <= 1e-10 and gd_grad > 0.05
    assert grads[-1] <= 1e-3 * grads[-3]
    assert opt.last.step_length == 1.0 and not opt.last.negative_curvature


def test_varpro_gauss_newton_beats_gradient_descent(gd_reference):
    gd, _ = gd_reference
    net, x, labels = sectors()
    vp = VarPro(net, regularization=WD)
    opt = GaussNewtonCG(network_parameters(net), net, weight_decay=WD, varpro=vp, cg_rtol=1e-2, cg_max_iter=50)
    values, grads = [], []
    for _ in range(ITERATIONS):
        values.append(float(opt.step(x, labels, lambda: SMOOTH * smoothness(net))))
        grads.append(opt.last.grad_norm)
    # measured Φ: 1.409, 0.796, 0.761, ... 0.753 (GD: 1.739, 1.499, 1.368, ... 0.881)
    assert all(n < g for n, g in zip(values, gd))   # the first value already has the optimal W
    assert values[-1] < gd[-1] - 0.1
    # measured ‖∇Φ‖ 0.4 → 1e-2 … 2e-2: Gauss–Newton ignores the indefinite part of the Hessian and
    # converges only linearly on this non-convex problem (Newton–CG above reaches 2e-13)
    assert max(grads[-3:]) <= 0.1 * grads[0]
    assert opt.last.inner.converged and opt.last.inner.iterations <= 4      # measured 3 (warm start)


def test_subsampled_gauss_newton_and_block_coordinate_descent(gd_reference):
    gd, _ = gd_reference
    net, x, labels = sectors()
    vp = VarPro(net, regularization=WD)
    sub = GaussNewtonCG(network_parameters(net), net, weight_decay=WD, varpro=vp, hessian_samples=30,
                        seed=1, cg_rtol=1e-2, cg_max_iter=50)
    values = run(sub, net, x, labels, 10)
    assert sub.last.sample_size == 30
    assert all(n < g for n, g in zip(values, gd))    # measured 1.409, 0.797, 0.762, ... 0.754
    assert all(b <= a for a, b in zip(values, values[1:]))  # the line search is on the full batch

    net, x, labels = sectors()
    vp = VarPro(net, regularization=WD)
    bcd = BlockCoordinateDescent(vp, GaussNewtonCG(network_parameters(net), net, weight_decay=WD,
                                                   cg_rtol=1e-2, cg_max_iter=50))
    values = run(bcd, net, x, labels, 10)
    assert all(b <= a for a, b in zip(values, values[1:]))  # descent on the joint objective
    assert all(n < g for n, g in zip(values, gd))    # measured 1.409, 0.812, 0.768, ... 0.754
    step = bcd.last.theta_steps[0]
    assert bcd.last.inner.converged  # the θ step: a CG Newton direction (not the fallback) within the cap
    assert step.direction == "newton" and 1 <= step.cg_iterations <= 50 and not step.line_search_failed
    assert bcd.last.scores.shape == (len(x), 3)
    # the reported value is the joint objective after the inner solve, before the θ step
    assert values[-1] == pytest.approx(bcd.last.theta_steps[0].loss + float(vp.classifier_penalty(
        bcd.last.inner.weight, bcd.last.inner.bias)), abs=1e-14)


def test_negative_curvature_is_detected_and_the_step_still_descends():
    net, x, labels = sectors()
    opt = NewtonCG(list(net.parameters()), net, weight_decay=1e-3, cg_rtol=1e-3, cg_max_iter=100)
    opt.step(x, labels)
    assert opt.last.negative_curvature and opt.last.direction == "newton"
    assert opt.last.loss_after < opt.last.loss


# -- determinism, checkpoints, dtype ------------------------------------------------------------------
def sampled_run(seed, steps=3, state=None):
    net, x, labels = sectors()
    vp = VarPro(net, regularization=WD)
    opt = GaussNewtonCG(network_parameters(net), net, weight_decay=WD, varpro=vp, hessian_samples=0.3,
                        seed=seed, cg_max_iter=5)
    samples = []
    for _ in range(steps):
        opt.step(x, labels)
        samples.append(opt.last.sample_size)
    return net, opt, [p.detach().clone() for p in net.parameters()]


def test_seeded_runs_are_deterministic_and_the_generator_is_checkpointed():
    _, _, a = sampled_run(seed=5)
    _, _, b = sampled_run(seed=5)
    _, _, c = sampled_run(seed=6)
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert not all(torch.equal(p, q) for p, q in zip(a, c))
    # resume: 2 steps, save, 1 step == reload the saved state into a fresh optimizer, 1 step
    net, opt, _ = sampled_run(seed=5, steps=2)
    saved_model = {k: v.clone() for k, v in net.state_dict().items()}
    saved_opt = opt.state_dict()
    _, x, labels = sectors()
    opt.step(x, labels)
    after = [p.detach().clone() for p in net.parameters()]
    net2, _, _ = sampled_run(seed=99, steps=0)
    net2.load_state_dict(saved_model)
    opt2 = GaussNewtonCG(network_parameters(net2), net2, weight_decay=WD,
                         varpro=VarPro(net2, regularization=WD), hessian_samples=0.3, seed=0, cg_max_iter=5)
    opt2.load_state_dict(saved_opt)
    assert opt2.steps == 2
    opt2.step(x, labels)
    assert all(torch.equal(p, q) for p, q in zip(after, net2.parameters()))


def test_float32_model_trains():
    torch.manual_seed(0)
    block = sn.ODEBlock(sn.SingleLayer(4, nt=2), T=1.0, steps=3, method="rk4")
    net = sn.ODEClassifier(2, 3, block)
    _, x, labels = sectors()
    x = x.float()
    vp = VarPro(net, regularization=WD)
    opt = GaussNewtonCG(network_parameters(net), net, weight_decay=WD, varpro=vp)
    values = [float(opt.step(x, labels)) for _ in range(3)]
    assert values[-1] < values[0]
    assert opt.last.inner.grad_norm <= 1e-5 and opt.last.scores.dtype == torch.float32
    assert torch.get_default_dtype() == torch.float32


# -- validation -------------------------------------------------------------------------------------
def test_bad_arguments_name_parameter_and_value():
    net, x, labels = tiny()
    params = network_parameters(net)
    with pytest.raises(ValueError, match=r"cg_rtol must be a finite number > 0, got 0"):
        GaussNewtonCG(params, net, cg_rtol=0)
    with pytest.raises(ValueError, match=r"hessian_samples as a fraction must be in \(0, 1\], got 1.5"):
        GaussNewtonCG(params, net, hessian_samples=1.5)
    with pytest.raises(ValueError, match=r"hessian_samples must be an integer >= 1, got 0"):
        GaussNewtonCG(params, net, hessian_samples=0)
    with pytest.raises(ValueError, match=r"jvp_mode must be one of .* got 'jacfwd'"):
        GaussNewtonCG(params, net, jvp_mode="jacfwd")
    with pytest.raises(ValueError, match=r"armijo must be in \(0, 0.5\), got 0.7"):
        NewtonCG(params, net, armijo=0.7)
    with pytest.raises(ValueError, match=r"params must not contain the classifier weights .*'classifier.weight'"):
        GaussNewtonCG(list(net.parameters()), net, varpro=VarPro(net))
    with pytest.raises(ValueError, match=r"params must be parameters of model"):
        GaussNewtonCG([torch.nn.Parameter(torch.zeros(2))], net)
    with pytest.raises(ValueError, match=r"varpro.loss \('least_squares'\) must equal the optimizer's loss"):
        GaussNewtonCG(params, net, varpro=VarPro(net, "least_squares"))
    with pytest.raises(ValueError, match=r"theta_optimizer must be built without varpro"):
        BlockCoordinateDescent(VarPro(net), GaussNewtonCG(params, net, varpro=VarPro(net)))
    with pytest.raises(ValueError, match=r"theta_optimizer must not optimize the classifier"):
        BlockCoordinateDescent(VarPro(net), GaussNewtonCG(list(net.parameters()), net))
    opt = GaussNewtonCG([{"params": params[:1], "lr": 1.0}, {"params": params[1:], "lr": 0.5}], net)
    with pytest.raises(ValueError, match=r"all parameter groups must have the same lr .* got \[0.5, 1.0\]"):
        opt.step(x, labels)
    opt = GaussNewtonCG(params, net)
    with pytest.raises(ValueError, match=r"labels must be an int64 tensor of shape \(20,\)"):
        opt.step(x, labels.double())
    with pytest.raises(TypeError, match=r"penalty must return a scalar tensor, got float"):
        opt.step(x, labels, penalty=lambda: 0.0)


@pytest.mark.parametrize("mode", ["checkpoint", "adjoint"])
def test_gradient_modes_without_double_backward_are_refused(mode):
    """checkpoint/adjoint backward passes are not differentiable: the products would be 0 or wrong."""
    block = sn.ODEBlock(sn.SingleLayer(3), T=1.0, steps=2, method="rk4", gradient=mode)
    net = sn.ODEClassifier(2, 3, block).double()
    with pytest.raises(ValueError, match=rf"block 'blocks.0' uses gradient='{mode}'"):
        GaussNewtonCG(network_parameters(net), net)
    _, x, labels = tiny()
    block.gradient = "autograd"
    opt = NewtonCG(network_parameters(net), net)
    block.gradient = mode                            # changed after construction: refused at the step
    with pytest.raises(ValueError, match=rf"uses gradient='{mode}'"):
        opt.step(x, labels)
    # VarPro's reduced gradient needs first derivatives only and works with any mode
    phi = VarPro(net).reduced_objective(x, labels)
    phi.backward()
    assert all(p.grad is not None for p in network_parameters(net))
