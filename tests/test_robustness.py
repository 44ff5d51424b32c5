"""stablenet.robustness: attacks reach the closed-form worst case of a linear classifier, accuracy
curves are non-increasing and start at the clean accuracy, PGD is at least as strong as FGSM, a
too-short attack is caught, inputs stay in their domain, and the certified Lipschitz bound is
above the empirical constant on every shipped dense architecture."""

from __future__ import annotations

import glob
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from stablenet import ODEBlock
from stablenet.dynamics import Antisymmetric, DoubleLayer, Hamiltonian, Parabolic, SingleLayer
from stablenet.models import ODEClassifier
from stablenet.robustness import (ATTACKS, Attack, Domain, accuracy_curve, area_under_curve, empirical_lipschitz,
                                  lipschitz_bound, perturb, random_perturbation, step_check)
from stablenet.robustness.bounds import block_bound

from helpers import raises_one_line

ROOT = Path(__file__).resolve().parents[1]


class Linear2(nn.Module):
    """Two-class linear classifier with margin m(x) = w·x + b: logits (−m/2, m/2)."""

    n_classes = 2

    def __init__(self, w: torch.Tensor, b: float):
        super().__init__()
        self.w = nn.Parameter(w.clone())
        self.b = nn.Parameter(torch.tensor(b, dtype=w.dtype))

    def margin(self, x):
        return x @ self.w + self.b

    def forward(self, x):
        m = self.margin(x)
        return torch.stack([-m / 2, m / 2], dim=1)


@pytest.fixture
def linear():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(6, generator=g, dtype=torch.float64)
    model = Linear2(w, 0.2)
    x = 2 * torch.rand(40, 6, generator=g, dtype=torch.float64) - 1
    y = (model.margin(x) > 0).long().detach()
    return model, x, y, Domain.box(-10.0, 10.0, 6)


@pytest.mark.parametrize("name", ["fgsm-linf", "pgd-linf"])
def test_linf_attack_reaches_the_closed_form_worst_case_of_a_linear_classifier(linear, name):
    model, x, y, domain = linear
    eps = 0.3
    x_adv = perturb(model, x, y, name, eps, domain=domain)
    sign = (2 * y - 1).to(x.dtype)  # +1 for class 1
    w = model.w.detach()
    # the worst case in the L∞ ball: x − ε·sign(w)·sign(class), the margin reduced by ε‖w‖₁
    torch.testing.assert_close(x_adv, x - eps * torch.sign(w) * sign[:, None], atol=2e-7, rtol=0)
    reduction = (model.margin(x) - model.margin(x_adv)).detach() * sign
    torch.testing.assert_close(reduction, torch.full_like(reduction, eps * float(w.abs().sum())), atol=1e-6, rtol=0)


def test_l2_fgsm_moves_along_w_by_eps(linear):
    model, x, y, domain = linear
    x_adv = perturb(model, x, y, "fgsm-l2", 0.3, domain=domain)
    reduction = (model.margin(x) - model.margin(x_adv)).detach() * (2 * y - 1)
    torch.testing.assert_close(reduction, torch.full_like(reduction, 0.3 * float(model.w.detach().norm())), atol=1e-6, rtol=0)


def test_attacks_stay_in_the_domain_and_the_ball(linear):
    model, x, y, _ = linear
    domain = Domain.box(-1.0, 1.0, 6)
    for name in ("fgsm-linf", "pgd-linf", "fgsm-l2", "pgd-l2", "gaussian", "uniform"):
        x_adv = perturb(model, x, y, name, 0.5, domain=domain)
        assert domain.contains(x_adv), name
        delta = x_adv - x
        size = delta.norm(dim=1) if name.endswith("l2") else delta.abs().amax(dim=1)
        if name != "gaussian":
            assert float(size.max()) <= 0.5 * (1 + 1e-5) + 1e-6, name


