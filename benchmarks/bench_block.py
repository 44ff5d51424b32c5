"""Forward + backward time of one ODE block: stablenet (eager and compiled) vs hand-written loops,
torchdiffeq and torchdyn.

All implementations compute the same network on the same weights: N steps of size h = T / N,
t ∈ [0, T = 1], with piecewise-constant weights, one slice per step (stages of step j all use
slice j).  Cases a-f integrate dY/dt = tanh(K(t) Y + b(t)) (``stablenet.SingleLayer``) by Euler
or the classical RK4; case g is the Hamiltonian block ``stablenet.Hamiltonian(w, w, nt=N)``,
dy/dt = tanh(K z + b_y), dz/dt = −tanh(Kᵀ y + b_z), by staggered Verlet from z = 0 (the output
is y(T)).  What is timed is one training step's autograd work: ``out = impl(x)``,
``out.square().sum().backward()`` in float32, with ``torch.set_num_threads(1)``.

* **loop**: the natural hand-written baseline, a Python loop over per-layer weights held as
  lists of leaf tensors (no indexing in the loop): Euler ``y + h·f``, the textbook RK4, or
  Verlet ``z = z − h·tanh(Kᵀy + b_z); y = y + h·tanh(Kz + b_y)``.
* **fused loop**: the same loop with each update written as one ``torch.add(y, k, alpha=…)``
  (``torch.sub`` for Verlet's z), as stablenet does eagerly: the tightest eager baseline.
* **stablenet**: ``ODEBlock(dynamics, T=1, steps=N, method=m, controls="constant")``, eager.
* **compiled scan**: ``torch.compile(block, fullgraph=True)`` (inductor) of a copy of the block
  with ``compiled_loop="scan"`` (the default): one step traced and looped over as one
  ``torch._higher_order_ops.scan``, so the build time does not grow with N.
* **compiled unroll**: the same with ``compiled_loop="unroll"`` (all N steps traced into one
  graph; the build time grows with N and the stages: minutes at N = 256).  Only with
  ``--unroll``; otherwise the column says "not run".
  Each compiled form's compile time (its first forward + backward: tracing and code generation)
  is reported apart, with the number of training steps after which it pays back against eager
  stablenet (compile s / time saved per step).  Each run uses a fresh inductor cache directory
  (``TORCHINDUCTOR_CACHE_DIR``, unless set), so compile times are cold.
* **torchdiffeq**: ``odeint(func, y0, [0, T], method=m, options={"step_size": h})`` (plus
  ``"perturb": True`` for RK4, see :class:`Torchdiffeq`) with ``func(t, y)`` picking the weight
  slice of the step that contains t.  Note that torchdiffeq's ``"rk4"`` is Kutta's 3/8 rule
  (``rk4_alt_step_func``), not the classical RK4 of the others, so for RK4 its output differs
  from theirs at O(h⁴) (printed, not asserted).  Verlet: **n/a**.  torchdiffeq's methods are
  Runge–Kutta and Adams methods on the whole state (euler, midpoint, heun2/3, rk4, bosh3,
  dopri5/8, fehlberg2, adaptive_heun, explicit/implicit/fixed adams, scipy_solver); none is a
  partitioned scheme that updates z from y and then y from the new z with z living at half
  steps, so the staggered Verlet network cannot be run by its ``odeint`` (only imitated by a
  ``func`` that does the stepping itself, which would time our loop, not torchdiffeq).
* **torchdyn**: ``torchdyn.numerics.odeint(func, y0, t_span, solver)`` with torchdyn's
  fixed-step ``"euler"``/``"rk4"`` solver (its rk4 is the classical tableau, though it hands f
  shifted stage times: see :class:`Torchdyn`) on the grid t_span = (0, h, …, T) and
  ``save_at=(T,)``.  Verlet: **n/a**: its only
  symplectic solver, ``"alf"`` (asynchronous leapfrog, for ``odeint_symplectic``), is another
  scheme: for any f it carries x with an auxiliary v ≈ f(t, x) (x ← x + h/2·v, v ← 2 f(x) − v,
  x ← x + h/2·v), not the staggered Verlet of a separable pair y' = f_y(z), z' = f_z(y).
  Installing: torchdyn 1.0.6 (the latest release) declares dependencies that would replace
  torch (``pip install torchdyn`` resolves to torch 2.14 with CUDA, torchvision, pytorch-lightning,
  poethepoet 0.10, …), so it is not a project dependency; for this benchmark it is installed
  without them, ``pip install --no-deps torchdyn==1.0.6 torchcde==0.2.5 torchsde==0.2.6
  trampoline``, which keeps torch as it is.  ``torchdyn.numerics`` (the solvers and ``odeint``)
  then imports; ``torchdyn.core`` (``NeuralODE``) does not, it needs pytorch-lightning, so the
  functional ``odeint`` that ``NeuralODE`` calls is used directly.  Without torchdyn the column
  says "not installed".

The implementations are timed round-robin (rotating the order every repetition) so that the
noise of a shared machine falls on all of them alike; the table reports medians.  Before timing,
the script checks that every implementation of the same scheme agrees with the loop in output
and input gradient (torchdiffeq's too, for Euler), and that torchdiffeq and torchdyn take exactly
N steps with every stage on its own step's weights; a last table prints the relative differences.

Run from the repository root or from benchmarks/ (cases a-d take about a minute on one CPU
thread; every compiled form adds its compile time, 10-60 s per case)::

    python benchmarks/bench_block.py                       # cases a-g, 30 repeats, CPU
    python benchmarks/bench_block.py --cases e f g a --repeats 10
    python benchmarks/bench_block.py --cases e g --unroll  # also the unrolled compile
    python benchmarks/bench_block.py --device cuda
"""

