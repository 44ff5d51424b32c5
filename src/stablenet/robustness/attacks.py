"""Adversarial attacks (and the random perturbations, under one interface): :func:`perturb`.

An :class:`Attack` is a plain description: the method, the norm of the ε-ball, the number of
gradient steps, the step size, and random restarts.  The gradient attacks are the Adversarial
Robustness Toolbox's (ART 1.20.1; why ART: :mod:`stablenet.robustness._art`):

* ``fgsm`` — fast gradient (sign) method, one step of size ε along sign ∇ₓL (L∞) or ∇ₓL/‖∇ₓL‖₂
  (L2) of the cross-entropy L (Goodfellow, Shlens & Szegedy, ICLR 2015);
* ``pgd`` — projected gradient descent, ``steps`` such steps of size ``step_size``·ε projected
  back onto the ε-ball and the domain, from x (``restarts = 0``) or from ``restarts`` uniformly
  random starts in the ball, keeping a start that succeeds (Madry et al., ICLR 2018; default
  step 2.5ε/steps as there);
* ``autoattack`` — the parameter-free ensemble of Croce & Hein (ICML 2020) as ART composes it:
  APGD with the cross-entropy loss, APGD with the difference-of-logits-ratio loss, DeepFool and
  the Square attack (query-based, so it does not rely on gradients), each run on the points the
  previous ones left correctly classified, an example kept only if it lies in the ε-ball.  Square
  works on images only, so AutoAttack needs image data (and DLR at least 3 classes).  ART's own
  ``AutoAttack.generate`` imports the ``multiprocess`` package even when run serially, which ART
  does not declare as a dependency; the ensemble is therefore run here, serially, with ART's own
  ``run_attack`` (the loop body of ``AutoAttack.generate``).  ``steps`` is APGD's iteration count
  (the Square attack gets 10·steps queries), ``restarts`` APGD's and Square's random restarts.

``gaussian`` and ``uniform`` are the random perturbations of :mod:`.noise` (no model gradient).

Every perturbed input lies in the domain (ART clips to its per-feature bounds; the result is
clipped again here), and an adversarial example outside the ε-ball (beyond float32 round-off) is
discarded: the point keeps its clean input.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from .. import _checks
from . import _art
from .domain import Domain
from .noise import NOISES, random_perturbation

METHODS = NOISES + ("fgsm", "pgd", "autoattack")
NORMS = ("linf", "l2")


@dataclass(frozen=True)
class Attack:
    """A perturbation method: ``method`` (``gaussian``, ``uniform``, ``fgsm``, ``pgd``,
    ``autoattack``), ``norm`` of the ε-ball (``linf`` or ``l2``; None for noise), ``steps``
    (PGD / APGD iterations), ``step_size`` (PGD step as a multiple of ε; None: 2.5/steps),
    ``restarts`` (random starts; 0 starts PGD at x)."""

    method: str
    norm: str | None = "linf"
    steps: int = 1
    step_size: float | None = None
    restarts: int = 0

    def __post_init__(self) -> None:
        _checks.choice("method", self.method, METHODS)
        if self.method in NOISES:
            if self.norm is not None:
                object.__setattr__(self, "norm", None)
        else:
            _checks.choice("norm", self.norm, NORMS)
        _checks.positive_int("steps", self.steps)
        if self.step_size is not None:
            _checks.positive_float("step_size", self.step_size)
        if isinstance(self.restarts, bool) or not isinstance(self.restarts, int) or self.restarts < 0:
            raise ValueError(f"restarts must be an integer >= 0, got {self.restarts!r}")

    @property
    def name(self) -> str:
        """``gaussian``, ``fgsm-linf``, ``pgd-l2``, ``autoattack-linf``."""
        return self.method if self.norm is None else f"{self.method}-{self.norm}"

    @property
    def adversarial(self) -> bool:
        """Whether the method uses the model's gradient (an attack) rather than random noise."""
        return self.method not in NOISES

    @property
    def needs_images(self) -> bool:
        """Whether the method needs image inputs (AutoAttack: its Square attack)."""
        return self.method == "autoattack"

    def describe(self) -> dict:
        """The settings as a dict, with ``name`` first (for results files)."""
        return {"name": self.name, **asdict(self)}

    def with_steps(self, steps: int) -> "Attack":
        """The same attack with ``steps`` iterations."""
        return replace(self, steps=steps)


#: the attacks by name, with their default settings
ATTACKS: dict[str, Attack] = {
    "gaussian": Attack("gaussian"),
    "uniform": Attack("uniform"),
    "fgsm-linf": Attack("fgsm", "linf"),
    "fgsm-l2": Attack("fgsm", "l2"),
    "pgd-linf": Attack("pgd", "linf", steps=20, restarts=1),
    "pgd-l2": Attack("pgd", "l2", steps=20, restarts=1),
    "autoattack-linf": Attack("autoattack", "linf", steps=100, restarts=1),
    "autoattack-l2": Attack("autoattack", "l2", steps=100, restarts=1),
}


def get_attack(attack: str | Attack) -> Attack:
    """An :class:`Attack`, or the registered one of that name (:data:`ATTACKS`)."""
    if isinstance(attack, Attack):
        return attack
    if attack not in ATTACKS:
        raise ValueError(f"unknown attack {attack!r}; choose one of {', '.join(ATTACKS)}")
    return ATTACKS[attack]


