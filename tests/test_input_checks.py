"""Input checks of ``integrate`` and ``ODEBlock`` (issue 15): a wrong shape, dtype or device of a
right-hand side's result or of a block's input, NaN from func, and mismatched streams of a pair
raise one clear error naming the parameter, the value and what was expected; correct inputs give
the same numbers as before."""

import math

import pytest
import torch

import stablenet as sn
from stablenet.dynamics.conv import ConvHamiltonian, ConvSingleLayer

F64 = torch.float64


def decay(t, y):
    return -y


# -- integrate: func's result is checked against the state --------------------------------------------
def test_integrate_refuses_a_broadcasting_result():
    """y of shape (3,) with func returning (1, 3) used to broadcast silently to (1, 1, 1, 3)."""
    with pytest.raises(ValueError, match=r"func\(t, y\) result: shape \(1, 3\), expected \(3,\) "
                                         r"\(the shape of y0\); func must return the derivative"):
        sn.integrate(lambda t, y: -y.reshape(1, 3), torch.ones(3), T=1.0, steps=3, method="euler")


def test_integrate_refuses_a_result_of_another_dtype():
    with pytest.raises(TypeError, match=r"func\(t, y\) result: dtype torch.float32, expected torch.float64 "
                                        r"\(the dtype of y0\)"):
        sn.integrate(lambda t, y: -y.float(), torch.ones(2, 3, dtype=F64), T=1.0, steps=2, method="rk4")


def test_integrate_refuses_a_result_that_is_not_a_tensor():
    with pytest.raises(TypeError, match=r"func\(t, y\) result must be a torch.Tensor, got float"):
        sn.integrate(lambda t, y: 1.0, torch.ones(3), T=1.0, steps=2, method="midpoint")


def test_integrate_checks_a_pair_state_stream_by_stream():
    y0 = (torch.ones(3, dtype=F64), torch.ones(2, dtype=F64))
    with pytest.raises(TypeError, match=r"func\(t, \(y, z\)\) must return a pair \(dy/dt, dz/dt\) for the "
                                        r"state pair y0, got Tensor"):
        sn.integrate(lambda t, s: torch.cat(s), y0, T=1.0, steps=2, method="rk4")
    with pytest.raises(ValueError, match=r"func\(t, \(y, z\)\)\[1\] result: shape \(3,\), expected \(2,\) "
                                         r"\(the shape of y0\[1\]\)"):
        sn.integrate(lambda t, s: (-s[0], -s[0]), y0, T=1.0, steps=2, method="rk4")


def test_integrate_checks_each_half_of_a_separable_pair():
    """f_y(t, z) must return y's shape, f_z(t, y) z's (here the widths differ)."""
    y0 = (torch.ones(3, dtype=F64), torch.ones(2, dtype=F64))
    with pytest.raises(ValueError, match=r"func\[1\]\(t, y\) result: shape \(3,\), expected \(2,\) "
                                         r"\(the shape of y0\[1\]\)"):
        sn.integrate((lambda t, z: z.sum() * torch.ones(3, dtype=F64), lambda t, y: -y), y0,
                     T=1.0, steps=2, method="verlet")
    with pytest.raises(ValueError, match=r"func\[0\]\(t, z\) result: shape \(2,\), expected \(3,\) "
                                         r"\(the shape of y0\[0\]\)"):
        sn.integrate((lambda t, z: z, lambda t, y: -y[:2]), y0, T=1.0, steps=2, method="verlet")


def test_integrate_checks_the_acceleration_of_leapfrog():
    with pytest.raises(ValueError, match=r"func\(t, y\) result: shape \(2, 1\), expected \(2,\)"):
        sn.integrate(lambda t, y: -y[:, None], torch.ones(2), T=1.0, steps=2, method="leapfrog")


def test_integrate_accepts_a_lower_precision_result_under_autocast():
    """Mixed precision: under torch.autocast func may compute in bfloat16; the state stays float32."""
    def f(t, y):
        return -y.to(torch.bfloat16)

    with pytest.raises(TypeError, match="dtype torch.bfloat16, expected torch.float32"):
        sn.integrate(f, torch.ones(3), T=1.0, steps=4, method="rk4")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = sn.integrate(f, torch.ones(3), T=1.0, steps=4, method="rk4")
    assert y.dtype == torch.float32
    assert torch.allclose(y, torch.full((3,), math.exp(-1.0)), atol=2e-2)