from __future__ import annotations

import argparse
import atexit
import copy
import math
import os
import shutil
import statistics
import tempfile
import time
from typing import Callable, NamedTuple

if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:  # cold compiles: a fresh inductor cache per run
    _cache = tempfile.mkdtemp(prefix="bench_block_inductor_")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torchdiffeq import odeint  # noqa: E402

import stablenet  # noqa: E402
from _machine import cpu_model  # noqa: E402

try:
    from torchdyn.numerics import odeint as torchdyn_odeint
    from torchdyn.numerics.solvers.ode import str_to_solver as torchdyn_solver
except ImportError:  # see the module docstring for how to install it without moving torch
    torchdyn_odeint = torchdyn_solver = None

T = 1.0
WARMUP = 3
IMPLEMENTATIONS = ("loop", "fused", "stablenet", "scan", "unroll", "torchdiffeq", "torchdyn")
HEADINGS = {"loop": "loop", "fused": "fused loop", "stablenet": "stablenet", "scan": "compiled scan",
            "unroll": "compiled unroll", "torchdiffeq": "torchdiffeq", "torchdyn": "torchdyn"}
COMPILED = ("scan", "unroll")
STAGES = {"euler": 1, "rk4": 4, "verlet": 2}
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
    "g": Case(16, 256, 32, "verlet"),
}


# -- the hand-written loops ---------------------------------------------------------------------
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


def loop_verlet(y, Ks, bys, bzs, h):
    """Staggered Verlet from Z_{−1/2} = 0 (stablenet.integrators.Verlet) on the Hamiltonian f."""
    z = torch.zeros_like(y)
    for K, by, bz in zip(Ks, bys, bzs):
        z = z - h * torch.tanh(F.linear(y, K.t(), bz))
        y = y + h * torch.tanh(F.linear(z, K, by))
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


def fused_verlet(y, Ks, bys, bzs, h):
    z = torch.zeros_like(y)
    for K, by, bz in zip(Ks, bys, bzs):
        z = torch.sub(z, torch.tanh(F.linear(y, K.t(), bz)), alpha=h)
        y = torch.add(y, torch.tanh(F.linear(z, K, by)), alpha=h)
    return y


LOOPS = {("loop", "euler"): loop_euler, ("loop", "rk4"): loop_rk4, ("loop", "verlet"): loop_verlet,
         ("fused", "euler"): fused_euler, ("fused", "rk4"): fused_rk4, ("fused", "verlet"): fused_verlet}


