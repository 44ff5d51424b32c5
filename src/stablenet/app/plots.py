"""Figures of a run: training curves, decision regions, and the features' paths Y_0 → Y_N.

The decision-region picture follows Meganet's ``viewContour2D``; the paths picture is seed 002's
"path planning" view: the network moves the points until a linear classifier separates them.

Each figure has a builder that returns the matplotlib Figure (:func:`curves_figure`,
:func:`decision_regions_figure`, :func:`feature_paths_figure`), so its content (labels, legends,
limits) can be inspected, and a ``plot_*`` function that saves it as PNG.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from .io import pyplot, save_figure
from .rundir import lock

CLASS_COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple",
                "tab:brown", "tab:pink", "tab:gray", "tab:olive", "tab:cyan"]


def best_epoch(history: list[dict]) -> int | None:
    """The epoch whose weights training keeps (``best_epoch`` of metrics.json): the first epoch with
    the highest validation accuracy, within the last multilevel level for multilevel runs."""
    if not history:
        return None
    last = history[-1].get("level")
    rows = [h for h in history if h.get("level") == last]
    return max(rows, key=lambda h: h["val_accuracy"])["epoch"]  # max keeps the first of equal ones


def accuracy_limits(curves: list[list[float]], *, settled: float = 2 / 3, margin: float = 0.15,
                    min_span: float = 0.5, zoom: float = 3.0) -> tuple[float, float]:
    """y-limits (in %) of an accuracy axis that shows where the curves differ.

    The range of all values, unless it is more than ``zoom`` times that of the last ``settled``
    share of the epochs of every curve (a run that starts at 20% and ends at 98–100%): then that
    settled range, and the early epochs fall under the axis (the caller says so).  Widened by
    ``margin`` of the range on each side, at least ``min_span`` points in all (a flat 100% gets a
    window below it); not below 0, and above 100 by no more than the margin."""
    values = [v for c in curves for v in c]
    tail = [v for c in curves for v in c[min(len(c) - 1, math.floor(len(c) * (1 - settled))):]]
    lo, hi = min(values), max(values)
    if hi - lo > zoom * max(max(tail) - min(tail), min_span):
        lo, hi = min(tail), max(tail)
    span = max(hi - lo, min_span)
    mid = (lo + hi) / 2
    pad = margin * span
    lo, hi = mid - span / 2 - pad, mid + span / 2 + pad
    shift = max(0.0, hi - (100.0 + pad)) - max(0.0, -lo)  # a window at 100% (or 0%) moves inside
    return max(0.0, lo - shift), min(100.0 + pad, hi - shift)


def _epochs_text(epochs: list[int]) -> str:
    """"epoch 3", "epochs 1–5" (consecutive) or "epochs 1, 2, 7"."""
    if len(epochs) == 1:
        return f"epoch {epochs[0]}"
    if epochs == list(range(epochs[0], epochs[-1] + 1)):
        return f"epochs {epochs[0]}–{epochs[-1]}"
    return "epochs " + ", ".join(map(str, epochs))


def curves_figure(history: list[dict], best: int | None = None):
    """Loss (log scale) and accuracy against epoch, train and validation, the best epoch marked
    (``best``, default :func:`best_epoch`), multilevel refinements as dotted lines.

    The accuracy axis is zoomed on the settled epochs (:func:`accuracy_limits`): a run's curves
    at 98–100% are not flattened by its first epochs at 20%; the title names the epochs below."""
    plt = pyplot()
    epochs = [h["epoch"] for h in history]
    best = best_epoch(history) if best is None else best
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.3))
    ax1.plot(epochs, [h["train_loss"] for h in history], label="train")
    ax1.plot(epochs, [h["val_loss"] for h in history], label="validation")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss (log scale)")
    ax1.set_yscale("log")
    ax1.set_title("loss")
    train_acc = [100 * h["train_accuracy"] for h in history]
    val_acc = [100 * h["val_accuracy"] for h in history]
    ax2.plot(epochs, train_acc, ".-", ms=3, label="train")
    ax2.plot(epochs, val_acc, ".-", ms=3, label="validation")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("accuracy (%)")
    lo, hi = accuracy_limits([train_acc, val_acc])
    ax2.set_ylim(lo, hi)
    below = [e for e, a, b in zip(epochs, train_acc, val_acc) if min(a, b) < lo]
    title = "accuracy"
    if below:
        title += (f", zoomed in: {_epochs_text(below)} below the axis "
                  f"(lowest {min(min(train_acc), min(val_acc)):.1f}%)")
    ax2.set_title(title, fontsize=10)
    if best is not None and best in epochs:
        row = history[epochs.index(best)]
        label = f"best epoch {best}: validation {100 * row['val_accuracy']:.2f}%"
        for ax in (ax1, ax2):
            ax.axvline(best, color="tab:green", ls="--", lw=1, label=label)
        ax1.plot([best], [row["val_loss"]], "*", color="tab:green", ms=11)
        ax2.plot([best], [100 * row["val_accuracy"]], "*", color="tab:green", ms=11)
    # multilevel runs: a dotted line where the network was refined in depth, labelled with its steps
    refined = False
    for prev, h in zip(history[:-1], history[1:]):
        if "level" in h and h["level"] != prev["level"]:
            for ax in (ax1, ax2):
                ax.axvline(h["epoch"] - 0.5, color="gray", ls=":", lw=0.8,
                           label=None if refined else "refined in depth (N: state steps)")
            refined = True
            ax2.annotate(f"N={h['steps']}", (h["epoch"] - 0.5, 0.02), xycoords=("data", "axes fraction"),
                         fontsize=7, color="gray", ha="left")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    handles, labels = ax2.get_legend_handles_labels()  # one legend for both panels, under them
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def plot_curves(history: list[dict], path: str | Path, best: int | None = None) -> Path:
    """:func:`curves_figure` saved as PNG."""
    return save_figure(curves_figure(history, best), path, dpi=100)


def _class_legend(ax, n_classes: int, **kwargs):
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", ls="", color=CLASS_COLORS[c % len(CLASS_COLORS)], label=f"class {c}")
               for c in range(n_classes)]
    return ax.legend(handles=handles, **kwargs)


@torch.no_grad()
def decision_regions_figure(model, dataset, resolution: int = 200, ax=None, title=None):
    """Predicted class over the data domain with the training and test points (2-D data only).

    Without ``ax`` a Figure of its own (returned); with ``ax`` only the regions are drawn there."""
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
        fig, ax = plt.subplots(figsize=(6.3, 5))
    from matplotlib.colors import ListedColormap

    cmap = ListedColormap(CLASS_COLORS[:dataset.n_classes])
    ax.imshow(pred, origin="lower", extent=(xmin, xmax, ymin, ymax), cmap=cmap, alpha=0.35,
              vmin=-0.5, vmax=dataset.n_classes - 0.5, interpolation="nearest", aspect="auto")
    if not own:
        if title:
            ax.set_title(title, fontsize=8)
        return None
    split = dataset.train
    keep = torch.randperm(len(split.x), generator=torch.Generator().manual_seed(0))[:1000]
    ax.scatter(split.x[keep, 0].numpy(), split.x[keep, 1].numpy(), c=[CLASS_COLORS[int(c)] for c in split.y[keep]],
               s=4, linewidths=0)
    if dataset.test is not None:
        ax.scatter(dataset.test.x[:, 0].numpy(), dataset.test.x[:, 1].numpy(),
                   c=[CLASS_COLORS[int(c)] for c in dataset.test.y], s=14, edgecolors="k", linewidths=0.5)
    ax.set_xlabel("input x₁")
    ax.set_ylabel("input x₂")
    ax.set_title(title or "predicted class (shading); dots: train, outlined: test", fontsize=10)
    _class_legend(ax, dataset.n_classes, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    fig.tight_layout()
    return fig


def plot_decision_regions(model, dataset, path: str | Path, resolution: int = 200, ax=None, title=None):
    """:func:`decision_regions_figure` saved as PNG (with ``ax``: drawn there, nothing saved)."""
    fig = decision_regions_figure(model, dataset, resolution, ax=ax, title=title)
    return None if fig is None else save_figure(fig, path, dpi=100)


def classifier_directions(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two feature directions the linear classifier W (classes × width) reads most: the top-2
    right singular vectors of W with its mean row removed (softmax ignores a shift of all logits,
    so only the logit *differences* (w_i − w_j)·y decide).  A unit step along the first changes
    the logit differences most.  Returns (basis (width, 2), orthonormal columns; share of
    ‖W − mean row‖²_F along them).  Where the centred W has rank 1 (two classes), the second
    column is any unit vector orthogonal to the first (the caller may replace it)."""
    W = weight.detach().double()
    centred = W - W.mean(0, keepdim=True)
    _, S, Vh = torch.linalg.svd(centred, full_matrices=True)
    energy = float((S ** 2).sum())
    share = float((S[:2] ** 2).sum()) / energy if energy > 0 else float("nan")
    return Vh[:2].T, share


