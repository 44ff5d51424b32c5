"""The gradient-mode interface and the registry that finds modes by name.

A gradient mode decides how an :class:`~stablenet.block.ODEBlock` computes its final state when
a gradient will be asked for, and so what backpropagation through the block computes and
stores.  The block hands the mode itself, the initial state (a tensor or a (y, z) pair) and the
number of steps; the mode returns the final state with an autograd graph attached.  Without
gradients (``torch.no_grad()``) or with ``return_states=True`` the block steps plainly and the
mode is not consulted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch

from ..integrators import Integrator, solve

if TYPE_CHECKING:  # pragma: no cover
    from ..block import ODEBlock
    from ..dynamics import Dynamics


class GradientMode:
    """Base class: ``solve(block, state, steps)`` → final state, differentiable.

    Subclasses set ``name`` and may refuse dynamics/integrator pairs in :meth:`check` (called
    when a block is built or its mode changes).
    """

    name: ClassVar[str] = ""

    def check(self, dynamics: "Dynamics", integrator: Integrator) -> None:
        """Raise ``ValueError`` if this mode cannot differentiate this pairing."""

    def solve(self, block: "ODEBlock", state, steps: int):
        raise NotImplementedError

    def options(self) -> dict:
        """The mode's settings (for ``repr`` and run records)."""
        return {}

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}({opts})"


class Autograd(GradientMode):
    """Backpropagation through every step: the exact gradient of the discrete network.

    "Discretize, then differentiate": autograd records every stage of every step, so the
    gradient is that of the computed Y_N to round-off, and the activation memory grows linearly
    with the number of steps N (for RK4, four stage evaluations per step are stored).
    """

    name = "autograd"

    def solve(self, block, state, steps):
        f = block.rhs(*block.stage_weights(steps, _device(state)))
        return solve(block.integrator, f, state, block.T / steps, steps)


def _device(state) -> torch.device:
    return state[0].device if isinstance(state, tuple) else state.device


def flat(state) -> tuple[torch.Tensor, ...]:
    """A state or memory as a tuple of tensors (None → empty)."""
    if state is None:
        return ()
    return tuple(state) if isinstance(state, tuple) else (state,)


def unflat(tensors, pair: bool):
    """Inverse of :func:`flat`: a (y, z) pair if ``pair``, else one tensor; None if empty."""
    if len(tensors) == 0:
        return None
    return tuple(tensors) if pair else tensors[0]


def apply_to_state(function: type[torch.autograd.Function], block: "ODEBlock", state, *options):
    """Run a custom autograd ``function`` on a block's state and return the final state.

    The function receives ``block, *options, pair, *state tensors, *control weights`` (``pair``:
    whether the state is a (y, z) pair) and returns the final state's tensors; the control
    weights are inputs so that autograd hands the function their gradients.
    """
    pair = isinstance(state, tuple)
    out = function.apply(block, *options, pair, *flat(state), *block.dynamics.control_weights())
    return unflat(out, pair)


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


def unflat_memory(tensors, structure):
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


def _zeros_for_none(grads, like):
    return [torch.zeros_like(x) if g is None else g for g, x in zip(grads, like)]


def stage_leaves(thetas, index, steps: range) -> tuple[list[int], list[tuple[torch.Tensor, ...]]]:
    """The stage rows of ``steps`` and fresh leaf copies of their θ (to differentiate against)."""
    rows = sorted({r for j in steps for r in index[j].values()})
    with torch.enable_grad():
        return rows, [tuple(t.detach().requires_grad_() for t in thetas[r]) for r in rows]


def backprop_steps(block, thetas, index, steps: range, state, memory, pair: bool,
                   g_state, g_memory, w_grads):
    """Recompute ``steps`` from (state, memory) with autograd and pull the adjoints back.

    ``g_state``/``g_memory`` are the gradients with respect to the state and memory after the
    last step; returns those with respect to ``state`` and ``memory`` before the first, and adds
    the weights' gradients into ``w_grads`` (through :meth:`StageThetas.accumulate`).  This is
    the backward pass of one segment, shared by the checkpointing mode and MGRIT's backward.
    """
    integrator, h = block.integrator, block.T / len(index)  # index: one entry per step
    rows, th = stage_leaves(thetas, index, steps)
    m_flat, m_struct = flat_memory(memory)
    with torch.enable_grad():
        s_in = [t.detach().requires_grad_() for t in (state if pair else (state,))]
        m_in = [t.detach().requires_grad_() for t in m_flat]
        f = block.rhs(th, index, rows[0])
        y, mem = (tuple(s_in) if pair else s_in[0]), unflat_memory(m_in, m_struct)
        for j in steps:
            y, mem = integrator.step(f, j, y, h, mem)
        outs = (tuple(y) if pair else (y,)) + flat_memory(mem)[0]
        th_flat = [t for row in th for t in row]
        inputs = s_in + m_in + th_flat
        grads = _zeros_for_none(torch.autograd.grad(outs, inputs, list(g_state) + list(g_memory),
                                                    allow_unused=True), inputs)
    n_w, offset = len(w_grads), len(s_in) + len(m_in)
    for k, r in enumerate(rows):
        thetas.accumulate(w_grads, r, grads[offset + k * n_w: offset + (k + 1) * n_w])
    return grads[:len(s_in)], grads[len(s_in):offset]


_REGISTRY: dict[str, type[GradientMode]] = {}


def register(cls: type[GradientMode]) -> type[GradientMode]:
    _REGISTRY[cls.name] = cls
    return cls


register(Autograd)


def available() -> list[str]:
    """Names of the gradient modes."""
    return sorted(_REGISTRY)


def get_gradient_mode(mode: str | GradientMode) -> GradientMode:
    """A mode from its name (default options) or an instance (returned as is)."""
    if isinstance(mode, GradientMode):
        return mode
    if not isinstance(mode, str) or mode not in _REGISTRY:
        raise ValueError(f"gradient must be one of {available()} or a GradientMode instance, got {mode!r}")
    return _REGISTRY[mode]()