class Loop:
    """A hand-written loop over per-layer leaf tensors: ``weights`` is one list per weight
    (K, b for SingleLayer; K, b_y, b_z for Hamiltonian), N leaves each."""

    def __init__(self, weights, method, style="loop"):
        self.weights, self.h = weights, T / len(weights[0])
        self.step_all = LOOPS[style, method]
        self.parameters = [w for ws in weights for w in ws]

    def __call__(self, x):
        return self.step_all(x, *self.weights, self.h)


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


# -- torchdyn -----------------------------------------------------------------------------------
class Torchdyn:
    """torchdyn's functional ``odeint`` with a fixed-step solver and a time-dependent vector field
    over the same per-layer leaf tensors as the loop.

    ``_fixed_odeint`` steps from t_span[0] with dt = t_span[k+1] − t and t ← t + dt, so the grid
    t_span = (0, h, …, N·h) (exact in float32 for N a power of two) gives exactly N steps of h.
    Its Euler evaluates f at t_j.  Its RK4 has the classical tableau (c = 0, ½, ½, 1) but
    evaluates stage k + 1 at t + c[k]·dt, off by one (torchdyn 1.0.6, ``RungeKutta4.step``):
    the four stages see t_j, t_j, t_j + h/2, t_j + h/2 instead of t_j, t_j + h/2, t_j + h/2,
    t_{j+1}.  Weights chosen from t would therefore be wrong for controls that vary within a step,
    and even with the right times RK4's last stage at t_{j+1} could not be told from the next
    step's first (torchdyn has no ``perturb``).  So the vector field counts its calls (reset per
    solve): slice j = call // stages, right because a fixed-step solve calls f exactly
    ``stages`` times per step, in order; with piecewise-constant weights every stage of step j
    must use slice j, whatever t it is handed, and the result is the classical RK4 of the other
    implementations.  :func:`check` verifies the call count, each call's slice and the t torchdyn
    passes (its stage times above).  Counting needs no ``t.item()``, so unlike torchdiffeq there
    is no device sync per stage.  ``save_at=(T,)``: only the final state is kept (torchdyn still
    compares t with it after every step).  The solver instance is made once (its tableau tensors).
    """

    def __init__(self, Ks, bs, method):
        self.Ks, self.bs, self.h = Ks, bs, T / len(Ks)
        self.stages = STAGES[method]
        self.solver = torchdyn_solver(method, torch.float32)
        self.grid = torch.arange(len(Ks) + 1, dtype=torch.float32) * self.h
        self.calls = 0
        self.parameters = [*Ks, *bs]

    def func(self, t, y):
        j = self.calls // self.stages
        self.calls += 1
        return torch.tanh(F.linear(y, self.Ks[j], self.bs[j]))

    def solve(self, func, x):
        self.calls = 0
        grid = self.grid.to(x.device)
        _, states = torchdyn_odeint(func, x, grid, self.solver, save_at=grid[-1:])
        return states[-1]

    def __call__(self, x):
        return self.solve(self.func, x)


# -- stablenet ----------------------------------------------------------------------------------
class Stablenet:
    def __init__(self, block):
        self.block = block
        self.parameters = list(block.parameters())

    def __call__(self, x):
        return self.block(x)


#: options of every torch.compile here (``--cpp-wrapper`` sets {"cpp_wrapper": True})
INDUCTOR_OPTIONS: dict = {}


class Compiled(Stablenet):
    """``torch.compile(block, fullgraph=True)`` (default inductor backend) on a copy of the block's
    weights with the given ``compiled_loop``; ``compile_s`` is the first call's forward + backward
    (tracing and code generation)."""

    def __init__(self, block, compiled_loop: str):
        block = copy.deepcopy(block)
        block.compiled_loop = compiled_loop
        super().__init__(block)
        self.block = torch.compile(block, fullgraph=True, options=INDUCTOR_OPTIONS)
        self.compile_s = None

    def warm(self, x, sync):
        sync()
        start = time.perf_counter()
        self.block(x).square().sum().backward()
        sync()
        self.compile_s = time.perf_counter() - start


