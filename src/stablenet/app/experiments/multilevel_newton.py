"""Seed 002's examples: Hamiltonian networks on ellipses and the swiss roll, trained by multilevel
Newton-type optimization.

Setting (seed 002, Haber & Ruthotto, "Stable architectures for deep neural networks"): the
two-class ellipses (1000 training / 2000 validation points) and swiss roll (256 / 256) problems,
a Hamiltonian two-stream network y' = σ(Kz + b_y), z' = −σ(Kᵀy + b_z) with σ = tanh, integrated by
Verlet, width 2 (ellipses) and 4 (swiss roll; the features repeated by the duplicating opening),
weight decay on the weights, trained by multilevel (cascadic) training in depth: start with 2
layers, train, prolongate the weights in time (θ(t) kept exactly, h → h/2), train again, up to
the finest level.  Every level is trained by full-batch Gauss–Newton–CG on the variable-projection
objective (the linear classifier eliminated by an inner Newton solve), with stablenet's trainer
(`training.optimizer = "gauss_newton"`, `varpro = true`, `[multilevel]`).

The seed goes from 2 to 1024 layers, and so does the default run here (10 levels; T = 5, so h
goes from 2.5 to 0.005).  A Gauss–Newton step costs about a forward and 60 backward passes, linear
in the depth, so the
coarse levels, which do the work, get 30 steps each and the fine levels, which mainly confirm
that the refined network keeps its accuracy, 10 down to 3 (``EPOCHS``).  The quick mode trains 2,
4 and 8 layers, 10 steps each.

Claim (seed 002): the networks reach at least 99% validation accuracy, and the accuracy is kept
when the network is refined in depth.  Figure: decision regions of every level's best weights
(background), with the validation points.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ..io import write_json
from ..checkpoint import load_weights
from ..config import parse_config
from ..networks import build_model
from ..training import train

SUMMARY = ("seed 002: Hamiltonian/Verlet nets (width 2, 4) on ellipses and swiss roll, multilevel 2 → 1024 "
           "layers, VarPro + Gauss-Newton")

#: Gauss–Newton steps (epochs, full batch) on the levels 2, 4, …, 1024 layers
EPOCHS = [30, 30, 30, 30, 10, 5, 5, 3, 3, 3]
QUICK_EPOCHS = [10, 10, 10]

PROBLEMS = {
    "ellipses": {"data": {"name": "ellipses", "options": {"n_train": 1000, "n_val": 2000, "n_test": 200}},
                 "width": 2, "T": 5.0},
    "swiss_roll": {"data": {"name": "swiss_roll", "options": {"n_train": 256, "n_val": 256, "n_test": 200}},
                   "width": 4, "T": 5.0},
}


def config(problem: str, epochs_per_level: list[int]) -> dict:
    """The raw configuration of one problem: levels of 2, 4, 8, … layers, one per entry of the epochs."""
    spec = PROBLEMS[problem]
    levels = len(epochs_per_level)
    max_layers = 2 ** levels
    return {
        "seed": 0,
        "data": spec["data"],
        "model": {"opening": "duplicate", "blocks": [
            {"dynamics": "hamiltonian", "width": spec["width"], "activation": "tanh", "T": spec["T"],
             "steps": max_layers, "nt": max_layers, "method": "verlet"}]},
        "training": {"optimizer": "gauss_newton", "varpro": True, "lr": 1.0,
                     "batch_size": spec["data"]["options"]["n_train"],
                     "weight_decay": 1e-4, "classifier_weight_decay": 1e-4, "smoothness": 1e-3, "threads": 1},
        "multilevel": {"levels": levels, "epochs_per_level": epochs_per_level, "start_steps": 2},
    }


def _figure(runs: dict, out_dir: Path) -> str:
    from ...data import load_dataset
    from ..plots import CLASS_COLORS, plot_decision_regions, pyplot, save_figure

    plt = pyplot()
    columns = max(len(r["levels"]) for r in runs.values())
    fig, axes = plt.subplots(len(runs), columns, figsize=(2.2 * columns, 2.3 * len(runs)), squeeze=False)
    for row, (problem, run) in enumerate(runs.items()):
        cfg = parse_config(run["config"])
        data = load_dataset(cfg.data.name, seed=cfg.seed, **cfg.data.options)
        for col in range(columns):
            ax = axes[row][col]
            ax.set_xticks([])
            ax.set_yticks([])
            if col >= len(run["levels"]):
                ax.axis("off")
                continue
            level = run["levels"][col]
            model = build_model(cfg, data.in_features, data.n_classes, level=level["level"])
            load_weights(Path(run["dir"]) / f"best-level-{level['level']}.safetensors", model)
            plot_decision_regions(model, data, None, resolution=120, ax=ax,
                                  title=f"{problem} {level['steps'][0]} layers: {100 * level['val_accuracy']:.1f}%")
            val = data.val
            ax.scatter(val.x[:, 0].numpy(), val.x[:, 1].numpy(), c=[CLASS_COLORS[int(c)] for c in val.y],
                       s=1, linewidths=0)
    fig.tight_layout()
    name = "decision_regions_per_level.png"
    save_figure(fig, out_dir / name, dpi=90)
    return name


def run(out_dir: str | Path, quick: bool = False) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # one thread while training (the trainer's ``threads = 1`` sets it too), the caller's count after
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(out_dir, quick)
    finally:
        torch.set_num_threads(threads)


def _run(out_dir: Path, quick: bool) -> dict:
    epochs = QUICK_EPOCHS if quick else EPOCHS
    runs, results = {}, {"experiment": "multilevel-newton", "settings": {"max_layers": 2 ** len(epochs),
                                                                      "seed_max_layers": 1024,
                                                                      "epochs_per_level": epochs}}
    for problem in PROBLEMS:
        raw = config(problem, epochs)
        start = time.perf_counter()
        metrics = train(parse_config(raw), out_dir / problem, overwrite=True, progress=False)
        runs[problem] = {"config": raw, "dir": str(out_dir / problem), "levels": metrics["levels"]}
        results[problem] = {
            "layers": [level["steps"][0] for level in metrics["levels"]],
            "val_accuracy": [level["val_accuracy"] for level in metrics["levels"]],
            "train_accuracy": [level["train_accuracy"] for level in metrics["levels"]],
            "test_accuracy": [level["test_accuracy"] for level in metrics["levels"]],
            "level_seconds": [round(level["wall_time_s"], 2) for level in metrics["levels"]],
            "final_val_accuracy": metrics["val_accuracy"],
            "seconds": time.perf_counter() - start,
        }
    results["figures"] = [_figure(runs, out_dir)]
    results["claims"] = {
        "ellipses_reaches_99_percent_validation_accuracy": results["ellipses"]["final_val_accuracy"] >= 0.99,
        "swiss_roll_reaches_99_percent_validation_accuracy": results["swiss_roll"]["final_val_accuracy"] >= 0.99,
        "refining_in_depth_keeps_the_accuracy (finest level within 1 point of the best level)": all(
            # (1e-9: exactly 1 point below counts as within 1 point, whatever the binary rounding)
            results[p]["val_accuracy"][-1] >= max(results[p]["val_accuracy"]) - 0.01 - 1e-9 for p in PROBLEMS),
    }
    write_json(out_dir / "results.json", json.loads(json.dumps(results)))
    return results
