"""States of an ODE block and the vector-space arithmetic on them: one tensor, or a pair (y, z).

A one-stream system's state is a tensor; a two-stream system's (Hamiltonian, Verlet) is a tuple
``(y, z)`` of tensors that may differ in width.  The integrators, the gradient modes and the
layer-parallel solver all add, scale, flatten and stack such states; they do it with these
functions, which treat a pair stream by stream and a tensor as itself.

An integrator's *memory* (what a multistep scheme carries between steps: ``None``, a tensor, or
nested tuples of states) is flattened to tensors and back by :func:`flat_memory` /
:func:`unflat_memory`, so that a custom ``torch.autograd.Function`` can save and return it.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import torch

State = Any  # a tensor, or a tuple (y, z) of tensors


def is_pair(state: State) -> bool:
    """Whether ``state`` is a two-stream pair (a tuple) rather than one tensor."""
    return isinstance(state, tuple)


def flat(state: State | None) -> tuple[torch.Tensor, ...]:
    """A state (or an integrator's pair-valued memory) as a tuple of tensors; ``None`` → ()."""
    if state is None:
        return ()
    return tuple(state) if isinstance(state, tuple) else (state,)


def unflat(tensors: Sequence[torch.Tensor], pair: bool) -> State | None:
    """Inverse of :func:`flat`: a (y, z) pair if ``pair``, else the one tensor; ``None`` if empty."""
    if len(tensors) == 0:
        return None
    return tuple(tensors) if pair else tensors[0]


def device_of(state: State) -> torch.device:
    """The device of a state (that of its first stream)."""
    return state[0].device if isinstance(state, tuple) else state.device


def axpy(y: State, a: float, x: State) -> State:
    """y + a·x (stream by stream for pairs).

    Eager: one ``torch.add(y, x, alpha=a)`` (one kernel, one autograd node).  While compiling,
    ``y + a * x``, which inductor fuses into the same single kernel: inside a scanned loop body
    (``compiled_loop="scan"``) inductor of torch 2.13 miscompiles ``add`` with ``alpha``.
    """
    if type(y) is tuple:
        return tuple(axpy(yi, a, xi) for yi, xi in zip(y, x))
    if torch.compiler.is_compiling():
        return y + a * x
    return torch.add(y, x, alpha=a)


def combine(y: State, h: float, terms: Iterable[tuple[float, State]]) -> State:
    """y + h·Σ a_i k_i for (a_i, k_i) in ``terms`` (a Runge–Kutta or Adams–Bashforth update)."""
    for a, k in terms:
        y = axpy(y, h * a, k)
    return y


def add(a: State, b: State | None) -> State:
    """a + b; ``b = None`` stands for zero."""
    if b is None:
        return a
    if isinstance(a, tuple):
        return tuple(x + y for x, y in zip(a, b))
    return a + b


def sub(a: State, b: State) -> State:
    """a − b."""
    if isinstance(a, tuple):
        return tuple(x - y for x, y in zip(a, b))
    return a - b


def zeros_like(a: State) -> State:
    """A zero state of ``a``'s shapes, dtypes and devices."""
    if isinstance(a, tuple):
        return tuple(torch.zeros_like(t) for t in a)
    return torch.zeros_like(a)


def zeros_for_none(grads: Iterable[torch.Tensor | None], like: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    """Gradients with each ``None`` (unused input) replaced by zeros of the matching tensor of ``like``."""
    return [torch.zeros_like(x) if g is None else g for g, x in zip(grads, like)]


def sqnorm(a: State) -> float:
    """‖a‖², summed over the streams, accumulated in float64 (detached)."""
    return float(sum(float(torch.sum(t.detach().to(torch.float64) ** 2)) for t in flat(a)))


def stack(states: Sequence[State]) -> State:
    """States stacked along a new leading dimension (for pairs, each stream stacked)."""
    if isinstance(states[0], tuple):
        return tuple(torch.stack(stream) for stream in zip(*states))
    return torch.stack(list(states))


def flat_memory(memory) -> tuple[tuple[torch.Tensor, ...], object]:
    """An integrator's memory (None, a tensor, or nested tuples of tensors: AB3 keeps earlier
    evaluations, each a pair for two-stream states) as (tensors, structure)."""
    if memory is None:
        return (), None
    if isinstance(memory, torch.Tensor):
        return (memory,), "tensor"
    tensors, structure = [], []
    for item in memory:
        t, s = flat_memory(item)
        tensors.extend(t)
        structure.append((s, len(t)))
    return tuple(tensors), tuple(structure)


def unflat_memory(tensors: Sequence[torch.Tensor], structure):
    """Inverse of :func:`flat_memory`."""
    if structure is None:
        return None
    if structure == "tensor":
        return tensors[0]
    out, at = [], 0
    for s, count in structure:
        out.append(unflat_memory(tensors[at:at + count], s))
        at += count
    return tuple(out)
