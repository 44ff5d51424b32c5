"""Classifier networks: opening layer → ODE blocks → linear classifier, and their losses.

    x ──opening──▶ Y_0 ──ODE block(s)──▶ Y_N ──(W, μ)──▶ class scores

The optimal-control view of seeds 002/003: the blocks are the dynamical-system constraint, the
classifier (W, μ) and the loss make the objective.
"""

from __future__ import annotations

from functools import partial
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import _checks
from .block import ODEBlock


class DuplicateFeatures(nn.Module):
    """The fixed opening of seed 004: repeat the input features ``copies`` times (no weights).

    With 2 input features and ``copies = 4`` the network has width 8, as in the peaks experiments.
    """

    def __init__(self, in_features: int, copies: int):
        super().__init__()
        self.in_features = _checks.positive_int("in_features", in_features)
        self.copies = _checks.positive_int("copies", copies)
        self.out_features = in_features * copies

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.repeat(*([1] * (x.dim() - 1)), self.copies)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, copies={self.copies}"


OPENINGS = ("linear", "duplicate")


def propagate(y: torch.Tensor, layers, *, return_states: bool = False):
    """Apply ``layers`` (ODE blocks and the connecting layers between them) in order to ``y``.

    Returns the output, or with ``return_states`` a list of every ODE block's stacked states
    (N + 1, batch, …) in order, the feature propagation the stability analysis linearizes.
    """
    trajectories = []
    for layer in layers:
        if return_states and isinstance(layer, ODEBlock):
            states = layer(y, return_states=True)
            trajectories.append(states)
            y = states[-1]
        else:
            y = layer(y)
    return trajectories if return_states else y


class ODEClassifier(nn.Module):
    """Opening layer, one or more :class:`ODEBlock`, and a linear classifier (W, μ).

    Args:
        in_features: number of input features.
        n_classes: number of classes (outputs of the classifier).
        blocks: an ODEBlock or a sequence of them.  Where consecutive widths differ a learned
            linear map joins them.
        opening: ``"linear"`` (a learned linear lift to the first block's width) or
            ``"duplicate"`` (seed 004: repeat the features; the first width must be a multiple of
            ``in_features``).
    """

    def __init__(self, in_features: int, n_classes: int, blocks: ODEBlock | Sequence[ODEBlock], *,
                 opening: str = "linear"):
        super().__init__()
        self.in_features = _checks.positive_int("in_features", in_features)
        self.n_classes = _checks.positive_int("n_classes", n_classes)
        blocks = [blocks] if isinstance(blocks, ODEBlock) else list(blocks)
        if not blocks or not all(isinstance(b, ODEBlock) for b in blocks):
            raise TypeError("blocks must be an ODEBlock or a non-empty sequence of ODEBlocks")
        _checks.choice("opening", opening, OPENINGS)
        width = blocks[0].dynamics.width
        if opening == "duplicate":
            if width % in_features:
                raise ValueError(
                    f"opening='duplicate' repeats the {in_features} input features, so the first "
                    f"block's width must be a multiple of {in_features}, got width {width}"
                )
            self.opening = DuplicateFeatures(in_features, width // in_features)
        else:
            self.opening = nn.Linear(in_features, width)
        self.blocks = nn.ModuleList(blocks)
        self.connectors = nn.ModuleList(
            nn.Identity() if a.dynamics.width == b.dynamics.width else nn.Linear(a.dynamics.width, b.dynamics.width)
            for a, b in zip(blocks[:-1], blocks[1:])
        )
        self.classifier = nn.Linear(blocks[-1].dynamics.width, n_classes)

    def features(self, x: torch.Tensor, *, return_states: bool = False):
        """Y_N of the last block (or, with ``return_states``, each block's stacked states)."""
        _checks.finite_state("x", x, self.in_features)
        _checks.same_device_and_dtype("ODEClassifier input x", x, self.classifier.weight, "the model's weights",
                                      "; convert with model.to({got}) or x.to({expected})")
        layers = [self.blocks[0]]
        for connector, block in zip(self.connectors, self.blocks[1:]):
            layers += [connector, block]
        return propagate(self.opening(x), layers, return_states=return_states)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores W Y_N + μ, shape (batch, n_classes)."""
        return self.classifier(self.features(x))

    def prolongate(self) -> "ODEClassifier":
        """Double every block's control points (multilevel training); rebuild the optimizer after."""
        for block in self.blocks:
            block.prolongate()
        return self


def softmax_cross_entropy(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean softmax cross-entropy of class scores against integer labels."""
    return F.cross_entropy(scores, labels)


def least_squares(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ½‖scores − onehot(labels)‖²."""
    target = F.one_hot(labels, scores.shape[-1]).to(scores.dtype)
    return 0.5 * (scores - target).pow(2).sum(-1).mean()


LOSSES = {"cross_entropy": softmax_cross_entropy, "least_squares": least_squares}


def get_loss(name: str, label_smoothing: float = 0.0):
    """A loss function by name: ``cross_entropy`` or ``least_squares``.

    ``label_smoothing`` ε ∈ [0, 1) (cross-entropy only) trains against the targets
    (1 − ε)·onehot + ε/C (Szegedy et al., CVPR 2016), as ``F.cross_entropy(label_smoothing=ε)``.
    """
    loss = LOSSES[_checks.choice("loss", name, LOSSES)]
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing: got {label_smoothing!r}, expected a number in [0, 1)")
    if label_smoothing == 0.0:
        return loss
    if loss is not softmax_cross_entropy:
        raise ValueError(f"label_smoothing: got {label_smoothing!r} with loss {name!r}; it applies to 'cross_entropy' only")
    return partial(F.cross_entropy, label_smoothing=label_smoothing)
