"""Bad input fails early with a message naming the parameter, the value and what was expected."""

import math

import pytest
import torch

import stablenet as sn


def block(**kw):
    args = dict(T=1.0, steps=4, method="rk4")
    args.update(kw)
    dynamics = args.pop("dynamics", None) or sn.SingleLayer(3)
    return sn.ODEBlock(dynamics, **args)


@pytest.mark.parametrize("T,expected", [(0.0, "T must be a finite number > 0, got 0.0"),
                                        (-1.0, "T must be a finite number > 0, got -1.0"),
                                        (math.inf, "T must be a finite number > 0, got inf"),
                                        ("10", "T must be a finite number > 0, got '10'")])
def test_bad_final_time(T, expected):
    with pytest.raises((ValueError, TypeError), match=expected):
        block(T=T)
    with pytest.raises((ValueError, TypeError), match=expected):
        sn.integrate(lambda t, y: y, torch.zeros(1), T=T, steps=2, method="euler")


@pytest.mark.parametrize("steps", [0, -3, 2.5, True])
def test_bad_steps(steps):
    with pytest.raises((ValueError, TypeError), match=r"steps must be an integer >= 1, got"):
        block(steps=steps)
    with pytest.raises((ValueError, TypeError), match=r"steps must be an integer >= 1, got"):
        sn.integrate(lambda t, y: y, torch.zeros(1), T=1.0, steps=steps, method="euler")
    b = block()
    with pytest.raises((ValueError, TypeError), match=r"steps must be an integer >= 1, got"):
        b.steps = steps
    with pytest.raises((ValueError, TypeError), match=r"steps must be an integer >= 1, got"):
        b(torch.zeros(1, 3), steps=steps)


@pytest.mark.parametrize("nt", [0, -1, 1.5])
def test_bad_number_of_control_points(nt):
    with pytest.raises((ValueError, TypeError), match="nt must be an integer >= 1, got"):
        sn.SingleLayer(3, nt=nt)


def test_unknown_method_lists_the_choices():
    with pytest.raises(ValueError, match=r"method must be one of \['ab3', 'euler', .*\] or an Integrator instance, got 'rk5'"):
        block(method="rk5")
    with pytest.raises(ValueError, match="method must be one of"):
        sn.integrate(lambda t, y: y, torch.zeros(1), T=1.0, steps=2, method="RK4")


def test_unknown_activation_interpolation_normalization():
    with pytest.raises(ValueError, match="activation must be one of .* got 'sigmoid'"):
        sn.SingleLayer(3, activation="sigmoid")
    with pytest.raises(ValueError, match="controls must be one of .* got 'cubic'"):
        block(controls="cubic")
    with pytest.raises(ValueError, match="normalization must be one of .* got 'batch'"):
        sn.SingleLayer(3, normalization="batch")
    with pytest.raises(ValueError, match="gamma must be a finite number >= 0, got -0.5"):
        sn.Antisymmetric(3, gamma=-0.5)


def test_wrong_feature_width():
    with pytest.raises(ValueError, match=r"y0 has feature width 5 \(shape \(2, 5\)\), expected width 3"):
        block()(torch.zeros(2, 5))
    b = block(dynamics=sn.Hamiltonian(3, 2), method="verlet")
    with pytest.raises(ValueError, match=r"z0 has feature width 3 .* expected width 2"):
        b((torch.zeros(2, 3), torch.zeros(2, 3)))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_initial_state(bad):
    y0 = torch.zeros(2, 3)
    y0[1, 2] = bad
    with pytest.raises(ValueError, match=r"y0 must be finite, got 1 non-finite entries"):
        block()(y0)
    with pytest.raises(ValueError, match=r"y0 must be finite"):
        sn.integrate(lambda t, y: y, y0, T=1.0, steps=2, method="euler")


def test_one_stream_dynamics_refused_by_verlet():
    with pytest.raises(ValueError, match="method='verlet' needs a two-stream dynamics .* got one-stream 'single'"):
        block(method="verlet")
    with pytest.raises(ValueError, match="method='verlet' integrates separable two-stream systems"):
        sn.integrate(lambda t, y: y, torch.zeros(1, 2), T=1.0, steps=2, method="verlet")


def test_two_stream_with_one_step_method_is_fine_but_leapfrog_is_not():
    b = block(dynamics=sn.Hamiltonian(3, 2), method="rk4")
    assert b(torch.zeros(4, 3)).shape == (4, 3)
    with pytest.raises(ValueError, match="method='leapfrog' integrates one-stream second-order dynamics"):
        block(dynamics=sn.Hamiltonian(3, 2), method="leapfrog")


def test_not_a_tensor_and_not_a_dynamics():
    with pytest.raises(TypeError, match="y0 must be a torch.Tensor, got list"):
        block()([[0.0, 0.0, 0.0]])
    with pytest.raises(TypeError, match="dynamics must be a stablenet Dynamics module, got Linear"):
        sn.ODEBlock(torch.nn.Linear(3, 3), T=1.0, steps=2, method="euler")
    with pytest.raises(TypeError, match="y0 must be a floating-point tensor, got dtype torch.int64"):
        block()(torch.zeros(2, 3, dtype=torch.long))


def test_classifier_checks():
    with pytest.raises(ValueError, match="width must be a multiple of 2, got width 5"):
        sn.ODEClassifier(2, 3, sn.ODEBlock(sn.SingleLayer(5), T=1, steps=2, method="euler"), opening="duplicate")
    model = sn.ODEClassifier(2, 3, block(dynamics=sn.SingleLayer(4)))
    with pytest.raises(ValueError, match=r"x has feature width 3 .* expected width 2"):
        model(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="loss must be one of"):
        sn.get_loss("hinge")
    with pytest.raises(ValueError, match=r"label_smoothing: got 1.0, expected a number in \[0, 1\)"):
        sn.get_loss("cross_entropy", 1.0)
    with pytest.raises(ValueError, match="label_smoothing: got 0.1 with loss 'least_squares'"):
        sn.get_loss("least_squares", 0.1)


def test_label_smoothed_loss_value():
    """ε = 0.2 on 3 classes: targets (1 − ε)·onehot + ε/3, so the loss is the cross-entropy
    against those soft targets; ε = 0 returns the plain loss itself."""
    scores, labels = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]]), torch.tensor([0, 1])
    soft = 0.8 * torch.nn.functional.one_hot(labels, 3) + 0.2 / 3
    expected = float(-(soft * scores.log_softmax(-1)).sum(-1).mean())
    assert float(sn.get_loss("cross_entropy", 0.2)(scores, labels)) == pytest.approx(expected, abs=1e-6)
    assert sn.get_loss("cross_entropy", 0.0) is sn.softmax_cross_entropy
