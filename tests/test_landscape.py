"""Loss landscapes (Li et al. 2018): filter-normalized directions, 2-D surfaces, 1-D slices."""

import copy

import pytest
import torch
from torch import nn

from stablenet import Antisymmetric, ODEBlock, ODEClassifier, SingleLayer, softmax_cross_entropy
from stablenet.analysis.landscape import (filter_norms, is_stacked_control_weight, loss_slice_1d,
                                          loss_surface_2d, parameters_of, random_direction,
                                          surface_curvature)


def resnet(nt=3, width=4, dynamics=SingleLayer):
    torch.manual_seed(0)
    model = ODEClassifier(2, 3, ODEBlock(dynamics(width, nt=nt), T=1.0, steps=nt, method="euler"),
                          opening="duplicate")
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() <= 2 and p.abs().sum() == 0:     # the zero-initialized biases
                p.normal_()
    return model


def data(n=32, classes=3):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 2, generator=g), torch.randint(0, classes, (n,), generator=g)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------------ directions

def test_each_filter_of_the_direction_has_the_norm_of_the_weights_filter():
    model = resnet()
    with torch.no_grad():                       # very different scales per control point and row
        model.blocks[0].dynamics.K[0].mul_(100.0)
        model.blocks[0].dynamics.K[2, 1].mul_(0.01)
    K, W = model.blocks[0].dynamics.K, model.classifier.weight
    d = dict(zip([n for n, _ in model.named_parameters()], random_direction(model, generator=gen())))
    dK, dW = d["blocks.0.dynamics.K"], d["classifier.weight"]
    assert dK.shape == K.shape and dK.dtype == torch.float64
    # stacked (nt, out, in): each (control point k, output row i) is a filter
    for k in range(K.shape[0]):
        for i in range(K.shape[1]):
            assert torch.allclose(dK[k, i].norm(), K[k, i].double().norm(), rtol=1e-9)
    assert torch.allclose(dW.norm(dim=1), W.double().norm(dim=1), rtol=1e-9)
    # a direction, not a copy of the weights
    assert not torch.allclose(dK, K.double())
    # the norms helper agrees
    for a, b in zip(filter_norms(model), filter_norms(model, list(d.values()))):
        if b.abs().sum() > 0:
            assert torch.allclose(a, b, rtol=1e-9)


def test_biases_get_zero_direction_when_ignored_and_per_layer_norms_otherwise():
    model = resnet()
    names = [n for n, _ in model.named_parameters()]
    d = dict(zip(names, random_direction(model, generator=gen())))
    assert d["blocks.0.dynamics.b"].shape == (3, 4)
    assert torch.count_nonzero(d["blocks.0.dynamics.b"]) == 0
    assert torch.count_nonzero(d["classifier.bias"]) == 0
    kept = dict(zip(names, random_direction(model, generator=gen(), ignore_biases=False)))
    b = model.blocks[0].dynamics.b.double()
    assert torch.allclose(kept["blocks.0.dynamics.b"].norm(dim=1), b.norm(dim=1), rtol=1e-9)  # per control point
    assert torch.allclose(kept["classifier.bias"].norm(), model.classifier.bias.double().norm(), rtol=1e-9)


def test_plain_modules_rows_are_filters_and_raw_direction_is_gaussian():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2), nn.Conv1d(2, 4, 3))
    d = random_direction(net, generator=gen(3))
    assert torch.allclose(d[0].norm(dim=1), net[0].weight.double().norm(dim=1), rtol=1e-9)
    assert torch.allclose(d[4].flatten(1).norm(dim=1), net[3].weight.double().flatten(1).norm(dim=1), rtol=1e-9)
    assert torch.count_nonzero(d[1]) == 0 and torch.count_nonzero(d[5]) == 0
    raw = random_direction(net, generator=gen(3), filter_normalize=False, ignore_biases=False)
    again = random_direction(net, generator=gen(3), filter_normalize=False, ignore_biases=False)
    assert all(torch.equal(a, b) for a, b in zip(raw, again))
    assert not torch.allclose(raw[0].norm(dim=1), net[0].weight.double().norm(dim=1))
    assert not torch.equal(random_direction(net, generator=gen(4))[0], d[0])


