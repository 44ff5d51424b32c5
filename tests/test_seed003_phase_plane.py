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
N = 21
EULER_GROWTH = (1 + H**2) ** (N / 2)   # |1 + ih|^N = 1.110131: forward Euler on the rotation K_ZERO


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
    ratios = distance_ratios(euler_network(K_ZERO)).detach()
    # forward Euler on a rotation grows every norm by exactly |1 + ih|^N = 1.110131 in the linear
    # regime; y2 = −y1 (tanh is odd), so their distance is y1's norm, |y1| ≤ 0.16 is near-linear and
    # tanh(u) = u(1 − u²/3 + …) moves it by O(|y1|²) of the growth (measured 1.109547); an exact
    # rotation would give 1.000, Euler with half the step 1.027.  The other pairs involve the
    # saturating y3 = (0, 0.5): measured 1.049 and 1.112
    assert abs(ratios[0].item() - EULER_GROWTH) < 2e-3, ratios
    assert (ratios > 1.03).all() and ((ratios - EULER_GROWTH).abs() < 0.07).all(), ratios


@pytest.mark.parametrize("K", [K_PLUS, K_MINUS], ids=["K_plus", "K_minus"])
def test_antisymmetric_version_stays_bounded(K):
    block = euler_network(K, antisymmetric=True)
    states = block(features(), return_states=True)  # (N + 1, 3, 2)
    norms = states.norm(dim=-1)
    # ½(K − Kᵀ) = K_ZERO for both kernels: the same dynamics as test_k_zero_keeps_distances_nearly_constant
    assert torch.allclose(states, euler_network(K_ZERO)(features(), return_states=True), rtol=1e-14, atol=0)
    # forward Euler on an antisymmetric kernel still grows: every feature at every layer, the small
    # ones by |1 + ih|^N = 1.110131 up to the O(|y|²) tanh correction (measured 1.109547), the
    # saturating y3 less (measured 1.0913)
    assert (norms.diff(dim=0) > 0).all(), norms
    growth = norms[-1] / norms[0]
    assert (growth[:2] - EULER_GROWTH).abs().max() < 2e-3, growth
    assert 1.08 < growth[2] < growth[0], growth


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
    """With γ = 0.1 the eigenvalues −γ/2 ± i sit (just) on forward Euler's disc for h = 0.1:
    |1 + h(−γ/2 ± i)|^N = ((1 − hγ/2)² + h²)^(N/2) = 1.000263 instead of 1.110131."""
    block = euler_network(K_PLUS, antisymmetric=True, gamma=0.1)
    norms = block(features(), return_states=True).norm(dim=-1)
    damped = ((1 - H * 0.05) ** 2 + H**2) ** (N / 2)
    # the small features follow the linear factor up to the tanh correction (measured 1.00040);
    # none grows by more than 1e-3 at any layer, the saturating y3 loses 1.1 % (measured 0.9889)
    assert ((norms[-1, :2] / norms[0, :2]) - damped).abs().max() < 1e-3, norms[-1] / norms[0]
    assert (norms.max(0).values <= 1.001 * norms[0]).all(), norms.max(0).values
    assert (norms[-1] >= 0.98 * norms[0]).all(), norms[-1] / norms[0]
