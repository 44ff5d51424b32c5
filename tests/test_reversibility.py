"""Verlet is exactly reversible: running it backwards recovers the input to rounding error."""

import pytest
import torch

import stablenet as sn


@pytest.mark.parametrize("nt,controls", [(1, "constant"), (1000, "constant"), (7, "linear")])
def test_verlet_backwards_recovers_y0_after_1000_steps(nt, controls):
    dynamics = sn.Hamiltonian(4, 3, nt=nt).double()
    with torch.no_grad():
        for p in dynamics.parameters():
            p.add_(0.1 * torch.randn_like(p))
    block = sn.ODEBlock(dynamics, T=10.0, steps=1000, method="verlet", controls=controls)
    y0 = torch.randn(16, 4, dtype=torch.float64)
    z0 = torch.randn(16, 3, dtype=torch.float64)
    with torch.no_grad():
        yN, zN = block((y0, z0))
        y_back, z_back = block.reverse((yN, zN))
    assert (yN - y0).abs().max() > 0.1  # the network did move the features
    assert (y_back - y0).abs().max() < 1e-10
    assert (z_back - z0).abs().max() < 1e-10


def test_reverse_refuses_non_reversible_methods():
    block = sn.ODEBlock(sn.Hamiltonian(2), T=1.0, steps=4, method="rk4")
    with pytest.raises(ValueError, match="method='rk4' is not reversible"):
        block.reverse((torch.zeros(1, 2), torch.zeros(1, 2)))