def test_parametrized_control_weights_are_recognised():
    model = resnet(dynamics=Antisymmetric)
    stacked = {n: is_stacked_control_weight(model, n) for n, _ in model.named_parameters()}
    assert stacked["blocks.0.dynamics.parametrizations.K.original"]
    assert stacked["blocks.0.dynamics.b"] and not stacked["classifier.weight"]
    x, y = data()
    surface = loss_surface_2d(model, softmax_cross_entropy, x, y, resolution=3, generator=gen())
    with torch.no_grad():
        direct = softmax_cross_entropy(copy.deepcopy(model).double()(x.double()), y)
    assert surface["center_loss"] == pytest.approx(float(direct), rel=1e-12)
    assert surface["loss"][1, 1] == pytest.approx(surface["center_loss"], rel=1e-12)


# -------------------------------------------------------------------------------------- surfaces

def test_surface_of_linear_least_squares_matches_the_analytic_quadratic():
    torch.manual_seed(0)
    model = nn.Linear(3, 1, bias=False)
    x = torch.randn(20, 3)
    target = torch.randn(20, 1)
    mse = lambda out, t: ((out - t) ** 2).mean()       # noqa: E731
    d1, d2 = [torch.randn(1, 3, dtype=torch.float64)], [torch.randn(1, 3, dtype=torch.float64)]
    s = loss_surface_2d(model, mse, x, target, directions=(d1, d2), span=(-2, 1), resolution=7)
    X, w = x.double(), model.weight.double().detach()
    r, u, v = X @ w.T - target.double(), X @ d1[0].T, X @ d2[0].T
    a = torch.linspace(-2, 1, 7, dtype=torch.float64)
    expected = ((r[None, None] + a[:, None, None, None] * u + a[None, :, None, None] * v) ** 2).mean((-2, -1))
    assert s["loss"].shape == (7, 7)
    assert torch.equal(s["alphas"], a) and torch.equal(s["betas"], a)
    assert torch.allclose(s["loss"], expected, rtol=1e-12, atol=0)
    assert s["accuracy"] is None and s["center_accuracy"] is None
    # the surface is the quadratic form: a discrete Hessian of the exact 2-D quadratic is convex
    assert surface_curvature(s["loss"], s["alphas"], s["betas"])["fraction_nonconvex"] == 0.0


def test_model_is_untouched_by_surfaces_and_slices():
    model = resnet()
    model.train()
    model.blocks[0].eval()
    before = [p.detach().clone() for p in model.parameters()]
    flags = [m.training for m in model.modules()]
    x, y = data()
    s = loss_surface_2d(model, softmax_cross_entropy, x, y, resolution=5, generator=gen())
    loss_slice_1d(model, softmax_cross_entropy, x, y, theta_a=[p * 2 for p in before],
                  theta_b=before, alphas=[-0.5, 0.0, 2.0])
    loss_slice_1d(model, softmax_cross_entropy, x, y, direction=s["directions"][0], alphas=[3.0])
    for p, q in zip(model.parameters(), before):
        assert torch.equal(p, q) and p.dtype == torch.float32 and p.grad is None
    assert [m.training for m in model.modules()] == flags
    # the centre of the grid is the model itself: its accuracy there is the model's own
    assert s["accuracy"].shape == (5, 5) and float(s["alphas"][2]) == float(s["betas"][2]) == 0.0
    with torch.no_grad():
        scores = model(x)
    assert float(s["accuracy"][2, 2]) == pytest.approx(float((scores.argmax(1) == y).double().mean()), abs=1e-12)
    assert float(s["loss"][2, 2]) == pytest.approx(float(softmax_cross_entropy(scores, y)), rel=1e-5)


def test_default_directions_are_reproducible_and_span_the_grid():
    model = resnet()
    x, y = data()
    one = loss_surface_2d(model, softmax_cross_entropy, x, y, resolution=3)
    two = loss_surface_2d(model, softmax_cross_entropy, x, y, resolution=3, generator=gen(0))
    other = loss_surface_2d(model, softmax_cross_entropy, x, y, resolution=3, generator=gen(1))
    assert torch.equal(one["loss"], two["loss"]) and not torch.equal(one["loss"], other["loss"])
    # a corner is θ* − δ − η: evaluate it by hand
    d1, d2 = one["directions"]
    probe = copy.deepcopy(model).double()
    with torch.no_grad():
        for p, u, v in zip(probe.parameters(), d1, d2):
            p.sub_(u + v)
    with torch.no_grad():
        corner = float(softmax_cross_entropy(probe(x.double()), y))
    assert one["loss"][0, 0] == pytest.approx(corner, rel=1e-12)


