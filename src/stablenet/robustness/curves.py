"""Accuracy against perturbation size, its area, and a convergence check of the attacks.

For an attack and sizes 0 = ε_0 < ε_1 < … the curve is the fraction of points classified
correctly under the perturbation.  For the adversarial attacks a point counts as correct at ε
only if it is correctly classified clean *and* no adversarial example was found for it at any
size ε' ≤ ε: the ε'-ball lies inside the ε-ball, so an example found at ε' is one at ε too.  The
curve is thus non-increasing by construction and each value is still an upper bound on the true
robust accuracy (Carlini et al., "On evaluating adversarial robustness", 2019, §5: report the
strongest attack found); the raw per-size accuracy of each run is kept beside it.  For the random
noises the curve is the plain accuracy on the noisy inputs (one noise draw per point, scaled for
every size).  ε = 0 gives the clean accuracy exactly, computed once by the same code.

The area under the curve is the trapezoidal integral divided by the range of sizes: the mean
accuracy over [ε_0, ε_max] (1 for a network that no perturbation affects).

:func:`step_check` guards against gradient masking (Athalye, Carlini & Wagner, ICML 2018): it
reruns an iterative attack with more steps; if that finds noticeably more adversarial examples,
the attack had not converged and its curve overstates robustness.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from .. import _checks
from .attacks import Attack, get_attack, perturb
from .domain import Domain
from .noise import unit_noise


def check_sizes(eps: Sequence[float]) -> list[float]:
    """The sizes as floats: finite, ≥ 0, strictly increasing (one line otherwise)."""
    values = list(eps) if not isinstance(eps, (int, float)) else [eps]
    if not values:
        raise ValueError("eps must hold at least one perturbation size")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ValueError(f"eps must be finite numbers >= 0, got {v!r}")
        out.append(float(v))
    if any(b <= a for a, b in zip(out, out[1:])):
        raise ValueError(f"eps must be strictly increasing, got {out}")
    return out


@torch.no_grad()
def predict(model, x: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
    """The model's predicted classes for ``x`` (in the model's dtype and device), in batches."""
    param = next(model.parameters())
    out = [model(x[i:i + batch_size].to(param)).argmax(-1).cpu() for i in range(0, x.shape[0], batch_size)]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def area_under_curve(eps: Sequence[float], accuracy: Sequence[float]) -> float:
    """Trapezoidal ∫ accuracy dε over the sizes, divided by their range (one size: its accuracy)."""
    eps, accuracy = list(map(float, eps)), list(map(float, accuracy))
    if len(eps) != len(accuracy) or not eps:
        raise ValueError(f"eps and accuracy must have the same non-zero length, got {len(eps)} and {len(accuracy)}")
    if len(eps) == 1:
        return accuracy[0]
    area = sum((b - a) * (fa + fb) / 2 for a, b, fa, fb in zip(eps, eps[1:], accuracy, accuracy[1:]))
    return area / (eps[-1] - eps[0])


def accuracy_curve(model, x: torch.Tensor, y: torch.Tensor, attack: str | Attack, eps: Sequence[float], *,
                   domain: Domain, seed: int = 0, batch_size: int = 500, keep: int = 0) -> dict:
    """Accuracy of ``model`` on ``x`` (labels ``y``) under ``attack`` at every size of ``eps``.

    Returns ``{"attack", "settings", "eps", "accuracy", "accuracy_per_size", "auc",
    "clean_accuracy"}`` (see the module docstring for how the adversarial curve is made
    non-increasing).  ``keep`` > 0 also returns the first ``keep`` perturbed inputs per size
    (``"examples"``: a list of tensors) and their predictions (``"predictions"``).
    """
    attack = get_attack(attack)
    eps = check_sizes(eps)
    domain.check(x)
    if y.shape != (x.shape[0],):
        raise ValueError(f"y must hold one label per point ({x.shape[0]}), got shape {tuple(y.shape)}")
    y = y.cpu()
    clean = predict(model, x) == y
    noise = None if attack.adversarial else unit_noise(attack.method, x.shape,
                                                       generator=torch.Generator().manual_seed(seed))
    robust = clean.clone()
    accuracy, per_size, examples, predictions = [], [], [], []
    for k, e in enumerate(eps):
        if e == 0:
            x_e, correct = x, clean
        else:
            x_e = perturb(model, x, y, attack, e, domain=domain, seed=seed + k, batch_size=batch_size, noise=noise)
            correct = predict(model, x_e) == y
        per_size.append(float(correct.double().mean()))
        if attack.adversarial:
            robust &= correct
            accuracy.append(float(robust.double().mean()))
        else:
            accuracy.append(per_size[-1])
        if keep:
            examples.append(x_e[:keep].detach().cpu())
            predictions.append(predict(model, x_e[:keep]).tolist())
    result = {"attack": attack.name, "settings": attack.describe(), "eps": eps, "accuracy": accuracy,
              "accuracy_per_size": per_size, "auc": area_under_curve(eps, accuracy),
              "clean_accuracy": float(clean.double().mean()), "points": int(x.shape[0])}
    if keep:
        result["examples"], result["predictions"] = examples, predictions
    return result


def step_check(model, x: torch.Tensor, y: torch.Tensor, attack: str | Attack, eps: float, *, domain: Domain,
               factor: int = 5, tolerance: float = 0.01, seed: int = 0, batch_size: int = 500) -> dict:
    """Rerun an iterative attack with ``factor`` times its steps (the same ``step_size`` rule and
    restarts) at size ``eps``; ``converged`` is False if the longer attack lowers
    the accuracy by more than ``tolerance`` (a fraction of the points).

    Returns ``{"attack", "eps", "steps", "accuracy", "more_steps", "accuracy_more_steps", "gap",
    "converged"}``.
    """
    attack = get_attack(attack)
    if not attack.adversarial or attack.method == "fgsm":
        raise ValueError(f"step_check needs an iterative attack (pgd, autoattack), got {attack.name!r}")
    _checks.positive_float("eps", eps)
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 2:
        raise ValueError(f"factor must be an integer >= 2, got {factor!r}")
    y = y.cpu()
    clean = predict(model, x) == y
    accuracies = []
    for a in (attack, attack.with_steps(attack.steps * factor)):
        x_adv = perturb(model, x, y, a, eps, domain=domain, seed=seed, batch_size=batch_size)
        accuracies.append(float((clean & (predict(model, x_adv) == y)).double().mean()))
    gap = accuracies[0] - accuracies[1]
    return {"attack": attack.name, "eps": float(eps), "steps": attack.steps, "accuracy": accuracies[0],
            "more_steps": attack.steps * factor, "accuracy_more_steps": accuracies[1], "gap": gap,
            "converged": gap <= tolerance}
