"""Forward + backward time of one ODE block: stablenet vs a hand-written loop vs torchdiffeq.

All three compute the same network on the same weights: N steps of size h = T / N on
dY/dt = tanh(K(t) Y + b(t)), t ∈ [0, T = 1], with piecewise-constant weights, one slice
(K_j, b_j) per step (stages of step j all use slice j).  What is timed is one training step's
autograd work: ``out = impl(x)``, ``out.square().sum().backward()`` in float32, with
``torch.set_num_threads(1)``.

* **loop**: the natural hand-written baseline, a Python loop over per-layer weights held as
  lists of leaf tensors (no indexing in the loop), Euler ``y + h·f`` or the textbook RK4.
* **fused loop**: the same loop with each update written as one ``torch.add(y, k, alpha=…)``,
  as stablenet does internally: the tightest baseline, the limit for any wrapper.
* **stablenet**: ``ODEBlock(SingleLayer(w, nt=N), T=1, steps=N, method=m, controls="constant")``.
* **compiled**: the same block through ``torch.compile(block, fullgraph=True)`` (inductor, the
  whole N-step loop unrolled into one graph); its compile time (first forward + backward) is
  reported apart, with the number of training steps after which it pays back.
* **torchdiffeq**: ``odeint(func, y0, [0, T], method=m, options={"step_size": h})`` (plus
  ``"perturb": True`` for RK4, see :class:`Torchdiffeq`) with ``func(t, y)`` picking the weight
  slice of the step that contains t.  Note that torchdiffeq's ``"rk4"`` is Kutta's 3/8 rule
  (``rk4_alt_step_func``), not the classical RK4 of the other two, so for RK4 its output differs
  from theirs at O(h⁴) (printed, not asserted).

The implementations are timed round-robin (rotating the order every repetition) so that the
noise of a shared machine falls on all of them alike; the table reports medians.  Before timing,
the script checks that stablenet's output and input gradient agree with the loop's (torchdiffeq's
too, for Euler) and that torchdiffeq takes exactly N steps with every stage on its own step's
weights; a second table prints the relative differences.

Run from the repository root (about a minute for all cases on one CPU thread)::

    python benchmarks/bench_block.py                       # cases a-d, 30 repeats, CPU
    python benchmarks/bench_block.py --cases c d --repeats 10
    python benchmarks/bench_block.py --device cuda
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from torchdiffeq import odeint

import stablenet
from _machine import cpu_model

T = 1.0
WARMUP = 3
IMPLEMENTATIONS = ("loop", "fused", "stablenet", "compiled", "torchdiffeq")
STAGES = {"euler": 1, "rk4": 4}
TOLERANCE = 1e-5  # relative float32 agreement of results computed in different op orders


class Case(NamedTuple):
    width: int
    steps: int
    batch: int
    method: str

    def label(self, key: str) -> str:
        return f"{key}: w={self.width} N={self.steps} B={self.batch} {self.method}"


CASES = {
    "a": Case(64, 64, 1024, "euler"),
    "b": Case(64, 64, 1024, "rk4"),
    "c": Case(8, 256, 1024, "euler"),
    "d": Case(8, 256, 1024, "rk4"),
    "e": Case(16, 256, 32, "euler"),
    "f": Case(16, 256, 32, "rk4"),
}


# -- the hand-written loop ----------------------------------------------------------------------
# Written the textbook way: ``y + h * k`` is a multiply and an add per update, where stablenet's
# ``torch.add(y, k, alpha=h)`` is one op (and one autograd node) per update.
def loop_euler(y, Ks, bs, h):
    for K, b in zip(Ks, bs):
        y = y + h * torch.tanh(F.linear(y, K, b))
    return y


def loop_rk4(y, Ks, bs, h):
    for K, b in zip(Ks, bs):
        k1 = torch.tanh(F.linear(y, K, b))
        k2 = torch.tanh(F.linear(y + h / 2 * k1, K, b))
        k3 = torch.tanh(F.linear(y + h / 2 * k2, K, b))
        k4 = torch.tanh(F.linear(y + h * k3, K, b))
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return y


# The same loops with every update fused into one op, as stablenet does: the tightest baseline.
def fused_euler(y, Ks, bs, h):
    for K, b in zip(Ks, bs):
        y = torch.add(y, torch.tanh(F.linear(y, K, b)), alpha=h)
    return y


def fused_rk4(y, Ks, bs, h):
    for K, b in zip(Ks, bs):
        k1 = torch.tanh(F.linear(y, K, b))
        k2 = torch.tanh(F.linear(torch.add(y, k1, alpha=h / 2), K, b))
        k3 = torch.tanh(F.linear(torch.add(y, k2, alpha=h / 2), K, b))
        k4 = torch.tanh(F.linear(torch.add(y, k3, alpha=h), K, b))
        y = torch.add(torch.add(torch.add(torch.add(y, k1, alpha=h / 6), k2, alpha=h / 3), k3, alpha=h / 3),
                      k4, alpha=h / 6)
    return y


LOOPS = {("loop", "euler"): loop_euler, ("loop", "rk4"): loop_rk4,
         ("fused", "euler"): fused_euler, ("fused", "rk4"): fused_rk4}


class Loop:
    def __init__(self, Ks, bs, method, style="loop"):
        self.Ks, self.bs, self.h = Ks, bs, T / len(Ks)
        self.step_all = LOOPS[style, method]
        self.parameters = [*Ks, *bs]

    def __call__(self, x):
        return self.step_all(x, self.Ks, self.bs, self.h)


# -- torchdiffeq --------------------------------------------------------------------------------
class Torchdiffeq:
    """odeint with a time-dependent func over the same per-layer leaf tensors as the loop.

    Which slice a stage uses: every fixed-grid step of torchdiffeq evaluates f at t_j and, for
    RK4, at t_j + h/3, t_j + 2h/3 and t_{j+1}.  The grid points j·h are exact in float32 here
    (h = 1/N with N a power of two), so ``step_size = h`` gives exactly N steps and for Euler
    floor(t / h) = j.  RK4's last stage at t_{j+1} must use slice j (as in stablenet), but from
    t alone it cannot be told from the first stage of step j + 1.  torchdiffeq's own answer to
    discontinuities at grid points is ``perturb=True``: it then calls func at nextafter(t_j, +inf)
    for the first stage and at nextafter(t_{j+1}, -inf) for the last, so floor(t / h) is the
    step's own slice j for every stage.  Perturbing costs a nextafter and an autograd Function
    per step, so it is switched on only for RK4, where it is needed.  :func:`check` verifies
    the step count and every stage's slice.  Reading t costs one ``.item()`` per stage (a device
    sync on CUDA): that is inherent to selecting weights by time inside torchdiffeq.
    """

    def __init__(self, Ks, bs, method):
        self.Ks, self.bs, self.h = Ks, bs, T / len(Ks)
        self.method = method
        self.options = {"step_size": self.h, "perturb": method != "euler"}
        self.parameters = [*Ks, *bs]

    def slice_index(self, t: torch.Tensor) -> int:
        return math.floor(t.item() / self.h)

    def func(self, t, y):
        j = self.slice_index(t)
        return torch.tanh(F.linear(y, self.Ks[j], self.bs[j]))

    def solve(self, func, x):
        grid = torch.tensor([0.0, T], device=x.device)
        return odeint(func, x, grid, method=self.method, options=self.options)[-1]

    def __call__(self, x):
        return self.solve(self.func, x)


# -- stablenet ----------------------------------------------------------------------------------
class Stablenet:
    def __init__(self, block):
        self.block = block
        self.parameters = list(block.parameters())

    def __call__(self, x):
        return self.block(x)


class Compiled(Stablenet):
    """``torch.compile(block, fullgraph=True)`` (default inductor backend) on a copy of the block's
    weights; ``compile_s`` is the first call's forward + backward (tracing and code generation)."""

    def __init__(self, block):
        import copy

        block = copy.deepcopy(block)
        super().__init__(block)
        self.block = torch.compile(block, fullgraph=True)
        self.compile_s = None

    def __call__(self, x):
        return self.block(x)

    def warm(self, x, sync):
        sync()
        start = time.perf_counter()
        self.block(x).square().sum().backward()
        sync()
        self.compile_s = time.perf_counter() - start


