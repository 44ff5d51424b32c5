"""Multi-stage convolutional ODE networks (stablenet.conv_models): construction from a plain
description, shapes, errors, and short training runs that must learn."""

import pytest
import torch

import stablenet as sn
from stablenet.conv_models import ConvNetSpec, ConvODENet, TVNorm, build_conv_net, pixel_accuracy, segmentation_loss
from stablenet.data.segmentation import shapes_segmentation
from stablenet.dynamics.conv import ConvHamiltonian, ConvParabolic

BASE = {"in_channels": 3, "n_classes": 5, "T": 1.0, "steps": 2, "method": "rk4"}


def test_spec_round_trip_and_defaults():
    spec = ConvNetSpec.from_dict({**BASE, "widths": [4, 8, 12], "blocks_per_stage": [1, 2, 1]})
    d = spec.to_dict()
    assert d["widths"] == [4, 8, 12] and d["blocks_per_stage"] == [1, 2, 1]
    assert ConvNetSpec.from_dict(d) == spec
    net = spec.build()
    assert net.widths == (4, 8, 12) and [len(s) for s in net.stages] == [1, 2, 1]
    assert all(b.dynamics.nt == 2 and b.steps == 2 and b.integrator.name == "rk4" for b in net.blocks)
    assert all(type(b.dynamics) is ConvParabolic and b.dynamics.normalization == "instance" for b in net.blocks)


@pytest.mark.parametrize("update,message", [
    ({"width": 4}, r"unknown ConvNetSpec key\(s\) \['width'\]; valid keys: \['in_channels'"),
    ({"dynamics": "parabolic"}, "dynamics must be one of .*'conv_parabolic'.*got 'parabolic'"),
    ({"normalization": "layer"}, "normalization must be one of"),
    ({"blocks_per_stage": [1, 2]}, r"blocks_per_stage=\[1, 2\] has 2 entries; expected one per stage \(3, widths\)"),
    ({"method": "verlet"}, "method='verlet' needs a two-stream dynamics"),
    ({"gradient": "reversible"}, "gradient='reversible' needs a reversible integrator"),
    ({"gamma": 0.1}, "gamma=0.1 applies to dynamics 'conv_antisymmetric' only, not 'conv_parabolic'"),
    ({"head": "detector"}, "head must be one of"),
    ({"steps": 0}, "steps must be an integer >= 1, got 0"),
])
def test_spec_errors(update, message):
    with pytest.raises(ValueError, match=message):
        ConvNetSpec.from_dict({**BASE, "widths": [4, 8, 12], **update})


def test_spec_needs_a_time_grid():
    with pytest.raises(ValueError, match=r"ConvNetSpec needs \['T', 'steps'\]"):
        ConvNetSpec.from_dict({"in_channels": 3, "n_classes": 5, "method": "rk4"})


def test_classifier_shapes_and_pooling():
    net = build_conv_net({**BASE, "widths": [4, 8, 12]})
    x = torch.randn(2, 3, 16, 16)
    assert net.features(x).shape == (2, 12, 4, 4)      # two connectors: 16 → 8 → 4
    assert net(x).shape == (2, 5)
    states = net.features(x, return_states=True)
    assert [tuple(s.shape) for s in states] == [(3, 2, 4, 16, 16), (3, 2, 8, 8, 8), (3, 2, 12, 4, 4)]


@pytest.mark.parametrize("dynamics,method,gradient", [
    ("conv_hamiltonian", "verlet", "reversible"), ("conv_second_order", "leapfrog", "reversible"),
    ("conv_antisymmetric", "ab3", "checkpoint"), ("conv_single", "euler", "autograd"),
    ("conv_parabolic", "rk4", "adjoint")])
def test_every_dynamics_in_a_segmentation_network(dynamics, method, gradient):
    spec = ConvNetSpec(in_channels=1, n_classes=3, widths=(4, 6), T=1.0, steps=3, method=method,
                       dynamics=dynamics, gradient=gradient, normalization="tv", head="segmentation")
    net = spec.build()
    x = torch.randn(2, 1, 8, 8)
    out = net(x)
    assert out.shape == (2, 3, 8, 8)
    segmentation_loss(out, torch.zeros(2, 8, 8, dtype=torch.int64)).backward()
    assert all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in net.parameters())
    assert isinstance(net.opening[1], TVNorm)


