"""stablenet.analysis.varpro_landscape: the thesis' direction normalizations and the VarPro-objective
surface, checked against closed forms and an independent inner solve."""

import copy

import numpy as np
import pytest
import torch

from stablenet.analysis.varpro_landscape import (average_normalized_direction, group_scales,
                                                 norm_normalized_direction, reduced_objective_surface)
from stablenet.app.experiments import _thesis


def small_groups():
    g = torch.Generator().manual_seed(5)
    return [[torch.randn(8, 2, generator=g)], [torch.randn(8, 8, generator=g), torch.randn(8, generator=g)],
            [torch.randn(8, 8, generator=g) + 0.3, torch.randn(8, generator=g)]]


def test_average_normalization_is_the_listings_formula():
    theta = small_groups()
    d = average_normalized_direction(theta, generator=torch.Generator().manual_seed(1))
    raw = [[torch.randn(t.shape, generator=g, dtype=torch.float64) for t in grp]
           for g in [torch.Generator().manual_seed(1)] for grp in theta]
    for grp, dg, rg in zip(theta, d, raw):
        flat_t = torch.cat([t.reshape(-1).double() for t in grp])
        flat_r = torch.cat([r.reshape(-1) for r in rg])
        flat_d = torch.cat([u.reshape(-1) for u in dg])
        # d1normed = d1 .* thetaAverage ./ d1Average, entry by entry
        assert torch.allclose(flat_d, flat_r * flat_t.mean() / flat_r.mean(), rtol=1e-12, atol=0)
        # hence the group mean of the direction is the group mean of θ
        assert float(flat_d.mean()) == pytest.approx(float(flat_t.mean()), rel=1e-10)
        assert [u.shape for u in dg] == [t.shape for t in grp] and all(u.dtype == torch.float64 for u in dg)


def test_norm_normalization_matches_group_norms():
    theta = small_groups()
    d = norm_normalized_direction(theta, generator=torch.Generator().manual_seed(2))
    assert group_scales(theta, d) == pytest.approx([1.0] * len(theta), rel=1e-12)
    # the same generator state, the same direction; another state, another one
    again = norm_normalized_direction(theta, generator=torch.Generator().manual_seed(2))
    other = norm_normalized_direction(theta, generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(a, b) for ga, gb in zip(d, again) for a, b in zip(ga, gb))
    assert not torch.equal(d[1][0], other[1][0])


def inner_minimum(features, labels, lam):
    """min over (W, μ) of mean cross-entropy + λ/2(‖W‖² + ‖μ‖²) by L-BFGS in float64 (independent
    of stablenet's Newton solver)."""
    W = torch.zeros(5, features.shape[1], dtype=torch.float64, requires_grad=True)
    mu = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([W, mu], lr=1, max_iter=500, tolerance_grad=1e-13, tolerance_change=1e-15,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        value = (torch.nn.functional.cross_entropy(features @ W.T + mu, labels)
                 + lam / 2 * (W.pow(2).sum() + mu.pow(2).sum()))
        value.backward()
        return value

    opt.step(closure)
    return float(closure().detach())


def test_surface_values_are_the_reduced_objective_at_each_point():
    model = _thesis.build_network("euler", 4, T=2.0, controls=4, seed=0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(60, 2, generator=g)
    y = torch.arange(60) % 5
    before = copy.deepcopy(model.state_dict())

    def select(m):
        dyn = m.blocks[0].dynamics
        return [[m.opening[0].weight]] + [[dyn.K[k], dyn.b[k]] for k in range(dyn.nt)]

    theta = select(model)
    d = (norm_normalized_direction(theta, generator=torch.Generator().manual_seed(1)),
         norm_normalized_direction(theta, generator=torch.Generator().manual_seed(2)))
    pen = lambda m: 0.25 * m.opening[0].weight.pow(2).sum()  # noqa: E731
    grid = [-0.5, 0.0, 0.5]
    out = reduced_objective_surface(model, select, x, y, d, grid, regularization=1e-2, penalty=pen)
    # the model is left as it was
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert out["objective"].shape == (3, 3) and out["inner_unconverged"] == 0
    # each value, recomputed: the perturbed weights by hand, the features by a numpy forward Euler
    # pass, the inner minimum by L-BFGS, plus the penalty
    K0 = model.opening[0].weight.detach().double().numpy()
    dyn = model.blocks[0].dynamics
    K, b = dyn.K.detach().double().numpy(), dyn.b.detach().double().numpy()
    h = 2.0 / 4
    for i, a in enumerate(grid):
        for j, c in enumerate(grid):
            k0 = K0 + a * d[0][0][0].numpy() + c * d[1][0][0].numpy()
            Ks = [K[k] + a * d[0][k + 1][0].numpy() + c * d[1][k + 1][0].numpy() for k in range(4)]
            bs = [b[k] + a * d[0][k + 1][1].numpy() + c * d[1][k + 1][1].numpy() for k in range(4)]
            Y = np.tanh(x.double().numpy() @ k0.T)
            for k in range(4):
                Y = Y + h * np.tanh(Y @ Ks[k].T + bs[k])
            expected = inner_minimum(torch.from_numpy(Y), y, 1e-2) + 0.25 * (k0 ** 2).sum()
            assert float(out["objective"][i, j]) == pytest.approx(expected, rel=1e-8), (a, c)
            assert float(out["objective"][i, j]) >= float(out["loss"][i, j])
    # the data loss and accuracy at the centre are those of the re-solved classifier
    assert 0 <= float(out["accuracy"].min()) and float(out["accuracy"].max()) <= 1


def test_surface_checks_the_number_of_groups():
    model = _thesis.build_network("euler", 2, T=1.0, controls=2, seed=0)
    select = lambda m: [[m.opening[0].weight]]  # noqa: E731
    d = norm_normalized_direction([[model.opening[0].weight]], generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="groups"):
        reduced_objective_surface(model, select, torch.zeros(5, 2), torch.zeros(5, dtype=torch.long), (d, d + d),
                                  [0.0, 1.0])