def build(case: Case, device: torch.device, unroll: bool) -> dict[str, object]:
    """The implementations on identical weights (each with its own leaf tensors); a string in
    place of one that is not run says why ("not run", "n/a", "not installed")."""
    torch.manual_seed(0)
    if case.method == "verlet":
        dynamics = stablenet.Hamiltonian(case.width, case.width, nt=case.steps)
    else:
        dynamics = stablenet.SingleLayer(case.width, nt=case.steps)
    block = stablenet.ODEBlock(dynamics, T=T, steps=case.steps, method=case.method,
                               controls="constant").to(device)

    def leaves(weights):
        return [weights[j].detach().clone().requires_grad_() for j in range(case.steps)]

    weights = list(block.dynamics.control_weights())  # (K, b) or (K, b_y, b_z), each (N, …)
    impls: dict[str, object] = {
        "loop": Loop([leaves(w) for w in weights], case.method),
        "fused": Loop([leaves(w) for w in weights], case.method, style="fused"),
        "stablenet": Stablenet(block),
        "scan": Compiled(block, "scan"),
        "unroll": Compiled(block, "unroll") if unroll else "not run",
    }
    if case.method == "verlet":  # no staggered Verlet in either library (module docstring)
        impls["torchdiffeq"] = impls["torchdyn"] = "n/a"
    else:
        impls["torchdiffeq"] = Torchdiffeq(*(leaves(w) for w in weights), case.method)
        impls["torchdyn"] = ("not installed" if torchdyn_odeint is None
                             else Torchdyn(*(leaves(w) for w in weights), case.method))
    return impls


def running(impls) -> list[str]:
    return [name for name in IMPLEMENTATIONS if not isinstance(impls[name], str)]


# -- checks -------------------------------------------------------------------------------------
def output_and_input_grad(impl, x):
    x = x.detach().clone().requires_grad_()
    out = impl(x)
    (grad,) = torch.autograd.grad(out.square().sum(), x)
    return out.detach(), grad


def relative_difference(a: torch.Tensor, reference: torch.Tensor) -> float:
    return ((a - reference).abs().max() / reference.abs().max()).item()


def check_torchdiffeq(case: Case, tde: Torchdiffeq, x) -> None:
    seen = []

    def recording_func(t, y):
        seen.append(tde.slice_index(t))
        return tde.func(t, y)

    tde.solve(recording_func, x)
    expected = [j for j in range(case.steps) for _ in range(STAGES[case.method])]
    assert seen == expected, "torchdiffeq did not take N steps with every stage on its own slice"


