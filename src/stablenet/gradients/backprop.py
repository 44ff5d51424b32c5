"""Machinery of the modes that are custom ``torch.autograd.Function``s: running one on a block's
state, fresh leaves for stage weights, and the backward pass of a stretch of steps."""

from __future__ import annotations

import torch

from ..state import flat, flat_memory, unflat, unflat_memory, zeros_for_none
from .protocol import GradientBlock, StageIndex


def apply_to_state(function: type[torch.autograd.Function], block: GradientBlock, state, *options):
    """Run a custom autograd ``function`` on a block's state and return the final state.

    The function receives ``block, *options, pair, *state tensors, *control weights`` (``pair``:
    whether the state is a (y, z) pair) and returns the final state's tensors; the control
    weights are inputs so that autograd hands the function their gradients.
    """
    pair = isinstance(state, tuple)
    out = function.apply(block, *options, pair, *flat(state), *block.dynamics.control_weights())
    return unflat(out, pair)


def stage_leaves(thetas, index: StageIndex, steps: range) -> tuple[list[int], list[tuple[torch.Tensor, ...]]]:
    """The stage rows of ``steps`` and fresh leaf copies of their θ (to differentiate against)."""
    rows = sorted({r for j in steps for r in index[j].values()})
    with torch.enable_grad():
        return rows, [tuple(t.detach().requires_grad_() for t in thetas[r]) for r in rows]


def backprop_steps(block: GradientBlock, thetas, index: StageIndex, steps: range, state, memory, pair: bool,
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
        s_in = [t.detach().requires_grad_() for t in flat(state)]
        m_in = [t.detach().requires_grad_() for t in m_flat]
        f = block.rhs(th, index, rows[0])
        y, mem = unflat(s_in, pair), unflat_memory(m_in, m_struct)
        for j in steps:
            y, mem = integrator.step(f, j, y, h, mem)
        outs = flat(y) + flat_memory(mem)[0]
        th_flat = [t for row in th for t in row]
        inputs = s_in + m_in + th_flat
        grads = zeros_for_none(torch.autograd.grad(outs, inputs, list(g_state) + list(g_memory),
                                                   allow_unused=True), inputs)
    n_w, offset = len(w_grads), len(s_in) + len(m_in)
    for k, r in enumerate(rows):
        thetas.accumulate(w_grads, r, grads[offset + k * n_w: offset + (k + 1) * n_w])
    return grads[:len(s_in)], grads[len(s_in):offset]
