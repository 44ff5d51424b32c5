"""The pieces the configuration makes a training run of, around its network.

* :func:`make_optimizer` / :func:`make_scheduler`: ``training.optimizer`` and ``training.schedule``
  (rebuilt at every multilevel level);
* :func:`smoothness` and :func:`lbfgs_decay`: terms the training objective adds to the loss;
* :func:`set_image_statistics` and :func:`batch_augmentation`: ``[data.augment]`` for images;
* :func:`refine`: the depth refinement between multilevel levels;
* :func:`calibrate_batch_norm`: the population statistics of a conv network's batch normalization.
"""

from __future__ import annotations

import torch

from ..conv_models import ConvODENet
from ..models import ODEClassifier
from ..optim import network_parameters
from .config import NEWTON_OPTIMIZERS, Config


def set_image_statistics(config: Config, model, x_train: torch.Tensor) -> None:
    """Set an ImageClassifier's input standardization from ``[data.augment]`` (fixed mean/std, or
    the per-channel statistics of the training images with ``normalize = true``)."""
    aug = config.data.augment
    if aug is None or not (aug.normalize or aug.mean is not None):
        return
    from ..data.augment import channel_stats

    if aug.mean is not None:
        mean, std = torch.tensor(aug.mean, dtype=torch.float64), torch.tensor(aug.std, dtype=torch.float64)
    else:
        mean, std = channel_stats(x_train.cpu().reshape(-1, *model.image_shape))
    if mean.shape != model.input_mean.shape:
        raise ValueError(f"data.augment: {mean.numel()} channel means for images with "
                         f"{model.input_mean.numel()} channels; expected one per channel")
    with torch.no_grad():
        model.input_mean.copy_(mean)
        model.input_std.copy_(std)


def batch_augmentation(config: Config, model):
    """``augment(xb, generator)``: crop, flip and erasing of a training batch (images), or None."""
    aug = config.data.augment
    if aug is None or not (aug.padding or aug.flip or aug.erase):
        return None
    from ..data.augment import Augmentation

    transform = Augmentation(padding=aug.padding, flip=aug.flip, erase=aug.erase)

    def augment(xb: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return transform(xb.reshape(-1, *model.image_shape), generator)

    return augment


def refine(model: ODEClassifier, grid: list[tuple[int, int]]) -> ODEClassifier:
    """Prolongate ``model`` in depth until every block has the (steps, nt) of ``grid``.

    Each prolongation doubles nt keeping θ(t) exactly (:meth:`ODEClassifier.prolongate`); the
    state grid is set to the new steps (h → h/2 per level).  Rebuild the optimizer after.
    """
    while any(block.dynamics.nt < nt for block, (_, nt) in zip(model.blocks, grid)):
        model.prolongate()
    for block, (steps, nt) in zip(model.blocks, grid):
        if block.dynamics.nt != nt:
            raise ValueError(f"cannot prolongate nt = {block.dynamics.nt} to {nt}: expected nt·2^k")
        block.steps = steps
    return model


def smoothness(model: ODEClassifier) -> torch.Tensor:
    """Σ_blocks Σ_k ‖θ_{k+1} − θ_k‖² / h_c, h_c = T/nt the control spacing (seed 002; Meganet)."""
    total = model.classifier.weight.new_zeros(())
    for block in model.blocks:
        nt = block.dynamics.nt
        if nt > 1:
            h = block.T / nt
            for w in block.dynamics.control_weights():
                total = total + (w[1:] - w[:-1]).pow(2).sum() / h
    return total


def lbfgs_decay(model: ODEClassifier, t) -> torch.Tensor | float:
    """L-BFGS has a single parameter group: the two weight decays of ``t`` (``[training]``) enter
    the loss as ½λ‖·‖²."""
    penalty: torch.Tensor | float = 0.0
    if t.weight_decay:
        penalty = penalty + 0.5 * t.weight_decay * sum(p.pow(2).sum() for p in network_parameters(model))
    if t.classifier_weight_decay:
        penalty = penalty + 0.5 * t.classifier_weight_decay * sum(
            p.pow(2).sum() for p in model.classifier.parameters())
    return penalty


def make_optimizer(config: Config, model: ODEClassifier):
    """The configured optimizer for ``model`` (rebuilt after every multilevel refinement).

    ``gauss_newton`` / ``newton`` give a :class:`stablenet.optim.GaussNewtonCG` / ``NewtonCG``
    (with ``varpro``: over the network weights only, on VarPro's reduced objective; with
    ``block_coordinate`` a :class:`stablenet.optim.BlockCoordinateDescent` around one), called as
    ``step(x, labels, penalty)`` instead of with a closure.
    """
    t = config.training
    if t.optimizer in NEWTON_OPTIMIZERS:
        return _newton_optimizer(config, model)
    groups = [{"params": network_parameters(model), "weight_decay": t.weight_decay},
              {"params": list(model.classifier.parameters()), "weight_decay": t.classifier_weight_decay}]
    if t.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=t.lr, momentum=t.momentum, nesterov=t.nesterov)
    if t.optimizer == "adam":
        return torch.optim.Adam(groups, lr=t.lr)
    # L-BFGS takes one parameter group: weight decay is added to the loss instead.
    return torch.optim.LBFGS(model.parameters(), lr=t.lr, history_size=t.lbfgs_history,
                             line_search_fn="strong_wolfe")


def _newton_optimizer(config: Config, model: ODEClassifier):
    """:func:`make_optimizer` for ``gauss_newton`` and ``newton``."""
    from ..optim import BlockCoordinateDescent, GaussNewtonCG, NewtonCG, VarPro

    t = config.training
    cls = GaussNewtonCG if t.optimizer == "gauss_newton" else NewtonCG
    options = dict(loss=t.loss, lr=t.lr, cg_rtol=t.cg_rtol, cg_max_iter=t.cg_max_iter, damping=t.damping,
                   hessian_samples=t.hessian_samples, seed=config.seed)
    network = [{"params": network_parameters(model), "weight_decay": t.weight_decay}]
    if not t.varpro:
        classifier = [{"params": list(model.classifier.parameters()), "weight_decay": t.classifier_weight_decay}]
        return cls(network + classifier, model, **options)
    vp = VarPro(model, t.loss, regularization=t.classifier_weight_decay)
    if t.block_coordinate:
        return BlockCoordinateDescent(vp, cls(network, model, **options))
    return cls(network, model, varpro=vp, **options)


def make_scheduler(config: Config, optimizer, epochs: int | None = None, batches: int = 1):
    """The learning-rate schedule over ``epochs`` (default training.epochs; one level's epochs).

    ``onecycle`` is stepped after every one of the ``batches`` per epoch, the others once per epoch.
    """
    t = config.training
    optimizer = getattr(optimizer, "theta_optimizer", optimizer)  # BlockCoordinateDescent's θ optimizer
    if t.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=t.lr_step_epochs, gamma=t.lr_decay)
    if t.schedule == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(t.lr_milestones), gamma=t.lr_decay)
    if t.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=t.lr, total_steps=(epochs or t.epochs) * batches,
                                                   pct_start=t.onecycle_pct_start)
    if t.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs or t.epochs)
    return None


def calibrate_batch_norm(model, x_train: torch.Tensor) -> int:
    """Population statistics of a conv model's in-block batch normalization over the training
    images; the number of images, or 0 for a model without such a normalization."""
    if isinstance(model, ConvODENet) and model.has_batch_norm():
        return model.calibrate_batch_norm(x_train)
    return 0