def test_per_feature_domain_is_respected(linear):
    model, x, y, _ = linear
    domain = Domain(torch.tensor([-1.0, -2, -1, -1, -1, -1]), torch.tensor([1.0, 1, 2, 1, 1, 1.5]))
    x_adv = perturb(model, x, y, "pgd-linf", 1.5, domain=domain)
    assert domain.contains(x_adv, tol=1e-6)
    assert float(x_adv[:, 1].min()) < -1.5 or float(x_adv[:, 2].max()) > 1.5  # the wider sides are used


@pytest.fixture(scope="module")
def peaks_model():
    """A small peaks network trained briefly, in float64."""
    from stablenet.data import load_dataset

    torch.manual_seed(0)
    data = load_dataset("peaks", seed=0, n_train_per_class=60, n_val_per_class=20, n_test_per_class=10)
    block = ODEBlock(SingleLayer(4, nt=4), T=2.0, steps=4, method="euler")
    model = ODEClassifier(2, 5, block, opening="duplicate").to(torch.float64)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    x, y = data.train.x.double(), data.train.y
    for _ in range(150):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    return model, data.val.x.double(), data.val.y, Domain.of_dataset(data)


def test_curve_starts_at_the_clean_accuracy_and_never_increases(peaks_model):
    model, x, y, domain = peaks_model
    clean = float((model(x).argmax(1) == y).double().mean())
    eps = [0.0, 0.02, 0.05, 0.1, 0.3]
    for name in ("fgsm-linf", "pgd-linf", "pgd-l2"):
        curve = accuracy_curve(model, x, y, name, eps, domain=domain)
        assert curve["accuracy"][0] == clean == curve["clean_accuracy"]
        assert all(b <= a for a, b in zip(curve["accuracy"], curve["accuracy"][1:])), curve
        assert curve["accuracy"][-1] < clean
        assert 0 <= curve["auc"] <= clean


def test_pgd_is_at_least_as_strong_as_fgsm(peaks_model):
    model, x, y, domain = peaks_model
    eps = [0.0, 0.05, 0.1, 0.2]
    for norm in ("linf", "l2"):
        fgsm = accuracy_curve(model, x, y, f"fgsm-{norm}", eps, domain=domain)
        pgd = accuracy_curve(model, x, y, Attack("pgd", norm, steps=20, restarts=2), eps, domain=domain)
        assert all(p <= f for p, f in zip(pgd["accuracy"], fgsm["accuracy"])), (pgd, fgsm)
        assert pgd["auc"] <= fgsm["auc"]


def test_too_few_steps_are_detected_as_weaker(peaks_model):
    model, x, y, domain = peaks_model
    short = Attack("pgd", "linf", steps=1, step_size=0.1)  # reaches only a tenth of the ball
    check = step_check(model, x, y, short, 0.3, domain=domain, factor=10)
    assert not check["converged"] and check["accuracy_more_steps"] < check["accuracy"]
    full = step_check(model, x, y, Attack("pgd", "linf", steps=20, restarts=1), 0.3, domain=domain, factor=3)
    assert full["converged"], full


def test_noise_curves_are_seeded_and_zero_noise_is_clean(peaks_model):
    model, x, y, domain = peaks_model
    a = accuracy_curve(model, x, y, "gaussian", [0, 0.1, 0.5], domain=domain, seed=3)
    b = accuracy_curve(model, x, y, "gaussian", [0, 0.1, 0.5], domain=domain, seed=3)
    assert a["accuracy"] == b["accuracy"]
    g = torch.Generator().manual_seed(0)
    moved = random_perturbation(x, "uniform", 0.2, domain=domain, generator=g)
    assert domain.contains(moved) and float((moved - x).abs().max()) <= 0.2 + 1e-12
    assert torch.equal(random_perturbation(x, "uniform", 0.0, domain=domain, generator=g), x)


