"""Seed 004 §3.1, Fig. 3.3: control layers vs state layers, the 6 × 6 cross-evaluation.

A ResNet whose weights live on nt = 16 control layers (piecewise constant in time) is the
forward-Euler discretization of dY/dt = tanh(K(t)Y + b(t)) on [0, T], T = 20, width 8 (the two
peaks features repeated four times), with nY state layers (Euler steps, h = T/nY).  One network
is trained per nY = 8, 16, 32, 64, 128, 256, all from the same data and the same initial weights
(plain Adam, mini-batches in a seeded order); then every trained weight set is evaluated on every
state grid: the 6 × 6 validation-accuracy matrix (row: trained with nY, column: evaluated with
nY) and the 36 decision regions.

The seed's claims: the diagonal (each network on its own grid) shows "some level of accuracy";
weights trained on 8 state layers fail on the other grids and the other weights fail on 8 state
layers; "the same pattern" for 16; the bottom-right 3 × 3 block (64 … 256) is much better than
the panels on its left and its entries differ little; conclusion: "the more state layers a
network has, the better classification results" and a network needs a certain number of state
layers for a given T.

With piecewise-constant controls and nY = 8 < nt = 16 the Euler stages sit on every other control
point only, so training on 8 state layers never touches half of the weights (they keep their
initial values, ``controls_updated`` in results.json); evaluating those weights on a finer grid
uses the untrained half.  Default run: 400 training points per class (the thesis used 1000;
chosen so that the six trainings, 504 state layers in all, fit in about two minutes on one CPU
thread), 80 epochs of Adam (lr 0.01, batches of 50); accuracies on 200 validation points per
class.  ``--quick``: nY = 8, 16, 32, 40 points per class, 30 short epochs.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import torch

from ... import ODEBlock, ODEClassifier, SingleLayer
from ..io import pyplot, save_figure, write_json
from ...data import load_dataset
from ..plots import CLASS_COLORS, plot_decision_regions
from ._train import accuracy, train_model

SUMMARY = "seed 004 Fig 3.3: train with nY = 8...256 state layers (nt = 16 controls, T = 20), cross-evaluate 6 x 6"

T = 20.0
WIDTH = 8
CONTROLS = 16
STATE_LAYERS = (8, 16, 32, 64, 128, 256)
FINE = (64, 128, 256)


def _settings(quick: bool) -> dict:
    if quick:
        return {"state_layers": STATE_LAYERS[:3], "per_class": 40, "val_per_class": 20, "test_per_class": 10,
                "epochs": 30, "batch_size": 25, "lr": 0.01, "resolution": 40}
    return {"state_layers": STATE_LAYERS, "per_class": 400, "val_per_class": 200, "test_per_class": 40,
            "epochs": 80, "batch_size": 50, "lr": 0.01, "resolution": 90}


def build_network(steps: int, *, seed: int = 0) -> ODEClassifier:
    """Duplicate opening → forward Euler on tanh(K(t)Y + b(t)), nt = 16 constant controls → (W, μ)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        block = ODEBlock(SingleLayer(WIDTH, nt=CONTROLS, activation="tanh"), T=T, steps=steps,
                         method="euler", controls="constant")
        return ODEClassifier(2, 5, block, opening="duplicate")


def _cross_accuracy(models: dict, split, grids) -> dict:
    """{trained nY: [accuracy evaluated with each nY of ``grids``]}."""
    return {str(a): [accuracy(_Steps(models[a], b), split.x, split.y) for b in grids] for a in grids}


class _Steps(torch.nn.Module):
    """The classifier evaluated on another state grid (for plot_decision_regions)."""

    def __init__(self, model: ODEClassifier, steps: int):
        super().__init__()
        self.model, self.steps = model, steps

    def forward(self, x):
        m = self.model
        return m.classifier(m.blocks[0](m.opening(x), steps=self.steps))