def build(case: Case, device: torch.device) -> dict[str, Callable]:
    """The three implementations on identical weights (each with its own leaf tensors)."""
    torch.manual_seed(0)
    dynamics = stablenet.SingleLayer(case.width, nt=case.steps)
    block = stablenet.ODEBlock(dynamics, T=T, steps=case.steps, method=case.method,
                               controls="constant").to(device)

    def leaves(weights):
        return [weights[j].detach().clone().requires_grad_() for j in range(case.steps)]

    K, b = block.dynamics.K, block.dynamics.b
    return {
        "loop": Loop(leaves(K), leaves(b), case.method),
        "fused": Loop(leaves(K), leaves(b), case.method, style="fused"),
        "stablenet": Stablenet(block),
        "compiled": Compiled(block),
        "torchdiffeq": Torchdiffeq(leaves(K), leaves(b), case.method),
    }


# -- checks -------------------------------------------------------------------------------------
def output_and_input_grad(impl, x):
    x = x.detach().clone().requires_grad_()
    out = impl(x)
    (grad,) = torch.autograd.grad(out.square().sum(), x)
    return out.detach(), grad


def relative_difference(a: torch.Tensor, reference: torch.Tensor) -> float:
    return ((a - reference).abs().max() / reference.abs().max()).item()


