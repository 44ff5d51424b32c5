"""Peaks: wall time and epochs to 99% validation accuracy for first-order, quasi-Newton, Newton-type
and multilevel training of the same network on the same data, in one run (issue 6).

Every method trains the Hamiltonian–Verlet network of configs/peaks.toml (width 8, T = 5, 32
steps, duplicating opening, smoothness 1e-4, seed 0; the same 5000 training / 1000 validation
points) with the real trainer (`stablenet.app.training.train`), one method after the other on one
thread, until the validation accuracy first reaches the target or the training wall time
(metrics' `wall_time_s`: epochs and validation, not the checkpoint writes) passes the cap.  The
stop is a hook on the trainer's per-epoch checkpoint, so nothing but the stop is changed.

    python benchmarks/bench_optimizers.py                 # all methods, cap 120 s each
    python benchmarks/bench_optimizers.py --cap 60 --only adam lbfgs
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

import stablenet
from stablenet.app import training
from stablenet.app.config import load_config

from _machine import cpu_model

ROOT = Path(__file__).resolve().parent.parent

#: method name → (label, --set overrides of configs/peaks.toml)
METHODS: dict[str, tuple[str, list[str]]] = {
    "adam": ("Adam, batch 100, lr 0.01", [
        "training.optimizer=adam", "training.batch_size=100", "training.lr=0.01"]),
    "sgd": ("SGD + momentum 0.9, batch 100, lr 0.05", [
        "training.optimizer=sgd", "training.batch_size=100", "training.lr=0.05", "training.momentum=0.9"]),
    "lbfgs": ("L-BFGS, full batch (configs/peaks.toml)", []),
    "varpro_gn": ("VarPro + Gauss–Newton–CG, full batch", [
        "training.optimizer=gauss_newton", "training.varpro=true", "training.lr=1.0",
        "training.classifier_weight_decay=1e-7"]),
    "multilevel_lbfgs": ("multilevel 8 → 16 → 32 steps, L-BFGS, full batch", [
        "multilevel.levels=3", "multilevel.epochs_per_level=[20, 20, 200]"]),
    "multilevel_varpro_gn": ("multilevel 8 → 16 → 32 steps, VarPro + Gauss–Newton", [
        "training.optimizer=gauss_newton", "training.varpro=true", "training.lr=1.0",
        "training.classifier_weight_decay=1e-7", "multilevel.levels=3", "multilevel.epochs_per_level=[10, 10, 200]"]),
}


class _Stop(Exception):
    pass


def run(name: str, cap: float, target: float) -> dict:
    """Train one method until the target or the cap; per-epoch (wall time, validation accuracy)."""
    label, overrides = METHODS[name]
    config, _ = load_config(ROOT / "configs" / "peaks.toml", ["training.epochs=100000", "training.threads=1",
                                                              *overrides])
    rows: list[dict] = []
    save = training.save_checkpoint

    def hook(out_dir, state, tag):
        path = save(out_dir, state, tag=tag)
        last = state["history"][-1]
        rows.append({"epoch": last["epoch"], "wall_time_s": state["wall_time_s"], "val_accuracy": last["val_accuracy"],
                     "train_accuracy": last["train_accuracy"], "level": last.get("level", 1)})
        if last["val_accuracy"] >= target or state["wall_time_s"] >= cap:
            raise _Stop
        return path

    training.save_checkpoint = hook
    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            training.train(config, Path(tmp) / "run", progress=False)
    except _Stop:
        pass
    finally:
        training.save_checkpoint = save
    clock = time.perf_counter() - start
    hit = next((r for r in rows if r["val_accuracy"] >= target), None)
    best = max(rows, key=lambda r: r["val_accuracy"])
    return {"method": name, "label": label, "overrides": overrides, "reached": hit is not None,
            "epochs": hit["epoch"] if hit else None, "time_s": hit["wall_time_s"] if hit else None,
            "best_val_accuracy": best["val_accuracy"], "best_epoch": best["epoch"],
            "epochs_run": rows[-1]["epoch"], "train_time_s": rows[-1]["wall_time_s"], "clock_s": clock,
            "history": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap", type=float, default=120.0, help="training wall-time cap per method in s (120)")
    parser.add_argument("--target", type=float, default=0.99, help="validation accuracy to reach (0.99)")
    parser.add_argument("--only", nargs="*", choices=list(METHODS), help="run only these methods")
    parser.add_argument("--json", help="also write the results (with per-epoch histories) to this file")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"stablenet {stablenet.__version__}, torch {torch.__version__}, {cpu_model()}, 1 thread, "
          f"load average before {os.getloadavg()[0]:.2f}, cap {args.cap:g} s, target {100 * args.target:g}%\n",
          flush=True)
    results = []
    for name in args.only or list(METHODS):
        results.append(run(name, args.cap, args.target))
    print("| method | reached 99%? | epochs | time to 99% (s) | best val acc (epoch) | epochs run | train time (s) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in results:
        reached = "yes" if r["reached"] else "not reached"
        epochs = r["epochs"] if r["reached"] else "–"
        time_s = f"{r['time_s']:.1f}" if r["reached"] else "–"
        print(f"| {r['label']} | {reached} | {epochs} | {time_s} | {100 * r['best_val_accuracy']:.2f}% "
              f"({r['best_epoch']}) | {r['epochs_run']} | {r['train_time_s']:.1f} |")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
