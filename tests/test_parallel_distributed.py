"""MGRIT on two gloo ranks (torch.multiprocessing spawn on 127.0.0.1) against the serial solve.

The time points are split over the ranks; each computes the steps it owns and passes C-point
values to its neighbour.  The iterates are the serial ones (same arithmetic per point), so the
forward state, the residual history and the gradients agree to round-off.
"""

import json

import torch

import stablenet as sn
from stablenet.parallel import MGRIT, MGRITOptions, mgrit_forward
from stablenet.parallel.cost import mgrit_cost
from stablenet.parallel.launch import spawn

from helpers import gradient_probe

N, WIDTH = 48, 3
OPTIONS = dict(m=4, max_levels=3, relax="FCF", max_iter=1, rtol=0.0)


def make_block():
    torch.manual_seed(3)
    dyn = sn.Antisymmetric(WIDTH, nt=6, gamma=0.1).double()
    return sn.ODEBlock(dyn, T=3.0, steps=N, method="rk4", controls="linear")


def run(distributed: bool):
    """Forward (one fixed iteration, so not converged: the iterates themselves are compared)
    and the gradients of L = Σ sin(Y_N)·w through gradient=MGRIT(...)."""
    block = make_block()
    x = torch.linspace(-1, 1, 4 * WIDTH, dtype=torch.float64).reshape(4, WIDTH)
    fwd = mgrit_forward(block, x, distributed=distributed, **OPTIONS)
    out, grads = gradient_probe(block, x, MGRIT(distributed=distributed, **OPTIONS), return_output=True)
    return {"final": fwd.final.flatten().tolist(), "residuals": fwd.stats.residuals,
            "owned": sorted(fwd.states), "grads": grads.tolist(), "out": out.flatten().tolist(),
            "messages": fwd.stats.messages, "evaluations": fwd.stats.evaluations}


def _worker(rank, size, out_dir):
    result = run(distributed=True)
    with open(f"{out_dir}/rank{rank}.json", "w") as fh:
        json.dump(result, fh)


def test_two_gloo_ranks_agree_with_serial(tmp_path):
    spawn(_worker, 2, str(tmp_path))
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    serial = run(distributed=False)
    for r in ranks:
        for key in ("final", "residuals", "grads", "out"):
            a, b = torch.tensor(r[key]), torch.tensor(serial[key])
            assert float((a - b).abs().max()) <= 1e-13 * max(1.0, float(b.abs().max())), key
    # the time points are split: rank 0 owns 0 … 23, rank 1 owns 24 … 48
    assert ranks[0]["owned"] == list(range(24)) and ranks[1]["owned"] == list(range(24, N + 1))
    # forward in time only rank 0 → rank 1 messages
    assert ranks[0]["messages"] > 0 and ranks[1]["messages"] == 0
    # each rank does about half the fine-level propagator evaluations of the serial solve, and
    # the cost model counts every rank's evaluations exactly
    model = mgrit_cost(N, 2, MGRITOptions(**OPTIONS), iterations=1).evaluations
    for rank, r in enumerate(ranks):
        assert 0.4 < r["evaluations"][0] / serial["evaluations"][0] < 0.6
        assert sum(r["evaluations"]) == model[rank]
    # not converged after 1 iteration, so this compares real (inexact) MGRIT iterates
    assert serial["residuals"][-1] > 1e-8
