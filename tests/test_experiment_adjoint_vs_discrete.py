"""`stablenet experiment adjoint-vs-discrete --quick`: the two gradients against h; reversible drift."""

import json

import numpy as np
import torch

from stablenet.app.experiments import adjoint_vs_discrete

from helpers import assert_png


def test_quick_run_numbers(tmp_path):
    results = adjoint_vs_discrete.run(tmp_path, quick=True)
    assert json.loads((tmp_path / "results.json").read_text()) == json.loads(json.dumps(results))
    for orders in results["fitted_orders"].values():
        for method, expected in adjoint_vs_discrete.METHODS.items():
            assert abs(orders[method] - expected) < 0.35, (method, orders)
    # at N = 4 forward Euler's two gradients differ by tens of percent, RK4's by far less
    for coarse in results["coarse_difference"].values():
        assert coarse["euler"] > 0.3 and coarse["rk4"] < 0.02
    # both gradients approach the continuous one: the finest discrete gradient of RK4 is within 1e-6
    rk4 = results["gradients"]["single"]["rk4"]["rows"]
    assert rk4[-1]["discrete_vs_continuous"] < 1e-5 and rk4[-1]["adjoint_vs_continuous"] < 1e-5
    assert_png(tmp_path / "adjoint_vs_discrete.png")

    # the claims, recomputed from the per-step rows: a numpy least-squares fit of log(difference)
    # against log(h) over the finer half of the steps, the coarsest rows, and the drift of the
    # reversible reconstruction against 100 unit roundoffs (ε/2 of each dtype) per step
    orders_ok = coarse_ok = True
    for name, study in results["gradients"].items():
        for method, expected in adjoint_vs_discrete.METHODS.items():
            rows = study[method]["rows"]
            assert [r["steps"] for r in rows] == [4, 8, 16, 32, 64]
            tail = rows[len(rows) // 2:]
            slope = np.polyfit(np.log([r["h"] for r in tail]), np.log([r["adjoint_vs_discrete"] for r in tail]), 1)[0]
            assert abs(slope - results["fitted_orders"][name][method]) < 1e-9
            orders_ok &= abs(slope - expected) < 0.35
            coarse_ok &= rows[0]["adjoint_vs_discrete"] > 1e-3
    drift_ok = all(r["drift"] <= 100 * torch.finfo(getattr(torch, dtype)).eps / 2 * r["steps"]
                   for dtype, rows in results["reversible_drift"].items() for r in rows)
    assert set(results["reversible_drift"]) == {"float32", "float64"}
    assert results["claims"] == {"adjoint_converges_at_integrator_order": orders_ok,
                                 "differ_at_coarse_h": coarse_ok,
                                 "reversible_drift_at_roundoff": drift_ok}
    # each of them is what the theory says (order p of the integrator; O(h^p) differences are far
    # above 1e-3 at h = 0.5; Verlet is reversible up to rounding), and holds in float64 / float32
    assert orders_ok and coarse_ok and drift_ok