def check_torchdyn(case: Case, tdyn: Torchdyn, x) -> None:
    seen = []

    def recording_func(t, y):
        seen.append((tdyn.calls // tdyn.stages, t.item()))
        return tdyn.func(t, y)

    tdyn.solve(recording_func, x)
    # the stage times torchdyn 1.0.6 passes (its RK4 is off by one stage in c: see Torchdyn)
    offsets = {"euler": (0.0,), "rk4": (0.0, 0.0, 0.5, 0.5)}[case.method]
    h = tdyn.h
    expected = [(j, (j + c) * h) for j in range(case.steps) for c in offsets]
    assert seen == expected, "torchdyn did not take N steps with every stage at its time and on its own slice"


def check(case: Case, impls, x, sync) -> dict[str, float]:
    """Relative differences to the loop of outputs and input gradients; asserts what must agree.
    Compiles the compiled forms (their ``compile_s``)."""
    if "torchdiffeq" in running(impls):
        check_torchdiffeq(case, impls["torchdiffeq"], x)
    if "torchdyn" in running(impls):
        check_torchdyn(case, impls["torchdyn"], x)
    for name in COMPILED:
        if name in running(impls):
            impls[name].warm(x, sync)
    out_ref, grad_ref = output_and_input_grad(impls["loop"], x)
    diffs = {}
    for name in running(impls)[1:]:
        out, grad = output_and_input_grad(impls[name], x)
        diffs[f"{name} out"] = relative_difference(out, out_ref)
        diffs[f"{name} grad"] = relative_difference(grad, grad_ref)
    same_scheme = [n for n in running(impls)[1:] if not (n == "torchdiffeq" and case.method == "rk4")]
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
    names = tuple(running(impls))
    for _ in range(WARMUP):
        for name in names:
            time_once(impls[name], x, sync)
    times = {name: [] for name in names}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            times[name].append(time_once(impls[name], x, sync))
    return {name: statistics.median(ts) for name, ts in times.items()}


# -- report -------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="timed runs per implementation")
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=sorted(CASES))
    parser.add_argument("--unroll", action="store_true",
                        help="also compile with compiled_loop='unroll' (minutes to build at N = 256)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--cpp-wrapper", action="store_true",
                        help="compile with inductor's C++ wrapper (options={'cpp_wrapper': True}): the "
                             "generated kernels are called from C++, not from a Python wrapper")
    args = parser.parse_args()
    if args.cpp_wrapper:
        INDUCTOR_OPTIONS["cpp_wrapper"] = True
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available")
    device = torch.device(args.device)
    torch.set_num_threads(1)
    sync = synchronizer(device)

    gpu = f", GPU {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    print(f"torch {torch.__version__}, CPU {cpu_model()}{gpu}, {torch.get_num_threads()} thread(s), "
          f"device {device}, float32, {args.repeats} interleaved repeats (median), "
          f"inductor options {INDUCTOR_OPTIONS}\n", flush=True)

    results = []
    for key in args.cases:
        case = CASES[key]
        torch._dynamo.reset()  # every case compiles afresh (and stays clear of the recompile limit)
        impls = build(case, device, args.unroll)
        x = torch.randn(case.batch, case.width, device=device)
        diffs = check(case, impls, x, sync)
        t = benchmark(impls, x, args.repeats, sync)
        compile_s = {name: impls[name].compile_s for name in COMPILED if name in t}
        results.append((key, case, impls, t, compile_s, diffs))
        print(f"{case.label(key)}: " + ", ".join(f"{n} {1e3 * s:.2f} ms" for n, s in t.items())
              + "".join(f", {n} compile {s:.1f} s" for n, s in compile_s.items()), flush=True)

    def cell(impls, t, name, fmt):
        return fmt(t[name]) if name in t else impls[name]

    print("\nforward + backward, ms (ratios to the loop)\n")
    print("| case | " + " | ".join(f"{HEADINGS[n]} ms" for n in IMPLEMENTATIONS) + " | "
          + " | ".join(f"{HEADINGS[n]}/loop" for n in IMPLEMENTATIONS[2:]) + " |")
    print("|---|" + "---:|" * (2 * len(IMPLEMENTATIONS) - 2))
    for key, case, impls, t, _, _ in results:
        ms = [cell(impls, t, n, lambda s: f"{1e3 * s:.2f}") for n in IMPLEMENTATIONS]
        ratios = [cell(impls, t, n, lambda s: f"{s / t['loop']:.2f}") for n in IMPLEMENTATIONS[2:]]
        print(f"| {case.label(key)} | " + " | ".join(ms + ratios) + " |")

    print("\ncompile time (first forward + backward, cold inductor cache) and payback against eager "
          "stablenet: compile s / (stablenet ms − compiled ms) training steps\n")
    print("| case | scan compile s | scan/stablenet | scan pays back after (steps) "
          "| unroll compile s | unroll/stablenet | unroll pays back after (steps) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for key, case, impls, t, compile_s, _ in results:
        cells = []
        for name in COMPILED:
            if name not in t:
                cells += [impls[name]] * 3
                continue
            saved = t["stablenet"] - t[name]
            payback = f"{math.ceil(compile_s[name] / saved):,}" if saved > 0 else "never"
            cells += [f"{compile_s[name]:.1f}", f"{t[name] / t['stablenet']:.2f}", payback]
        print(f"| {case.label(key)} | " + " | ".join(cells) + " |")

    print("\nmax |impl - loop| / max |loop| of the output and of its gradient w.r.t. x "
          "(torchdiffeq's rk4 is the 3/8 rule: not the same scheme)\n")
    others = IMPLEMENTATIONS[1:]
    print("| case | " + " | ".join(f"{HEADINGS[n]} out | {HEADINGS[n]} grad x" for n in others) + " |")
    print("|---|" + "---:|" * (2 * len(others)))
    for key, case, impls, _, _, d in results:
        cells = []
        for name in others:
            if f"{name} out" in d:
                cells += [f"{d[f'{name} out']:.1e}", f"{d[f'{name} grad']:.1e}"]
            else:
                cells += [impls[name]] * 2
        print(f"| {case.label(key)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
