"""Peak memory and time of one training step for every gradient mode, against depth.

The network: a Hamiltonian block, width 64 per stream (y and z), batch 256, T = 4, weights on a
fixed control grid of 16 piecewise-constant points (so the number of weights does not change
with depth and only the activation memory can), followed by a fixed linear read-out and a
cross-entropy loss.  One training step = forward, backward, ``SGD.step``, float32, 1 thread.

* Verlet network: ``autograd``, ``checkpoint`` (segments of ⌈√N⌉ steps), ``reversible``.
* RK4 network (same dynamics, classical RK4): ``autograd``, ``checkpoint``, ``adjoint`` (RK4, N
  backward steps), and torchdiffeq 0.2.5 on the same weights: ``odeint`` (backpropagation
  through its solver) and ``odeint_adjoint``.  torchdiffeq's ``"rk4"`` is Kutta's 3/8 rule, so
  its gradient error is measured against the exact gradient of its own discrete forward map
  (``odeint``), ours against ``autograd``.

**How memory is measured.**  Every (network, mode, depth) runs in a fresh Python process.  After
building the model and data, one warm-up step at depth 1 and the block's cached stage table
for depth N (model state that every later step reuses), the process reads its peak
resident set size (``getrusage(RUSAGE_SELF).ru_maxrss``, the kernel's high-water mark of
physical memory); after one training step at the full depth it reads it again.  The difference
is the step's real peak memory on top of what was resident, allocator overheads included
(on a GPU the script uses ``torch.cuda.max_memory_allocated`` instead).  The gradient error is
computed afterwards in the same process.  **Time** is measured separately, all networks and
modes of one depth in one process, round-robin in rotating order after a warm-up round (5
repeats up to N = 256, 3 up to 1024, 1 above), so that a busy machine slows all alike; the
table gives medians and ratios to ``autograd`` of the same network.

Run from the repository root (about 5 minutes on one CPU thread)::

    python benchmarks/bench_gradients.py                     # depths 16 … 4096
    python benchmarks/bench_gradients.py --depths 16 256 --device cuda
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

WIDTH, BATCH, T, NT, CLASSES = 64, 256, 4.0, 16, 10
MODES = {
    "verlet": ["autograd", "checkpoint", "reversible"],
    "rk4": ["autograd", "checkpoint", "adjoint", "torchdiffeq", "torchdiffeq_adjoint"],
}


def build(method: str, steps: int, mode: str, device: str):
    torch.manual_seed(0)
    dyn = sn.Hamiltonian(WIDTH, WIDTH, nt=NT)
    gradient = "autograd" if mode.startswith("torchdiffeq") else mode
    block = sn.ODEBlock(dyn, T=T, steps=steps, method=method, gradient=gradient).to(device)
    readout = torch.randn(CLASSES, WIDTH, device=device) / math.sqrt(WIDTH)
    x = torch.randn(BATCH, WIDTH, device=device)
    labels = torch.randint(0, CLASSES, (BATCH,), device=device)
    return block, readout, x, labels


def torchdiffeq_forward(block, x, steps, adjoint: bool):
    from torchdiffeq import odeint, odeint_adjoint

    dyn, nt = block.dynamics, block.dynamics.nt

    def func(t, state):
        k = min(int(math.floor(float(t) * nt / T)), nt - 1)
        return dyn(state, dyn.K[k], dyn.b_y[k], dyn.b_z[k])

    grid = torch.tensor([0.0, T], device=x.device)
    opts = {"step_size": T / steps, "perturb": True}  # every stage on its own step's weights
    state = (x, torch.zeros_like(x))
    if adjoint:
        out = odeint_adjoint(func, state, grid, method="rk4", options=opts,
                             adjoint_params=tuple(dyn.parameters()), adjoint_options=opts)
    else:
        out = odeint(func, state, grid, method="rk4", options=opts)
    return out[0][-1]


def loss_of(block, readout, x, labels, mode, steps=None):
    steps = steps or block.steps
    if mode.startswith("torchdiffeq"):
        y = torchdiffeq_forward(block, x, steps, adjoint=mode == "torchdiffeq_adjoint")
    else:
        y = block(x, steps=steps)
    return F.cross_entropy(y @ readout.T, labels)


def child(method: str, mode: str, steps: int, device: str) -> dict:
    torch.set_num_threads(1)
    block, readout, x, labels = build(method, steps, mode, device)
    opt = torch.optim.SGD(block.parameters(), lr=1e-3)

    def train_step(n=None):
        opt.zero_grad()
        loss_of(block, readout, x, labels, mode, n).backward()
        opt.step()

    train_step(1)  # warm-up: allocator, autograd engine, kernels
    block._stage_table(steps, x.device)  # the per-grid stage table is cached model state
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    train_step()
    if cuda:
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    # gradient error against the exact gradient of the same discrete forward map
    def grads(m):
        if not m.startswith("torchdiffeq"):
            block.gradient = m
        block.zero_grad()
        loss_of(block, readout, x, labels, m).backward()
        return torch.cat([p.grad.flatten() for p in block.parameters()])

    reference = {"torchdiffeq_adjoint": "torchdiffeq", "torchdiffeq": "torchdiffeq"}.get(mode, "autograd")
    g, g_ref = grads(mode), grads(reference)
    error = float((g - g_ref).norm() / g_ref.norm())
    return {"peak_bytes": peak, "grad_rel_error": error}


def time_round_robin(steps: int, device: str, repeats: int) -> dict:
    """Median time of one training step per (network, mode), all timed in this process in
    rotating order so that the noise of a shared machine falls on all of them alike."""
    torch.set_num_threads(1)
    runs = []
    for method, modes in MODES.items():
        for mode in modes:
            block, readout, x, labels = build(method, steps, mode, device)
            opt = torch.optim.SGD(block.parameters(), lr=1e-3)
            runs.append(((method, mode), block, readout, x, labels, opt))
    times = {key: [] for key, *_ in runs}
    for rep in range(repeats + 1):
        order = runs[rep % len(runs):] + runs[:rep % len(runs)]
        for key, block, readout, x, labels, opt in order:
            start = time.perf_counter()
            opt.zero_grad()
            loss_of(block, readout, x, labels, key[1]).backward()
            opt.step()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            if rep:  # the first round is warm-up
                times[key].append(time.perf_counter() - start)
    return {key: statistics.median(v) for key, v in times.items()}


def run_child(method, mode, steps, device) -> dict:
    cmd = [sys.executable, __file__, "--child", method, mode, str(steps), "--device", device]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def mib(b: float) -> str:
    return f"{b / 2**20:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[16, 64, 256, 1024, 4096])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-timed-depth", type=int, default=4096,
                        help="time the steps only up to this depth (memory is measured for all)")
    parser.add_argument("--child", nargs=3, metavar=("METHOD", "MODE", "STEPS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        method, mode, steps = args.child
        print(json.dumps(child(method, mode, int(steps), args.device)))
        return

    results = {}
    for method, modes in MODES.items():
        for mode in modes:
            for N in args.depths:
                r = results[method, mode, N] = run_child(method, mode, N, args.device)
                print(f"{method:7s} {mode:20s} N={N:5d}  peak {mib(r['peak_bytes']):>8s} MiB  "
                      f"grad err {r['grad_rel_error']:.1e}", flush=True)
    for N in args.depths:
        if N > args.max_timed_depth:
            continue
        repeats = 5 if N <= 256 else 3 if N <= 1024 else 1
        for (method, mode), t in time_round_robin(N, args.device, repeats).items():
            results[method, mode, N]["time_s"] = t
        print(f"timed N={N}", flush=True)
    timed = [N for N in args.depths if N <= args.max_timed_depth]

    where = args.device if args.device != "cpu" else f"CPU ({cpu_model()}), 1 thread"
    print(f"\nPeak memory of one training step (MiB; {'max_memory_allocated' if args.device != 'cpu' else 'peak RSS increase'}) "
          f"and time relative to autograd of the same network; {where}; width {WIDTH}, batch {BATCH}, nt {NT}\n")
    header = "| network | mode | " + " | ".join(f"N={N}" for N in args.depths) + \
             " | time / autograd (N=" + ", ".join(str(N) for N in timed) + ") | grad rel. error (N=" \
             + ", ".join(str(N) for N in args.depths) + ") |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for method, modes in MODES.items():
        for mode in modes:
            base = "torchdiffeq" if mode == "torchdiffeq_adjoint" else "autograd"
            mem = " | ".join(mib(results[method, mode, N]["peak_bytes"]) for N in args.depths)
            ratio = ", ".join(f"{results[method, mode, N]['time_s'] / results[method, base, N]['time_s']:.2f}"
                              for N in timed)
            errs = ", ".join(f"{results[method, mode, N]['grad_rel_error']:.0e}" for N in args.depths)
            print(f"| {method} | {mode} | {mem} | {ratio} | {errs} |")
    print("\n(time of torchdiffeq_adjoint relative to torchdiffeq's odeint; all others to autograd)")
    print("\nabsolute time per step (ms):")
    for method, modes in MODES.items():
        for mode in modes:
            print(f"  {method:7s} {mode:20s} " + "  ".join(
                f"{results[method, mode, N]['time_s'] * 1e3:8.1f}" for N in timed))


if __name__ == "__main__":
    main()
