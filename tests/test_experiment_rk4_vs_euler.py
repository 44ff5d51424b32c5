"""`stablenet experiment rk4-vs-euler --quick`: seed 004 Fig. 3.9, RK4 with 4h vs forward Euler."""

import json

import torch

from stablenet.experiments import rk4_vs_euler


def test_kernel_is_the_seeds_circulant():
    K = rk4_vs_euler.kernel(torch.tensor(0.5), torch.tensor(2.0))
    assert torch.equal(K, torch.tensor([[-2.5, 0.5, 2.0], [2.0, -2.5, 0.5], [0.5, 2.0, -2.5]]))
    assert torch.allclose(K.sum(-1), torch.zeros(3))


def test_quick_run_numbers(tmp_path):
    results = rk4_vs_euler.run(tmp_path, quick=True)
    assert json.loads((tmp_path / "results.json").read_text()) == json.loads(json.dumps(results))
    fine = results["objective_functions"]["fine"]
    assert (fine["euler_steps"], fine["rk4_steps"]) == (100, 25)
    for split in ("train", "test"):
        # RK4 with h = 0.4 is closer to the ODE's objective than Euler with h = 0.1, and the two
        # objective functions differ by a few per cent where both are stable ...
        assert fine["rel_error_rk4_vs_reference"][split] < fine["rel_error_euler_vs_reference"][split]
        assert fine["rel_diff_rk4_vs_euler"][split] < 0.15
        # ... but not with h = 2 for RK4 (outside its stability interval for large θ)
        assert results["objective_functions"]["coarse"]["rel_diff_rk4_vs_euler"][split] > 1.0
    nets = results["networks"]
    assert nets["euler"]["f_evaluations"] == nets["rk4"]["f_evaluations"] == 32
    for net in nets.values():
        for key in ("final_train_accuracy", "final_val_accuracy", "test_accuracy", "val_accuracy_on_fine_rk4_grid"):
            assert 0.0 <= net[key] <= 1.0
        assert net["final_val_accuracy"] > 0.4          # chance is 0.2
    hist = results["history"]
    assert len(hist["euler"]) == len(hist["rk4"]) == results["settings"]["epochs"]
    assert all(isinstance(v, bool) for v in results["claims"].values())
    for name in results["figures"]:
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
