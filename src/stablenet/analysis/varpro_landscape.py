"""Landscapes of the variable-projection objective (seed 004 §3.3 and its Chapter 5 listing).

The thesis plots ``Viewer(a, b) = eval(fctn, thetaOpt + (.05*a-1)*d1normed + (.05*b-1)*d2normed)``
for a, b = 1 … 40, where ``fctn = dnnVarProObjFctn(...)`` is the reduced objective of variable
projection: the classifier (W, μ) is not part of θ, it is re-solved at every point, and the
regularizers of θ and of W are included.  The directions are Gaussian, ``normrnd(0,1,[n,1])``, and
normalized per parameter group (the opening layer, then each ResNet layer's weights and bias) by
*averages*: ``d1normed = d1 .* mean_g(θ) ./ mean_g(d1)`` entry by entry, mean_g the mean over the
entry's group (the text: "we normalized the vectors and weights with their averages instead of
applying the Frobenius norm for simplicity").

Here:

* :func:`average_normalized_direction`: the listing's normalization, d ← d · mean_g(θ) / mean_g(d);
* :func:`norm_normalized_direction`: the Frobenius version the thesis cites (its Eq. 3.3, Li et al.
  2018) applied per group, d ← d · ‖θ_g‖ / ‖d_g‖;
* :func:`reduced_objective_surface`: Φ(θ* + αδ + βη) on a grid, with (W, μ) re-solved by
  :class:`~stablenet.optim.VarPro` at every point (warm-started from the neighbouring point) and a
  penalty R(θ) added, on a float64 copy of the model (the model itself is never modified).

A direction is a list of groups, each a list of tensors aligned with the group's tensors of θ*.
"""

from __future__ import annotations

import copy
from typing import Callable, Sequence

import torch
from torch import nn

from ..optim import VarPro

Groups = Sequence[Sequence[torch.Tensor]]


def _draw(groups: Groups, generator: torch.Generator | None) -> list[list[torch.Tensor]]:
    """Standard normal entries shaped like every tensor of every group (float64, CPU, in order)."""
    return [[torch.randn(t.shape, generator=generator, dtype=torch.float64) for t in g] for g in groups]


def _flat(group: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.detach().to(torch.float64).reshape(-1).cpu() for t in group])


def average_normalized_direction(groups: Groups, *, generator: torch.Generator | None = None
                                 ) -> list[list[torch.Tensor]]:
    """The thesis' listing: a Gaussian d, then per group g every entry d_i ← d_i · mean_g(θ) / mean_g(d).

    ``groups``: θ* split into groups (e.g. [[K₀], [K₁, b₁], …]).  Returns float64 tensors shaped
    like θ*'s, grouped the same way.  The ratio mean_g(θ)/mean_g(d) is that of two averages: it is
    unbounded when mean_g(d) is near 0 (as in the listing; see :func:`group_scales`).
    """
    out = []
    for g, d in zip(groups, _draw(groups, generator)):
        scale = _flat(g).mean() / _flat(d).mean()
        out.append([u * scale for u in d])
    return out


def norm_normalized_direction(groups: Groups, *, generator: torch.Generator | None = None
                              ) -> list[list[torch.Tensor]]:
    """Eq. 3.3 of the thesis (Li et al.'s filter normalization) with a group as the filter: a
    Gaussian d, then d_g ← d_g · ‖θ_g‖ / ‖d_g‖ (Frobenius norms over the group)."""
    out = []
    for g, d in zip(groups, _draw(groups, generator)):
        scale = _flat(g).norm() / _flat(d).norm()
        out.append([u * scale for u in d])
    return out


def group_scales(groups: Groups, direction: Groups) -> list[float]:
    """‖d_g‖ / ‖θ_g‖ for every group: how far a unit step along ``direction`` moves each group,
    relative to its own size."""
    return [float(_flat(d).norm() / _flat(g).norm()) for g, d in zip(groups, direction)]


