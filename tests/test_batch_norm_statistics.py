"""Population statistics for the in-block batch normalization of convolutional ODE networks."""

import pytest
import torch

from stablenet.app.checkpoint import CheckpointError, load_batch_norm_statistics, save_batch_norm_statistics, save_weights
from stablenet.conv_models import build_conv_net

SPEC = {"in_channels": 2, "n_classes": 3, "widths": [3, 5], "dynamics": "conv_parabolic", "method": "rk4",
        "T": 1.0, "steps": 2, "normalization": "batch"}


def network():
    torch.manual_seed(0)
    net = build_conv_net(SPEC).double()
    with torch.no_grad():  # non-trivial running statistics in the opening / connector BatchNorm2d
        net.train()
        net(torch.randn(16, 2, 8, 8, dtype=torch.float64))
    return net.eval()


def test_population_statistics_make_predictions_independent_of_the_batch():
    net, x = network(), torch.randn(12, 2, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        whole = net(x)                    # not calibrated: each batch's statistics
        assert (net(x[:2]) - whole[:2]).abs().max() > 1e-3
        # calibrated on x in one batch: the statistics are those the whole batch used, so the
        # network reproduces the whole-batch scores for any batching, even one image at a time
        assert net.calibrate_batch_norm(x, batch_size=12) == 12
        assert len(net.batch_norm_statistics) == 2 * 2 * 4    # blocks × steps × RK4 stages
        assert torch.allclose(net(x), whole, atol=1e-12)
        singles = torch.cat([net(x[i:i + 1]) for i in range(12)])
        assert torch.allclose(singles, whole, atol=1e-12)
        # in train() mode the network keeps normalizing with each batch's statistics
        net.train()
        train_two = net(x[:2])
        net.set_batch_norm_statistics(None)
        assert torch.allclose(train_two, net(x[:2]), atol=1e-14)


def test_pooled_statistics_do_not_depend_on_the_calibration_batch_size():
    x = torch.randn(12, 2, 8, 8, dtype=torch.float64)
    a, b = network(), network()
    a.calibrate_batch_norm(x, batch_size=12)
    b.calibrate_batch_norm(x, batch_size=5)        # batches of 5, 5, 2
    # the first normalization sees the same inputs either way: pooled moments are exact
    (ma, va), (mb, vb) = a.batch_norm_statistics[0], b.batch_norm_statistics[0]
    assert torch.allclose(ma, mb, atol=1e-12) and torch.allclose(va, vb, atol=1e-12)
    assert bool((va > 0).all())
    assert not a.training and a.batch_norm_grid == [[2, "rk4"], [2, "rk4"]]


def test_stale_statistics_and_bad_calls_are_refused(tmp_path):
    net, x = network(), torch.randn(4, 2, 8, 8, dtype=torch.float64)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        net.calibrate_batch_norm(x, batch_size=0)
    with pytest.raises(ValueError, match="x must be a non-empty batch of images"):
        net.calibrate_batch_norm(x[:0])
    with pytest.raises(ValueError, match="the model has no batch-norm population statistics"):
        save_batch_norm_statistics(tmp_path / "s.safetensors", net, 0)
    net.calibrate_batch_norm(x)
    net.blocks[1].steps = 4
    with pytest.raises(ValueError, match=r"computed with state grids \[\[2, 'rk4'\], \[2, 'rk4'\]\] .* now has "
                                         r"\[\[2, 'rk4'\], \[4, 'rk4'\]\]; call calibrate_batch_norm again"):
        net(x)
    net.train()
    assert net(x).shape == (4, 3)       # training mode does not use them
    no_bn = build_conv_net({**SPEC, "normalization": "instance"})
    with pytest.raises(ValueError, match="no block of this network uses normalization='batch'"):
        no_bn.calibrate_batch_norm(torch.randn(2, 2, 8, 8))


def test_statistics_file_round_trip(tmp_path):
    net, x = network(), torch.randn(6, 2, 8, 8, dtype=torch.float64)
    net.calibrate_batch_norm(x)
    path = save_batch_norm_statistics(tmp_path / "bn.safetensors", net, 6)
    fresh = network()
    assert load_batch_norm_statistics(path, fresh) == 6
    with torch.no_grad():
        assert torch.allclose(fresh(x[:1]), net(x[:1]), atol=1e-12)
    assert fresh.float().batch_norm_statistics[0][0].dtype == torch.float32   # buffers follow .to()
    save_weights(tmp_path / "w.safetensors", net)
    with pytest.raises(CheckpointError, match="is not a stablenet batch-norm statistics file"):
        load_batch_norm_statistics(tmp_path / "w.safetensors", fresh)
    # not part of the weights: a calibrated network's weights load into a fresh one
    assert not any(k.startswith("bn_") for k in net.state_dict())
