"""Figures of the stability analysis: h·λ per layer over the stability region, sensitivity curves."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from .io import pyplot, save_figure
from ..analysis.jacobian import LayerJacobians
from ..analysis.stability import draw_region


def eigenvalues_figure(lj: LayerJacobians, *, max_panels: int = 16, title: str = ""):
    """One panel per layer (evenly chosen if there are more than ``max_panels``): the points
    z = h·λ of all samples with the integrator's stability region (seed 004 Figs 3.4–3.6).

    Axes Re z and Im z (on the outer panels: they share their limits), one legend for the figure
    (the points, the region); returns the Figure."""
    plt = pyplot()
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    z = lj.z()
    N = z.shape[0]
    layers = sorted({round(k * (N - 1) / max(1, min(N, max_panels) - 1)) for k in range(min(N, max_panels))})
    cols = min(4, len(layers))
    rows = math.ceil(len(layers) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows + 0.6), squeeze=False)
    extent = max(2.5, float(z.abs().max()) * 1.1)
    right = max(1.5, float(z.real.max()) * 1.1)
    label = "h·√μ" if lj.second_order else "h·λ"
    for i, (ax, j) in enumerate(zip(axes.flat, layers)):
        draw_region(ax, lj.method, extent=extent)
        pts = z[j].reshape(-1)
        ax.plot(pts.real.numpy(), pts.imag.numpy(), ".", ms=2, color="tab:blue", alpha=0.5)
        ax.set_xlim(-extent, right)
        ax.set_ylim(-extent, extent)
        ax.set_aspect("equal")
        ax.set_title(f"layer {j} (t = {j * lj.h:.3g})", fontsize=8)
        ax.tick_params(labelsize=6)
        row, col = divmod(i, cols)
        if col == 0:
            ax.set_ylabel(f"Im {label}", fontsize=8)
        if row == rows - 1 or i + cols >= len(layers):  # bottom panel of its column
            ax.set_xlabel(f"Re {label}", fontsize=8)
    for ax in axes.flat[len(layers):]:
        ax.axis("off")
    samples = z.shape[1]
    region = (Line2D([], [], color="tab:red", lw=3, alpha=0.6) if lj.method in ("verlet", "leapfrog")
              else Patch(facecolor="tab:red", alpha=0.15, edgecolor="tab:red"))
    fig.legend([Line2D([], [], ls="", marker=".", color="tab:blue"), region],
               [f"{label} for every eigenvalue {'μ' if lj.second_order else 'λ'} of the layer Jacobians "
                f"of {samples} sample{'s' if samples != 1 else ''}",
                f"{lj.method} stability interval, {label} ∈ i·[−2, 2]" if lj.method in ("verlet", "leapfrog")
                else f"{lj.method} stability region, |R({label})| ≤ 1"],
               loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.suptitle(title or f"{label} of the layer Jacobians, {lj.method} stability region shaded", fontsize=10)
    fig.tight_layout(rect=(0, 0.6 / (3.0 * rows + 0.6), 1, 1))
    return fig


def plot_eigenvalues(lj: LayerJacobians, path: str | Path, *, max_panels: int = 16, title: str = "") -> Path:
    """:func:`eigenvalues_figure` saved as PNG."""
    return save_figure(eigenvalues_figure(lj, max_panels=max_panels, title=title), path, dpi=90)


def sensitivity_figure(curves: list[tuple[str, dict]]):
    """Sensitivity s_j against depth j for each (label, forward_sensitivity result): the mean over
    the samples solid, the largest dashed, in one colour per curve; returns the Figure."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for k, (label, result) in enumerate(curves):
        color = f"C{k % 10}"
        ax.semilogy(result["depth"], result["mean"], color=color, label=f"{label}, mean over samples")
        ax.semilogy(result["depth"], result["max"], "--", color=color, lw=0.8, label=f"{label}, largest")
    ax.axhline(1.0, color="0.6", lw=0.6, ls=":")
    ax.set_xlabel("layer j")
    ax.set_ylabel("sensitivity ‖Y_j(y0 + εv) − Y_j(y0)‖ / (ε‖v‖)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    ax.set_title("forward sensitivity against depth (v: random or worst direction)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_sensitivity(curves: list[tuple[str, dict]], path: str | Path) -> Path:
    """:func:`sensitivity_figure` saved as PNG."""
    return save_figure(sensitivity_figure(curves), path, dpi=100)


def as_float64(block):
    """A float64 copy of a block's parameters, for eigenvalues and small finite differences."""
    import copy

    return copy.deepcopy(block).to(torch.float64)