def test_stage_errors():
    dense = sn.ODEBlock(sn.SingleLayer(4), T=1.0, steps=1, method="euler")
    with pytest.raises(TypeError, match="stages\\[0\\] has a block with SingleLayer dynamics"):
        ConvODENet(3, 2, [[dense]])
    a = sn.ODEBlock(ConvParabolic(4), T=1.0, steps=1, method="euler")
    b = sn.ODEBlock(ConvParabolic(6), T=1.0, steps=1, method="euler")
    with pytest.raises(ValueError, match=r"stages\[0\] mixes block widths \[4, 6\]"):
        ConvODENet(3, 2, [[a, b]])
    net = ConvODENet(3, 2, [a, [b]], head="classifier")
    with pytest.raises(ValueError, match=r"x has feature width 1 along dimension 1"):
        net(torch.randn(2, 1, 8, 8))
    with pytest.raises(ValueError, match=r"x must be an image batch \(batch, 3, H, W\), got \(2, 3\)"):
        net(torch.randn(2, 3))


def test_prolongate_doubles_control_points():
    net = build_conv_net({**BASE, "widths": [4, 8], "controls": "linear"})
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    net = net.double()
    with torch.no_grad():
        before = net(x)
        net.prolongate()
        after = net(x)
    assert all(b.dynamics.nt == 4 for b in net.blocks)
    assert torch.allclose(before, after, atol=1e-12)


def test_two_stream_stage_output_is_y():
    dyn = ConvHamiltonian(4, 2)
    net = ConvODENet(1, 2, [sn.ODEBlock(dyn, T=1.0, steps=2, method="verlet")])
    assert net.features(torch.randn(3, 1, 6, 6)).shape == (3, 4, 6, 6)


def test_tiny_multistage_classifier_learns():
    """3 stages (4-8-12 channels), 25 Adam steps on synthetic 16×16 images whose class is the
    channel holding a bright square: the loss on a fixed batch falls below half its start."""
    g = torch.Generator().manual_seed(0)

    def batch(n):
        y = torch.randint(0, 3, (n,), generator=g)
        x = 0.5 * torch.randn(n, 3, 16, 16, generator=g)
        r, c = torch.randint(0, 10, (2, n), generator=g)
        for i in range(n):
            x[i, y[i], r[i]:r[i] + 6, c[i]:c[i] + 6] += 1.0
        return x, y

    net = build_conv_net({**BASE, "n_classes": 3, "widths": [4, 8, 12], "method": "euler",
                          "dynamics": "conv_parabolic", "normalization": "batch"})
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    x_eval, y_eval = batch(64)
    with torch.no_grad():
        loss0 = float(torch.nn.functional.cross_entropy(net(x_eval), y_eval))
    for _ in range(25):
        x, y = batch(32)
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        loss1 = float(torch.nn.functional.cross_entropy(net(x_eval), y_eval))
    assert loss1 < 0.5 * loss0, (loss0, loss1)


def test_segmentation_network_beats_chance():
    """100 Adam steps on the synthetic shapes set (16×16, 3 classes): pixel accuracy on held-out
    images clearly above the majority class (background)."""
    ds = shapes_segmentation(seed=0, n_train=256, n_val=64, n_test=8, size=16, n_classes=3)
    chance = float(ds.class_frequencies("val").max())
    net = ConvNetSpec(in_channels=1, n_classes=3, widths=(8,), T=2.0, steps=4, method="euler",
                      dynamics="conv_parabolic", normalization="instance", head="segmentation").build()
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    g = torch.Generator().manual_seed(0)
    for _ in range(100):
        idx = torch.randint(0, len(ds.train), (16,), generator=g)
        loss = segmentation_loss(net(ds.train.x[idx]), ds.train.y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        acc = pixel_accuracy(net(ds.val.x), ds.val.y)
    assert acc > chance + 0.06, (acc, chance)
