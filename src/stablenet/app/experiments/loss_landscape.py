"""Seed 004 §3.3, Figs. 3.7–3.8: loss landscapes of an 8-layer and a 20-layer standard ResNet.

Standard ResNets (single layer σ(KY + b), tanh, forward Euler, one weight set per layer:
nt = steps = 8 or 20) on T = 5, width 8 (the two peaks features repeated four times), trained on
peaks with a plain deterministic PyTorch loop (Adam, fixed seeds).  Around each trained θ* the
training loss f(α, β) = L(θ* + αδ + βη) is evaluated on a grid of [−1, 1]² along two
filter-normalized Gaussian directions (Li et al. 2018, :mod:`stablenet.analysis.landscape`; biases
get zero direction), drawn from generators with the same seeds for both networks, and the 1-D
linear interpolation from the initial weights θ_0 to θ* is plotted.

The seed's claim: the 8-layer network's surface shows "lots of non-convexities and a lack of
smoothness", the 20-layer network's is "much more smooth".  It is measured, per direction pair and
averaged over ``DIRECTION_SEEDS``, by (see :func:`~stablenet.analysis.landscape.surface_curvature`)

* the share of grid points where the 2-D surface's Hessian has a negative eigenvalue (convexity),
* Li et al.'s ratio |λ_min / λ_max| of those eigenvalues (convexity, weighted),
* the share of the variation along the grid lines beyond one valley per line (smoothness: bumps
  and ridges; scale-free, and blind to the loss flattening out far from θ*, which by itself makes
  the Hessian of a cross-entropy bowl indefinite).

A claim holds when the 20-layer mean over the direction pairs is lower *and* the 20-layer value is
lower in most pairs (``comparisons`` in ``results.json``; the per-pair values are there too).
``central_fraction_nonconvex`` repeats the Hessian count on |α|, |β| ≤ ½ only (convexity near
θ*, where the loss has not yet flattened out).

The seed normalized with averages instead of Frobenius norms and drew "Gaussian entries in
[0, 1]"; here Li et al.'s filter normalization is used as published.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ... import ODEBlock, ODEClassifier, SingleLayer, softmax_cross_entropy
from ..io import pyplot, save_figure, write_json
from ...analysis.landscape import loss_slice_1d, loss_surface_2d, parameters_of, surface_curvature
from ...data import load_dataset
from ._train import accuracy, train_model

SUMMARY = "seed 004 Figs 3.7-3.8: filter-normalized 2-D loss surfaces of 8- vs 20-layer ResNets (T = 5)"

LAYERS = (8, 20)
T = 5.0
WIDTH = 8
DIRECTION_SEEDS = (0, 1, 2, 3, 4)       # the first pair is the one plotted
MEASURES = ("fraction_nonconvex", "mean_curvature_ratio", "excess_variation", "local_minima",
            "central_fraction_nonconvex")


def _settings(quick: bool) -> dict:
    if quick:
        return {"per_class": 20, "epochs": 3, "batch_size": 25, "lr": 0.01, "resolution": 7,
                "direction_seeds": DIRECTION_SEEDS[:1], "slice_steps": 8}
    return {"per_class": 200, "epochs": 80, "batch_size": 50, "lr": 0.01, "resolution": 41,
            "direction_seeds": DIRECTION_SEEDS, "slice_steps": 32}


def build_resnet(layers: int, *, seed: int = 0) -> ODEClassifier:
    """Standard ResNet of seed 004: duplicate opening → ``layers`` Euler steps of σ(KY + b) → W."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        block = ODEBlock(SingleLayer(WIDTH, nt=layers, activation="tanh"), T=T, steps=layers, method="euler")
        return ODEClassifier(2, 5, block, opening="duplicate")


