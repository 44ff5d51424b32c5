"""Time per training epoch of shipped configurations with and without ``training.compile``.

For each configuration: trains it for a few epochs eagerly, then the same run (same seed, same
data) with ``training.compile = true``, each into a fresh temporary run directory, and prints a
Markdown table: seconds per epoch eager, seconds per epoch compiled *without* the compiling
steps (the history's ``compile_s``, the compiling steps' time beyond a plain step's, summed over
the epochs), the ratio, the compile seconds (cold: a fresh inductor cache directory unless
``TORCHINDUCTOR_CACHE_DIR`` is set), and the validation accuracy both reach (equal up to
float round-off in the order of operations).  Epoch seconds are the training wall time of
metrics.json (every epoch's batches, validation, checkpoint) divided by the number of epochs.

    python benchmarks/bench_compile_training.py configs/peaks.toml --epochs 5
    python benchmarks/bench_compile_training.py configs/fashion-mnist-conv-parabolic.toml --epochs 2 --threads 2

The runs of one configuration are sequential, not interleaved (a training run is minutes): on a
shared machine, compare them only from one quiet run.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:  # cold compiles: a fresh inductor cache per run
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench_compile_training_")

import torch  # noqa: E402

import stablenet  # noqa: E402
from stablenet.app.config import load_config  # noqa: E402
from stablenet.app.training import train  # noqa: E402

from _machine import cpu_model  # noqa: E402


def run(path: Path, epochs: int, threads: int, compile_: bool) -> dict:
    overrides = [f"training.epochs={epochs}", f"training.threads={threads}",
                 f"training.compile={'true' if compile_ else 'false'}"]
    config, _ = load_config(path, overrides)
    with tempfile.TemporaryDirectory() as tmp:
        metrics = train(config, Path(tmp) / "run", progress=False)
        history = json.loads((Path(tmp) / "run" / "history.json").read_text())
    compile_s = sum(r.get("compile_s", 0.0) for r in history)
    return {"epoch_s": (metrics["wall_time_s"] - compile_s) / epochs, "compile_s": compile_s,
            "val_accuracy": history[-1]["val_accuracy"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+", help="configuration files")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args()
    print(f"stablenet {stablenet.__version__}, torch {torch.__version__}, {cpu_model()}, "
          f"{args.threads} thread(s), {args.epochs} epochs per run\n")
    print("| config | eager s/epoch | compiled s/epoch | compiled/eager | compile s | val acc eager | val acc compiled |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in args.configs:
        path = Path(name)
        eager = run(path, args.epochs, args.threads, False)
        compiled = run(path, args.epochs, args.threads, True)
        print(f"| {path.name} | {eager['epoch_s']:.2f} | {compiled['epoch_s']:.2f} | "
              f"{compiled['epoch_s'] / eager['epoch_s']:.2f} | {compiled['compile_s']:.1f} | "
              f"{100 * eager['val_accuracy']:.2f}% | {100 * compiled['val_accuracy']:.2f}% |", flush=True)


if __name__ == "__main__":
    main()
