"""`stablenet experiment adjoint-vs-discrete --quick`: the two gradients against h; reversible drift."""

import json

from stablenet.experiments import adjoint_vs_discrete


def test_quick_run_numbers(tmp_path):
    results = adjoint_vs_discrete.run(tmp_path, quick=True)
    assert json.loads((tmp_path / "results.json").read_text()) == json.loads(json.dumps(results))
    assert all(results["claims"].values()), results["claims"]
    for orders in results["fitted_orders"].values():
        for method, expected in adjoint_vs_discrete.METHODS.items():
            assert abs(orders[method] - expected) < 0.35, (method, orders)
    # at N = 4 forward Euler's two gradients differ by tens of percent, RK4's by far less
    for coarse in results["coarse_difference"].values():
        assert coarse["euler"] > 0.3 and coarse["rk4"] < 0.02
    # both gradients approach the continuous one: the finest discrete gradient of RK4 is within 1e-6
    rk4 = results["gradients"]["single"]["rk4"]["rows"]
    assert rk4[-1]["discrete_vs_continuous"] < 1e-5 and rk4[-1]["adjoint_vs_continuous"] < 1e-5
    assert (tmp_path / "adjoint_vs_discrete.png").read_bytes()[:4] == b"\x89PNG"
