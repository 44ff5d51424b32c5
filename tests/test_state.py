"""stablenet.state: the arithmetic on states, a tensor or a two-stream pair (y, z)."""

import torch

from stablenet import state


def pair():
    g = torch.Generator().manual_seed(0)
    return (torch.randn(3, 2, generator=g, dtype=torch.float64), torch.randn(3, 4, generator=g, dtype=torch.float64))


def test_flat_and_unflat_are_inverse():
    y, z = pair()
    assert state.flat((y, z)) == (y, z) and state.flat(y) == (y,) and state.flat(None) == ()
    assert state.unflat([y, z], True) == (y, z) and state.unflat([y], False) is y
    assert state.unflat([], True) is None
    assert state.is_pair((y, z)) and not state.is_pair(y)
    assert state.device_of((y, z)) == y.device == state.device_of(y)


def test_arithmetic_acts_stream_by_stream():
    a, b = pair(), tuple(2 * t for t in pair())
    for got, want in [(state.axpy(a, 0.5, b), (a[0] + 0.5 * b[0], a[1] + 0.5 * b[1])),
                      (state.combine(a, 2.0, [(1.0, b), (-0.5, a)]), (a[0] + 2 * b[0] - a[0], a[1] + 2 * b[1] - a[1])),
                      (state.add(a, b), (a[0] + b[0], a[1] + b[1])), (state.sub(a, b), (a[0] - b[0], a[1] - b[1])),
                      (state.zeros_like(a), (torch.zeros(3, 2), torch.zeros(3, 4)))]:
        assert isinstance(got, tuple) and all(torch.allclose(g, w.to(g.dtype)) for g, w in zip(got, want))
    assert state.add(a, None) is a
    assert torch.equal(state.axpy(a[0], 3.0, b[0]), a[0] + 3 * b[0])
    assert state.sqnorm(a) == float(a[0].pow(2).sum() + a[1].pow(2).sum())
    assert state.zeros_for_none([None, b[1]], a)[0].shape == (3, 2)


def test_stack_and_memory_round_trip():
    a, b = pair(), pair()
    stacked = state.stack([a, b])
    assert stacked[0].shape == (2, 3, 2) and stacked[1].shape == (2, 3, 4)
    assert state.stack([a[0], b[0]]).shape == (2, 3, 2)
    memory = (a, b, a[1])  # nested like AB3's history of pair evaluations
    tensors, structure = state.flat_memory(memory)
    assert len(tensors) == 5
    back = state.unflat_memory(tensors, structure)
    assert back[0] == a and back[1] == b and back[2] is a[1]
    assert state.flat_memory(None) == ((), None) and state.unflat_memory((), None) is None
