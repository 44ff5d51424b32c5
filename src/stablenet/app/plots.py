"""Figures of a run: training curves, decision regions, and the features' paths Y_0 → Y_N.

The decision-region picture follows Meganet's ``viewContour2D``; the paths picture is seed 002's
"path planning" view: the network moves the points until a linear classifier separates them.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .io import pyplot, save_figure
from .rundir import lock

CLASS_COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple",
                "tab:brown", "tab:pink", "tab:gray", "tab:olive", "tab:cyan"]


def plot_curves(history: list[dict], path: str | Path) -> Path:
    plt = pyplot()
    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax1.plot(epochs, [h["train_loss"] for h in history], label="train")
    ax1.plot(epochs, [h["val_loss"] for h in history], label="validation")
    ax1.set_xlabel("epoch"); ax1.set_ylabel("loss"); ax1.set_yscale("log"); ax1.legend()
    ax2.plot(epochs, [100 * h["train_accuracy"] for h in history], label="train")
    ax2.plot(epochs, [100 * h["val_accuracy"] for h in history], label="validation")
    ax2.set_xlabel("epoch"); ax2.set_ylabel("accuracy (%)"); ax2.legend()
    # multilevel runs: a dotted line where the network was refined in depth, labelled with its steps
    for prev, h in zip(history[:-1], history[1:]):
        if "level" in h and h["level"] != prev["level"]:
            for ax in (ax1, ax2):
                ax.axvline(h["epoch"] - 0.5, color="gray", ls=":", lw=0.8)
            ax2.annotate(f"N={h['steps']}", (h["epoch"] - 0.5, 0.02), xycoords=("data", "axes fraction"),
                         fontsize=7, color="gray", ha="left")
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


@torch.no_grad()
def plot_decision_regions(model, dataset, path: str | Path, resolution: int = 200, ax=None, title=None):
    """Predicted class over the data domain with the training and test points (2-D data only)."""
    plt = pyplot()
    xmin, xmax, ymin, ymax = dataset.domain
    param = next(model.parameters())
    gx, gy = torch.meshgrid(torch.linspace(xmin, xmax, resolution), torch.linspace(ymin, ymax, resolution),
                            indexing="xy")
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1).to(param)
    model.eval()
    pred = model(grid).argmax(1).reshape(resolution, resolution).cpu().numpy()
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(5.5, 5))
    from matplotlib.colors import ListedColormap

    cmap = ListedColormap(CLASS_COLORS[:dataset.n_classes])
    ax.imshow(pred, origin="lower", extent=(xmin, xmax, ymin, ymax), cmap=cmap, alpha=0.35,
              vmin=-0.5, vmax=dataset.n_classes - 0.5, interpolation="nearest", aspect="auto")
    if own:
        split = dataset.train
        keep = torch.randperm(len(split.x), generator=torch.Generator().manual_seed(0))[:1000]
        ax.scatter(split.x[keep, 0].numpy(), split.x[keep, 1].numpy(), c=[CLASS_COLORS[int(c)] for c in split.y[keep]],
                   s=4, linewidths=0)
        if dataset.test is not None:
            ax.scatter(dataset.test.x[:, 0].numpy(), dataset.test.x[:, 1].numpy(),
                       c=[CLASS_COLORS[int(c)] for c in dataset.test.y], s=14, edgecolors="k", linewidths=0.5)
        ax.set_title(title or "decision regions (dots: train, outlined: test)")
        fig.tight_layout()
        return save_figure(fig, path, dpi=100)
    if title:
        ax.set_title(title, fontsize=8)
    return None


@torch.no_grad()
def plot_feature_paths(model, dataset, path: str | Path, per_class: int = 30) -> Path:
    """Paths of some training points through the blocks, projected on 2 principal directions."""
    plt = pyplot()
    split = dataset.train
    g = torch.Generator().manual_seed(0)
    idx = torch.cat([torch.nonzero(split.y == c).flatten()[
        torch.randperm(int((split.y == c).sum()), generator=g)[:per_class]] for c in range(dataset.n_classes)])
    param = next(model.parameters())
    model.eval()
    trajectories = model.features(split.x[idx].to(param), return_states=True)
    widths = {t.shape[-1] for t in trajectories}
    states = torch.cat(trajectories, 0) if len(widths) == 1 else trajectories[-1]  # (time, points, width)
    flat = states.reshape(-1, states.shape[-1]).double()
    mean = flat.mean(0)
    if states.shape[-1] > 2:
        _, _, V = torch.linalg.svd(flat - mean, full_matrices=False)
        basis = V[:2].T
    else:
        basis = torch.eye(2, dtype=flat.dtype)
    proj = ((states.double() - mean) @ basis).cpu().numpy()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    labels = split.y[idx]
    for k in range(proj.shape[1]):
        color = CLASS_COLORS[int(labels[k]) % len(CLASS_COLORS)]
        ax.plot(proj[:, k, 0], proj[:, k, 1], "-", color=color, lw=0.6, alpha=0.6)
        ax.plot(proj[0, k, 0], proj[0, k, 1], "o", color=color, ms=2.5, mfc="none")
        ax.plot(proj[-1, k, 0], proj[-1, k, 1], "o", color=color, ms=4)
    ax.set_title("features Y_0 (open) → Y_N (filled)" + (", 2 principal components" if states.shape[-1] > 2 else ""),
                 fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def make_plots(run_dir: str | Path, model=None, dataset=None, *, data_dir: str | Path | None = None) -> list[Path]:
    """All figures of a run directory (curves; regions and paths for 2-D data), written under the
    run directory's lock.  ``data_dir``: see :func:`stablenet.app.training.load_run`."""
    from .training import load_run

    run_dir = Path(run_dir)
    with lock(run_dir):
        history = json.loads((run_dir / "history.json").read_text())
        written = [plot_curves(history, run_dir / "curves.png")]
        if model is None or dataset is None:
            _, model, dataset = load_run(run_dir, data_dir=data_dir)
        if dataset.domain is not None and dataset.in_features == 2:
            written.append(plot_decision_regions(model, dataset, run_dir / "decision_regions.png"))
            written.append(plot_feature_paths(model, dataset, run_dir / "feature_paths.png"))
    return written