def check(case: Case, impls, x) -> dict[str, float]:
    """Relative differences to the loop of outputs and input gradients; asserts what must agree."""
    tde = impls["torchdiffeq"]
    seen = []

    def recording_func(t, y):
        seen.append(tde.slice_index(t))
        return tde.func(t, y)

    tde.solve(recording_func, x)
    expected = [j for j in range(case.steps) for _ in range(STAGES[case.method])]
    assert seen == expected, "torchdiffeq did not take N steps with every stage on its own slice"

    impls["compiled"].warm(x, lambda: None)
    out_ref, grad_ref = output_and_input_grad(impls["loop"], x)
    diffs = {}
    for name in ("fused", "stablenet", "compiled", "torchdiffeq"):
        out, grad = output_and_input_grad(impls[name], x)
        diffs[f"{name} out"] = relative_difference(out, out_ref)
        diffs[f"{name} grad"] = relative_difference(grad, grad_ref)
    same_scheme = ["fused", "stablenet", "compiled"] + (["torchdiffeq"] if case.method == "euler" else [])
    for name in same_scheme:
        for what in ("out", "grad"):
            assert diffs[f"{name} {what}"] < TOLERANCE, f"{name} {what} differs from the loop: {diffs}"
    return diffs


# -- timing -------------------------------------------------------------------------------------
def synchronizer(device: torch.device) -> Callable[[], None]:
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def time_once(impl, x, sync) -> float:
    for p in impl.parameters:
        p.grad = None
    sync()
    start = time.perf_counter()
    impl(x).square().sum().backward()
    sync()
    return time.perf_counter() - start


def benchmark(impls, x, repeats: int, sync) -> dict[str, float]:
    """Median seconds per forward + backward, implementations interleaved round-robin."""
    for _ in range(WARMUP):
        for name in IMPLEMENTATIONS:
            time_once(impls[name], x, sync)
    times = {name: [] for name in IMPLEMENTATIONS}
    for r in range(repeats):
        k = r % len(IMPLEMENTATIONS)
        for name in IMPLEMENTATIONS[k:] + IMPLEMENTATIONS[:k]:
            times[name].append(time_once(impls[name], x, sync))
    return {name: statistics.median(ts) for name, ts in times.items()}


# -- report -------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="timed runs per implementation")
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=sorted(CASES))
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available")
    device = torch.device(args.device)
    torch.set_num_threads(1)
    sync = synchronizer(device)

    gpu = f", GPU {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    print(f"torch {torch.__version__}, CPU {cpu_model()}{gpu}, {torch.get_num_threads()} thread(s), "
          f"device {device}, float32, {args.repeats} interleaved repeats (median)\n")

    timings, agreement = [], []
    for key in args.cases:
        case = CASES[key]
        impls = build(case, device)
        x = torch.randn(case.batch, case.width, device=device)
        agreement.append((key, case, check(case, impls, x)))
        timings.append((key, case, benchmark(impls, x, args.repeats, sync), impls["compiled"].compile_s))

    print("| case | loop ms | fused loop ms | stablenet ms | compiled ms | torchdiffeq ms | stablenet/loop "
          "| compiled/loop | torchdiffeq/loop | compile s | pays back after (steps) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key, case, t, compile_s in timings:
        ms = {name: 1e3 * t[name] for name in IMPLEMENTATIONS}
        saved = t["stablenet"] - t["compiled"]
        payback = f"{math.ceil(compile_s / saved)}" if saved > 0 else "never"
        print(f"| {case.label(key)} | {ms['loop']:.2f} | {ms['fused']:.2f} | {ms['stablenet']:.2f} "
              f"| {ms['compiled']:.2f} | {ms['torchdiffeq']:.2f} | {t['stablenet'] / t['loop']:.2f} "
              f"| {t['compiled'] / t['loop']:.2f} | {t['torchdiffeq'] / t['loop']:.2f} | {compile_s:.1f} | {payback} |")

    print("\nmax |impl - loop| / max |loop| of the output and of its gradient w.r.t. x "
          "(torchdiffeq's rk4 is the 3/8 rule: not the same scheme)\n")
    print("| case | stablenet out | stablenet grad x | compiled out | compiled grad x | torchdiffeq out "
          "| torchdiffeq grad x |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for key, case, d in agreement:
        print(f"| {case.label(key)} | {d['stablenet out']:.1e} | {d['stablenet grad']:.1e} "
              f"| {d['compiled out']:.1e} | {d['compiled grad']:.1e} "
              f"| {d['torchdiffeq out']:.1e} | {d['torchdiffeq grad']:.1e} |")


if __name__ == "__main__":
    main()
