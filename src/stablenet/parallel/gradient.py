"""``gradient="mgrit"``: forward and backward propagation of a block by MGRIT (layer-parallel)."""

from __future__ import annotations

import torch

from ..gradients.base import GradientMode, register
from ..state import flat, unflat, zeros_for_none
from .mgrit import MGRITOptions, check_one_step, make_comm, mgrit_adjoint, mgrit_forward


@register
class MGRIT(GradientMode):
    """Layer-parallel forward and backward propagation by multigrid reduction in time.

    The forward pass solves Y_{j+1} = Φ_j(Y_j) by MGRIT (:func:`~.mgrit.mgrit_forward`) and
    keeps the states of the time points this rank owns; the backward pass solves the discrete
    adjoint λ_j = (∂Φ_j/∂Y_j)ᵀ λ_{j+1} by MGRIT backwards in time and adds
    (∂Φ_j/∂θ)ᵀ λ_{j+1} over the steps (:func:`~.mgrit.mgrit_adjoint`).  Converged, this is the
    gradient of the discrete network (``autograd``'s) to the solver tolerance; with
    ``max_levels=1`` it is sequential stepping and equals it to round-off.  With a loose
    tolerance or few iterations (as in layer-parallel training, Günther et al., SIMODS 2020)
    it is an inexact forward pass and gradient.

    ``block.gradient = MGRIT(m=4, max_levels=3, ...)``; the options are those of
    :class:`~.mgrit.MGRITOptions`, plus ``distributed=True`` (and ``group``) to split the time
    points over the ranks of an initialized ``torch.distributed`` process group: every rank runs
    the same model on the same batch; each computes the steps it owns, and all get the same
    output and the same gradients (so no DDP all-reduce is needed for the block's weights).
    Like every gradient mode it is consulted only when autograd records (in ``torch.no_grad()``
    the block steps sequentially; call :func:`~.mgrit.mgrit_forward` for a parallel inference).
    The residual histories of the last solves are in ``last_forward`` / ``last_adjoint``.
    Reference: Günther, Ruthotto, Schroder, Cyr & Gauger, "Layer-parallel training of deep
    residual neural networks", SIMODS 2(1), 2020.
    """

    name = "mgrit"
    exact = False  # to the solver tolerance (max_levels=1: to round-off)

    def __init__(self, *, distributed: bool = False, group=None, adjoint: MGRITOptions | None = None,
                 **options):
        self.mgrit = MGRITOptions(**options)
        self.adjoint_options = self.mgrit if adjoint is None else adjoint
        if not isinstance(self.adjoint_options, MGRITOptions):
            raise ValueError(f"adjoint must be an MGRITOptions or None, got {type(adjoint).__name__}")
        if not isinstance(distributed, bool):
            raise ValueError(f"distributed must be True or False, got {distributed!r}")
        self.distributed, self.group = distributed, group
        self.last_forward = None
        self.last_adjoint = None

    def options(self) -> dict:
        out = {k: getattr(self.mgrit, k) for k in self.mgrit.__dataclass_fields__}
        if self.distributed:
            out["distributed"] = True
        return out

    def check(self, dynamics, integrator):
        check_one_step(integrator)

    def solve(self, block, state, steps):
        pair = isinstance(state, tuple)
        out = _MGRITSolve.apply(self, block, steps, pair, *flat(state), *block.dynamics.control_weights())
        return unflat(out, pair)


class _MGRITSolve(torch.autograd.Function):
    """inputs: mode, block, steps, pair?, *state tensors, *control weights → final state."""

    @staticmethod
    def forward(ctx, mode, block, steps, pair, *inputs):
        n = 2 if pair else 1
        state, weights = unflat(inputs[:n], pair), inputs[n:]
        comm = make_comm(mode.distributed, mode.group)
        result = mgrit_forward(block, state, steps=steps, options=mode.mgrit, comm=comm,
                               weights=weights)
        mode.last_forward = result.stats
        ctx.mode, ctx.block, ctx.steps, ctx.pair, ctx.comm = mode, block, steps, pair, comm
        ctx.states = result.states
        ctx.save_for_backward(*weights)
        return tuple(t.clone() for t in flat(result.final))

    @staticmethod
    def backward(ctx, *grad_out):
        mode, pair = ctx.mode, ctx.pair
        weights = ctx.saved_tensors
        like = next(iter(ctx.states.values())) if ctx.states else None
        g = zeros_for_none(grad_out, flat(like) if like is not None else grad_out)
        result = mgrit_adjoint(ctx.block, ctx.states, unflat(g, pair), steps=ctx.steps,
                               options=mode.adjoint_options, comm=ctx.comm, weights=weights)
        mode.last_adjoint = result.stats
        ctx.states = None
        return (None, None, None, None, *flat(result.grad_y0), *result.grad_weights)
