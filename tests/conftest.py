"""Test set-up: one torch thread (timings and even run times swing wildly on 2-core machines
with more), float64 numerics where a test asks for them, deterministic hypothesis examples.

Every test starts from torch seed 0, so no test depends on what ran before it.  Process-wide torch
state that seeding does not reset (thread count, default dtype, grad mode, deterministic
algorithms) must be left as found: a test that changes it fails, naming what it leaked, and the
state is restored so that the tests after it are unaffected.
"""

import os

import pytest
import torch
from hypothesis import settings

torch.set_num_threads(1)

# The same examples on every run and machine (a hash of each test function seeds them; no example
# database replays old failures).  HYPOTHESIS_PROFILE=explore searches with fresh random examples.
settings.register_profile("deterministic", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))


def _global_torch_state():
    return {"torch.get_num_threads()": torch.get_num_threads(),
            "torch.get_default_dtype()": torch.get_default_dtype(),
            "torch.is_grad_enabled()": torch.is_grad_enabled(),
            "torch.are_deterministic_algorithms_enabled()": torch.are_deterministic_algorithms_enabled()}


def _restore(state):
    torch.set_num_threads(state["torch.get_num_threads()"])
    torch.set_default_dtype(state["torch.get_default_dtype()"])
    torch.set_grad_enabled(state["torch.is_grad_enabled()"])
    torch.use_deterministic_algorithms(state["torch.are_deterministic_algorithms_enabled()"])


@pytest.fixture(autouse=True)
def _seed_and_check_global_state(request):
    """Seed torch with 0, and fail a test that leaves the global torch state changed."""
    before = _global_torch_state()
    torch.manual_seed(0)
    yield
    after = _global_torch_state()
    leaked = {k: (before[k], after[k]) for k in before if after[k] != before[k]}
    if leaked:
        _restore(before)
        pytest.fail(f"{request.node.nodeid} leaked global torch state: "
                    + "; ".join(f"{k} {a} -> {b}" for k, (a, b) in leaked.items())
                    + " (restore it in the test, e.g. with monkeypatch or try/finally)", pytrace=False)