def check_suited(attack: Attack, domain: Domain, n_classes: int) -> None:
    """One-line error if ``attack`` cannot run on this data (AutoAttack on points, or < 3 classes)."""
    if attack.needs_images and domain.image_shape is None:
        raise ValueError(f"attack {attack.name!r} needs image data (its Square attack perturbs image patches); "
                         f"these inputs are {domain.features}-feature points: use fgsm-*/pgd-* or the noises")
    if attack.method == "autoattack" and attack.norm == "l2" and min(domain.image_shape[1:]) < 10:
        raise ValueError(f"attack {attack.name!r} needs images of at least 10x10 pixels (the Square attack's L2 "
                         f"initialization in ART 1.20.1 divides by zero below), got {domain.image_shape[1:]}")
    if attack.method == "autoattack" and n_classes < 3:
        raise ValueError(f"attack {attack.name!r} needs at least 3 classes (its DLR loss), got {n_classes}")


def _norms(delta: torch.Tensor, norm: str) -> torch.Tensor:
    return delta.abs().amax(dim=1) if norm == "linf" else delta.norm(dim=1)


def n_classes_of(model) -> int:
    n = getattr(model, "n_classes", None)
    if not isinstance(n, int):
        raise TypeError(f"model must have an integer n_classes (a stablenet classifier), got {type(model).__name__}")
    return n


def perturb(model, x: torch.Tensor, y: torch.Tensor, attack: str | Attack, eps: float, *, domain: Domain,
            seed: int = 0, batch_size: int = 500, noise: torch.Tensor | None = None) -> torch.Tensor:
    """Perturbed inputs x' (the shape and dtype of ``x``) of size ``eps`` inside ``domain``.

    ``x`` (batch, features) are valid inputs, ``y`` their labels, ``model(x)`` the logits.  For the
    noises ``seed`` seeds the draw (or ``noise``, of size 1, is used); for the attacks it seeds
    ART's random starts (numpy's and torch's global generators are restored afterwards).  ε = 0
    returns a copy of ``x``.
    """
    attack = get_attack(attack)
    eps = _checks.nonnegative_float("eps", eps)
    _checks.positive_int("batch_size", batch_size)
    domain.check(x)
    if eps == 0:
        return x.clone()
    if not attack.adversarial:
        generator = torch.Generator().manual_seed(seed)
        return random_perturbation(x, attack.method, eps, domain=domain, generator=generator, noise=noise)
    n_classes = n_classes_of(model)
    check_suited(attack, domain, n_classes)
    estimator, shape = _art.classifier(model, domain, n_classes)
    xn = x.detach().cpu().numpy().astype(np.float32).reshape(-1, *shape)
    yn = y.detach().cpu().numpy().astype(np.int64)
    with _art.frozen(model), _art.numpy_seed(seed), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        adv = _generate(estimator, attack, eps, xn, yn, batch_size)
    x_adv = domain.clip(torch.from_numpy(adv.reshape(x.shape[0], -1)).to(x))
    outside = _norms((x_adv - x).to(torch.float64), attack.norm) > eps * (1 + 1e-5) + 1e-6
    return torch.where(outside[:, None], x, x_adv)


def _generate(estimator, attack: Attack, eps: float, x: np.ndarray, y: np.ndarray, batch_size: int) -> np.ndarray:
    from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent

    norm = np.inf if attack.norm == "linf" else 2
    if attack.method == "fgsm":
        return FastGradientMethod(estimator, norm=norm, eps=eps, eps_step=eps, batch_size=batch_size).generate(x, y=y)
    if attack.method == "pgd":
        step = (2.5 / attack.steps if attack.step_size is None else attack.step_size) * eps
        return ProjectedGradientDescent(estimator, norm=norm, eps=eps, eps_step=step, max_iter=attack.steps,
                                        num_random_init=attack.restarts, batch_size=batch_size,
                                        verbose=False).generate(x, y=y)
    return _autoattack(estimator, attack, norm, eps, x, y, batch_size)


def _autoattack(estimator, attack: Attack, norm, eps: float, x: np.ndarray, y: np.ndarray,
                batch_size: int) -> np.ndarray:
    """ART's AutoAttack ensemble, run serially with ART's ``run_attack`` (see the module docstring)."""
    from art.attacks.evasion import AutoProjectedGradientDescent, DeepFool, SquareAttack
    from art.attacks.evasion.auto_attack import run_attack
    from art.utils import check_and_transform_label_format

    restarts = max(1, attack.restarts)
    step = (2.5 / attack.steps if attack.step_size is None else attack.step_size) * eps
    members = [
        AutoProjectedGradientDescent(estimator, norm=norm, eps=eps, eps_step=step, max_iter=attack.steps,
                                     targeted=False, nb_random_init=restarts, batch_size=batch_size,
                                     loss_type=loss, verbose=False)
        for loss in ("cross_entropy", "difference_logits_ratio")
    ]
    members.append(DeepFool(estimator, max_iter=attack.steps, epsilon=1e-3, nb_grads=min(10, estimator.nb_classes),
                            batch_size=batch_size, verbose=False))
    members.append(SquareAttack(estimator, norm=norm, max_iter=10 * attack.steps, eps=eps, p_init=0.8,
                                nb_restarts=restarts, batch_size=batch_size, verbose=False))
    labels = check_and_transform_label_format(y, nb_classes=estimator.nb_classes)
    predicted = estimator.predict(x, batch_size=batch_size).argmax(1)
    robust = predicted == y
    x_adv = x.copy()
    for member in members:
        if not robust.any():
            break
        x_adv, robust = run_attack(x=x_adv, y=labels, sample_is_robust=robust, attack=member,
                                   estimator_orig=estimator, norm=norm, eps=eps)
    assert math.isfinite(float(np.abs(x_adv).max()))
    return x_adv
