"""Figures of the stability analysis: h·λ per layer over the stability region, sensitivity curves."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from .io import pyplot, save_figure
from ..analysis.jacobian import LayerJacobians
from ..analysis.stability import draw_region


def plot_eigenvalues(lj: LayerJacobians, path: str | Path, *, max_panels: int = 16, title: str = "") -> Path:
    """One panel per layer (evenly chosen if there are more than ``max_panels``): the points
    z = h·λ of all samples with the integrator's stability region (seed 004 Figs 3.4–3.6)."""
    plt = pyplot()
    z = lj.z()
    N = z.shape[0]
    layers = sorted({round(k * (N - 1) / max(1, min(N, max_panels) - 1)) for k in range(min(N, max_panels))})
    cols = min(4, len(layers))
    rows = math.ceil(len(layers) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    extent = max(2.5, float(z.abs().max()) * 1.1)
    right = max(1.5, float(z.real.max()) * 1.1)
    for ax, j in zip(axes.flat, layers):
        draw_region(ax, lj.method, extent=extent)
        pts = z[j].reshape(-1)
        ax.plot(pts.real.numpy(), pts.imag.numpy(), ".", ms=2, color="tab:blue", alpha=0.5)
        ax.set_xlim(-extent, right)
        ax.set_ylim(-extent, extent)
        ax.set_aspect("equal")
        ax.set_title(f"layer {j}", fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in axes.flat[len(layers):]:
        ax.axis("off")
    label = "h·√μ" if lj.second_order else "h·λ"
    fig.suptitle(title or f"{label} of the layer Jacobians, {lj.method} stability region shaded", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, dpi=90)


def plot_sensitivity(curves: list[tuple[str, dict]], path: str | Path) -> Path:
    """Sensitivity s_j against depth j for each (label, forward_sensitivity result)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, result in curves:
        ax.semilogy(result["depth"], result["mean"], label=f"{label} (mean)")
        ax.semilogy(result["depth"], result["max"], "--", lw=0.8, label=f"{label} (max)")
    ax.set_xlabel("layer j")
    ax.set_ylabel("‖Y_j(y0 + εv) − Y_j(y0)‖ / (ε‖v‖)")
    ax.legend(fontsize=7)
    ax.set_title("forward sensitivity against depth")
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def as_float64(block):
    """A float64 copy of a block's parameters, for eigenvalues and small finite differences."""
    import copy

    return copy.deepcopy(block).to(torch.float64)