def reduced_objective_surface(model: nn.Module, select: Callable[[nn.Module], Groups], x: torch.Tensor,
                              labels: torch.Tensor, directions: tuple[Groups, Groups], alphas, betas=None, *,
                              regularization: float = 1e-3, penalty: Callable[[nn.Module], torch.Tensor] | None = None,
                              dtype: torch.dtype = torch.float64, tol: float | None = None) -> dict:
    """Φ(α, β) = VarPro's reduced objective + R at θ* + α δ + β η on the grid ``alphas`` × ``betas``.

    Args:
        model: an :class:`~stablenet.models.ODEClassifier` (anything with ``features`` and a
            ``classifier`` that :class:`~stablenet.optim.VarPro` accepts) at θ*.  A ``dtype`` copy
            is evaluated; the model is left as it was.
        select: ``select(m)`` returns the groups of parameters of a model ``m`` that are perturbed
            (the same grouping as the directions); it is called on the copy, whose parameters are
            then overwritten in place at every grid point.  The classifier must not be among them:
            it is re-solved.
        x, labels: the data Φ is measured on (the thesis: the training data).
        directions: (δ, η), each grouped like ``select(model)``.
        alphas, betas: the grid values (``betas`` defaults to ``alphas``).
        regularization: λ of VarPro's λ/2(‖W‖² + ‖μ‖²).
        penalty: R(m), the regularizer of θ (e.g. Tikhonov on the opening + the time smoothness),
            evaluated on the copy at every point; None for none.
        tol: the inner solve's gradient tolerance (VarPro's default when None).

    The inner problem (W, μ) is solved at every point by Newton's method, warm-started from the
    solution at the previous point of a boustrophedon sweep (rows in order, columns alternately
    forwards and backwards, so that consecutive points are grid neighbours) and, at the first
    point, from the model's own classifier.

    Returns float64 tensors ``alphas``, ``betas``, ``objective`` (Φ + R), ``loss`` (the data loss
    at (W*, μ*)), ``accuracy`` (training accuracy of the re-solved classifier) and
    ``inner_iterations`` (len(alphas), len(betas)), indexed [i, j] ↔ (α_i, β_j), and
    ``inner_unconverged`` (the number of points whose inner solve stopped short of ``tol``).
    """
    alphas = torch.as_tensor(alphas, dtype=torch.float64).reshape(-1)
    betas = alphas.clone() if betas is None else torch.as_tensor(betas, dtype=torch.float64).reshape(-1)
    work = copy.deepcopy(model).to(dtype)
    work.eval()
    groups = [list(g) for g in select(work)]
    if len(groups) != len(directions[0]) or len(groups) != len(directions[1]):
        raise ValueError(f"directions have {len(directions[0])} / {len(directions[1])} groups, select gives "
                         f"{len(groups)}")
    center = [[t.detach().clone() for t in g] for g in groups]
    d1, d2 = ([[u.to(device=t.device, dtype=dtype) for u, t in zip(dg, g)] for dg, g in zip(d, center)]
              for d in directions)
    varpro = VarPro(work, regularization=regularization, tol=tol)
    x = x.to(dtype)
    shape = (len(alphas), len(betas))
    objective, loss = torch.empty(shape, dtype=torch.float64), torch.empty(shape, dtype=torch.float64)
    acc, iters = torch.empty(shape, dtype=torch.float64), torch.empty(shape, dtype=torch.float64)
    unconverged = 0
    init = (work.classifier.weight.detach().clone(), work.classifier.bias.detach().clone())
    with torch.no_grad():
        for i, a in enumerate(alphas.tolist()):
            cols = range(len(betas)) if i % 2 == 0 else range(len(betas) - 1, -1, -1)
            for j in cols:
                b = float(betas[j])
                for g, c, u, v in zip(groups, center, d1, d2):
                    for p, c0, u0, v0 in zip(g, c, u, v):
                        p.copy_(c0 + a * u0 + b * v0)
                features = work.features(x)
                inner = varpro.solve_inner(features, labels, init=init, write=False)
                init = (inner.weight, inner.bias)
                value = varpro.reduced_value(features, labels, inner)
                if penalty is not None:
                    value = value + penalty(work)
                objective[i, j] = float(value)
                loss[i, j] = inner.loss
                scores = torch.nn.functional.linear(features, inner.weight, inner.bias)
                acc[i, j] = float((scores.argmax(-1) == labels).to(torch.float64).mean())
                iters[i, j] = inner.iterations
                unconverged += not inner.converged
    return {"alphas": alphas, "betas": betas, "objective": objective, "loss": loss, "accuracy": acc,
            "inner_iterations": iters, "inner_unconverged": unconverged}


__all__ = ["average_normalized_direction", "norm_normalized_direction", "group_scales",
           "reduced_objective_surface"]
