"""Forward sensitivity of a block against depth (seed 002's definition of a stable IVP):

    s_j(v) = ‖Y_j(y0 + εv) − Y_j(y0)‖ / (ε‖v‖),   j = 0 … N,

for random unit directions v and for the worst-case direction, the leading right singular vector
of ∂Y_N/∂y0 found by power iteration on Jᵀ J (Jacobian–vector products with torch.func).  A stable
network keeps s_j bounded as depth grows; an unstable one amplifies perturbations exponentially.
"""

from __future__ import annotations

import torch
from torch.func import jvp, vjp

from .. import _checks
from ..block import ODEBlock


def _y_states(block: ODEBlock, x: torch.Tensor, steps: int) -> torch.Tensor:
    """y-states (N + 1, batch, width) from y0 = x (z0 = 0 for two-stream blocks)."""
    return block(x, steps=steps, return_states=True)


def worst_direction(block: ODEBlock, x: torch.Tensor, *, steps: int | None = None, iterations: int = 30,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample, the unit v maximizing ‖(∂Y_N/∂y0) v‖ and that maximal gain σ_max.

    Power iteration v ← Jᵀ J v / ‖Jᵀ J v‖, batched over samples (each sample's Jacobian is its own
    block of a block-diagonal matrix, so per-sample normalization keeps them apart).
    """
    N = block.steps if steps is None else _checks.positive_int("steps", steps)
    x = x.detach()

    def final(y0):
        return block(y0, steps=N)

    v = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    v = v / v.norm(dim=-1, keepdim=True)
    _, pullback = vjp(final, x)
    for _ in range(iterations):
        _, Jv = jvp(final, (x,), (v,))
        (JtJv,) = pullback(Jv)
        v = JtJv / JtJv.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)
    _, Jv = jvp(final, (x,), (v,))
    return v.detach(), Jv.norm(dim=-1).detach()


def forward_sensitivity(block: ODEBlock, x: torch.Tensor, *, eps: float = 1e-4, steps: int | None = None,
                        direction: str = "random", iterations: int = 30,
                        generator: torch.Generator | None = None) -> dict:
    """s_j for j = 0 … N, averaged over the samples of ``x`` (and its maximum over samples).

    ``direction``: ``"random"`` (a random unit v per sample) or ``"worst"`` (power iteration).
    ``eps`` is relative to ‖y0‖ of each sample; use float64 for small eps.
    """
    if not isinstance(block, ODEBlock):
        raise TypeError(f"block must be an ODEBlock, got {type(block).__name__}")
    _checks.choice("direction", direction, ("random", "worst"))
    _checks.positive_float("eps", eps)
    N = block.steps if steps is None else _checks.positive_int("steps", steps)
    _checks.finite_state("x", x, block.dynamics.width)
    x = x.detach()
    if direction == "worst":
        v, _ = worst_direction(block, x, steps=N, iterations=iterations, generator=generator)
    else:
        v = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        v = v / v.norm(dim=-1, keepdim=True)
    scale = eps * x.norm(dim=-1, keepdim=True).clamp_min(1.0)
    with torch.no_grad():
        base = _y_states(block, x, N)
        moved = _y_states(block, x + scale * v, N)
    s = (moved - base).norm(dim=-1) / scale.squeeze(-1)   # (N + 1, batch)
    return {"direction": direction, "eps": eps, "steps": N, "h": block.T / N,
            "depth": list(range(N + 1)), "mean": s.mean(dim=1).tolist(), "max": s.amax(dim=1).tolist()}
