"""The network of a configuration: config → library spec → torch modules.

``build_model(config, in_features, n_classes, level=…, image_shape=…)`` gives the dense
:class:`~stablenet.models.ODEClassifier` or, for ``model.kind = "conv"``, the
:class:`~stablenet.conv_models.ImageClassifier`, at a multilevel level's grids, initialized from
``config.seed``; the trainer, ``load_run`` and the experiments all build networks through it.
The ``[model]`` table gives the spec (:mod:`stablenet.specs`, where names become objects);
this module adds only what the data and the training level decide.
"""

from __future__ import annotations

import math

import torch

from ..conv_models import build_image_classifier
from ..models import ODEClassifier
from .config import Config


def build_model(config: Config, in_features: int, n_classes: int, *, level: int | None = None,
                image_shape: tuple[int, ...] | None = None) -> ODEClassifier:
    """The classifier network of a configuration, initialized from ``config.seed``.

    ``level`` (1 = coarsest) picks the state steps and control points of a ``[multilevel]``
    configuration's level; the default is its finest level, the network its run ends with.
    ``model.kind = "conv"`` gives a :class:`stablenet.conv_models.ImageClassifier` for images of
    ``image_shape`` (the data set's: (H, W) for one channel, or (C, H, W)), which takes the flat
    feature vectors of the data sets.
    """
    _check_device(config.training.device)
    grids = _grids_at_level(config, level)
    if config.model.kind == "conv":
        shape = _image_shape(image_shape, in_features)
        steps, nt = grids[0]  # every block of a conv model has the grid of [model]
        spec = config.model.spec(shape[0], n_classes, steps=steps, nt=nt)
        torch.manual_seed(config.seed)
        model = build_image_classifier(spec, shape)
    else:
        spec = config.model.spec(in_features, n_classes).with_grids(grids)
        torch.manual_seed(config.seed)
        model = spec.build()
    return model.to(dtype=getattr(torch, config.training.dtype), device=config.training.device)


def _check_device(name: str) -> None:
    """training.device names a device this torch can use (one line otherwise)."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"training.device: {name!r} is not a torch device; expected e.g. 'cpu' or 'cuda'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"training.device: {name!r} but this torch has no usable CUDA device "
                         f"(torch {torch.__version__}); expected 'cpu' here (--set training.device=cpu)")


def _image_shape(image_shape, in_features: int) -> tuple[int, int, int]:
    """(C, H, W) of the data set's images ((H, W): one channel), checked against in_features."""
    if image_shape is None:
        raise ValueError("model.kind 'conv' needs image data: the data set has no image_shape")
    shape = tuple(image_shape) if len(image_shape) == 3 else (1, *image_shape)
    if math.prod(shape) != in_features:
        raise ValueError(f"image_shape {tuple(image_shape)} does not hold {in_features} features")
    return shape


def _grids_at_level(config: Config, level: int | None) -> list[tuple[int, int]]:
    """(steps, nt) of every block on a multilevel level (default: the finest)."""
    grids = config.level_grids()
    if config.multilevel is None:
        if level not in (None, 1):
            raise ValueError(f"level must be 1 (or None) for a configuration without [multilevel], got {level!r}")
        return grids[0]
    if level is None:
        return grids[-1]
    if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= len(grids):
        raise ValueError(f"level must be an integer in 1..{len(grids)} (multilevel.levels), got {level!r}")
    return grids[level - 1]