def _plot_regions(models: dict, grids, data, acc: dict, path: Path, resolution: int) -> Path:
    plt = pyplot()
    n = len(grids)
    fig, axes = plt.subplots(n, n, figsize=(2.1 * n, 2.1 * n), squeeze=False)
    g = torch.Generator().manual_seed(0)
    keep = torch.randperm(len(data.val.y), generator=g)[:150]
    colors = [CLASS_COLORS[int(c)] for c in data.val.y[keep]]
    for i, a in enumerate(grids):
        for j, b in enumerate(grids):
            ax = axes[i, j]
            plot_decision_regions(_Steps(models[a], b), data, None, resolution=resolution, ax=ax,
                                  title=f"trained {a}, eval {b}: {100 * acc[str(a)][j]:.0f}%")
            ax.scatter(data.val.x[keep, 0], data.val.x[keep, 1], c=colors, s=2, linewidths=0)
            ax.set_xticks([]); ax.set_yticks([])
            if a == b:
                for spine in ax.spines.values():
                    spine.set_edgecolor("k"); spine.set_linewidth(2)
    fig.suptitle(f"Seed 004 Fig. 3.3: T = {T:g}, nt = {CONTROLS} control layers; row: weights trained with nY "
                 "state layers, column: evaluated with nY (validation accuracy; diagonal framed)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return save_figure(fig, path, dpi=80)


def _plot_matrix(acc: dict, grids, path: Path) -> Path:
    plt = pyplot()
    M = [[100 * v for v in acc[str(a)]] for a in grids]
    fig, ax = plt.subplots(figsize=(5.6, 4.8))
    im = ax.imshow(M, vmin=0, vmax=100, cmap="viridis")
    for i in range(len(grids)):
        for j in range(len(grids)):
            ax.text(j, i, f"{M[i][j]:.0f}", ha="center", va="center", fontsize=9,
                    color="w" if M[i][j] < 60 else "k")
    ax.set_xticks(range(len(grids)), [str(b) for b in grids])
    ax.set_yticks(range(len(grids)), [str(a) for a in grids])
    ax.set_xlabel("evaluated with nY state layers")
    ax.set_ylabel("trained with nY state layers")
    ax.set_title(f"validation accuracy (%), T = {T:g}, nt = {CONTROLS}", fontsize=10)
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


#: accuracies are multiples of 1/n: thresholds on their differences get this slack, so that exactly
#: 5 points counts as "within 5 points" (0.9 − 0.85 > 0.05 in binary floating point)
_EPS = 1e-9


def _claims(acc: dict, grids) -> dict:
    idx = {n: k for k, n in enumerate(grids)}
    diag = [acc[str(n)][idx[n]] for n in grids]
    claims = {
        "diagonal_accuracy_above_85_percent": min(diag) >= 0.85,
        "weights_trained_on_8_state_layers_fail_elsewhere": max(v for b, v in zip(grids, acc["8"]) if b != 8) < 0.5,
        "other_weights_fail_on_8_state_layers": max(acc[str(a)][0] for a in grids if a != 8) < 0.5,
    }
    if 16 in idx and len(grids) > 2:
        others = [n for n in grids if n not in (8, 16)]
        row = [acc["16"][idx[b]] for b in others]
        col = [acc[str(a)][idx[16]] for a in others]
        claims["16_state_layers_transfer_clearly_worse_than_its_own_grid"] = \
            sum(row + col) / len(row + col) <= diag[idx[16]] - 0.05 + _EPS
    if all(n in idx for n in FINE):
        block = [acc[str(a)][idx[b]] for a in FINE for b in FINE]
        left = [acc[str(a)][idx[b]] for a in FINE for b in grids if b not in FINE]
        claims["bottom_right_block_much_better_than_left"] = sum(block) / 9 >= sum(left) / len(left) + 0.1 - _EPS
        claims["fine_grids_transfer_within_5_points_of_the_diagonal"] = all(
            acc[str(a)][idx[a]] - acc[str(a)][idx[b]] <= 0.05 + _EPS for a in FINE for b in FINE)
    claims["diagonal_accuracy_grows_with_state_layers"] = all(x <= y for x, y in zip(diag, diag[1:]))
    claims["8_state_layers_lowest_diagonal_accuracy"] = diag[0] < min(diag[1:])
    return claims


def run(out_dir: str | Path, quick: bool = False) -> dict:
    out_dir = Path(out_dir)
    s = _settings(quick)
    grids = s["state_layers"]
    data = load_dataset("peaks", seed=0, n_train_per_class=s["per_class"], n_val_per_class=s["val_per_class"],
                        n_test_per_class=s["test_per_class"])
    base = build_network(grids[0])
    init = [w.detach().clone() for w in base.blocks[0].dynamics.control_weights()]
    models, histories, updated, seconds = {}, {}, {}, {}
    for n in grids:
        model = copy.deepcopy(base)
        model.blocks[0].steps = n
        start = time.perf_counter()
        histories[n] = train_model(model, data.train.x, data.train.y, epochs=s["epochs"], batch_size=s["batch_size"],
                                   lr=s["lr"], seed=0, record=False)
        seconds[str(n)] = time.perf_counter() - start
        changed = torch.zeros(CONTROLS, dtype=torch.bool)
        for w0, w in zip(init, model.blocks[0].dynamics.control_weights()):
            changed |= (w.detach() != w0).reshape(CONTROLS, -1).any(1)
        updated[str(n)] = int(changed.sum())
        models[n] = model

    val = _cross_accuracy(models, data.val, grids)
    train = _cross_accuracy(models, data.train, grids)
    test = _cross_accuracy(models, data.test, grids)
    figures = [_plot_matrix(val, grids, out_dir / "state_layers_accuracy.png").name,
               _plot_regions(models, grids, data, val, out_dir / "state_layers_regions.png", s["resolution"]).name]
    results = {
        "experiment": "state-layers",
        "claims": _claims(val, grids),
        "state_layers": list(grids),
        "diagonal_val_accuracy": [val[str(n)][k] for k, n in enumerate(grids)],
        "val_accuracy_trained_with": val,
        "train_accuracy_trained_with": train,
        "test_accuracy_trained_with": test,
        "final_batch_loss": {str(n): histories[n][-1]["batch_loss"] for n in grids},
        "controls_updated": updated,
        "train_seconds": seconds,
        "settings": {"T": T, "width": WIDTH, "controls": CONTROLS, "method": "euler", "activation": "tanh",
                     **{k: v for k, v in s.items() if k != "state_layers"}},
        "figures": figures,
        "quick": quick,
    }
    write_json(out_dir / "results.json", results)
    return results
