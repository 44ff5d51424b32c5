"""Seed 003's phase-plane facts (Gonzalez & Mang poster), as assertions.

N = 21 identical layers, h = 0.1, tanh, b = 0, features y1 = (0.1, 0.1), y2 = −y1, y3 = (0, 0.5).
"""

import pytest
import torch

import stablenet as sn

K_PLUS = [[2.0, -2.0], [0.0, 2.0]]
K_MINUS = [[-2.0, 0.0], [2.0, -2.0]]
K_ZERO = [[0.0, -1.0], [1.0, 0.0]]
FEATURES = [[0.1, 0.1], [-0.1, -0.1], [0.0, 0.5]]
H = 0.1


def features():
    return torch.tensor(FEATURES, dtype=torch.float64)


def euler_network(K, *, antisymmetric=False, gamma=0.0, steps=21):
    dynamics = sn.Antisymmetric(2, gamma=gamma) if antisymmetric else sn.SingleLayer(2)
    dynamics = dynamics.double()
    with torch.no_grad():
        weight = dynamics.parametrizations.K.original if antisymmetric else dynamics.K
        weight.copy_(torch.tensor(K, dtype=torch.float64)[None])
        dynamics.b.zero_()
    return sn.ODEBlock(dynamics, T=H * steps, steps=steps, method="euler")


def distance_ratios(block):
    """Pairwise distances of the three features after N layers divided by the initial ones."""
    Y0 = features()
    YN = block(Y0)
    i, j = torch.triu_indices(3, 3, offset=1)
    return torch.cdist(YN, YN)[i, j] / torch.cdist(Y0, Y0)[i, j]


def test_k_plus_pushes_features_apart():
    ratios = distance_ratios(euler_network(K_PLUS))
    assert ratios.min() > 2.5, ratios
    assert ratios[0] > 10, ratios  # y1 and y2 = −y1 run off in opposite directions


def test_k_minus_contracts_features():
    ratios = distance_ratios(euler_network(K_MINUS))
    assert ratios.max() < 0.05, ratios


def test_k_zero_keeps_distances_nearly_constant():
    ratios = distance_ratios(euler_network(K_ZERO))
    # forward Euler on a rotation grows like (1 + h²)^(N/2) = 1.11 in the linear regime
    assert ((ratios - 1).abs() < 0.12).all(), ratios


@pytest.mark.parametrize("K", [K_PLUS, K_MINUS], ids=["K_plus", "K_minus"])
def test_antisymmetric_version_stays_bounded(K):
    block = euler_network(K, antisymmetric=True)
    states = block(features(), return_states=True)  # (N + 1, 3, 2)
    norms = states.norm(dim=-1)
    # forward Euler on an antisymmetric kernel still grows, but only like (1 + h²)^(N/2) = 1.11
    assert (norms.max(0).values <= 1.12 * norms[0]).all(), norms.max(0).values
    assert (norms.min(0).values >= 0.9 * norms[0]).all(), norms.min(0).values
    ratios = distance_ratios(block)
    assert ((ratios - 1).abs() < 0.12).all(), ratios


@pytest.mark.parametrize("steps", [20, 50, 100, 200, 500, 1000])
def test_verlet_with_k_v_stays_bounded(steps):
    """K_v = (k1 k2), k1 = (2, −1, 0), k2 = (1, 2, 1): y ∈ R² are the features, z ∈ R³ starts at
    Z_{−1/2} = 0, dy/dt = tanh(K_vᵀ z), dz/dt = −tanh(K_v y)."""
    K_v = torch.tensor([[2.0, 1.0], [-1.0, 2.0], [0.0, 1.0]], dtype=torch.float64)
    dynamics = sn.Hamiltonian(2, 3).double()
    with torch.no_grad():
        dynamics.K.copy_(K_v.T[None])
        dynamics.b_y.zero_()
        dynamics.b_z.zero_()
    block = sn.ODEBlock(dynamics, T=H * steps, steps=steps, method="verlet")
    ys, zs = block((features(), torch.zeros(3, 3, dtype=torch.float64)), return_states=True)
    y_norms, z_norms = ys.norm(dim=-1), zs.norm(dim=-1)
    assert y_norms.max() < 0.6 and z_norms.max() < 0.6, (y_norms.max(), z_norms.max())
    # ... and they do not vanish either: over the last tenth of the layers the features keep moving
    # on orbits of non-trivial size.
    tail = ys[-(steps // 10 + 1):]
    assert (tail.norm(dim=-1).max(0).values > 0.05).all(), tail.norm(dim=-1).max(0).values


def test_damping_gamma_removes_the_euler_growth():
    """With γ = 0.1 the eigenvalues −γ/2 ± i sit inside forward Euler's disc for h = 0.1."""
    block = euler_network(K_PLUS, antisymmetric=True, gamma=0.1)
    norms = block(features(), return_states=True).norm(dim=-1)
    assert (norms.max(0).values <= 1.001 * norms[0]).all(), norms.max(0).values
    assert (norms[-1] >= 0.9 * norms[0]).all(), norms[-1]
