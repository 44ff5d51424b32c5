"""The network of a configuration: where the names of a TOML config become torch modules.

``build_model(config, in_features, n_classes, level=…, image_shape=…)`` gives the dense
:class:`~stablenet.models.ODEClassifier` or, for ``model.kind = "conv"``, the
:class:`~stablenet.conv_models.ImageClassifier`, at a multilevel level's grids, initialized from
``config.seed``; the trainer, ``load_run`` and the experiments all build networks through it.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..block import ODEBlock
from ..dynamics import DYNAMICS
from ..gradients import make_gradient_mode
from ..models import ODEClassifier
from .config import BlockConfig, Config


def build_block(cfg: BlockConfig) -> ODEBlock:
    """One ODE block from its configuration."""
    kwargs: dict[str, Any] = dict(nt=cfg.nt or cfg.steps, activation=cfg.activation,
                                  normalization=cfg.normalization)
    if cfg.dynamics == "hamiltonian":
        kwargs["width_z"] = cfg.width_z
    if cfg.dynamics in ("double", "parabolic"):
        kwargs["hidden"] = cfg.hidden
    if cfg.dynamics == "antisymmetric":
        kwargs["gamma"] = cfg.gamma
    dynamics = DYNAMICS[cfg.dynamics](cfg.width, **kwargs)
    gradient = make_gradient_mode(cfg.gradient, adjoint_method=cfg.adjoint_method,
                                  adjoint_steps=cfg.adjoint_steps,
                                  checkpoint_segment=cfg.checkpoint_segment)
    return ODEBlock(dynamics, T=cfg.T, steps=cfg.steps, method=cfg.method, controls=cfg.controls,
                    gradient=gradient)


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
    torch.manual_seed(config.seed)
    if config.model.kind == "conv":
        return _build_conv_model(config, in_features, n_classes, level, image_shape)
    blocks = [build_block(b) for b in _blocks_at_level(config, level)]
    model = ODEClassifier(in_features, n_classes, blocks, opening=config.model.opening)
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


def _build_conv_model(config: Config, in_features: int, n_classes: int, level: int | None, image_shape):
    from ..conv_models import build_image_classifier

    if image_shape is None:
        raise ValueError("model.kind 'conv' needs image data: the data set has no image_shape")
    shape = tuple(image_shape) if len(image_shape) == 3 else (1, *image_shape)
    if math.prod(shape) != in_features:
        raise ValueError(f"image_shape {tuple(image_shape)} does not hold {in_features} features")
    grids = config.level_grids()
    level = len(grids) if level is None else level
    if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= len(grids):
        raise ValueError(f"level must be an integer in 1..{len(grids)}, got {level!r}")
    steps, nt = grids[level - 1][0]
    model = build_image_classifier(config.model.conv_spec(shape[0], n_classes, steps=steps, nt=nt), shape)
    return model.to(dtype=getattr(torch, config.training.dtype), device=config.training.device)


def _blocks_at_level(config: Config, level: int | None) -> list[BlockConfig]:
    """The block configurations with the steps and nt of a multilevel level (default the finest)."""
    if config.multilevel is None:
        if level not in (None, 1):
            raise ValueError(f"level must be 1 (or None) for a configuration without [multilevel], got {level!r}")
        return list(config.model.blocks)
    grids = config.level_grids()
    if level is None:
        level = len(grids)
    if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= len(grids):
        raise ValueError(f"level must be an integer in 1..{len(grids)} (multilevel.levels), got {level!r}")
    return [b.model_copy(update={"steps": steps, "nt": nt})
            for b, (steps, nt) in zip(config.model.blocks, grids[level - 1])]
