"""Loss landscapes: filter-normalized random directions, 2-D loss surfaces, 1-D slices.

After Li, Xu, Taylor, Studer & Goldstein, "Visualizing the loss landscape of neural nets"
(NeurIPS 2018, arXiv:1712.09913), the method seed 004 §3.3 uses (Figs. 3.7–3.8):

    f(α, β) = L(θ* + α δ + β η)                       (2-D surface around a trained θ*)
    g(α)    = L((1 − α) θ_a + α θ_b)                  (1-D linear interpolation, e.g. θ_0 → θ*)
    g(α)    = L(θ_a + α δ)                            (1-D slice along a direction)

with δ, η Gaussian random directions rescaled *filter-wise*, d_{i,j} ← d_{i,j} ‖θ_{i,j}‖ / ‖d_{i,j}‖
for the j-th filter of the i-th layer, so that the plots of networks whose weights have
different scales can be compared.

Everything here works on any ``torch.nn.Module``: parameter sets are lists of tensors aligned with
``model.named_parameters()`` (or mappings from those names to tensors), the network is evaluated
with :func:`torch.func.functional_call` on copies of the weights, so the model's own parameters
are never written to (its train/eval flags are set to eval during the evaluations and put back
exactly as they were).  Combinations θ* + αδ + βη are formed in float64; by default the network is
also evaluated in float64 (``dtype=None`` keeps each tensor's own dtype).

What a "filter" is (Li et al.: an output channel of a convolution, a row of a dense matrix):

* a plain parameter with 2 or more dimensions (``nn.Linear.weight`` (out, in), a convolution
  kernel (out, in, kh, kw)): each slice ``p[i]`` along the first dimension is one filter;
* a stacked control weight of a stablenet :class:`~stablenet.dynamics.Dynamics` (registered in
  its ``control_names``, shape (nt, …), also through a parametrization's ``original``): the leading
  control dimension is a stack of nt separate layers, so each control point k is a layer of its
  own and each ``p[k, i]`` (control point k, output row i; e.g. ``K[k, i, :]`` of
  ``SingleLayer``) is one filter.  With nt = steps (one weight set per layer, the standard
  ResNet) this is exactly Li et al.'s per-layer, per-row normalization;
* bias-like tensors are those with at most one dimension per layer: plain 0-D/1-D parameters
  (``nn.Linear.bias``, norm scales) and stacked control weights of shape (nt, w) (``b`` of
  ``SingleLayer``, ``b_y``/``b_z`` of ``Hamiltonian``).  With ``ignore_biases=True`` (Li et
  al.'s ``ignore='biasbn'``, the default) their direction is zero.  Otherwise each of them (per
  control point for stacked ones) is treated as one filter: the Gaussian vector is rescaled to the
  norm of the bias vector.  (Li et al.'s code instead sets the direction equal to the bias
  itself; a rescaled random vector keeps the direction random.)
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

import torch
from torch import nn
from torch.func import functional_call

from ..dynamics import Dynamics

ParameterSet = Sequence[torch.Tensor] | Mapping[str, torch.Tensor]

_EPS = 1e-10   # Li et al.'s guard against dividing by a zero-norm random filter


# ------------------------------------------------------------------------------------- helpers

def _owner_and_name(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    """The module that declares parameter ``name`` and the tensor's own name there (for a
    parametrized weight ``….parametrizations.K.original`` that is the dynamics module and ``K``)."""
    parts = name.split(".")
    if "parametrizations" in parts[:-1]:
        i = len(parts) - 1 - parts[::-1].index("parametrizations")
        return model.get_submodule(".".join(parts[:i])), parts[i + 1]
    return model.get_submodule(".".join(parts[:-1])), parts[-1]


def is_stacked_control_weight(model: nn.Module, name: str) -> bool:
    """Whether parameter ``name`` of ``model`` is a stablenet control weight (nt, …)."""
    owner, tensor = _owner_and_name(model, name)
    return isinstance(owner, Dynamics) and tensor in owner.control_names


def _filters(model: nn.Module, name: str, p: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """``p`` reshaped to (number of filters, filter size) and whether it is bias-like.

    Leading "layer" dimensions: one (the control dimension) for a stacked control weight, none
    otherwise.  Bias-like (at most one dimension per layer): one row per layer.  Otherwise one row
    per (layer, first per-layer index), i.e. per output row / output channel.
    """
    lead = 1 if is_stacked_control_weight(model, name) else 0
    bias = p.dim() - lead <= 1
    k = lead if bias else lead + 1
    return p.reshape(math.prod(p.shape[:k]), -1), bias


def _as_list(model: nn.Module, params: ParameterSet | None, what: str) -> list[torch.Tensor]:
    """A parameter set as a list aligned with ``model.named_parameters()`` (None: the model's)."""
    named = list(model.named_parameters())
    if params is None:
        return [p.detach() for _, p in named]
    if isinstance(params, Mapping):
        missing = [n for n, _ in named if n not in params]
        if missing:
            raise KeyError(f"{what} has no entry for parameter(s) {', '.join(missing)}")
        params = [params[n] for n, _ in named]
    params = list(params)
    if len(params) != len(named):
        raise ValueError(f"{what} has {len(params)} tensors, the model has {len(named)} parameters")
    for (n, p), q in zip(named, params):
        if tuple(q.shape) != tuple(p.shape):
            raise ValueError(f"{what}: {n} has shape {tuple(q.shape)}, the model's is {tuple(p.shape)}")
    return [q.detach() for q in params]


def parameters_of(model: nn.Module) -> list[torch.Tensor]:
    """A detached float64 copy of the model's parameters (e.g. θ_0 before training)."""
    return [p.detach().to(torch.float64, copy=True) for p in model.parameters()]


def _evaluate(model: nn.Module, loss_fn: Callable, x, y, params: list[torch.Tensor],
              dtype: torch.dtype | None) -> tuple[float, float | None]:
    """(loss, accuracy or None) of the model with the given float64 parameters."""
    values = {n: t.to(q.dtype if dtype is None else dtype)
              for (n, q), t in zip(model.named_parameters(), params)}
    for n, b in model.named_buffers():
        values[n] = b.to(dtype) if dtype is not None and b.is_floating_point() else b
    out = functional_call(model, values, (x,))
    loss = float(loss_fn(out, y))
    acc = None
    if (isinstance(out, torch.Tensor) and out.dim() == 2 and isinstance(y, torch.Tensor)
            and not y.is_floating_point() and y.shape == out.shape[:1]):
        acc = float((out.argmax(-1) == y).to(torch.float64).mean())
    return loss, acc


class _EvalMode:
    """Eval mode during the evaluations; each module's own ``training`` flag put back after."""

    def __init__(self, model: nn.Module):
        self.model = model

    def __enter__(self):
        self.flags = [(m, m.training) for m in self.model.modules()]
        self.model.eval()

    def __exit__(self, *exc):
        for m, flag in self.flags:
            m.training = flag


def _cast_input(x, dtype):
    if dtype is not None and isinstance(x, torch.Tensor) and x.is_floating_point():
        return x.to(dtype)
    return x


# ---------------------------------------------------------------------------------- directions

def random_direction(model: nn.Module, *, generator: torch.Generator | None,
                     filter_normalize: bool = True, ignore_biases: bool = True) -> list[torch.Tensor]:
    """A Gaussian random direction in parameter space, filter-normalized (Li et al. 2018, Eq. 3.3
    of seed 004): d_{i,j} ← d_{i,j} ‖θ_{i,j}‖ / (‖d_{i,j}‖ + 1e-10) for every filter j of layer i.

    Returns one float64 tensor per parameter, shaped like it and on its device, in the order of
    ``model.parameters()``.  The entries are drawn on the CPU from ``generator`` (a
    ``torch.Generator``; None: the global RNG), parameter by parameter, so the same generator
    state gives the same direction on any device.  How filters and biases are found, for plain
    and for stacked (nt, …) ODE weights, is described in the module docstring: for a
    ``SingleLayer`` weight K (nt, w, w) each row K[k, i, :] is a filter; its bias b (nt, w) is
    bias-like and gets a zero direction when ``ignore_biases``.

    ``filter_normalize=False`` returns the raw Gaussian direction (bias-like entries still zeroed
    when ``ignore_biases``).
    """
    direction = []
    for name, p in model.named_parameters():
        d = torch.randn(p.shape, generator=generator, dtype=torch.float64)
        w = p.detach().to(device="cpu", dtype=torch.float64)
        d_rows, bias = _filters(model, name, d)
        w_rows, _ = _filters(model, name, w)
        if bias and ignore_biases:
            d_rows = torch.zeros_like(d_rows)
        elif filter_normalize:
            scale = w_rows.norm(dim=1, keepdim=True) / (d_rows.norm(dim=1, keepdim=True) + _EPS)
            d_rows = d_rows * scale
        direction.append(d_rows.reshape(p.shape).to(p.device))
    return direction


def filter_norms(model: nn.Module, tensors: ParameterSet | None = None) -> list[torch.Tensor]:
    """The norm of every filter of each tensor (default: of the parameters), float64, as used by
    :func:`random_direction`; bias-like tensors give one norm per layer (per control point)."""
    named = [n for n, _ in model.named_parameters()]
    return [_filters(model, n, t.to(torch.float64))[0].norm(dim=1)
            for n, t in zip(named, _as_list(model, tensors, "tensors"))]


# ------------------------------------------------------------------------------------- surfaces

def loss_surface_2d(model: nn.Module, loss_fn: Callable, x, y, *,
                    directions: tuple[ParameterSet, ParameterSet] | None = None,
                    span: tuple[float, float] = (-1.0, 1.0), resolution: int = 21,
                    generator: torch.Generator | None = None, center: ParameterSet | None = None,
                    dtype: torch.dtype | None = torch.float64) -> dict:
    """The loss surface f(α, β) = L(θ* + α δ + β η) on a resolution × resolution grid (Li et al.
    2018, seed 004 Figs. 3.7–3.8).

    Args:
        model: any module; ``model(x)`` gives what ``loss_fn`` takes.  Never modified: it is
            evaluated with ``torch.func.functional_call`` under ``torch.no_grad``.
        loss_fn: ``loss_fn(model(x), y)`` → scalar tensor (e.g. ``softmax_cross_entropy``).
        x: the inputs the loss is measured on (Li et al.: the training set).
        y: their targets.
        directions: (δ, η), each a parameter set (list aligned with ``model.parameters()`` or a
            name → tensor mapping).  Default: two filter-normalized directions from
            :func:`random_direction` with ``generator`` (None: a generator seeded with 0, so the
            default surface is reproducible).
        span: (lo, hi), the range of both α and β.
        resolution: number of grid values per axis (odd values put θ* itself on the grid).
        center: θ* (default: the model's current parameters).
        dtype: the dtype the network is evaluated in (float64 by default, floating inputs and
            buffers are cast too); ``None`` evaluates each parameter in its own dtype.

    Returns a dict of float64 tensors: ``alphas`` and ``betas`` (resolution,), ``loss`` and
    ``accuracy`` (resolution, resolution) indexed [i, j] ↔ (α_i, β_j) (``accuracy`` is None
    unless the output is (batch, classes) scores and ``y`` integer labels), plus
    ``center_loss``/``center_accuracy`` (floats, at α = β = 0) and the ``directions`` used.
    """
    if int(resolution) < 2:
        raise ValueError(f"resolution must be at least 2, got {resolution!r}")
    lo, hi = (float(s) for s in span)
    theta = [t.to(torch.float64) for t in _as_list(model, center, "center")]
    if directions is None:
        if generator is None:
            generator = torch.Generator().manual_seed(0)
        directions = (random_direction(model, generator=generator),
                      random_direction(model, generator=generator))
    if len(directions) != 2:
        raise ValueError(f"directions must be a pair (δ, η), got {len(directions)}")
    d1, d2 = ([t.to(device=c.device, dtype=torch.float64) for t, c in zip(_as_list(model, d, name), theta)]
              for d, name in zip(directions, ("directions[0]", "directions[1]")))
    alphas = torch.linspace(lo, hi, int(resolution), dtype=torch.float64)
    betas = alphas.clone()
    loss = torch.empty(len(alphas), len(betas), dtype=torch.float64)
    acc = torch.empty_like(loss)
    x = _cast_input(x, dtype)
    with torch.no_grad(), _EvalMode(model):
        center_loss, center_acc = _evaluate(model, loss_fn, x, y, theta, dtype)
        for i, a in enumerate(alphas.tolist()):
            for j, b in enumerate(betas.tolist()):
                point = [t + a * u + b * v for t, u, v in zip(theta, d1, d2)]
                loss[i, j], value = _evaluate(model, loss_fn, x, y, point, dtype)
                acc[i, j] = float("nan") if value is None else value
    return {"alphas": alphas, "betas": betas, "loss": loss,
            "accuracy": None if center_acc is None else acc,
            "center_loss": center_loss, "center_accuracy": center_acc,
            "directions": (d1, d2)}


def loss_slice_1d(model: nn.Module, loss_fn: Callable, x, y, *, alphas,
                  theta_a: ParameterSet | None = None, theta_b: ParameterSet | None = None,
                  direction: ParameterSet | None = None,
                  dtype: torch.dtype | None = torch.float64) -> dict:
    """A 1-D slice of the loss (Li et al. 2018, §3; Goodfellow et al. 2015's interpolation).

    With ``theta_b``: the linear interpolation g(α) = L((1 − α) θ_a + α θ_b), so g(0) = L(θ_a) and
    g(1) = L(θ_b) exactly (α outside [0, 1] extrapolates).  With ``direction`` δ instead:
    g(α) = L(θ_a + α δ).  ``theta_a`` defaults to the model's current parameters.  Parameter sets
    are lists aligned with ``model.parameters()`` or name → tensor mappings (a ``state_dict()``
    of parameters).  The model is never modified (see :func:`loss_surface_2d`; same ``dtype``).

    Returns float64 tensors ``alphas``, ``loss`` and ``accuracy`` (None without class scores).
    """
    if (theta_b is None) == (direction is None):
        raise ValueError("give exactly one of theta_b (interpolation) and direction (a ray)")
    a = [t.to(torch.float64) for t in _as_list(model, theta_a, "theta_a")]
    other = theta_b if direction is None else direction
    b = [t.to(device=c.device, dtype=torch.float64)
         for t, c in zip(_as_list(model, other, "theta_b" if direction is None else "direction"), a)]
    alphas = torch.as_tensor(alphas, dtype=torch.float64).reshape(-1)
    loss = torch.empty_like(alphas)
    acc = torch.empty_like(alphas)
    has_acc = True
    x = _cast_input(x, dtype)
    with torch.no_grad(), _EvalMode(model):
        for k, t in enumerate(alphas.tolist()):
            if direction is None:
                point = [(1.0 - t) * u + t * v for u, v in zip(a, b)]
            else:
                point = [u + t * v for u, v in zip(a, b)]
            loss[k], value = _evaluate(model, loss_fn, x, y, point, dtype)
            has_acc = value is not None
            acc[k] = float("nan") if value is None else value
    return {"alphas": alphas, "loss": loss, "accuracy": acc if has_acc else None}


# ------------------------------------------------------------------------------------- measures

def surface_curvature(loss: torch.Tensor, alphas: torch.Tensor, betas: torch.Tensor, *,
                      rtol: float = 1e-6) -> dict:
    """Convexity and smoothness measures of a 2-D surface f[i, j] = f(α_i, β_j) (uniform grid).

    At every interior grid point the 2 × 2 Hessian of the *plotted* surface is taken by central
    differences and its eigenvalues λ_min ≤ λ_max (Li et al. 2018 map |λ_min / λ_max| of the
    full Hessian; here of the 2-D slice, which is what the contour plot shows).  Returns:

    * ``fraction_nonconvex``: share of interior points with λ_min < −rtol · max|λ| (a negative
      curvature direction: the surface is locally not convex there);
    * ``mean_curvature_ratio``: mean over interior points of |λ_min| / max(|λ_min|, |λ_max|) where
      λ_min is negative (as above) and 0 elsewhere: Li et al.'s |λ_min / λ_max|, capped at 1
      (1 where the surface curves down at least as strongly as up, 0 where it is convex);
    * ``excess_variation``: the share of the total variation along the grid's rows and columns
      that a single valley per line would not need, Σ_lines [TV(g) − (g_first − min g) −
      (g_last − min g)] / Σ_lines TV(g): 0 when every row and column of the grid goes down and then
      up once (a bowl, also one that flattens out), larger for bumpy / ridged surfaces
      (scale-free; a smoothness measure that, unlike the Hessian, ignores a loss that saturates);
    * ``local_minima``: number of grid points strictly below all of their (up to 8) neighbours;
    * ``min_eigenvalue``, ``max_eigenvalue``: the (n − 2, m − 2) tensors of λ_min, λ_max.
    """
    f = torch.as_tensor(loss, dtype=torch.float64)
    a = torch.as_tensor(alphas, dtype=torch.float64)
    b = torch.as_tensor(betas, dtype=torch.float64)
    n, m = f.shape
    if n < 3 or m < 3:
        raise ValueError(f"need at least a 3 x 3 grid, got {n} x {m}")
    ha, hb = float(a[1] - a[0]), float(b[1] - b[0])
    faa = (f[2:, 1:-1] - 2 * f[1:-1, 1:-1] + f[:-2, 1:-1]) / ha ** 2
    fbb = (f[1:-1, 2:] - 2 * f[1:-1, 1:-1] + f[1:-1, :-2]) / hb ** 2
    fab = (f[2:, 2:] - f[2:, :-2] - f[:-2, 2:] + f[:-2, :-2]) / (4 * ha * hb)
    hess = torch.stack([torch.stack([faa, fab], -1), torch.stack([fab, fbb], -1)], -2)
    lam = torch.linalg.eigvalsh(hess)                         # (n-2, m-2, 2), ascending
    lmin, lmax = lam[..., 0], lam[..., 1]
    scale = float(lam.abs().max())
    negative = lmin < -rtol * scale
    ratio = torch.where(negative, -lmin / lam.abs().max(-1).values.clamp_min(1e-300), torch.zeros_like(lmin))

    lines = [f, f.T]
    tv = sum(float((g[:, 1:] - g[:, :-1]).abs().sum()) for g in lines)
    valley = sum(float((g[:, 0] + g[:, -1] - 2 * g.min(1).values).sum()) for g in lines)
    excess = (tv - valley) / tv if tv > 0 else 0.0

    padded = torch.nn.functional.pad(f[None, None], (1, 1, 1, 1), value=float("inf"))[0, 0]
    neighbours = torch.stack([padded[1 + di:1 + di + n, 1 + dj:1 + dj + m]
                              for di in (-1, 0, 1) for dj in (-1, 0, 1) if di or dj])
    minima = int((f < neighbours.min(0).values).sum())

    return {
        "fraction_nonconvex": float(negative.to(torch.float64).mean()),
        "mean_curvature_ratio": float(ratio.mean()),
        "excess_variation": max(0.0, excess),
        "local_minima": minima,
        "min_eigenvalue": lmin, "max_eigenvalue": lmax,
    }


__all__ = ["random_direction", "filter_norms", "parameters_of", "is_stacked_control_weight",
           "loss_surface_2d", "loss_slice_1d", "surface_curvature"]