# ---------------------------------------------------------------------------------------- slices

def test_slice_endpoints_are_the_losses_at_theta_a_and_theta_b():
    model = resnet()
    x, y = data()
    theta_b = parameters_of(model)
    theta_a = [t + 0.3 * torch.randn(t.shape, generator=gen(5), dtype=torch.float64) for t in theta_b]

    def loss_at(theta):
        probe = copy.deepcopy(model).double()
        with torch.no_grad():
            for p, t in zip(probe.parameters(), theta):
                p.copy_(t)
            return float(softmax_cross_entropy(probe(x.double()), y))

    s = loss_slice_1d(model, softmax_cross_entropy, x, y, theta_a=theta_a, theta_b=theta_b, alphas=[0.0, 0.5, 1.0])
    assert s["loss"][0] == pytest.approx(loss_at(theta_a), rel=1e-12)
    assert s["loss"][2] == pytest.approx(loss_at(theta_b), rel=1e-12)
    mid = [0.5 * (a + b) for a, b in zip(theta_a, theta_b)]
    assert s["loss"][1] == pytest.approx(loss_at(mid), rel=1e-12)
    assert loss_at(theta_a) != pytest.approx(loss_at(theta_b))
    # a state_dict-like mapping works as well, and θ_a defaults to the model's parameters
    named = dict(zip([n for n, _ in model.named_parameters()], theta_a))
    m = loss_slice_1d(model, softmax_cross_entropy, x, y, theta_b=named, alphas=[0.0, 1.0])
    assert torch.allclose(m["loss"], torch.tensor([loss_at(theta_b), loss_at(theta_a)], dtype=torch.float64),
                          rtol=1e-12)


def test_slice_along_a_direction_is_the_surfaces_centre_row():
    model = resnet()
    x, y = data()
    s = loss_surface_2d(model, softmax_cross_entropy, x, y, resolution=5, generator=gen(2))
    ray = loss_slice_1d(model, softmax_cross_entropy, x, y, direction=s["directions"][0], alphas=s["alphas"])
    assert torch.allclose(ray["loss"], s["loss"][:, 2], rtol=1e-12)
    assert torch.allclose(ray["accuracy"], s["accuracy"][:, 2])


def test_bad_arguments():
    model = resnet()
    x, y = data()
    with pytest.raises(ValueError, match="exactly one"):
        loss_slice_1d(model, softmax_cross_entropy, x, y, alphas=[0.0])
    with pytest.raises(ValueError, match="shape"):
        loss_slice_1d(model, softmax_cross_entropy, x, y, theta_b=[torch.zeros(1)] * 4, alphas=[0.0])
    with pytest.raises(ValueError, match="resolution"):
        loss_surface_2d(model, softmax_cross_entropy, x, y, resolution=1)


# -------------------------------------------------------------------------------------- measures

def test_curvature_measures_tell_bowls_from_saddles_and_bumps():
    a = torch.linspace(-1, 1, 21, dtype=torch.float64)
    A, B = torch.meshgrid(a, a, indexing="ij")
    bowl = surface_curvature(A ** 2 + 2 * B ** 2, a, a)
    assert bowl["fraction_nonconvex"] == 0 and bowl["excess_variation"] == pytest.approx(0, abs=1e-12)
    assert bowl["local_minima"] == 1 and bowl["mean_curvature_ratio"] == 0
    saddle = surface_curvature(A ** 2 - B ** 2, a, a)
    assert saddle["fraction_nonconvex"] == 1 and saddle["mean_curvature_ratio"] == pytest.approx(1)
    flat_bowl = surface_curvature(torch.tanh(3 * (A ** 2 + B ** 2)), a, a)     # saturates: indefinite Hessian
    assert flat_bowl["fraction_nonconvex"] > 0.3 and flat_bowl["excess_variation"] == pytest.approx(0, abs=1e-12)
    bumpy = surface_curvature(A ** 2 + B ** 2 + 0.05 * torch.sin(20 * A) * torch.sin(20 * B), a, a)
    assert bumpy["excess_variation"] > 0.01 and bumpy["local_minima"] > 1
