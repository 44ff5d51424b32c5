"""Which compiled form of a step loop is fast to build and fast to run: the choices of issue 19.

One textbook ResNet (forward Euler, y ← y + h·tanh(K_j y + b_j), one weight slice per step), forward
+ backward of ``out.square().sum()``, float32, one thread, in four forms:

* **eager**: the Python loop over the steps;
* **step**: ``torch.compile`` of one step ``(y, K_j, b_j) → y'`` (the weights passed as tensors,
  so one compiled function serves every step), called N times from the Python loop;
* **scan**: ``torch.compile`` of ``torch._higher_order_ops.scan`` over the steps (one step traced,
  the loop in the compiled code) — what ``ODEBlock(compiled_loop="scan")`` does;
* **unroll**: ``torch.compile`` of the Python loop (all N steps traced into one graph) — what
  ``ODEBlock(compiled_loop="unroll")`` does.

``--cpp-wrapper`` compiles with inductor's C++ wrapper (``options={"cpp_wrapper": True}``): the
generated kernels are called from C++ instead of a Python wrapper.

Printed: build seconds (the first forward + backward, with a fresh inductor cache directory unless
``TORCHINDUCTOR_CACHE_DIR`` is set), the median step time over interleaved
repeats, and the ratio to eager.  CUDA graphs (``mode="reduce-overhead"``) need a GPU and are not
part of this CPU benchmark.

    python benchmarks/bench_compile_forms.py                  # N = 256
    python benchmarks/bench_compile_forms.py --steps 64 1024 --repeats 10
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:  # cold builds: a fresh inductor cache per run
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench_compile_forms_")

import torch  # noqa: E402
from torch._higher_order_ops import scan  # noqa: E402

from _machine import cpu_model  # noqa: E402

WIDTH, BATCH = 16, 32


def forms(N: int, options: dict) -> dict:
    h = 1.0 / N

    def step(y, k, b):
        return y + h * torch.tanh(y @ k.t() + b)

    def loop(x, K, b):
        y = x
        for j in range(N):
            y = step(y, K[j], b[j])
        return y

    compiled_step = torch.compile(step, fullgraph=True, dynamic=False, options=options)

    def step_loop(x, K, b):
        y = x
        for j in range(N):
            y = compiled_step(y, K[j], b[j])
        return y

    def body(carry, row):
        y = step(carry, *row)
        return y.clone(), y.new_zeros(())

    def scanned(x, K, b):
        return scan(body, x, (K, b))[0]

    return {"eager": loop, "step": step_loop, "scan": torch.compile(scanned, fullgraph=True, options=options),
            "unroll": torch.compile(loop, fullgraph=True, options=options)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[256])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--cpp-wrapper", action="store_true",
                        help="inductor's C++ wrapper (no Python between the generated kernels)")
    args = parser.parse_args()
    options = {"cpp_wrapper": True} if args.cpp_wrapper else {}
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, CPU {cpu_model()}, 1 thread, w={WIDTH} B={BATCH} euler, float32, "
          f"{args.repeats} interleaved repeats (median), inductor options {options}\n")
    print("| N | form | build s | ms per forward + backward | / eager |")
    print("|---:|---|---:|---:|---:|")
    for N in args.steps:
        torch._dynamo.reset()
        torch.manual_seed(0)
        K = (0.3 * torch.randn(N, WIDTH, WIDTH)).requires_grad_()
        b = torch.zeros(N, WIDTH, requires_grad=True)
        x = torch.randn(BATCH, WIDTH)
        impls = forms(N, options)
        reference = impls["eager"](x, K, b)

        def once(f):
            K.grad = b.grad = None
            start = time.perf_counter()
            f(x, K, b).square().sum().backward()
            return time.perf_counter() - start

        build = {name: once(f) for name, f in impls.items()}
        for name, f in impls.items():
            error = ((f(x, K, b) - reference).abs().max() / reference.abs().max()).item()
            assert error < 1e-5, f"{name} differs from eager by {error:.1e}"
        times = {name: [] for name in impls}
        names = list(impls)
        for r in range(args.repeats):
            for name in names[r % len(names):] + names[:r % len(names)]:
                times[name].append(once(impls[name]))
        eager = statistics.median(times["eager"])
        for name in names:
            t = statistics.median(times[name])
            b_s = "–" if name == "eager" else f"{build[name]:.1f}"
            print(f"| {N} | {name} | {b_s} | {1e3 * t:.2f} | {t / eager:.2f} |", flush=True)


if __name__ == "__main__":
    main()
