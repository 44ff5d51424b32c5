"""Reversible against autograd gradients, side by side in one run: step time and peak memory.

The network: a Hamiltonian block (``sn.Hamiltonian(w, w, nt=16)``, tanh, T = 4, piecewise-constant
weights on 16 control points), staggered Verlet, N = 256 steps, batch 512, followed by a fixed
linear read-out and a cross-entropy loss; float32, ``torch.set_num_threads(1)``.  What is timed is
one step's gradient work: ``zero_grad``, forward, ``backward``.  For every width the two modes
run in one process on the same weights and data, interleaved, the order alternating every
repetition after a warm-up round, so that the noise of a shared machine falls on both alike; the
table gives the medians, their ratio, and the median of the per-repetition ratios.

**Peak memory** is measured like benchmarks/bench_gradients.py, before any timing: every
(width, mode) runs in a fresh Python process, which does a warm-up step at depth 1, caches the block's stage table for
depth N, reads its peak resident set size (``getrusage``), takes one step at depth N and reads it
again; the difference is the step's real peak memory on top of what was resident.  The same
child computes the relative difference of the reversible gradient from autograd's.

Run from the repository root (about 3 minutes on one CPU thread)::

    python benchmarks/bench_reversible.py                                # widths 8 … 256
    python benchmarks/bench_reversible.py --widths 32 --repeats 31
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

import stablenet as sn
from _machine import cpu_model

T, NT, CLASSES = 4.0, 16, 10
MODES = ("autograd", "reversible")


def build(width: int, batch: int, steps: int, mode: str):
    torch.manual_seed(0)
    block = sn.ODEBlock(sn.Hamiltonian(width, width, nt=NT), T=T, steps=steps, method="verlet",
                        gradient=mode)
    readout = torch.randn(CLASSES, width) / math.sqrt(width)
    x = torch.randn(batch, width)
    labels = torch.randint(0, CLASSES, (batch,))
    return block, readout, x, labels


def gradient_step(block, readout, x, labels, steps=None):
    block.zero_grad()
    F.cross_entropy(block(x, steps=steps) @ readout.T, labels).backward()


def child(width: int, batch: int, steps: int, mode: str) -> dict:
    torch.set_num_threads(1)
    block, readout, x, labels = build(width, batch, steps, mode)
    gradient_step(block, readout, x, labels, 1)  # warm-up: allocator, autograd engine, kernels
    block._stage_table(steps, x.device)  # the per-grid stage table is cached model state
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    gradient_step(block, readout, x, labels)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    got = torch.cat([p.grad.flatten() for p in block.parameters()])
    block.gradient = "autograd"
    gradient_step(block, readout, x, labels)
    ref = torch.cat([p.grad.flatten() for p in block.parameters()])
    return {"peak_bytes": peak, "grad_rel_error": float((got - ref).norm() / ref.norm())}


def run_child(width: int, batch: int, steps: int, mode: str) -> dict:
    cmd = [sys.executable, __file__, "--child", str(width), str(batch), str(steps), mode]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def time_interleaved(width: int, batch: int, steps: int, repeats: int) -> dict:
    """Seconds per gradient step of each mode (all repetitions) and the per-repetition ratios."""
    torch.set_num_threads(1)
    runs = {mode: build(width, batch, steps, mode) for mode in MODES}
    times = {mode: [] for mode in MODES}
    for rep in range(repeats + 1):
        for mode in (MODES if rep % 2 else MODES[::-1]):
            start = time.perf_counter()
            gradient_step(*runs[mode])
            if rep:  # the first round is warm-up
                times[mode].append(time.perf_counter() - start)
    ratios = [r / a for a, r in zip(times["autograd"], times["reversible"])]
    return {"times": times, "ratios": ratios}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[8, 16, 32, 64, 128, 256])
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--no-memory", action="store_true", help="time only")
    parser.add_argument("--child", nargs=4, metavar=("WIDTH", "BATCH", "STEPS", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        w, b, n, mode = args.child
        print(json.dumps(child(int(w), int(b), int(n), mode)))
        return

    # memory first: a child's peak RSS starts at its parent's (Linux keeps it across exec), so
    # the parent must not have run a step yet
    memory = {} if args.no_memory else {(w, m): run_child(w, args.batch, args.steps, m)
                                        for w in args.widths for m in MODES}
    rows = []
    for w in args.widths:
        timing = time_interleaved(w, args.batch, args.steps, args.repeats)
        med = {m: statistics.median(v) for m, v in timing["times"].items()}
        row = {"width": w, "ms": {m: 1e3 * t for m, t in med.items()},
               "ratio": med["reversible"] / med["autograd"],
               "ratio_median": statistics.median(timing["ratios"]),
               "ratio_quartiles": statistics.quantiles(timing["ratios"], n=4)[::2]}
        if not args.no_memory:
            mem = {m: memory[w, m] for m in MODES}
            row["peak_mib"] = {m: r["peak_bytes"] / 2**20 for m, r in mem.items()}
            row["grad_rel_error"] = mem["reversible"]["grad_rel_error"]
        rows.append(row)
        print(json.dumps(row), flush=True)

    print(f"\nHamiltonian Verlet block, batch {args.batch}, N = {args.steps}, nt = {NT}, float32; "
          f"CPU ({cpu_model()}), 1 thread; {args.repeats} interleaved repeats, medians\n")
    print("| width | autograd (ms) | reversible (ms) | reversible / autograd | median of paired ratios "
          "[quartiles] | peak MiB autograd | peak MiB reversible | grad rel. error |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        q = r["ratio_quartiles"]
        mem = (f"{r['peak_mib']['autograd']:.1f} | {r['peak_mib']['reversible']:.1f} | "
               f"{r['grad_rel_error']:.0e}") if "peak_mib" in r else "– | – | –"
        print(f"| {r['width']} | {r['ms']['autograd']:.1f} | {r['ms']['reversible']:.1f} | "
              f"**{r['ratio']:.2f}** | {r['ratio_median']:.2f} [{q[0]:.2f}, {q[1]:.2f}] | {mem} |")


if __name__ == "__main__":
    main()
