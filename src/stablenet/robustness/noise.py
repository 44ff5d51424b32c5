"""Random perturbations: Gaussian and uniform noise of a given size, clipped to the domain.

``gaussian`` of size ε adds ε·n, n ~ N(0, I) (per-feature standard deviation ε); ``uniform`` of
size ε adds a draw from U[−ε, ε]^d (the L∞ ball of radius ε).  The draws come from an explicit
``torch.Generator``; :func:`stablenet.robustness.curves.accuracy_curve` draws one noise tensor and
scales it for every ε (common random numbers), so the curve's differences between sizes are not
differences between draws.  Reference for noise vs adversarial robustness: Fawzi, Moosavi-Dezfooli
& Frossard, "Robustness of classifiers: from adversarial to random noise", NeurIPS 2016.
"""

from __future__ import annotations

import torch

from .. import _checks
from .domain import Domain

NOISES = ("gaussian", "uniform")


def unit_noise(kind: str, shape, *, generator: torch.Generator, dtype=torch.float64) -> torch.Tensor:
    """Noise of size 1: N(0, 1) (``gaussian``) or U[−1, 1] (``uniform``) entries."""
    _checks.choice("kind", kind, NOISES)
    if kind == "gaussian":
        return torch.randn(shape, generator=generator, dtype=dtype)
    return 2.0 * torch.rand(shape, generator=generator, dtype=dtype) - 1.0


def random_perturbation(x: torch.Tensor, kind: str, size: float, *, domain: Domain,
                        generator: torch.Generator, noise: torch.Tensor | None = None) -> torch.Tensor:
    """``x`` plus noise of ``kind`` (``gaussian`` or ``uniform``) and ``size`` ε ≥ 0, clipped to
    ``domain``; ``noise`` (of size 1, from :func:`unit_noise`) is drawn from ``generator`` if not given."""
    size = _checks.nonnegative_float("size", size)
    domain.check(x)
    if noise is None:
        noise = unit_noise(kind, x.shape, generator=generator)
    return domain.clip(x + size * noise.to(x))