# -- integrate: check_finite ----------------------------------------------------------------------------
def blows_up_after_half(t, y):
    return -y if t <= 0.5 else y / (y - y)


def test_integrate_check_finite_names_func_the_time_and_the_step():
    with pytest.raises(ValueError, match=r"func\(t, y\) result at t = 0.625 \(step 3 of 4\) must be finite, "
                                         r"got 3 non-finite entries \(NaN or Inf\)$"):
        sn.integrate(blows_up_after_half, torch.ones(3, dtype=F64), T=1.0, steps=4, method="rk4",
                     check_finite=True)


def test_integrate_does_not_check_finiteness_by_default():
    """Off by default (one synchronization per evaluation), like the blocks, which check their input only."""
    y = sn.integrate(blows_up_after_half, torch.ones(3, dtype=F64), T=1.0, steps=4, method="rk4")
    assert torch.isnan(y).all()


def test_integrate_check_finite_on_a_pair_names_the_stream():
    y0 = (torch.ones(2, dtype=F64), torch.ones(2, dtype=F64))
    with pytest.raises(ValueError,
                       match=r"func\(t, \(y, z\)\)\[1\] result at t = 0.5 \(step 2 of 2\) must be finite"):
        sn.integrate(lambda t, s: (-s[0], s[1] / (t - 0.5)), y0, T=1.0, steps=2, method="euler",
                     check_finite=True)


def test_integrate_check_finite_tells_an_overflow_from_a_bad_func():
    """y' = y from 3e38 in float32: the state overflows to inf in step 1 (func's results are finite)."""
    y0 = torch.full((2,), 3e38)
    with pytest.raises(ValueError, match=r"func\(t, y\) result at t = 1 \(step 2 of 2\) must be finite.*"
                                         r"its argument was already non-finite: the solution overflowed"):
        sn.integrate(lambda t, y: y, y0, T=2.0, steps=2, method="euler", check_finite=True)
    with pytest.raises(ValueError, match=r"integrate's result must be finite, got 2 non-finite entries .*"
                                         r"the solution overflowed"):
        sn.integrate(lambda t, y: y, y0, T=1.0, steps=1, method="euler", check_finite=True)


def test_check_finite_changes_neither_the_numbers_nor_the_gradient():
    a = torch.tensor(0.7, dtype=F64, requires_grad=True)
    y0 = torch.tensor([1.0, -2.0], dtype=F64)
    results = []
    for check in (False, True):
        y = sn.integrate(lambda t, y: -a * y, y0, T=1.0, steps=8, method="rk4", check_finite=check)
        (grad,) = torch.autograd.grad(y.sum(), a)
        results.append((y.detach(), grad))
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])
    # d/da Σ y0 e^{−aT} = −T e^{−aT} Σ y0
    assert float(results[0][1]) == pytest.approx(-math.exp(-0.7) * float(y0.sum()), rel=1e-5)