def _plot_contours(surfaces: dict, path: Path) -> Path:
    plt = pyplot()
    from matplotlib.colors import LogNorm

    lo = min(float(s["loss"].min()) for s in surfaces.values())
    hi = max(float(s["loss"].max()) for s in surfaces.values())
    levels = np.geomspace(lo, hi, 30)
    fig, axes = plt.subplots(1, len(surfaces), figsize=(5.6 * len(surfaces), 4.6), squeeze=False,
                             layout="constrained")
    for ax, (layers, s) in zip(axes[0], surfaces.items()):
        A, B = np.meshgrid(s["alphas"].numpy(), s["betas"].numpy(), indexing="ij")
        cs = ax.contourf(A, B, s["loss"].numpy(), levels=levels, norm=LogNorm(lo, hi), cmap="viridis")
        ax.contour(A, B, s["loss"].numpy(), levels=levels, colors="k", linewidths=0.3)
        ax.plot(0, 0, "r+", ms=10)
        ax.set_aspect("equal")
        ax.set_xlabel("α (direction δ)")
        ax.set_ylabel("β (direction η)")
        ax.set_title(f"{layers}-layer ResNet, h = {T / int(layers):g}: center loss {s['center_loss']:.3g}",
                     fontsize=9)
    bar = fig.colorbar(cs, ax=axes[0].tolist(), label="training loss (log levels, shared)")
    bar.set_ticks(np.geomspace(lo, hi, 7))
    bar.set_ticklabels([f"{v:.3g}" for v in np.geomspace(lo, hi, 7)])
    bar.minorticks_off()
    fig.suptitle("Seed 004 Figs 3.7-3.8: L(θ* + αδ + βη), filter-normalized random directions (Li et al. 2018)",
                 fontsize=10)
    return save_figure(fig, path, dpi=100)


