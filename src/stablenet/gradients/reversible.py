"""Reversible backpropagation: recompute the states backwards instead of storing them."""

from __future__ import annotations

import torch

from ..integrators import is_reversible
from ..integrators import SeparableRHS
from .base import GradientMode, _device, backprop_steps, flat, register, stage_leaves, unflat


@register
class Reversible(GradientMode):
    """Exact discrete gradients with activation memory independent of depth (Verlet, leapfrog).

    The forward pass runs without recording anything and keeps only the final state (and, for
    leapfrog, Y_{N−1}).  The backward pass walks the steps in reverse: it rebuilds the state
    before step j with the integrator's exact inverse (``step_back``), repeats step j with
    autograd recording, and pulls the adjoint of the state and of step j's weights through it.
    Memory: O(1) states plus one step's graph, whatever N.  Cost: one forward pass more than
    ``autograd``: Verlet's and leapfrog's inverse steps evaluate f at exactly the points where
    the forward step did, so the backward pass records those evaluations while reconstructing
    and replays them (:class:`_Replay`) when differentiating the step instead of recomputing.

    The result is the gradient of the discrete network (the same as ``autograd``) up to the
    round-off that the backwards reconstruction accumulates.  For stable (Hamiltonian)
    dynamics that drift stays at the level of the rounding unit; for dynamics that grow
    forwards, reconstruction errors grow backwards at the same rate, so measure it
    (``stablenet experiment adjoint-vs-discrete`` plots it against depth).
    References: Chang et al., "Reversible architectures for arbitrarily deep residual neural
    networks", AAAI 2018; Gomez et al., "The reversible residual network", NeurIPS 2017.
    """

    name = "reversible"

    def check(self, dynamics, integrator):
        if not is_reversible(integrator):
            raise ValueError(
                f"gradient='reversible' needs a reversible integrator (verlet or leapfrog), got "
                f"method={integrator.name!r}; use gradient='checkpoint' to save memory with it")

    def solve(self, block, state, steps):
        pair = isinstance(state, tuple)
        out = _ReversibleSolve.apply(block, steps, pair, *flat(state), *block.dynamics.control_weights())
        return unflat(out, pair)


class _ReversibleSolve(torch.autograd.Function):
    """inputs: block, steps, pair?, *state tensors, *control weights → final state tensors."""

    @staticmethod
    def forward(ctx, block, steps, pair, *inputs):
        n_state = 2 if pair else 1
        state, weights = unflat(inputs[:n_state], pair), inputs[n_state:]
        thetas, index = block.stage_weights(steps, _device(state), weights, eager=False)
        f, h, step = block.rhs(thetas, index), block.T / steps, block.integrator.step
        memory = None  # Verlet: none; leapfrog: the previous state
        for j in range(steps):
            state, memory = step(f, j, state, h, memory)
        ctx.block, ctx.steps, ctx.pair, ctx.n_state = block, steps, pair, n_state
        ctx.save_for_backward(*flat(state), *flat(memory), *weights)
        return flat(state)

    @staticmethod
    def backward(ctx, *grad_out):
        block, steps, pair, n = ctx.block, ctx.steps, ctx.pair, ctx.n_state
        saved = ctx.saved_tensors
        n_memory = 1 if block.integrator.second_order else 0
        state = unflat([t.detach() for t in saved[:n]], pair)
        memory = unflat([t.detach() for t in saved[n:n + n_memory]], False)
        weights = saved[n + n_memory:]
        thetas, index = block.stage_weights(steps, saved[0].device, weights, eager=False)
        f, h = block.rhs(thetas, index), block.T / steps
        w_grads = [torch.zeros_like(w) for w in weights]
        g_state = [torch.zeros_like(s) if g is None else g for g, s in zip(grad_out, saved[:n])]
        g_memory = [torch.zeros_like(m) for m in saved[n:n + n_memory]]
        for j in reversed(range(steps)):
            rows, th = leaves = stage_leaves(thetas, index, range(j, j + 1))
            base = block.rhs(th, index, rows[0])
            records: dict = {}
            with torch.enable_grad():
                state, memory = block.integrator.step_back(_recording(base, records), j, state, h, memory)
            g_state, g_memory = backprop_steps(block, thetas, index, range(j, j + 1), state, memory,
                                               pair, g_state, g_memory, w_grads, leaves=leaves,
                                               rhs=_replaying(base, records, th, index, rows[0]))
        return (None, None, None, *g_state, *w_grads)


def _recording(base, records: dict):
    """A right-hand side that evaluates ``base`` on a leaf copy of its argument, keeps the
    graph in ``records`` under (stream, j, c) and returns the detached value."""
    def wrap(kind, fn):
        def f(j, c, arg):
            with torch.enable_grad():
                leaf = arg.detach().requires_grad_()
                out = fn(j, c, leaf)
            records[kind, j, c] = (leaf, out)
            return out.detach()
        return f

    if isinstance(base, SeparableRHS):
        return SeparableRHS(wrap("dy", base.dy), wrap("dz", base.dz))
    return wrap(None, base)


def _replaying(base, records: dict, th, index, first: int):
    """A right-hand side that returns recorded evaluations (differentiable through
    :class:`_Replay`) and evaluates ``base`` only where nothing was recorded."""
    def wrap(kind, fn):
        def f(j, c, arg):
            record = records.pop((kind, j, c), None)
            if record is None:
                return fn(j, c, arg)
            return _Replay.apply(arg, record, *th[index[j][c] - first])
        return f

    if isinstance(base, SeparableRHS):
        return SeparableRHS(wrap("dy", base.dy), wrap("dz", base.dz))
    return wrap(None, base)


class _Replay(torch.autograd.Function):
    """f(arg, θ) taken from a recorded evaluation at (numerically) the same argument: the value
    is the recorded one, the vector-Jacobian product that of the recorded graph."""

    @staticmethod
    def forward(ctx, arg, record, *theta):
        leaf, out = record
        ctx.record = record
        ctx.save_for_backward(*theta)
        return out.detach().clone()

    @staticmethod
    def backward(ctx, grad):
        leaf, out = ctx.record
        theta = ctx.saved_tensors
        grads = torch.autograd.grad(out, [leaf, *theta], grad, allow_unused=True)
        ctx.record = None
        return (grads[0], None, *grads[1:])