# -- integrate: correct inputs give the same numbers as before ------------------------------------------
@pytest.mark.parametrize("shape", [(3,), (2, 3)])
@pytest.mark.parametrize("method,amplification", [
    ("euler", lambda h: 1 - h),
    ("midpoint", lambda h: 1 - h + h * h / 2),
    ("rk3", lambda h: 1 - h + h * h / 2 - h ** 3 / 6),
    ("rk4", lambda h: 1 - h + h * h / 2 - h ** 3 / 6 + h ** 4 / 24),
])
def test_integrate_decay_is_the_stability_polynomial_to_the_power_n(shape, method, amplification):
    """On y' = −y a Runge–Kutta step multiplies by R(−h) exactly, so Y_N = R(−h)^N y0."""
    y0 = torch.linspace(-1.0, 2.0, math.prod(shape), dtype=F64).reshape(shape)
    T, N = 1.5, 12
    y = sn.integrate(decay, y0, T=T, steps=N, method=method)
    assert y.shape == shape and y.dtype == F64
    torch.testing.assert_close(y, amplification(T / N) ** N * y0, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("method,order", [("euler", 1), ("midpoint", 2), ("rk3", 3), ("rk4", 4), ("ab3", 3)])
def test_integrate_decay_is_within_the_methods_error(method, order):
    T, N = 1.0, 20
    y0 = torch.tensor([[1.0, -0.5, 2.0], [0.25, 0.0, -3.0]], dtype=F64)
    y = sn.integrate(decay, y0, T=T, steps=N, method=method)
    assert (y - math.exp(-T) * y0).abs().max() <= (T / N) ** order * y0.abs().max()


def test_integrate_two_stream_pair_and_time_dependence():
    """y' = −y, z' = −2z + t from t0 = 1: y = e^{−T} y0 and z by RK4 within its error."""
    y0 = (torch.ones(3, dtype=F64), torch.zeros(2, dtype=F64))
    T, N, t0 = 1.0, 16, 1.0
    y, z = sn.integrate(lambda t, s: (-s[0], -2.0 * s[1] + t), y0, T=T, steps=N, method="rk4", t0=t0)
    exact_z = lambda t: t / 2 - 0.25 - (t0 / 2 - 0.25) * math.exp(-2.0 * (t - t0))  # noqa: E731
    assert y.shape == (3,) and z.shape == (2,)
    torch.testing.assert_close(y, torch.full((3,), math.exp(-T), dtype=F64), rtol=0, atol=1e-6)
    torch.testing.assert_close(z, torch.full((2,), exact_z(t0 + T), dtype=F64), rtol=0, atol=1e-6)


def test_integrate_separable_verlet_and_leapfrog_oscillator():
    """y'' = −y from y = 1 at rest: y(T) = cos T, to second order in h for both schemes."""
    T, N = 1.0, 64
    h = T / N
    y0 = torch.ones(2, dtype=F64)
    y, _ = sn.integrate((lambda t, z: z, lambda t, y: -y), (y0, math.sin(h / 2) * y0), T=T, steps=N,
                        method="verlet")
    assert (y - math.cos(T)).abs().max() <= h * h
    y = sn.integrate(lambda t, y: -y, y0, T=T, steps=N, method="leapfrog")
    assert (y - math.cos(T)).abs().max() <= h * h


# -- blocks: the input against the weights, and the two streams against each other ------------------------
def block(dynamics=None, **kw):
    args = dict(T=1.0, steps=4, method="rk4")
    args.update(kw)
    return sn.ODEBlock(dynamics or sn.SingleLayer(3), **args)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_block_refuses_an_input_dtype_other_than_the_weights(dtype):
    pattern = (rf"ODEBlock input y0: dtype {dtype}, expected torch.float32 \(the dtype of the block's "
               rf"weights\); convert with block.to\({dtype}\) or y0.to\(torch.float32\)")
    with pytest.raises(TypeError, match=pattern):
        block()(torch.zeros(2, 3, dtype=dtype))


def test_block_with_float64_weights_refuses_float32_input():
    with pytest.raises(TypeError, match=r"ODEBlock input y0: dtype torch.float32, expected torch.float64"):
        block().double()(torch.zeros(2, 3))


def test_block_refuses_an_input_on_another_device():
    """Weights on the meta device, input on the CPU (a GPU-free stand-in for cuda vs cpu)."""
    b = block().to("meta")
    with pytest.raises(ValueError, match=r"ODEBlock input y0: device cpu, expected meta \(the device of the "
                                         r"block's weights\); convert with block.to\('cpu'\) or y0.to\('meta'\)"):
        b(torch.zeros(2, 3))


def test_conv_block_checks_dtype_too():
    b = block(ConvSingleLayer(2), method="euler")
    with pytest.raises(TypeError, match=r"ODEBlock input y0: dtype torch.float64, expected torch.float32"):
        b(torch.zeros(1, 2, 4, 4, dtype=F64))


def test_block_accepts_a_lower_precision_input_under_autocast():
    """The trainer's mixed precision: an opening layer under autocast hands the block bfloat16."""
    torch.manual_seed(0)
    b = block()
    x = torch.randn(4, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = b(x.to(torch.bfloat16))
        out32 = b(x)
    assert out.shape == out32.shape == (4, 3)
    torch.testing.assert_close(out.float(), b(x), rtol=0, atol=5e-2)
    torch.testing.assert_close(out32.float(), b(x), rtol=0, atol=5e-2)


@pytest.mark.parametrize("method", ["verlet", "rk4"])
def test_two_stream_input_streams_must_agree_in_dtype(method):
    b = block(sn.Hamiltonian(3, 2), method=method)
    with pytest.raises(TypeError, match=r"ODEBlock input z0: dtype torch.float64, expected torch.float32 .* "
                                        r"or z0.to\(torch.float32\)"):
        b((torch.zeros(2, 3), torch.zeros(2, 2, dtype=F64)))


@pytest.mark.parametrize("z_batch", [4, 1])
def test_two_stream_input_streams_must_agree_in_batch_size(z_batch):
    """Batch 1 used to broadcast silently against y's batch of 2."""
    b = block(sn.Hamiltonian(3, 2), method="verlet")
    with pytest.raises(ValueError, match=rf"ODEBlock input z0: shape \({z_batch}, 2\), expected \(2, 2\) "
                                         r"\(y0's sizes except along dimension -1\); the streams of a pair "
                                         r"\(y, z\) must agree in batch size"):
        b((torch.zeros(2, 3), torch.zeros(z_batch, 2)))


def test_conv_two_stream_input_streams_must_agree_in_image_size():
    b = block(ConvHamiltonian(2, 3), method="verlet")
    with pytest.raises(ValueError, match=r"ODEBlock input z0: shape \(1, 3, 4, 5\), expected \(1, 3, 4, 4\) "
                                         r"\(y0's sizes except along dimension 1\)"):
        b((torch.zeros(1, 2, 4, 4), torch.zeros(1, 3, 4, 5)))


def test_reverse_checks_its_state_like_forward():
    b = block(sn.Hamiltonian(3, 2), method="verlet")
    with pytest.raises(ValueError, match=r"ODEBlock.reverse state zN: shape \(3, 2\), expected \(2, 2\)"):
        b.reverse((torch.zeros(2, 3), torch.zeros(3, 2)))
    with pytest.raises(TypeError, match=r"ODEBlock.reverse state yN: dtype torch.float64, expected torch.float32"):
        b.reverse((torch.zeros(2, 3, dtype=F64), torch.zeros(2, 2)))


# -- blocks: correct inputs give the same numbers as before ---------------------------------------------------
def constant_weights(dynamics):
    return tuple(w[0] for w in dynamics.control_weights())


def test_block_equals_integrate_of_its_dynamics():
    torch.manual_seed(1)
    b = block(sn.SingleLayer(3), method="rk4", steps=6).double()
    x = torch.randn(5, 3, dtype=F64)
    theta = constant_weights(b.dynamics)
    expected = sn.integrate(lambda t, y: b.dynamics(y, *theta), x, T=1.0, steps=6, method="rk4")
    torch.testing.assert_close(b(x), expected, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("gradient", ["autograd", "reversible"])
def test_two_stream_pair_equals_integrate_and_gradients_agree(gradient):
    torch.manual_seed(2)
    b = block(sn.Hamiltonian(3, 2), method="verlet", steps=5, gradient=gradient).double()
    y0 = torch.randn(4, 3, dtype=F64, requires_grad=True)
    z0 = torch.randn(4, 2, dtype=F64)
    theta = constant_weights(b.dynamics)
    dyn = b.dynamics
    ey, ez = sn.integrate((lambda t, z: dyn.dy(z, *theta), lambda t, y: dyn.dz(y, *theta)), (y0, z0),
                          T=1.0, steps=5, method="verlet")
    y, z = b((y0, z0))
    torch.testing.assert_close(y, ey, rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(z, ez, rtol=1e-14, atol=1e-14)
    (g,) = torch.autograd.grad((y.sum() + z.sum()), y0)
    (eg,) = torch.autograd.grad((ey.sum() + ez.sum()), y0)
    torch.testing.assert_close(g, eg, rtol=1e-12, atol=1e-12)


# -- whole models: the input meets the opening layer first, so they check it themselves ------------
def test_dense_classifier_refuses_an_input_dtype_other_than_the_weights():
    model = sn.ODEClassifier(3, 3, block(), opening="duplicate")  # no weights in the opening itself
    with pytest.raises(TypeError, match=r"ODEClassifier input x: dtype torch.float64, expected torch.float32 "
                                        r"\(the dtype of the model's weights\); convert with model.to"):
        model(torch.randn(5, 3, dtype=torch.float64))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model(torch.randn(5, 3)).shape == (5, 3)


def test_conv_network_refuses_an_input_dtype_other_than_the_weights():
    from stablenet.conv_models import ConvNetSpec, build_conv_net

    net = build_conv_net(ConvNetSpec.from_dict({"in_channels": 1, "n_classes": 3, "widths": [2], "T": 1.0,
                                                 "steps": 1, "dynamics": "conv_single", "method": "euler"}))
    with pytest.raises(TypeError, match=r"ConvODENet input x: dtype torch.bfloat16, expected torch.float32"):
        net(torch.randn(2, 1, 6, 6, dtype=torch.bfloat16))
    assert net(torch.randn(2, 1, 6, 6)).shape == (2, 3)