def _plot_surfaces_3d(surfaces: dict, path: Path) -> Path:
    plt = pyplot()
    hi = max(float(s["loss"].max()) for s in surfaces.values())
    fig = plt.figure(figsize=(5.5 * len(surfaces), 4.6))
    for k, (layers, s) in enumerate(surfaces.items()):
        ax = fig.add_subplot(1, len(surfaces), k + 1, projection="3d")
        A, B = np.meshgrid(s["alphas"].numpy(), s["betas"].numpy(), indexing="ij")
        ax.plot_surface(A, B, s["loss"].numpy(), cmap="viridis", linewidth=0, antialiased=True,
                        rstride=1, cstride=1)
        ax.set_zlim(0, hi)
        ax.set_xlabel("α")
        ax.set_ylabel("β")
        ax.set_zlabel("loss")
        ax.set_title(f"{layers}-layer ResNet (T = {T:g})", fontsize=9)
        ax.view_init(elev=30, azim=-60)
    fig.suptitle("Training loss around the trained weights (same z-axis)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def _plot_curvature(surfaces: dict, path: Path) -> Path:
    plt = pyplot()
    fig, axes = plt.subplots(1, len(surfaces), figsize=(5.4 * len(surfaces), 4.6), squeeze=False,
                             layout="constrained")
    for ax, (layers, s) in zip(axes[0], surfaces.items()):
        c = s["curvature"]
        lmin, lmax = c["min_eigenvalue"], c["max_eigenvalue"]
        ratio = (lmin.clamp_max(0).abs() / torch.maximum(lmin.abs(), lmax.abs()).clamp_min(1e-300)).numpy()
        a, b = s["alphas"].numpy()[1:-1], s["betas"].numpy()[1:-1]
        im = ax.pcolormesh(a, b, ratio.T, vmin=0, vmax=1, cmap="coolwarm", shading="nearest")
        ax.set_aspect("equal")
        ax.set_xlabel("α")
        ax.set_ylabel("β")
        r = s["central_box"]
        ax.plot([-r, r, r, -r, -r], [-r, -r, r, r, -r], "k--", lw=0.8)
        ax.set_title(f"{layers} layers: {100 * c['fraction_nonconvex']:.0f}% of points non-convex\n"
                     f"({100 * c['central_fraction_nonconvex']:.0f}% inside the dashed square |α|, |β| ≤ ½)",
                     fontsize=9)
    fig.colorbar(im, ax=axes[0].tolist(), label="|λ_min| / max|λ| where λ_min < 0 (0: convex)")
    fig.suptitle("Negative curvature of the 2-D surfaces (Hessian by central differences)", fontsize=10)
    return save_figure(fig, path, dpi=100)


def _plot_slices(slices: dict, path: Path) -> Path:
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for layers, s in slices.items():
        interp, ray = s["interpolation"], s["direction"]
        line, = axes[0].semilogy(interp["alphas"].numpy(), interp["loss"].numpy(), label=f"{layers} layers")
        axes[1].plot(interp["alphas"].numpy(), interp["accuracy"].numpy(), color=line.get_color())
        axes[2].semilogy(ray["alphas"].numpy(), ray["loss"].numpy(), color=line.get_color())
    for ax in axes[:2]:
        ax.axvline(0, color="0.7", lw=0.6)
        ax.axvline(1, color="0.7", lw=0.6)
        ax.set_xlabel("α:  (1 − α) θ_0 + α θ*")
    axes[0].set_ylabel("training loss")
    axes[0].legend()
    axes[0].set_title("linear interpolation, initial → trained weights", fontsize=9)
    axes[1].set_ylabel("training accuracy")
    axes[1].set_title("accuracy along the interpolation", fontsize=9)
    axes[2].set_xlabel("α:  θ* + α δ")
    axes[2].set_ylabel("training loss")
    axes[2].set_title("1-D slice along the first filter-normalized direction", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def _scalars(measures: dict) -> dict:
    return {k: measures[k] for k in MEASURES}


def run(out_dir: str | Path, quick: bool = False) -> dict:
    out_dir = Path(out_dir)
    cfg = _settings(quick)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(out_dir, quick, cfg)
    finally:
        torch.set_num_threads(threads)


def _surfaces(model, x, y, cfg: dict) -> list[dict]:
    """One filter-normalized 2-D surface per direction seed, with its curvature measures over the
    whole grid and over the central box |α|, |β| ≤ ½."""
    per_seed = []
    for seed in cfg["direction_seeds"]:
        surface = loss_surface_2d(model, softmax_cross_entropy, x, y, span=(-1.0, 1.0),
                                  resolution=cfg["resolution"], generator=torch.Generator().manual_seed(seed))
        surface["curvature"] = surface_curvature(surface["loss"], surface["alphas"], surface["betas"])
        inner = (surface["alphas"].abs() <= 0.5 + 1e-12).nonzero().reshape(-1)   # |α|, |β| ≤ ½
        lo, hi = int(inner[0]), int(inner[-1]) + 1
        surface["curvature"]["central_fraction_nonconvex"] = surface_curvature(
            surface["loss"][lo:hi, lo:hi], surface["alphas"][lo:hi], surface["betas"][lo:hi])["fraction_nonconvex"]
        # the cells whose Hessians count there: the interior points of the sub-grid (for the plot)
        step = float(surface["alphas"][1] - surface["alphas"][0])
        surface["central_box"] = float(surface["alphas"][hi - 2]) + step / 2
        per_seed.append(surface)
    return per_seed


def _interpolation_summary(interp: dict) -> dict:
    """The loss at θ_0 and θ*, its maximum between them and whether it falls monotonically."""
    between = interp["loss"][(interp["alphas"] >= 0) & (interp["alphas"] <= 1)]
    return {"initial_loss": float(interp["loss"][interp["alphas"] == 0]),
            "trained_loss": float(interp["loss"][interp["alphas"] == 1]),
            "max_loss_between": float(between.max()),
            "monotone_decreasing_on_0_1": bool((between.diff() <= 1e-12).all())}


def _network(layers: int, data, cfg: dict) -> tuple[dict, dict, dict]:
    """Train the ``layers``-layer ResNet; (its record, its first surface, its 1-D slices)."""
    x, y = data.train.x, data.train.y
    started = time.perf_counter()
    model = build_resnet(layers, seed=0)
    theta0 = parameters_of(model)
    history = train_model(model, x, y, epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"],
                          record=False)
    model.eval()
    train_s = time.perf_counter() - started
    per_seed = _surfaces(model, x, y, cfg)
    surface = per_seed[0]
    # α = k / slice_steps on [−0.25, 1.25]: exactly 0 (θ_0) and 1 (θ*) are on the grid
    n = cfg["slice_steps"]
    alphas = torch.arange(-n // 4, n + n // 4 + 1, dtype=torch.float64) / n
    slices = {"interpolation": loss_slice_1d(model, softmax_cross_entropy, x, y, theta_a=theta0,
                                             theta_b=parameters_of(model), alphas=alphas),
              "direction": loss_slice_1d(model, softmax_cross_entropy, x, y, direction=surface["directions"][0],
                                         alphas=surface["alphas"])}
    record = {
        "layers": layers,
        "h": T / layers,
        "final_train_loss_epoch": history[-1]["batch_loss"],
        "train_accuracy": accuracy(model, data.train.x, data.train.y),
        "val_accuracy": accuracy(model, data.val.x, data.val.y),
        "center_loss": surface["center_loss"],
        "center_accuracy": surface["center_accuracy"],
        "min_loss": float(surface["loss"].min()),
        "max_loss": float(surface["loss"].max()),
        "center_is_grid_minimum": bool(surface["loss"].min() >= surface["center_loss"] - 1e-12),
        "surface": _scalars(surface["curvature"]),
        "surface_mean_over_direction_seeds": {k: float(np.mean([s["curvature"][k] for s in per_seed]))
                                              for k in MEASURES},
        "surface_per_direction_seed": [dict(seed=seed, center_loss=s["center_loss"],
                                            max_loss=float(s["loss"].max()), **_scalars(s["curvature"]))
                                       for seed, s in zip(cfg["direction_seeds"], per_seed)],
        "interpolation": _interpolation_summary(slices["interpolation"]),
        "seconds": time.perf_counter() - started,
        "train_seconds": train_s,
    }
    return record, surface, slices


def _deeper_better(networks: dict, measure: str) -> dict:
    """Mean over the direction pairs and the number of pairs where the deeper net is lower."""
    per = [[p[measure] for p in networks[str(n)]["surface_per_direction_seed"]] for n in LAYERS]
    wins = sum(d < s for s, d in zip(*per))
    means = [float(np.mean(v)) for v in per]
    return {"mean_8": means[0], "mean_20": means[1], "pairs_deeper_lower": int(wins), "pairs": len(per[0]),
            "holds": bool(means[1] < means[0] and 2 * wins > len(per[0]))}


def _run(out_dir: Path, quick: bool, cfg: dict) -> dict:
    data = load_dataset("peaks", seed=0, n_train_per_class=cfg["per_class"],
                        n_val_per_class=max(5, cfg["per_class"] // 4), n_test_per_class=None)
    networks, surfaces, slices = {}, {}, {}
    for layers in LAYERS:
        networks[str(layers)], surfaces[str(layers)], slices[str(layers)] = _network(layers, data, cfg)
    figures = [
        _plot_contours(surfaces, out_dir / "loss_contours.png").name,
        _plot_surfaces_3d(surfaces, out_dir / "loss_surfaces_3d.png").name,
        _plot_curvature(surfaces, out_dir / "loss_curvature.png").name,
        _plot_slices(slices, out_dir / "loss_interpolation.png").name,
    ]
    comparisons = {m: _deeper_better(networks, m) for m in ("fraction_nonconvex", "mean_curvature_ratio",
                                                            "excess_variation", "central_fraction_nonconvex")}
    results = {
        "experiment": "loss-landscape",
        # seed 004: the 20-layer surface is more convex / smoother than the 8-layer one.  Each holds
        # if the 20-layer mean over the direction pairs is lower AND it is lower in most pairs.
        "claims": {
            "deeper_surface_has_fewer_nonconvex_points": comparisons["fraction_nonconvex"]["holds"],
            "deeper_surface_has_smaller_curvature_ratio": comparisons["mean_curvature_ratio"]["holds"],
            "deeper_surface_smoother": comparisons["excess_variation"]["holds"],
            "deeper_surface_more_convex_near_the_minimum": comparisons["central_fraction_nonconvex"]["holds"],
        },
        "comparisons": comparisons,
        "networks": networks,
        "settings": {"T": T, "width": WIDTH, "layers": list(LAYERS), "span": [-1.0, 1.0],
                     "n_train": len(data.train.y), **{k: (list(v) if isinstance(v, tuple) else v)
                                                      for k, v in cfg.items()}},
        "figures": figures,
        "quick": quick,
    }
    write_json(out_dir / "results.json", results)
    return results
