"""Robustness of trained networks to perturbed inputs: the property stable dynamics are meant to buy.

A network whose forward propagation is an unstable ODE lets small input perturbations change the
output without bound (Haber & Ruthotto, "Stable architectures for deep neural networks", Inverse
Problems 2017, §1); this package measures it on any classifier ``model(x) → logits``:

* :mod:`.domain` — the valid input domain, a box per feature (peaks: the generator's box;
  images: [0, 1] before the model's own standardization); every perturbed input is clipped to it;
* :mod:`.noise` — random perturbations: Gaussian and uniform noise of growing size (seeded);
* :mod:`.attacks` — adversarial attacks FGSM and PGD in L∞ and L2 (steps, random restarts) and
  AutoAttack for images, from the Adversarial Robustness Toolbox (ART; lazily imported: install
  it with ``pip install 'stablenet[robustness]'``);
* :mod:`.curves` — accuracy against perturbation size per attack (ε = 0: the clean accuracy),
  the area under that curve, and the step check that guards against gradient masking;
* :mod:`.lipschitz` — the empirical Lipschitz constant of input → logits (largest singular value
  of the input–logit Jacobian, maximized over points);
* :mod:`.bounds` — a certified upper bound on that constant from the layers, where the dynamics
  and the integrator allow one.

``import stablenet`` does not import this package, and this package imports ART only when an
adversarial attack runs.
"""

from .attacks import ATTACKS, Attack, get_attack, perturb
from .bounds import LipschitzBound, lipschitz_bound
from .curves import accuracy_curve, area_under_curve, step_check
from .domain import Domain
from .lipschitz import empirical_lipschitz, input_jacobian
from .noise import random_perturbation

__all__ = [
    "Domain", "Attack", "ATTACKS", "get_attack", "perturb", "random_perturbation", "accuracy_curve",
    "area_under_curve", "step_check", "empirical_lipschitz", "input_jacobian", "LipschitzBound",
    "lipschitz_bound",
]
