"""Test set-up: one torch thread (timings and even run times swing wildly on 2-core machines
with more), float64 numerics where a test asks for them."""

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_and_default_dtype():
    """Every test starts from seed 0 and float32, whatever the previous test did."""
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(torch.float32)
