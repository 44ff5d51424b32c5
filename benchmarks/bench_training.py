"""Accuracy and wall time of the shipped configurations, one after the other, on one CPU thread.

Trains each configuration into a fresh temporary run directory (no progress bar) and prints a
Markdown table: validation accuracy (best), test accuracy of the best weights, epochs, and the
training wall time as recorded in metrics.json.

    python benchmarks/bench_training.py                          # the 2-D configurations
    python benchmarks/bench_training.py configs/digits.toml configs/fashion-mnist.toml
    python benchmarks/bench_training.py --threads 2 configs/fashion-mnist.toml
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

import stablenet
from stablenet.app.config import load_config
from stablenet.app.training import train

from _machine import cpu_model

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ["peaks.toml", "peaks-antisymmetric-rk4.toml", "peaks-resnet.toml", "ellipses.toml",
           "ellipses-resnet.toml", "swiss-roll.toml", "swiss-roll-resnet.toml"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="*", help="configuration files (default: the 2-D ones in configs/)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args()
    configs = [Path(c) for c in args.configs] or [ROOT / "configs" / name for name in DEFAULT]
    print(f"stablenet {stablenet.__version__}, torch {torch.__version__}, {cpu_model()}, "
          f"{args.threads} thread(s)\n")
    print("| config | model | val acc | test acc | epochs | train time (s) |")
    print("|---|---|---:|---:|---:|---:|")
    for path in configs:
        config, _ = load_config(path, [f"training.threads={args.threads}"])
        with tempfile.TemporaryDirectory() as tmp:
            m = train(config, Path(tmp) / "run", progress=False)
        blocks = " + ".join(f"{b.dynamics}/{b.method} w{b.width} N{b.steps}" for b in config.model.blocks)
        test = f"{100 * m['test_accuracy']:.2f}%" if "test_accuracy" in m else "–"
        print(f"| {path.name} | {blocks} | {100 * m['val_accuracy']:.2f}% | {test} | {m['epochs']} | "
              f"{m['wall_time_s']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
