"""The empirical Lipschitz constant of input → logits.

At a point x the local sensitivity of the logits is the largest singular value σ_max(J(x)) of
the Jacobian J = ∂logits/∂x (C × d for C classes and d input features): no perturbation δ
changes the logits by more than σ_max‖δ‖₂ to first order, and the direction that does is the
leading right singular vector.  The empirical Lipschitz constant is max over the points of
σ_max(J(x)), a lower bound on the network's Lipschitz constant in the L2 norm (Szegedy et al.,
"Intriguing properties of neural networks", ICLR 2014, §4.3; Weng et al., "Evaluating the
robustness of neural networks: an extreme value theory approach" (CLEVER), ICLR 2018).

:func:`stablenet.analysis.sensitivity.worst_direction` finds σ_max of a block by power iteration
on JᵀJ with Jacobian–vector products; here C is small (the classes), so J itself is formed with
C reverse-mode products (autograd) and σ_max computed exactly by an SVD, which is what power
iteration converges to (``method="power"`` runs the power iteration instead, for comparison).
"""

from __future__ import annotations

import torch

from .. import _checks


def input_jacobian(model, x: torch.Tensor) -> torch.Tensor:
    """J(x) = ∂model(x)/∂x per point: (batch, C, d), one reverse pass per class (model in eval
    mode; the points are independent, as for a model without batch statistics)."""
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = model(x)
        if out.dim() != 2:
            raise ValueError(f"model(x) must be logits (batch, classes), got shape {tuple(out.shape)}")
        rows = [torch.autograd.grad(out[:, c].sum(), x, retain_graph=c + 1 < out.shape[1])[0]
                for c in range(out.shape[1])]
    return torch.stack(rows, dim=1).detach()


def _power_iteration(model, x: torch.Tensor, iterations: int, generator: torch.Generator) -> torch.Tensor:
    """σ_max per point by power iteration v ← JᵀJv/‖JᵀJv‖ (jvp + vjp with torch.func)."""
    from torch.func import jvp, vjp

    v = torch.randn(x.shape, generator=generator, dtype=torch.float64).to(x)
    v = v / v.norm(dim=-1, keepdim=True)
    with torch.enable_grad():
        _, pullback = vjp(model, x)
        for _ in range(iterations):
            _, Jv = jvp(model, (x,), (v,))
            (JtJv,) = pullback(Jv)
            v = JtJv / JtJv.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)
        _, Jv = jvp(model, (x,), (v,))
    return Jv.norm(dim=-1).detach()


def empirical_lipschitz(model, x: torch.Tensor, *, method: str = "svd", iterations: int = 50,
                        batch_size: int = 256, generator: torch.Generator | None = None) -> dict:
    """max over the points of ``x`` of σ_max(∂logits/∂x), and its mean and per-point values.

    Runs on the model as given (use a float64 copy for exact figures); the model is put in eval
    mode for the computation and restored after.  ``method``: ``"svd"`` (exact σ_max of the
    formed C × d Jacobian) or ``"power"`` (``iterations`` of power iteration on JᵀJ).
    Returns ``{"max", "mean", "per_point", "method"}``.
    """
    _checks.choice("method", method, ("svd", "power"))
    _checks.positive_int("iterations", iterations)
    _checks.positive_int("batch_size", batch_size)
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty tensor (batch, features), got {getattr(x, 'shape', type(x))}")
    param = next(model.parameters())
    x = x.detach().to(param)
    generator = torch.Generator().manual_seed(0) if generator is None else generator
    training = model.training
    model.eval()
    try:
        values = []
        for i in range(0, x.shape[0], batch_size):
            xb = x[i:i + batch_size]
            if method == "svd":
                values.append(torch.linalg.matrix_norm(input_jacobian(model, xb), ord=2))
            else:
                values.append(_power_iteration(model, xb, iterations, generator))
    finally:
        model.train(training)
    sigma = torch.cat(values).to(torch.float64).cpu()
    return {"max": float(sigma.max()), "mean": float(sigma.mean()), "per_point": sigma.tolist(), "method": method}
