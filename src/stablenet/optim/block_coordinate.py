"""Block coordinate descent: an exact classifier solve, then Newton-type θ steps with it fixed."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import _checks
from .curvature import Penalty
from .newton import NewtonTypeOptimizer, StepInfo
from .varpro import InnerResult, VarPro


@dataclass
class BlockStepInfo:
    """What one :meth:`BlockCoordinateDescent.step` did: the inner solve and the θ steps."""

    loss: float
    inner: InnerResult
    theta_steps: list[StepInfo]

    @property
    def scores(self) -> torch.Tensor | None:
        """Class scores at (θ_k, W_{k+1}, μ_{k+1}) on the batch (detached), e.g. for accuracy."""
        return self.theta_steps[0].scores if self.theta_steps else None


class BlockCoordinateDescent:
    """Alternate an exact classifier solve and Newton-type steps in θ with the classifier fixed.

        (W, μ)_{k+1} = argmin ψ(θ_k; W, μ)                  (VarPro's inner Newton solve)
        θ_{k+1}      = θ_k + t p,  p from A p = −∇_θ J(θ_k, W_{k+1})   (``theta_steps`` steps)

    Unlike VarPro proper, the θ step ignores the coupling between θ and (W, μ): its gradient is
    the same (envelope theorem) but its curvature is A_θθ instead of the Schur complement, and its
    line search keeps (W, μ) fixed, so each trial point costs one forward pass and no inner solve.

    Args:
        varpro: the :class:`VarPro` whose ``solve_inner`` updates the classifier.
        theta_optimizer: a :class:`GaussNewtonCG` or :class:`NewtonCG` built *without* ``varpro``
            over the network parameters only (e.g. ``network_parameters(model)``), for the same model.
        theta_steps: Newton-type θ steps per call.

    Per batch: ``loss = bcd.step(x, labels, penalty)``; the returned value (and ``last.loss``)
    is J(θ_k, W_{k+1}) + λ/2‖W_{k+1}‖² + λ_μ/2‖μ_{k+1}‖², the objective after the inner solve and
    before the θ step.  Attach learning-rate schedulers and checkpoint the state through
    ``bcd.theta_optimizer`` (a torch.optim.Optimizer); the classifier lives in the model.
    """

    def __init__(self, varpro: VarPro, theta_optimizer: NewtonTypeOptimizer, *, theta_steps: int = 1):
        if not isinstance(varpro, VarPro):
            raise TypeError(f"varpro must be a stablenet.optim.VarPro, got {type(varpro).__name__}")
        if not isinstance(theta_optimizer, NewtonTypeOptimizer):
            raise TypeError(f"theta_optimizer must be a GaussNewtonCG or NewtonCG, got "
                            f"{type(theta_optimizer).__name__}")
        if theta_optimizer.varpro is not None:
            raise ValueError("theta_optimizer must be built without varpro (block coordinate descent "
                             "keeps the classifier fixed in the θ step)")
        if theta_optimizer.model is not varpro.model:
            raise ValueError("theta_optimizer and varpro must share the model")
        if theta_optimizer.loss != varpro.loss:
            raise ValueError(f"theta_optimizer.loss ({theta_optimizer.loss!r}) must equal varpro.loss "
                             f"({varpro.loss!r})")
        classifier = {id(p) for p in varpro.model.classifier.parameters()}
        if any(id(p) in classifier for p in theta_optimizer.parameters):
            raise ValueError("theta_optimizer must not optimize the classifier weights (the inner solve "
                             "does); pass network_parameters(model)")
        self.varpro = varpro
        self.theta_optimizer = theta_optimizer
        self.theta_steps = _checks.positive_int("theta_steps", theta_steps)
        self.last: BlockStepInfo | None = None

    @property
    def param_groups(self):
        """The θ optimizer's parameter groups (what a learning-rate scheduler scales)."""
        return self.theta_optimizer.param_groups

    def step(self, x: torch.Tensor, labels: torch.Tensor, penalty: Penalty | None = None) -> torch.Tensor:
        """Inner solve for (W, μ) on the batch's features, then ``theta_steps`` θ steps."""
        with torch.no_grad():
            features = self.varpro.model.features(x)
        inner = self.varpro.solve_inner(features, labels)
        reg = float(self.varpro.classifier_penalty(inner.weight, inner.bias))
        infos, loss = [], None
        for _ in range(self.theta_steps):
            value = self.theta_optimizer.step(x, labels, penalty)
            loss = float(value) + reg if loss is None else loss
            infos.append(self.theta_optimizer.last)
        self.last = BlockStepInfo(loss, inner, infos)
        return torch.tensor(loss, dtype=features.dtype)

    def state_dict(self):
        """The θ optimizer's state (the classifier's weights live in the model)."""
        return self.theta_optimizer.state_dict()

    def load_state_dict(self, state_dict) -> None:
        """Restore the θ optimizer's state from a :meth:`state_dict`."""
        self.theta_optimizer.load_state_dict(state_dict)
