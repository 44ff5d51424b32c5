"""Control and state grids: interpolation, exact prolongation, re-evaluation on other state grids."""

import math

import pytest
import torch

import stablenet as sn
from stablenet.timegrid import ControlGrid


def test_constant_interpolation_picks_the_cell_and_left_limit_at_stage_ends():
    grid = ControlGrid(T=2.0, nt=4, interpolation="constant")
    weights = torch.arange(4.0)
    assert grid.evaluate(weights, [0.0, 0.49, 0.5, 1.2, 2.0]).tolist() == [0, 0, 1, 2, 3]
    # 4 steps on [0, 2]: the last stage (c = 1) of step j uses θ_j, not θ_{j+1}
    coords = grid.stage_coordinates([(j, c) for j in range(4) for c in (0.0, 0.5, 1.0)], steps=4)
    assert grid.gather(weights, coords).tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]


def test_linear_interpolation_between_left_cell_ends():
    grid = ControlGrid(T=1.0, nt=4, interpolation="linear")  # control times 0, .25, .5, .75
    weights = torch.tensor([0.0, 1.0, 4.0, 9.0], dtype=torch.float64)
    got = grid.evaluate(weights, [0.0, 0.125, 0.25, 0.6, 0.75, 0.9, 1.0])
    assert torch.allclose(got, torch.tensor([0.0, 0.5, 1.0, 6.0, 9.0, 9.0, 9.0], dtype=torch.float64))


@pytest.mark.parametrize("interpolation", ["constant", "linear"])
@pytest.mark.parametrize("nt", [1, 3, 8])
def test_prolongation_leaves_theta_of_t_unchanged(interpolation, nt):
    grid = ControlGrid(T=3.0, nt=nt, interpolation=interpolation)
    weights = torch.randn(nt, 2, 5, dtype=torch.float64)
    fine = grid.prolongate(weights)
    assert fine.shape == (2 * nt, 2, 5)
    times = torch.linspace(0, 3.0, 1001, dtype=torch.float64)
    before = grid.evaluate(weights, times)
    after = grid.refined().evaluate(fine, times)
    assert (before - after).abs().max() < 1e-14


@pytest.mark.parametrize("controls", ["constant", "linear"])
@pytest.mark.parametrize("dynamics", [lambda: sn.Antisymmetric(4, gamma=0.2, nt=3), lambda: sn.DoubleLayer(4, nt=3)])
def test_block_prolongation_keeps_the_network_output(controls, dynamics):
    block = sn.ODEBlock(dynamics().double(), T=2.0, steps=12, method="rk4", controls=controls)
    x = torch.randn(5, 4, dtype=torch.float64)
    before = block(x)
    block.prolongate()
    assert block.dynamics.nt == 6
    assert (block(x) - before).abs().max() < 1e-13


@pytest.mark.parametrize("method,nt", [("euler", 4), ("midpoint", 4), ("rk4", 4), ("leapfrog", 4), ("ab3", 1)])
def test_state_grid_refinement_differs_by_h_to_the_order(method, nt):
    """Same weights on N, 2N, 4N state steps: successive differences shrink by 2^order.

    One-step methods keep their order with linearly interpolated weights because the kinks of
    θ(t) fall on step boundaries; AB3's history would straddle them, so it is checked on smooth
    (stationary, nt = 1) weights.
    """
    dynamics = sn.SingleLayer(4, nt=nt).double()
    block = sn.ODEBlock(dynamics, T=1.0, steps=16, method=method, controls="linear")
    x = torch.randn(8, 4, dtype=torch.float64)
    with torch.no_grad():
        y1, y2, y4 = (block(x, steps=n) for n in (32, 64, 128))
    ratio = float((y1 - y2).norm() / (y2 - y4).norm())
    order = sn.get_integrator(method).order
    assert abs(math.log2(ratio) - order) < 0.25, ratio


def test_verlet_network_refinement_is_first_order_with_zero_half_step_start():
    """The seeds' network start Z_{−1/2} = 0 pins z at t = −h/2, which moves with h: as an IVP
    with z(0) = 0 that is an O(h) error, so N → 2N differences halve (order 1), while the
    integrator itself is second order (test_convergence)."""
    block = sn.ODEBlock(sn.Hamiltonian(3, 2, nt=1).double(), T=1.0, steps=16, method="verlet")
    x = torch.randn(8, 3, dtype=torch.float64)
    with torch.no_grad():
        y1, y2, y4 = (block(x, steps=n) for n in (32, 64, 128))
    assert abs(math.log2(float((y1 - y2).norm() / (y2 - y4).norm())) - 1) < 0.1


def test_nt_one_means_identical_layers_and_steps_can_be_changed():
    dynamics = sn.SingleLayer(3, nt=1).double()
    block = sn.ODEBlock(dynamics, T=1.0, steps=5, method="euler")
    x = torch.randn(2, 3, dtype=torch.float64)
    K, b = dynamics.K[0], dynamics.b[0]
    y = x
    for _ in range(5):
        y = y + 0.2 * torch.tanh(y @ K.T + b)
    assert torch.allclose(block(x), y)
    block.steps = 10
    assert block.h == 0.1
    assert not torch.allclose(block(x), y)


def test_nt_equal_steps_is_one_weight_set_per_layer():
    """The classic ResNet: step j uses (K_j, b_j) exactly, for every stage of RK4 as well."""
    dynamics = sn.SingleLayer(3, nt=4).double()
    block = sn.ODEBlock(dynamics, T=2.0, steps=4, method="rk4")
    x = torch.randn(2, 3, dtype=torch.float64)
    y, h = x, 0.5
    for j in range(4):
        def f(v):
            return torch.tanh(v @ dynamics.K[j].T + dynamics.b[j])
        k1 = f(y); k2 = f(y + h / 2 * k1); k3 = f(y + h / 2 * k2); k4 = f(y + h * k3)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    assert torch.allclose(block(x), y, atol=1e-14)


def test_weights_at_matches_the_control_grid():
    block = sn.ODEBlock(sn.SingleLayer(2, nt=2).double(), T=1.0, steps=4, method="euler", controls="linear")
    K, b = block.weights_at([0.0, 0.25, 0.5, 1.0])
    K0, K1 = block.dynamics.K
    assert torch.allclose(K[1], 0.5 * (K0 + K1)) and torch.allclose(K[2], K1) and torch.allclose(K[3], K1)
