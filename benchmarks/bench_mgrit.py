"""MGRIT (layer-parallel) convergence study, measured timings and the cost model's predictions.

Three parts, all float64, one torch thread per process:

* ``convergence``: iterations of FCF-MGRIT (m = 4, levels down to 4 steps) to relative residual
  1e-8 for N = 64 … 4096 at fixed T = 8, weights θ(t) on nt = 4 linearly interpolated control
  points (so the same network is refined in depth), width 8, batch 5:
  antisymmetric + RK4 and parabolic + forward Euler (stable), a linear single layer
  f = (0.5·I + 0.3·G(t))Y with G Gaussian (eigenvalues with positive real part: unstable) +
  forward Euler.  Plot of the residual histories.
* ``timing``: width 32, batch 64, antisymmetric + RK4, N = 1024, MGRIT F-relaxation with 2
  V-cycles: the seconds of one propagator step and of one message (gloo, 2 ranks), sequential
  stepping, MGRIT on P = 1 (this process) and P = 2 (``torch.multiprocessing`` + gloo on
  127.0.0.1), against the cost model fed with the measured step and message times.
* ``model``: predicted speedups for P = 2 … 1024, N = 256 … 16384.

Run from the repository root (a few minutes)::

    python benchmarks/bench_mgrit.py                 # all parts → benchmarks/mgrit_results.json
    python benchmarks/bench_mgrit.py --parts model

The numbers in docs/parallel.md come from this script.  The machine has 2 cores shared with
other processes, so P = 2 timings are noisy and an upper bound of what 2 free cores would do.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

import stablenet as sn  # noqa: E402
from stablenet.parallel import MGRITOptions, mgrit_forward  # noqa: E402
from stablenet.parallel.cost import mgrit_cost, speedup_table  # noqa: E402
from stablenet.parallel.launch import spawn  # noqa: E402

STUDY = MGRITOptions(m=4, max_levels=10, relax="FCF", rtol=1e-8, max_iter=40)
TIMING = MGRITOptions(m=4, max_levels=10, relax="F", rtol=0.0, max_iter=2)
T_STUDY = 8.0


def study_block(kind: str, steps: int, width: int = 8):
    torch.manual_seed(0)
    if kind == "antisymmetric":
        dyn, method = sn.Antisymmetric(width, nt=4, gamma=0.1), "rk4"
    elif kind == "parabolic":
        dyn, method = sn.Parabolic(width, nt=4), "euler"
    else:
        dyn, method = sn.SingleLayer(width, nt=4, activation="identity"), "euler"
        with torch.no_grad():
            dyn.K.copy_(0.5 * torch.eye(width) + 0.3 * torch.randn(4, width, width))
            dyn.b.zero_()
    return sn.ODEBlock(dyn.double(), T=T_STUDY, steps=steps, method=method, controls="linear")


def convergence(depths=(64, 256, 1024, 4096)):
    x = torch.linspace(-1, 1, 40, dtype=torch.float64).reshape(5, 8)
    rows = []
    for kind in ("antisymmetric", "parabolic", "single"):
        for n in depths:
            block = study_block(kind, n)
            with torch.no_grad():
                ref = block(x)
            t0 = time.perf_counter()
            r = mgrit_forward(block, x, options=STUDY)
            rows.append({"dynamics": kind, "method": block.integrator.name, "steps": n,
                         "levels": r.stats.levels, "iterations": r.stats.iterations,
                         "converged": r.stats.converged,
                         "relative_residuals": r.stats.relative_residuals,
                         "error_vs_sequential": float((r.final - ref).abs().max()),
                         "seconds": time.perf_counter() - t0})
            print(f"{kind:14s} N={n:5d} iterations={r.stats.iterations:2d} "
                  f"error={rows[-1]['error_vs_sequential']:.1e}", flush=True)
    return rows


def plot_convergence(rows, path: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharey=True)
    for ax, kind in zip(axes, ("antisymmetric", "parabolic", "single")):
        for row in rows:
            if row["dynamics"] == kind:
                res = [max(v, 1e-16) for v in row["relative_residuals"]]
                ax.semilogy(range(len(res)), res, marker="o", ms=3, label=f"N = {row['steps']}")
        ax.axhline(1e-8, color="grey", lw=0.8, ls="--")
        ax.set_title({"antisymmetric": "antisymmetric + RK4 (stable)",
                      "parabolic": "parabolic + Euler (stable)",
                      "single": "single layer, Re λ > 0 (unstable)"}[kind], fontsize=9)
        ax.set_xlabel("MGRIT iteration (FCF, m = 4)")
    axes[0].set_ylabel("‖r‖ / ‖r₀‖")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- timing ------------------------------------------------------------------------------------------
def timing_block(steps: int):
    torch.manual_seed(0)
    return sn.ODEBlock(sn.Antisymmetric(32, nt=8, gamma=0.1).double(), T=T_STUDY, steps=steps,
                       method="rk4", controls="linear")


def _timed(fn, repeats):
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def _rank_timing(rank, size, steps, repeats, out_dir):
    import torch.distributed as dist

    block = timing_block(steps)
    x = torch.randn(64, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    # message time: ping-pong of one state
    buf = x.clone()
    dist.barrier()
    t0 = time.perf_counter()
    for _ in range(200):
        if rank == 0:
            dist.send(buf, 1)
            dist.recv(buf, 1)
        else:
            dist.recv(buf, 0)
            dist.send(buf, 0)
    t_msg = (time.perf_counter() - t0) / 400
    times = []
    for _ in range(repeats):
        dist.barrier()
        t0 = time.perf_counter()
        r = mgrit_forward(block, x, options=TIMING, distributed=True)
        dist.barrier()
        times.append(time.perf_counter() - t0)
    if rank == 0:
        Path(out_dir, "p2.json").write_text(json.dumps({
            "seconds": statistics.median(times), "t_msg": t_msg,
            "evaluations": r.stats.evaluations}))


def timing(steps=1024, repeats=3):
    block = timing_block(steps)
    x = torch.randn(64, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        sequential = _timed(lambda: block(x), repeats)
    t_step = sequential / steps
    p1 = _timed(lambda: mgrit_forward(block, x, options=TIMING), repeats)
    r = mgrit_forward(block, x, options=TIMING)
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        spawn(_rank_timing, 2, steps, repeats, tmp)
        p2 = json.loads(Path(tmp, "p2.json").read_text())
    m1 = mgrit_cost(steps, 1, TIMING, iterations=r.stats.iterations, t_step=t_step)
    m2 = mgrit_cost(steps, 2, TIMING, iterations=r.stats.iterations, t_step=t_step, t_msg=p2["t_msg"])
    out = {"steps": steps, "t_step": t_step, "t_msg": p2["t_msg"], "sequential": sequential,
           "p1_measured": p1, "p1_model": m1.time, "p1_evaluations": sum(r.stats.evaluations),
           "p1_model_evaluations": m1.evaluations,
           "p2_measured": p2["seconds"], "p2_model": m2.time,
           "p2_rank0_evaluations": sum(p2["evaluations"]), "p2_model_evaluations": m2.evaluations}
    print(json.dumps(out, indent=1), flush=True)
    return out


def model(t_msg_over_step: float, iterations=(1, 2, 3)):
    rows = []
    for it in iterations:
        for relax in ("F", "FCF"):
            opt = MGRITOptions(m=4, relax=relax)
            for row in speedup_table([256, 1024, 4096, 16384], [2, 4, 16, 64, 256, 1024], opt, it,
                                     1.0, t_msg_over_step):
                rows.append({"iterations": it, "relax": relax, **row})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["convergence", "timing", "model"])
    parser.add_argument("--out", default=str(ROOT / "mgrit_results.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    out_path = Path(args.out)
    results = json.loads(out_path.read_text()) if out_path.exists() else {}
    if "convergence" in args.parts:
        results["convergence"] = convergence()
        plot_convergence(results["convergence"], ROOT / "mgrit_residuals.png")
    if "timing" in args.parts:
        results["timing"] = timing()
    if "model" in args.parts:
        ratio = results.get("timing", {}).get("t_msg", 0.0) / max(results.get("timing", {}).get("t_step", 1.0), 1e-12)
        results["model"] = {"t_msg_over_t_step": ratio, "ideal": model(0.0), "measured_ratio": model(ratio)}
    out_path.write_text(json.dumps(results, indent=1))
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