def test_area_under_curve():
    assert area_under_curve([0, 1], [1, 0]) == 0.5
    assert area_under_curve([0, 0.5, 1], [1, 1, 1]) == 1.0
    assert area_under_curve([0], [0.7]) == 0.7


@pytest.mark.parametrize("eps", [-0.1, float("nan"), float("inf")])
def test_bad_sizes_are_one_line_errors(linear, eps):
    model, x, y, domain = linear
    with raises_one_line(ValueError, "eps"):
        accuracy_curve(model, x, y, "pgd-linf", [0, eps], domain=domain)
    with raises_one_line(ValueError, "eps"):
        perturb(model, x, y, "fgsm-linf", eps, domain=domain)


def test_autoattack_on_points_is_refused(linear):
    model, x, y, domain = linear
    with raises_one_line(ValueError, "autoattack-linf", "image"):
        perturb(model, x, y, "autoattack-linf", 0.1, domain=domain)
    with raises_one_line(ValueError, "unknown attack", "pgd-linf"):
        perturb(model, x, y, "pgd-linf3", 0.1, domain=domain)


def test_autoattack_on_images_is_at_least_as_strong_as_pgd():
    from stablenet.data import load_dataset

    data = load_dataset("digits", seed=0)
    torch.manual_seed(0)
    block = ODEBlock(SingleLayer(16, nt=1), T=1.0, steps=2, method="euler")
    model = ODEClassifier(64, 10, block)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(60):
        opt.zero_grad()
        nn.functional.cross_entropy(model(data.train.x), data.train.y).backward()
        opt.step()
    model.eval()
    domain = Domain.of_dataset(data)
    assert domain.image_shape == (1, 8, 8)
    x, y = data.val.x[:40], data.val.y[:40]
    eps = [0.0, 0.05, 0.1]
    pgd = accuracy_curve(model, x, y, Attack("pgd", "linf", steps=10), eps, domain=domain)
    auto = accuracy_curve(model, x, y, Attack("autoattack", "linf", steps=10), eps, domain=domain)
    assert auto["accuracy"][0] == pgd["accuracy"][0] > 0.5
    assert auto["accuracy"][-1] <= pgd["accuracy"][-1] + 0.05  # a stronger (or equal) ensemble
    assert auto["accuracy"][-1] < auto["accuracy"][0]


