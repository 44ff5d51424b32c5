"""Adversarial training, ``[training.adversarial]``: the mixed batch the trainer steps on.

In every training batch (after ``[data.augment]``) the first ``k = round(fraction · B)`` points
(at least one; the batch order is random, so they are a random share) are replaced by adversarial
examples of the configured attack against the *current* network, found by
:func:`stablenet.robustness.perturb` (the Adversarial Robustness Toolbox's FGSM / PGD): inside the
data's domain (:meth:`stablenet.robustness.Domain.of_dataset`: the generator's box for point
sets, [0, 1] per pixel for images) and inside the ε-ball around each clean point; an example ART
returns outside the ball keeps its clean point.  The optimizer then takes its step on the mixed
batch, so the reported ``train_loss`` / ``train_accuracy`` are those of the mixed batches (what
is trained), and ``adversarial_accuracy`` is the accuracy on the adversarial examples alone in
the same forward pass.  Goodfellow, Shlens & Szegedy (ICLR 2015) mix clean and adversarial
examples equally (``fraction = 0.5``); Madry et al. (ICLR 2018) train on adversarial examples only
(``fraction = 1`` with PGD from a random start).

**The model during the attack** is in ``eval()`` mode with its parameters frozen
(:func:`stablenet.robustness._art.frozen`, restored after).  For stablenet's networks this is
the same function as in ``train()`` mode: dense networks have no mode-dependent layers, and the
convolutional blocks' batch normalization always uses the statistics of the batch it is given
(no running averages) until the population statistics are computed at the end of training.  The
adversarial points form their own batch during the attack (their statistics, not the mixed
batch's).

**Determinism.**  ART draws PGD's random starts from numpy's (and Python's) global generator;
:func:`batch_seed` derives a seed for every batch from (config seed, epoch, batch index), and
``perturb`` seeds those generators (and torch's) with it and restores their states afterwards.
The batch-order generator is not touched, so the batches are those of plain training with the
same seed, and a resumed run repeats every attack of the uninterrupted run bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..robustness import Domain, perturb
from ..robustness._art import MissingDependencyError, require_art
from .config import Config


def batch_seed(seed: int, epoch: int, batch: int) -> int:
    """The attack seed of batch ``batch`` (0-based) of epoch ``epoch``: a 32-bit mix of the three
    (numpy's ``SeedSequence``), the same on every run and resume."""
    return int(np.random.SeedSequence([seed, epoch, batch]).generate_state(1)[0])


def adversarial_count(fraction: float, batch: int) -> int:
    """How many of ``batch`` points become adversarial: round(fraction · batch), at least 1."""
    return min(batch, max(1, math.floor(fraction * batch + 0.5)))


class AdversarialBatches:
    """``mix(model, xb, yb, seed)``: a training batch with its first points replaced by
    adversarial examples (see the module docstring), built from ``[training.adversarial]``."""

    def __init__(self, config: Config, data):
        adv = config.training.adversarial
        self.attack, self.eps, self.fraction = adv.attack_spec(), adv.eps, adv.fraction
        self.domain = Domain.of_dataset(data)

    @classmethod
    def from_config(cls, config: Config, data) -> "AdversarialBatches | None":
        """The batch mixer of ``config``, or None without ``[training.adversarial]``.  ValueError
        (one line) when the Adversarial Robustness Toolbox is not installed."""
        if config.training.adversarial is None:
            return None
        try:
            require_art()
        except MissingDependencyError as error:
            raise ValueError(f"training.adversarial: {error}") from None
        return cls(config, data)

    def count(self, batch: int) -> int:
        return adversarial_count(self.fraction, batch)

    def mix(self, model, xb: torch.Tensor, yb: torch.Tensor, seed: int) -> tuple[torch.Tensor, int]:
        """(the mixed batch, shaped like ``xb``; the number k of adversarial points, its first k rows)."""
        k = self.count(len(xb))
        flat = xb.reshape(len(xb), -1)
        adv = perturb(model, flat[:k], yb[:k], self.attack, self.eps, domain=self.domain, seed=seed,
                      batch_size=max(k, 1))
        return torch.cat([adv, flat[k:]]).reshape(xb.shape), k