@torch.no_grad()
def feature_paths_figure(model, dataset, per_class: int = 30, resolution: int = 200):
    """Paths of some training points through the blocks, Y_0 (open) → Y_N (filled), in the plane
    of the classifier's two main directions (:func:`classifier_directions`), centred on the mean
    of the end points.  The shading is the class the classifier gives the points of that plane:
    filled dots inside their own colour are the separation the classifier uses.  (The top-2
    principal components of the states, drawn before, are the directions the *points* spread
    most; the classes' end points overlapped there.)"""
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
    states = states.double().cpu()
    W = model.classifier.weight.detach().double().cpu()
    b = model.classifier.bias.detach().double().cpu()
    basis, share = classifier_directions(W)
    final = states[-1]
    centre = final.mean(0)
    if states.shape[-1] == 1:  # one feature: its value against nothing
        basis, share = torch.cat([basis[:, :1], torch.zeros(1, 1, dtype=basis.dtype)], 1), 1.0
    elif dataset.n_classes == 2 or share != share:  # rank ≤ 1: second axis, the end points' main spread
        v1 = basis[:, :1]
        rest = (final - centre) - (final - centre) @ v1 @ v1.T
        _, _, Vh = torch.linalg.svd(rest, full_matrices=False)
        basis = torch.cat([v1, Vh[:1].T], 1)
    proj = ((states - centre) @ basis).numpy()
    fig, ax = plt.subplots(figsize=(6.3, 5.2))
    # the classifier on this plane: class of centre + a·v₁ + b·v₂
    lo, hi = proj.reshape(-1, 2).min(0), proj.reshape(-1, 2).max(0)
    pad = 0.05 * (hi - lo) + 0.5 * (hi == lo)  # a flat direction (one feature) gets a window of its own
    (x0, y0), (x1, y1) = lo - pad, hi + pad
    ga, gb = torch.meshgrid(torch.linspace(x0, x1, resolution, dtype=torch.float64),
                            torch.linspace(y0, y1, resolution, dtype=torch.float64), indexing="xy")
    grid = centre + torch.stack([ga.reshape(-1), gb.reshape(-1)], 1) @ basis.T
    pred = (grid @ W.T + b).argmax(1).reshape(resolution, resolution).numpy()
    from matplotlib.colors import ListedColormap

    ax.imshow(pred, origin="lower", extent=(x0, x1, y0, y1), cmap=ListedColormap(CLASS_COLORS[:dataset.n_classes]),
              alpha=0.15, vmin=-0.5, vmax=dataset.n_classes - 0.5, interpolation="nearest", aspect="auto")
    labels = split.y[idx]
    for k in range(proj.shape[1]):
        color = CLASS_COLORS[int(labels[k]) % len(CLASS_COLORS)]
        ax.plot(proj[:, k, 0], proj[:, k, 1], "-", color=color, lw=0.4, alpha=0.35)
        ax.plot(proj[0, k, 0], proj[0, k, 1], "o", color=color, ms=2.5, mfc="none", alpha=0.7)
    for c in range(dataset.n_classes):  # end points on top of every path
        ends = proj[-1, (labels == c).numpy()]
        ax.plot(ends[:, 0], ends[:, 1], "o", color=CLASS_COLORS[c % len(CLASS_COLORS)], ms=4.5, mec="k", mew=0.4)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    # how faithful the plane is: the class W gives an end point's projection vs the one it gives the point
    ends = states[-1]
    on_plane = ((centre + (ends - centre) @ basis @ basis.T) @ W.T + b).argmax(1)
    agree = 100 * float((on_plane == (ends @ W.T + b).argmax(1)).double().mean())
    if dataset.n_classes == 2:
        ax.set_xlabel("Y along w₁ − w₀, the classifier's direction")
        ax.set_ylabel("Y along the end points' main spread ⊥ w₁ − w₀")
        plane = "plane of the classifier's direction w₁ − w₀ and the end points' spread"
    else:
        ax.set_xlabel("Y along v₁, 1st singular direction of the classifier W")
        ax.set_ylabel("Y along v₂, 2nd singular direction of W")
        plane = f"plane of W's top-2 singular directions ({100 * share:.0f}% of ‖W‖², mean row removed)"
    ax.set_title(f"features Y_0 (open) → Y_N (filled), {per_class} training points per class\n{plane}\n"
                 f"shading: W's class on this plane; for {agree:.0f}% of the end points it is the network's class", fontsize=9)
    _class_legend(ax, dataset.n_classes, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    fig.tight_layout()
    return fig


def plot_feature_paths(model, dataset, path: str | Path, per_class: int = 30) -> Path:
    """:func:`feature_paths_figure` saved as PNG."""
    return save_figure(feature_paths_figure(model, dataset, per_class), path, dpi=100)


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
