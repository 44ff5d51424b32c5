"""Reversible backpropagation: recompute the states backwards instead of storing them."""

from __future__ import annotations

import operator

import torch

from ..integrators import SeparableRHS, is_reversible
from ..state import device_of, flat, unflat
from .backprop import apply_to_state
from .base import GradientMode, register


@register
class Reversible(GradientMode):
    """Exact discrete gradients with activation memory independent of depth (Verlet, leapfrog).

    The forward pass runs without recording anything and keeps only the final state (and, for
    leapfrog, Y_{N−1}).  The backward pass walks the steps in reverse: it rebuilds the state
    before step j with the integrator's exact inverse (``step_back``) and pulls the adjoint of
    the state and of step j's weights through step j (``step_vjp``).
    Memory: O(1) states plus one step's stage values, whatever N.  Cost: one forward pass more
    than ``autograd``: Verlet's and leapfrog's inverse steps evaluate f at exactly the points
    where the forward step did, so each evaluation of the reconstruction comes with its
    vector-Jacobian product, and the integrator's ``step_vjp`` pulls the cotangents through them
    (one VJP per stage, no repeated evaluation).  The VJP is the dynamics' explicit one where it
    offers it (:meth:`stablenet.dynamics.Dynamics.vjp`: the dense dynamics without
    normalization, e.g. the Hamiltonian's Kᵀ(σ′ ⊙ v)), which reuses the evaluation's σ(a) and
    builds no autograd graph; otherwise the evaluation is recorded with autograd and
    differentiated with one ``torch.autograd.grad`` over (argument, θ).

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
        weights = [w.detach() for w in saved[n + n_memory:]]
        thetas, index = block.stage_weights(steps, saved[0].device, weights, eager=False)
        h = block.T / steps
        w_grads = [torch.zeros_like(w) for w in weights]
        # the cotangents are updated in place from here on (``vjp``'s ``add_to``): own them
        g = [torch.zeros_like(s) if t is None else t.clone() for t, s in zip(grad_out, saved[:n])]
        g_state = tuple(g) if pair else g[0]
        g_memory = (torch.zeros_like(memory),) if n_memory else None
        stages = _Stages(block, thetas, index, _StageGrads(thetas, w_grads))
        f = stages.rhs(integrator.separable)
        with torch.no_grad():
            for j in reversed(range(steps)):
                stages.j = j
                state, memory = integrator.step_back(f, j, state, h, memory)
                g_state, g_memory = integrator.step_vjp(stages.vjp, j, state, memory, h, g_state, g_memory)
                g_memory = None if g_memory is None else (g_memory,)
        stages.grads.flush()
        return (None, None, None, *(g_state if pair else (g_state,)), *w_grads)


class _Stages:
    """The stage evaluations of one step of the backward pass, each with its pullback.

    ``rhs`` is the right-hand side ``step_back`` calls: it evaluates f at stage (j, c) through
    the dynamics' explicit VJP (:meth:`stablenet.dynamics.Dynamics.vjp`) where it offers one,
    else with autograd on leaf copies of the argument and of θ, and keeps the pullback under
    (stream, c).  ``vjp(stream, c, cotangent, arg, scale, add_to)``, what ``step_vjp`` calls,
    returns ``add_to + scale·J_fᵀ cotangent`` with the recorded pullback (evaluating at ``arg``
    only where ``step_back`` made no evaluation: leapfrog's start-up step) and adds
    ``scale·J_θᵀ cotangent`` into the stage's θ-gradient.  So every stage costs one evaluation
    (the reconstruction's, needed anyway) and one VJP.
    """

    def __init__(self, block, thetas, index, grads: "_StageGrads"):
        self.block, self.thetas, self.index, self.grads = block, thetas, index, grads
        self.explicit = getattr(block.dynamics, "vjp", None)
        self.records: dict = {}
        self.j = 0

    def evaluate(self, stream, j, c, arg):
        row = self.index[j][c]
        theta = self.thetas[row]
        linear = None if self.explicit is None else self.explicit(arg, *theta, stream=stream)
        if linear is None:
            linear = self._autograd(stream, j, c, row, arg, theta)
        out, pullback = linear
        self.records[stream, c] = (row, theta, pullback)
        return out

    def _autograd(self, stream, j, c, row, arg, theta):
        """(f, pullback) by autograd: f evaluated through the block's ``rhs`` on leaf copies,
        the pullback one ``torch.autograd.grad`` over (argument, θ)."""
        with torch.enable_grad():
            leaf = arg.detach().requires_grad_()
            leaves = tuple(t.detach().requires_grad_() for t in theta)
            f = self.block.rhs([leaves], self.index, row)
            out = (f if stream is None else getattr(f, stream))(j, c, leaf)

        def pullback(v, scale, add_to, theta_grads):
            grads = torch.autograd.grad(out, (leaf, *leaves), v, allow_unused=True)
            for buffer, grad in zip(theta_grads, grads[1:]):
                if grad is not None:
                    buffer.add_(grad, alpha=scale)
            if grads[0] is None:
                return torch.zeros_like(arg) if add_to is None else add_to
            return grads[0] * scale if add_to is None else add_to.add_(grads[0], alpha=scale)

        return out.detach(), pullback

    def rhs(self, separable: bool):
        if separable:
            return SeparableRHS(lambda j, c, z: self.evaluate("dy", j, c, z),
                                lambda j, c, y: self.evaluate("dz", j, c, y))
        return lambda j, c, y: self.evaluate(None, j, c, y)

    def vjp(self, stream, c, cotangent, arg, scale=1.0, add_to=None):
        if (stream, c) not in self.records:
            self.evaluate(stream, self.j, c, arg)
        row, theta, pullback = self.records.pop((stream, c))
        return pullback(cotangent, scale, add_to, self.grads.buffers(row, theta))


class _StageGrads:
    """The θ-gradients of the stages, summed in place while consecutive stages share their θ.

    A stage's θ-gradient goes into the control weights' gradients through
    ``StageThetas.accumulate`` (the adjoint of interpolation), which is linear: stages whose θ
    are the very same tensors (rows that are one slice of the control weights: piecewise-constant
    weights with nt < N) can be summed first and handed over once.  So consecutive stages with
    the same θ add into one buffer, which is handed over when a stage with other θ comes (every
    stage, for interpolated weights).
    """

    def __init__(self, thetas, w_grads):
        self.thetas, self.w_grads = thetas, w_grads
        self.row, self.theta, self.buffer = None, None, None

    def buffers(self, row, theta):
        if self.row is None or (row != self.row and not all(map(operator.is_, theta, self.theta))):
            self.flush()
            if self.buffer is None:
                self.buffer = tuple(torch.zeros_like(t) for t in theta)
            self.row, self.theta = row, theta
        return self.buffer

    def flush(self):
        if self.row is not None:
            self.thetas.accumulate(self.w_grads, self.row, self.buffer)
            for b in self.buffer:
                b.zero_()
            self.row, self.theta = None, None
