"""Reversible backpropagation: recompute the states backwards instead of storing them."""

from __future__ import annotations

import torch

from ..integrators import SeparableRHS, is_reversible
from ..state import device_of, flat, unflat, zeros_for_none
from .backprop import apply_to_state, stage_leaves
from .base import GradientMode, register


@register
class Reversible(GradientMode):
    """Exact discrete gradients with activation memory independent of depth (Verlet, leapfrog).

    The forward pass runs without recording anything and keeps only the final state (and, for
    leapfrog, Y_{N−1}).  The backward pass walks the steps in reverse: it rebuilds the state
    before step j with the integrator's exact inverse (``step_back``) and pulls the adjoint of
    the state and of step j's weights through step j (``step_vjp``).
    Memory: O(1) states plus one step's graph, whatever N.  Cost: one forward pass more than
    ``autograd``: Verlet's and leapfrog's inverse steps evaluate f at exactly the points where
    the forward step did, so the backward pass records those evaluations while reconstructing
    (with autograd) and the integrator's ``step_vjp`` pulls the cotangents through them
    directly, without repeating the step.

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
        return apply_to_state(_ReversibleSolve, block, state, steps)


class _ReversibleSolve(torch.autograd.Function):
    """inputs: block, steps, pair?, *state tensors, *control weights → final state tensors."""

    @staticmethod
    def forward(ctx, block, steps, pair, *inputs):
        n_state = 2 if pair else 1
        state, weights = unflat(inputs[:n_state], pair), inputs[n_state:]
        thetas, index = block.stage_weights(steps, device_of(state), weights, eager=False)
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
        integrator = block.integrator
        n_memory = 1 if integrator.second_order else 0
        state = unflat([t.detach() for t in saved[:n]], pair)
        memory = saved[n].detach() if n_memory else None
        weights = saved[n + n_memory:]
        thetas, index = block.stage_weights(steps, saved[0].device, weights, eager=False)
        h = block.T / steps
        w_grads = [torch.zeros_like(w) for w in weights]
        g = zeros_for_none(grad_out, saved[:n])
        g_state = tuple(g) if pair else g[0]
        g_memory = (torch.zeros_like(memory),) if n_memory else None
        for j in reversed(range(steps)):
            rows, th = stage_leaves(thetas, index, range(j, j + 1))
            base = block.rhs(th, index, rows[0])
            records: dict = {}
            state, memory = integrator.step_back(_recording(base, records), j, state, h, memory)
            vjp = _VJP(base, records, j, index, rows, th)
            g_state, g_memory = integrator.step_vjp(vjp, j, state, memory, h, g_state, g_memory)
            g_memory = None if g_memory is None else (g_memory,)
            for k, r in enumerate(rows):
                if vjp.row_grads[k] is not None:
                    thetas.accumulate(w_grads, r, vjp.row_grads[k])
        return (None, None, None, *(g_state if pair else (g_state,)), *w_grads)


def _recording(base, records: dict):
    """A right-hand side that evaluates ``base`` on a leaf copy of its argument, keeps the
    graph in ``records`` under (stream, c) and returns the detached value."""
    def wrap(kind, fn):
        def f(j, c, arg):
            with torch.enable_grad():
                leaf = arg.detach().requires_grad_()
                out = fn(j, c, leaf)
            records[kind, c] = (leaf, out)
            return out.detach()
        return f

    if isinstance(base, SeparableRHS):
        return SeparableRHS(wrap("dy", base.dy), wrap("dz", base.dz))
    return wrap(None, base)


class _VJP:
    """``vjp(stream, c, cotangent, arg)`` for step j: J_fᵀ·cotangent of the evaluation that
    ``step_back`` recorded (evaluating at ``arg`` only where it recorded none), adding
    J_θᵀ·cotangent to the step's stage-row gradients ``row_grads``."""

    def __init__(self, base, records, j, index, rows, th):
        self.base, self.records, self.j, self.index, self.rows, self.th = base, records, j, index, rows, th
        self.row_grads: list = [None] * len(rows)

    def __call__(self, kind, c, cotangent, arg):
        record = self.records.pop((kind, c), None)
        k = self.index[self.j][c] - self.rows[0]
        with torch.enable_grad():
            if record is None:
                fn = self.base if kind is None else getattr(self.base, kind)
                leaf = arg.detach().requires_grad_()
                record = (leaf, fn(self.j, c, leaf))
            leaf, out = record
            grads = torch.autograd.grad(out, [leaf, *self.th[k]], cotangent, allow_unused=True)
        theta = tuple(zeros_for_none(grads[1:], self.th[k]))
        if self.row_grads[k] is None:
            self.row_grads[k] = theta
        else:
            self.row_grads[k] = tuple(a + b for a, b in zip(self.row_grads[k], theta))
        return torch.zeros_like(leaf) if grads[0] is None else grads[0]