def test_art_is_imported_lazily():
    code = ("import sys, stablenet, stablenet.robustness\n"
            "from stablenet.app.cli import build_parser; build_parser()\n"
            "print('art' in sys.modules, 'stablenet.robustness' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True"]
    done = subprocess.run([sys.executable, "-c", "import sys, stablenet; print('stablenet.robustness' in sys.modules)"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_a_missing_art_is_one_clear_error(linear, monkeypatch):
    model, x, y, domain = linear
    monkeypatch.setitem(sys.modules, "art", None)  # import art → ImportError
    from stablenet.robustness._art import MissingDependencyError

    with raises_one_line(MissingDependencyError, "pip install 'stablenet[robustness]'"):
        perturb(model, x, y, "fgsm-linf", 0.1, domain=domain)


# -- Lipschitz constants ---------------------------------------------------------------------------
def _block(kind: str, method: str, width: int = 4, steps: int = 6, normalization=None, T: float = 1.5):
    dyn = {"single": lambda: SingleLayer(width, nt=3, normalization=normalization),
           "double": lambda: DoubleLayer(width, 6, nt=3, normalization=normalization),
           "antisymmetric": lambda: Antisymmetric(width, nt=3, gamma=0.1, normalization=normalization),
           "parabolic": lambda: Parabolic(width, nt=3, normalization=normalization),
           "hamiltonian": lambda: Hamiltonian(width, 3, nt=3, normalization=normalization)}[kind]()
    return ODEBlock(dyn, T=T, steps=steps, method=method)


CASES = [(k, m) for k in ("single", "double", "antisymmetric", "parabolic") for m in ("euler", "midpoint", "rk3", "rk4", "ab3")]
CASES += [("hamiltonian", m) for m in ("verlet", "euler", "rk4")]


@pytest.mark.parametrize("kind,method", CASES)
def test_certified_bound_is_above_the_empirical_constant(kind, method):
    torch.manual_seed(1)
    blocks = [_block(kind, method), _block(kind, method, normalization="layer", steps=3)]
    model = ODEClassifier(3, 4, blocks).to(torch.float64)
    with torch.no_grad():  # larger weights make the bound's growth with depth visible
        for p in model.blocks.parameters():
            p.mul_(2.0)
    bound = lipschitz_bound(model)
    assert bound.value is not None and math.isfinite(bound.value), bound
    x = torch.randn(64, 3, dtype=torch.float64)
    emp = empirical_lipschitz(model, x)
    assert emp["max"] <= bound.value, (emp["max"], bound.value)
    # the single block's bound holds for its own map Y0 -> YN too
    y0 = torch.randn(32, 4, dtype=torch.float64)
    emp_block = empirical_lipschitz(_Wrap(model.blocks[0]), y0)
    assert emp_block["max"] <= block_bound(model.blocks[0])["bound"] * (1 + 1e-12)


class _Wrap(nn.Module):
    def __init__(self, block):
        super().__init__()
        self.block = block

    def forward(self, x):
        return self.block(x)


def test_power_iteration_agrees_with_the_svd():
    torch.manual_seed(2)
    model = ODEClassifier(3, 4, _block("hamiltonian", "verlet")).to(torch.float64)
    x = torch.randn(8, 3, dtype=torch.float64)
    svd = empirical_lipschitz(model, x)
    power = empirical_lipschitz(model, x, method="power", iterations=200)
    torch.testing.assert_close(torch.tensor(power["per_point"]), torch.tensor(svd["per_point"]), rtol=1e-6, atol=0)


def test_stable_parabolic_euler_certifies_a_depth_independent_bound():
    """h‖K‖² ≤ 2 in every layer: each step is non-expansive, so the bound is the product of the
    opening's and classifier's norms whatever the depth."""
    torch.manual_seed(3)
    for steps in (4, 64):
        block = _block("parabolic", "euler", steps=steps, T=2.0)
        model = ODEClassifier(3, 4, block).to(torch.float64)
        parts = lipschitz_bound(model).parts
        assert parts[1]["max_step_factor"] <= 1.0 and parts[1]["bound"] == 1.0


SHIPPED = sorted(glob.glob(str(ROOT / "configs" / "*.toml")))
FEATURES = {"peaks": (2, 5, None), "ellipses": (2, 2, None), "swiss_roll": (2, 2, None), "digits": (64, 10, (8, 8)),
            "fashion_mnist": (784, 10, (28, 28)), "cifar10": (3072, 10, (3, 32, 32))}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: Path(p).stem)
def test_bound_holds_on_every_shipped_architecture(path):
    from stablenet.app.config import load_config
    from stablenet.app.networks import build_model

    config, _ = load_config(path, ['training.device="cpu"'])
    d, c, shape = FEATURES[config.data.name]
    if config.model.kind == "conv":
        model = build_model(config.model_copy(), d, c, image_shape=shape) if d <= 784 else None
        if model is not None:
            bound = lipschitz_bound(model)
            assert bound.value is None and "dense" in bound.reason  # said so, not guessed
        return
    model = build_model(config, d, c, image_shape=shape).to(torch.float64)
    bound = lipschitz_bound(model)
    assert bound.value is not None
    x = torch.rand(24, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    if shape is None:
        x = 6 * x - 3
    assert empirical_lipschitz(model, x)["max"] <= bound.value


def test_registry_names():
    assert set(ATTACKS) >= {"gaussian", "uniform", "fgsm-linf", "fgsm-l2", "pgd-linf", "pgd-l2", "autoattack-linf"}
    assert all(ATTACKS[name].name == name for name in ATTACKS)
