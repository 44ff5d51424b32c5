"""Gradient checkpointing: store the state every k steps, recompute the steps in between."""

from __future__ import annotations

import math

import torch

from .. import _checks
from ..state import device_of, flat, flat_memory, unflat, unflat_memory, zeros_for_none
from .backprop import apply_to_state, backprop_steps
from .base import GradientMode, register


@register
class Checkpoint(GradientMode):
    """Segments of ``segment`` steps, each recomputed during the backward pass.

    Forward: runs without recording and keeps only the states at segment boundaries (with a
    multistep method's memory).  Backward: for the segments in reverse order, runs the segment
    again from its stored start with autograd recording and differentiates it.  The gradient
    is the exact discrete gradient (the recomputation repeats the same floating-point
    operations); the cost is one extra forward pass, the activation memory N/k boundary states
    plus one segment's graph, smallest near k = √N (Griewank & Walther, *Evaluating
    Derivatives*, 2008, ch. 12; Chen et al., "Training deep nets with sublinear memory cost",
    2016).  Works with every integrator.  (Why not ``torch.utils.checkpoint``: docs/gradients.md.)

    Args:
        segment: steps per segment; default ⌈√N⌉ for an N-step solve.
    """

    name = "checkpoint"

    def __init__(self, segment: int | None = None):
        self.segment = None if segment is None else _checks.positive_int("segment", segment)

    def options(self) -> dict:
        return {"segment": self.segment}

    def solve(self, block, state, steps):
        k = self.segment or math.ceil(math.sqrt(steps))
        if torch.compiler.is_compiling():
            return _compiled_solve(block, state, steps, k)
        return apply_to_state(_CheckpointSolve, block, state, steps, k)


def _segment(block, steps, start, stop, state, memory, *weights):
    """Steps start … stop − 1 from (state, memory), θ rebuilt from the control weights."""
    thetas, index = block.stage_weights(steps, device_of(state), weights, eager=False)
    f, h, step = block.rhs(thetas, index), block.T / steps, block.integrator.step
    for j in range(start, stop):
        state, memory = step(f, j, state, h, memory)
    return state, memory


def _compiled_solve(block, state, steps, k):
    """The same segments under ``torch.compile``: ``torch.utils.checkpoint`` per segment (a
    higher-order op that TorchDynamo traces; the compiled backward recomputes each segment from
    its start).  The eager path's custom autograd Function cannot be traced: its backward calls
    ``torch.autograd.grad``.  Same steps, same floating-point operations."""
    from torch.utils.checkpoint import checkpoint

    weights, memory = block.dynamics.control_weights(), None
    for start in range(0, steps, k):
        state, memory = checkpoint(_segment, block, steps, start, min(start + k, steps), state, memory,
                                   *weights, use_reentrant=False)
    return state


class _CheckpointSolve(torch.autograd.Function):
    """inputs: block, steps, segment, pair?, *state tensors, *control weights → final state."""

    @staticmethod
    def forward(ctx, block, steps, k, pair, *inputs):
        n = 2 if pair else 1
        state, weights = unflat(inputs[:n], pair), inputs[n:]
        thetas, index = block.stage_weights(steps, device_of(state), weights, eager=False)
        f, h, step = block.rhs(thetas, index), block.T / steps, block.integrator.step
        memory, boundaries, saved = None, [], []
        for start in range(0, steps, k):
            m_flat, m_struct = flat_memory(memory)
            boundaries.append((start, min(start + k, steps), len(saved), m_struct, len(m_flat)))
            saved.extend(flat(state) + m_flat)
            for j in range(start, min(start + k, steps)):
                state, memory = step(f, j, state, h, memory)
        ctx.block, ctx.steps, ctx.pair, ctx.n, ctx.boundaries = block, steps, pair, n, boundaries
        ctx.final_memory = flat_memory(memory)[0]
        ctx.save_for_backward(*saved, *weights)
        return flat(state)

    @staticmethod
    def backward(ctx, *grad_out):
        block, pair, n, boundaries = ctx.block, ctx.pair, ctx.n, ctx.boundaries
        saved = ctx.saved_tensors
        n_boundary = boundaries[-1][2] + n + boundaries[-1][4]
        weights = saved[n_boundary:]
        thetas, index = block.stage_weights(ctx.steps, saved[0].device, weights, eager=False)
        w_grads = [torch.zeros_like(w) for w in weights]
        g_state = zeros_for_none(grad_out, saved[:n])
        g_memory = [torch.zeros_like(m) for m in ctx.final_memory]
        for start, stop, at, m_struct, n_mem in reversed(boundaries):
            state = unflat(saved[at:at + n], pair)
            memory = unflat_memory(saved[at + n:at + n + n_mem], m_struct)
            g_state, g_memory = backprop_steps(block, thetas, index, range(start, stop), state, memory,
                                               pair, g_state, g_memory, w_grads)
        return (None, None, None, None, *g_state, *w_grads)
