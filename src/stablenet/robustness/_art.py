"""The bridge to the Adversarial Robustness Toolbox (ART), imported only when an attack runs.

Why ART (adversarial-robustness-toolbox 1.20.1; Nicolae et al., "Adversarial Robustness Toolbox
v1.0.0", arXiv:1807.01069) and not torchattacks or foolbox: it is actively maintained (LF AI &
Data), accepts per-feature clip values (so 2-D peaks points and images both stay in their valid
domain), has FGSM and PGD in L∞ and L2 with random restarts and the AutoAttack ensemble, and adds
only ``six`` to stablenet's dependencies.  torchattacks 3.5.1 pins requests~=2.25.1, pulls
torchvision (which would move torch off stablenet's pin) and clamps inputs to [0, 1] only;
foolbox 3.3.4 has no AutoAttack and pulls GitPython, requests and eagerpy.

ART works on float32 numpy arrays.  :func:`classifier` wraps a stablenet model so that ART sees
a function of the raw inputs (flat vectors, or (C, H, W) images for image data) with the
model's own dtype and standardization inside; gradients reach the input only (the model's
weights are frozen while an attack runs, :func:`frozen`).
"""

from __future__ import annotations

import contextlib
import math
import random

import numpy as np
import torch
from torch import nn

INSTALL = "pip install 'stablenet[robustness]'"


class MissingDependencyError(RuntimeError):
    """An optional dependency (here ART) is not installed; the message says how to install it."""


def require_art():
    """The ``art`` package, or one clear error naming the extra that installs it."""
    try:
        import art  # noqa: F401
        from art.estimators.classification import PyTorchClassifier  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(f"adversarial attacks need the Adversarial Robustness Toolbox "
                                     f"(adversarial-robustness-toolbox, not importable: {exc}); install it with "
                                     f"{INSTALL}") from None
    return art


class _Logits(nn.Module):
    """x as ART passes it (float32, (batch, *input_shape)) → the model's logits (float32)."""

    def __init__(self, model: nn.Module, dtype: torch.dtype):
        super().__init__()
        self.model = model
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.reshape(x.shape[0], -1).to(self.dtype)).to(torch.float32)


@contextlib.contextmanager
def frozen(model: nn.Module):
    """The model in eval mode with its parameters' ``requires_grad`` off; both restored after."""
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    training = model.training
    model.eval()
    for p in params:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)
        model.train(training)


def classifier(model: nn.Module, domain, n_classes: int):
    """An ART ``PyTorchClassifier`` of ``model`` with the per-feature clip values of ``domain``
    (inputs shaped (C, H, W) for image domains, flat otherwise)."""
    require_art()
    from art.estimators.classification import PyTorchClassifier

    param = next(model.parameters())
    shape = tuple(domain.image_shape) if domain.image_shape is not None else (domain.features,)
    lower = domain.lower.numpy().astype(np.float32).reshape(shape)
    upper = domain.upper.numpy().astype(np.float32).reshape(shape)
    if bool((lower == lower.flat[0]).all() and (upper == upper.flat[0]).all()):
        clip = (float(lower.flat[0]), float(upper.flat[0]))  # scalar bounds: ART's fast path
    else:
        clip = (lower, upper)
    assert math.prod(shape) == domain.features
    return PyTorchClassifier(model=_Logits(model, param.dtype), loss=nn.CrossEntropyLoss(), input_shape=shape,
                             nb_classes=n_classes, clip_values=clip, channels_first=True,
                             device_type="gpu" if param.device.type == "cuda" else "cpu"), shape


@contextlib.contextmanager
def numpy_seed(seed: int):
    """ART draws random starts from numpy's global generator (and its Square attack from Python's
    ``random``): seed both for the attack and restore their states after, so results are
    reproducible and nothing else's random stream moves."""
    state, py_state = np.random.get_state(), random.getstate()
    np.random.seed(seed)
    random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)
        random.setstate(py_state)
