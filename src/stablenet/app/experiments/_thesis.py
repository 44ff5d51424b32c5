"""The thesis' training protocol (seed 004), shared by the seed experiments that train on peaks.

Seed 004 (../shared/seeds/004_d979323a5caccc30.txt), §3 "Data Selection", §2.2.1 and Chapter 5:
"1,000 data points were randomly selected from each of the five classes", width nc = 8, tanh,
softmax, "we applied another optimization method, which is the Gauss-Newton method",
``fctn = dnnVarProObjFctn(net,pRegTh,pLoss,pRegW,classSolver,Ytrain,Ctrain)`` (variable
projection with a regularizer of θ and one of W), ``th0 = 1e-1*initTheta(net)`` and
``thetaOpen = thetaOpt(1:16)`` (a learned opening layer of 8 × 2 weights).

Here:

* :func:`build_network`: a learned opening tanh(K₀x), K₀ width × 2 without bias (the listing's 16
  weights), one ODE block of the tanh single layer σ(K(t)Y + b(t)) on ``controls`` control layers
  (``"constant"`` or ``"linear"`` θ(t)), then the (W, μ) classifier; every network weight (opening
  and block) is stablenet's initialization × 0.1, drawn from ``seed``;
* :func:`with_integrator`: the same weights (a copy) under another integrator / state grid;
* :func:`train_newton`: full-batch Gauss–Newton–CG steps (Armijo line search) on the
  variable-projection objective (W, μ eliminated by an inner Newton solve with λ‖·‖²/2), with
  α‖K₀‖²/2 on the opening and α Σ_k ‖θ_{k+1} − θ_k‖²/h_c on the ODE weights;
* :func:`mean_std`, :func:`over_seeds`, :func:`band`: the statistics and the plots over seeds.
"""

from __future__ import annotations

import copy
import math
import time

import torch
from torch import nn

from ... import ODEBlock, ODEClassifier, SingleLayer
from ...models import softmax_cross_entropy
from ...optim import GaussNewtonCG, VarPro, network_parameters
from ..train_parts import smoothness
from ..training import evaluate

WIDTH = 8
INIT_SCALE = 0.1               # the listing's th0 = 1e-1*initTheta(net)
ALPHA = 1e-3                   # Tikhonov on the opening, time-derivative regularizer on the ODE weights
CLASSIFIER_REG = 1e-3          # λ of VarPro's inner problem λ/2‖W‖² + λ/2‖μ‖²
CG_MAX_ITER = 20


def build_network(method: str, steps: int, *, T: float, controls: int, seed: int = 0, width: int = WIDTH,
                  interpolation: str = "constant") -> ODEClassifier:
    """Learned opening tanh(K₀x) (K₀ width × 2, no bias) → tanh single layer of ``width`` on
    ``controls`` control layers (``interpolation`` of θ(t)), [0, T] in ``steps`` steps of
    ``method`` → (W, μ); the network weights (opening and layer) are stablenet's initialization ×
    0.1, drawn from ``seed`` (the global random state is left as it was)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        block = ODEBlock(SingleLayer(width, nt=controls, activation="tanh"), T=T, steps=steps, method=method,
                         controls=interpolation)
        model = ODEClassifier(2, 5, block, opening="linear")
        model.opening = nn.Sequential(nn.Linear(2, width, bias=False), nn.Tanh())
    with torch.no_grad():
        for p in network_parameters(model):
            p.mul_(INIT_SCALE)
    return model


def with_integrator(model: ODEClassifier, method: str, steps: int) -> ODEClassifier:
    """A copy of ``model`` (same weights, same control grid) whose ODE block uses another
    integrator / step count."""
    out = copy.deepcopy(model)
    old = out.blocks[0]
    out.blocks[0] = ODEBlock(old.dynamics, T=old.T, steps=steps, method=method, controls=old.controls)
    return out


def train_newton(model: ODEClassifier, train, val, steps: int, *, alpha: float = ALPHA,
                 classifier_reg: float = CLASSIFIER_REG, cg_max_iter: int = CG_MAX_ITER) -> list[dict]:
    """``steps`` full-batch Gauss–Newton–CG steps on the VarPro objective with the thesis'
    regularizers (α‖K₀‖²/2 on the opening, α·Σ‖θ_{k+1} − θ_k‖²/h_c on the ODE weights); the
    per-step history (objective after the step, losses and accuracies after it; ``val`` may be
    None)."""
    varpro = VarPro(model, regularization=classifier_reg)
    groups = [{"params": list(model.opening.parameters()), "weight_decay": alpha},
              {"params": list(model.blocks.parameters()), "weight_decay": 0.0}]
    opt = GaussNewtonCG(groups, model, varpro=varpro, cg_max_iter=cg_max_iter)
    penalty = lambda: alpha * smoothness(model)  # noqa: E731
    history, start = [], time.perf_counter()
    for k in range(steps):
        opt.step(train.x, train.y, penalty=penalty)
        entry = {"step": k + 1, "objective": opt.last.loss_after, "cg_iterations": opt.last.cg_iterations,
                 "line_search_failed": opt.last.line_search_failed}
        entry["train_loss"], entry["train_accuracy"] = evaluate(model, train.x, train.y, softmax_cross_entropy)
        if val is not None:
            entry["val_loss"], entry["val_accuracy"] = evaluate(model, val.x, val.y, softmax_cross_entropy)
        entry["seconds"] = time.perf_counter() - start
        history.append(entry)
    model.eval()
    return history


def mean_std(values: list[float]) -> dict:
    """{"mean", "std"} (sample standard deviation, n − 1; 0 for one value)."""
    n = len(values)
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "std": std}


CURVES = ("objective", "train_accuracy", "val_accuracy")


def over_seeds(histories: list[list[dict]], keys=CURVES) -> dict:
    """Per Gauss–Newton step, the mean, min and max over seeds of each of ``keys``."""
    out = {}
    for key in keys:
        columns = list(zip(*([h[key] for h in hist] for hist in histories)))
        out[key] = {"mean": [math.fsum(c) / len(c) for c in columns], "min": [min(c) for c in columns],
                    "max": [max(c) for c in columns]}
    return out


def band(ax, curves: dict, key: str, color: str, label: str, n: int, scale: float = 1.0) -> None:
    """The mean over seeds of ``curves[key]`` as a line and its min–max as a shaded band."""
    c = curves[key]
    steps = range(1, len(c["mean"]) + 1)
    ax.plot(steps, [scale * v for v in c["mean"]], "-", color=color, label=f"{label}, mean of {n} seeds")
    ax.fill_between(steps, [scale * v for v in c["min"]], [scale * v for v in c["max"]], color=color, alpha=0.2,
                    linewidth=0)
