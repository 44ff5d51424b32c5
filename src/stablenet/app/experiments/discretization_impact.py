"""Seed 002, "Example: Impact of Discretization on Training" (convergence and dynamics on peaks).

Peaks, 2000 training points (400 per class) and 500 validation points, width 8 (the two features
repeated four times), tanh, softmax classifier, multilevel training 32 → 64 layers, three
configurations:

* "unstable": T = 10, single layer σ(KY + b), third-order Adams–Bashforth (h = 0.31 → 0.16);
* "medium":   T = 5, Hamiltonian y' = σ(Kz + b_y), z' = −σ(Kᵀy + b_z), Verlet (h = 0.16 → 0.08);
* "stable":   T = 0.2, single layer, Adams–Bashforth 3 (h = 0.006 → 0.003).

The seed names the configurations and asks "how does learning performance compare?"; its answer is
in two figures (convergence, dynamics) whose content did not survive extraction, and it does not
say which layer the AB3 networks use (its AB3 slide is about the antisymmetric layer; here the
plain single layer σ(KY + b) of its ResNet examples).  Each network: nt = steps = 32 (one weight set per layer, θ(t)
piecewise constant), same data, same batch order, Adam (lr 0.01, batches of 50) for E epochs;
then ``prolongate`` (θ(t) kept exactly, nt → 64), steps → 64, a new optimizer, E more epochs.
Recorded: training and validation loss and accuracy after every epoch, the loss just before and
just after the prolongation (the state grid changes, the weights' θ(t) does not), and the paths of
10 validation points per class through the trained 64-layer networks (Y_0 → Y_N, two principal
components of each network's states).

Claims (the seed states none in words, so these are hypotheses about what its two figures show,
each tested on its own): the "stable" network barely moves the features (``relative_feature_movement`` =
mean ‖Y_N − Y_0‖ / mean ‖Y_0‖ below 0.2) and learns worst; the "medium" one learns best (lowest
validation loss; highest validation accuracy is a separate claim); the "unstable" one trains most
erratically (``erraticness`` of the level-1 validation-loss curve = the sum of its epoch-to-epoch
increases divided by its drop from the first value to its minimum; 0 for a monotone curve),
generalizes worse than the medium one (validation − training loss), and is hurt most by the
prolongation (loss after / before refining the state grid).  "Final" numbers are means over the
last 5 epochs.  Default: 50 epochs per level (100 per network, about 1.5 minutes on one CPU
thread); ``--quick``: 40 points per class, 2 epochs per level.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from ... import Hamiltonian, ODEBlock, ODEClassifier, SingleLayer
from ..io import pyplot, save_figure, write_json
from ...data import load_dataset
from ..plots import CLASS_COLORS, plot_decision_regions
from ..training import evaluate
from ...models import softmax_cross_entropy
from ._train import accuracy, train_model

SUMMARY = "seed 002: peaks, 'unstable' T=10 AB3 / 'medium' T=5 Verlet / 'stable' T=0.2 AB3, multilevel 32 -> 64 layers"

WIDTH = 8
LAYERS = 32
CONFIGS = {
    "unstable": {"T": 10.0, "dynamics": "single", "method": "ab3"},
    "medium": {"T": 5.0, "dynamics": "hamiltonian", "method": "verlet"},
    "stable": {"T": 0.2, "dynamics": "single", "method": "ab3"},
}
COLORS = {"unstable": "tab:red", "medium": "tab:green", "stable": "tab:blue"}
TAIL = 5      # "final" numbers are means over the last TAIL epochs (one epoch is noisy with Adam)


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else math.nan


def _settings(quick: bool) -> dict:
    if quick:
        return {"per_class": 40, "val_per_class": 20, "epochs_per_level": 2, "batch_size": 25, "lr": 0.01,
                "paths_per_class": 4, "resolution": 50}
    return {"per_class": 400, "val_per_class": 100, "epochs_per_level": 50, "batch_size": 50, "lr": 0.01,
            "paths_per_class": 10, "resolution": 120}


def build_network(name: str, *, seed: int = 0) -> ODEClassifier:
    """The 32-layer network of one configuration (same seed → same opening/classifier init)."""
    cfg = CONFIGS[name]
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        if cfg["dynamics"] == "hamiltonian":
            dyn = Hamiltonian(WIDTH, WIDTH, nt=LAYERS, activation="tanh")
        else:
            dyn = SingleLayer(WIDTH, nt=LAYERS, activation="tanh")
        block = ODEBlock(dyn, T=cfg["T"], steps=LAYERS, method=cfg["method"], controls="constant")
        return ODEClassifier(2, 5, block, opening="duplicate")


def erraticness(values: list[float]) -> float:
    """Sum of the increases of a curve divided by its decrease from the start to its minimum."""
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) < 2:
        return math.nan
    ups = sum(max(0.0, b - a) for a, b in zip(finite, finite[1:]))
    drop = finite[0] - min(finite)
    return ups / drop if drop > 0 else math.inf


def _path_points(data, per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    idx = torch.cat([torch.nonzero(data.val.y == c).flatten()[
        torch.randperm(int((data.val.y == c).sum()), generator=g)[:per_class]] for c in range(data.n_classes)])
    return data.val.x[idx], data.val.y[idx]


@torch.no_grad()
def feature_paths(model: ODEClassifier, x: torch.Tensor) -> torch.Tensor:
    """States (N + 1, points, width) of the points through the block (y-stream for Hamiltonian)."""
    model.eval()
    return model.features(x, return_states=True)[0]


def _dynamics_numbers(states: torch.Tensor) -> dict:
    norms = states.norm(dim=-1).mean(-1)          # mean feature norm per layer
    return {"relative_feature_movement": float((states[-1] - states[0]).norm(dim=-1).mean() / norms[0]),
            "growth": float(norms.max() / norms[0]),
            "final_over_initial_norm": float(norms[-1] / norms[0])}


def _train_multilevel(model: ODEClassifier, data, s: dict) -> tuple[list[dict], dict]:
    x, y, val = data.train.x, data.train.y, (data.val.x, data.val.y)
    E = s["epochs_per_level"]
    hist = train_model(model, x, y, epochs=E, batch_size=s["batch_size"], lr=s["lr"], seed=0, val=val)
    for h in hist:
        h["layers"] = LAYERS
    before = evaluate(model, x, y, softmax_cross_entropy)
    block = model.blocks[0]
    model.prolongate()
    block.steps = 2 * LAYERS
    after = evaluate(model, x, y, softmax_cross_entropy)
    level2 = train_model(model, x, y, epochs=E, batch_size=s["batch_size"], lr=s["lr"], seed=1, val=val,
                         epoch_offset=len(hist))
    for h in level2:
        h["layers"] = 2 * LAYERS
    prolongation = {"train_loss_before": before[0], "train_loss_after": after[0],
                    "train_accuracy_before": before[1], "train_accuracy_after": after[1],
                    "nt_after": block.dynamics.nt, "steps_after": block.steps}
    return hist + level2, prolongation


def _plot_convergence(histories: dict, E: int, path: Path) -> Path:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6))
    for name, hist in histories.items():
        rows = [h for h in hist if "train_loss" in h]
        ep = [h["epoch"] for h in rows]
        label = f"{name}: T = {CONFIGS[name]['T']:g}, {CONFIGS[name]['method']}"
        c = COLORS[name]
        axes[0].plot(ep, [h["train_loss"] for h in rows], "-", color=c, label=f"{label}, train")
        axes[0].plot(ep, [h["val_loss"] for h in rows], "--", color=c, label=f"{label}, validation")
        axes[1].plot(ep, [100 * h["train_accuracy"] for h in rows], "-", color=c, label=f"{label}, train")
        axes[1].plot(ep, [100 * h["val_accuracy"] for h in rows], "--", color=c, label=f"{label}, validation")
    for ax in axes:
        ax.axvline(E + 0.5, color="0.5", lw=0.8, ls=":")
        ax.set_xlabel(f"epoch ({LAYERS} layers, then prolongated to {2 * LAYERS})")
    axes[0].set_yscale("log"); axes[0].set_ylabel("cross-entropy"); axes[0].legend(fontsize=7)
    axes[1].set_ylabel("accuracy (%)"); axes[1].legend(fontsize=7)
    fig.suptitle("Seed 002, impact of discretization: convergence (peaks, multilevel 32 → 64 layers)", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return save_figure(fig, path, dpi=90)


def _plot_dynamics(models: dict, paths: dict, labels: torch.Tensor, data, path: Path, resolution: int) -> Path:
    plt = pyplot()
    fig, axes = plt.subplots(2, len(models), figsize=(5 * len(models), 9.5), squeeze=False)
    for k, (name, model) in enumerate(models.items()):
        states = paths[name].double()
        flat = states.reshape(-1, states.shape[-1])
        mean = flat.mean(0)
        _, _, V = torch.linalg.svd(flat - mean, full_matrices=False)
        proj = ((states - mean) @ V[:2].T).numpy()
        ax = axes[0, k]
        for p in range(proj.shape[1]):
            color = CLASS_COLORS[int(labels[p])]
            ax.plot(proj[:, p, 0], proj[:, p, 1], "-", color=color, lw=0.6, alpha=0.7)
            ax.plot(proj[0, p, 0], proj[0, p, 1], "o", color=color, ms=2.5, mfc="none")
            ax.plot(proj[-1, p, 0], proj[-1, p, 1], "o", color=color, ms=4)
        cfg = CONFIGS[name]
        ax.set_title(f"{name}: T = {cfg['T']:g}, {cfg['dynamics']}, {cfg['method']}\n"
                     f"features Y_0 (open) → Y_64 (filled), 2 principal components", fontsize=9)
        acc = accuracy(model, data.val.x, data.val.y)
        plot_decision_regions(model, data, None, resolution=resolution, ax=axes[1, k],
                              title=f"{name}: validation accuracy {100 * acc:.1f}%")
        keep = torch.arange(0, len(data.val.y), max(1, len(data.val.y) // 250))
        axes[1, k].scatter(data.val.x[keep, 0], data.val.x[keep, 1],
                           c=[CLASS_COLORS[int(c)] for c in data.val.y[keep]], s=4, linewidths=0)
    fig.suptitle("Seed 002, impact of discretization: dynamics of the trained 64-layer networks", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    return save_figure(fig, path, dpi=90)


def run(out_dir: str | Path, quick: bool = False) -> dict:
    out_dir = Path(out_dir)
    s = _settings(quick)
    data = load_dataset("peaks", seed=0, n_train_per_class=s["per_class"], n_val_per_class=s["val_per_class"],
                        n_test_per_class=None)
    px, py = _path_points(data, s["paths_per_class"])
    models, histories, paths, configs = {}, {}, {}, {}
    for name in CONFIGS:
        model = build_network(name)
        init_paths = feature_paths(model, px)
        start = time.perf_counter()
        hist, prolongation = _train_multilevel(model, data, s)
        seconds = time.perf_counter() - start
        models[name], histories[name] = model, hist
        paths[name] = feature_paths(model, px)
        rows = [h for h in hist if "val_loss" in h]
        E = s["epochs_per_level"]
        level1 = [h for h in rows if h["layers"] == LAYERS]
        tail = rows[-TAIL:]
        configs[name] = {
            **CONFIGS[name],
            "h_level_1": CONFIGS[name]["T"] / LAYERS,
            "diverged": any(h.get("diverged", False) for h in hist),
            "final_train_loss": rows[-1]["train_loss"] if rows else math.nan,
            "final_val_loss": rows[-1]["val_loss"] if rows else math.nan,
            "final_train_accuracy": rows[-1]["train_accuracy"] if rows else math.nan,
            "final_val_accuracy": rows[-1]["val_accuracy"] if rows else math.nan,
            "last_epochs_val_loss": _mean(h["val_loss"] for h in tail),
            "last_epochs_val_accuracy": _mean(h["val_accuracy"] for h in tail),
            "last_epochs_generalization_gap": _mean(h["val_loss"] - h["train_loss"] for h in tail),
            "best_val_accuracy": max((h["val_accuracy"] for h in rows), default=math.nan),
            "val_accuracy_after_level_1": level1[-1]["val_accuracy"] if len(level1) == E else math.nan,
            "epochs_to_90_percent_val_accuracy": next((h["epoch"] for h in rows if h["val_accuracy"] >= 0.9), None),
            "val_loss_erraticness_level_1": erraticness([h["val_loss"] for h in level1]),
            "train_loss_erraticness_level_1": erraticness([h["train_loss"] for h in level1]),
            "prolongation": {**prolongation,
                             "loss_ratio_after_over_before": prolongation["train_loss_after"]
                             / prolongation["train_loss_before"]},
            "dynamics_initial": _dynamics_numbers(init_paths),
            "dynamics_trained": _dynamics_numbers(paths[name]),
            "train_seconds": seconds,
        }

    figures = [_plot_convergence(histories, s["epochs_per_level"], out_dir / "discretization_convergence.png").name,
               _plot_dynamics(models, paths, py, data, out_dir / "discretization_dynamics.png", s["resolution"]).name]
    c = configs
    loss = {n: c[n]["last_epochs_val_loss"] for n in c}
    acc = {n: c[n]["last_epochs_val_accuracy"] for n in c}
    err = {n: c[n]["val_loss_erraticness_level_1"] for n in c}
    move = {n: c[n]["dynamics_trained"]["relative_feature_movement"] for n in c}
    jump = {n: c[n]["prolongation"]["loss_ratio_after_over_before"] for n in c}
    results = {
        "experiment": "discretization-impact",
        "claims": {
            "stable_T02_barely_moves_the_features": move["stable"] < 0.2,
            "stable_T02_learns_worst": acc["stable"] < min(acc["unstable"], acc["medium"]),
            "medium_verlet_lowest_validation_loss": loss["medium"] < min(loss["unstable"], loss["stable"]),
            "medium_verlet_highest_validation_accuracy": acc["medium"] > max(acc["unstable"], acc["stable"]),
            "unstable_T10_trains_most_erratically": err["unstable"] > max(err["medium"], err["stable"]),
            "unstable_T10_generalizes_worse_than_medium": c["unstable"]["last_epochs_generalization_gap"]
            > c["medium"]["last_epochs_generalization_gap"],
            "unstable_T10_suffers_most_from_prolongation": jump["unstable"] > max(jump["medium"], jump["stable"]),
        },
        "configurations": configs,
        "history": histories,
        "settings": {"width": WIDTH, "layers": [LAYERS, 2 * LAYERS], **s},
        "figures": figures,
        "quick": quick,
    }
    write_json(out_dir / "results.json", results)
    return results
