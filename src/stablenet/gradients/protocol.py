"""The protocol between a block and its gradient mode: what a mode may use of the block.

A gradient mode (:class:`~stablenet.gradients.base.GradientMode`) is handed the block it
differentiates through ``mode.solve(block, state, steps)``.  It does not import the block class:
everything it may touch is listed here, as :class:`GradientBlock`, and
:class:`stablenet.block.ODEBlock` is one implementation (tests/test_gradient_protocol.py checks
that it has every member).  The dependency runs one way: ``block`` imports ``gradients``, never
the reverse.

The members, by what a mode does with them:

* run the block's own steps: ``integrator``, ``T`` (h = T / steps), ``rhs(thetas, index)``, the
  right-hand side f(j, c, state) the integrator calls, with θ of every stage position from
  ``stage_weights(steps, device, weights)``;
* differentiate with respect to the weights: ``dynamics.control_weights()``, the tensors that
  enter a custom ``torch.autograd.Function`` as inputs and receive its gradients (adding a stage's
  θ-gradient into them is ``StageThetas.accumulate``, the adjoint of interpolation);
* solve on another time grid (the continuous adjoint, MGRIT's coarse levels): ``control_grid``
  (θ(t) at arbitrary times) and ``dynamics(state, *theta)``, f evaluated at one stage's θ;
* optionally, an explicit vector-Jacobian product: ``dynamics.vjp(arg, *theta, stream=…)`` →
  ``(f, pullback)`` or None (:meth:`stablenet.dynamics.Dynamics.vjp`).  ``reversible`` uses it
  where it is there and not None, and autograd on ``rhs`` otherwise, so a dynamics without it
  (a plain object with the protocol) is differentiated all the same.
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence, runtime_checkable

import torch

from ..integrators import Integrator
from ..timegrid import ControlGrid, StageThetas

#: ``index[j][c]``: the row of ``StageThetas`` that holds θ of stage position (j, c).
StageIndex = Sequence[dict]
#: f(j, c, state), the right-hand side an integrator calls (:data:`stablenet.integrators.base.RHS`,
#: or a :class:`~stablenet.integrators.SeparableRHS` for separable integrators).
RightHandSide = Callable


@runtime_checkable
class BlockDynamics(Protocol):
    """The dynamics f(Y, θ) as a gradient mode sees it (a :class:`stablenet.dynamics.Dynamics`)."""

    def control_weights(self) -> tuple[torch.Tensor, ...]:
        """The weights stacked on the control grid, (nt, …) each, in the order f takes them."""

    def __call__(self, state, *theta: torch.Tensor):
        """f(state, θ) for one stage's θ (one slice per control weight)."""


@runtime_checkable
class GradientBlock(Protocol):
    """What a gradient mode needs from a block (implemented by :class:`stablenet.block.ODEBlock`)."""

    #: final time; a solve of N steps has step h = T / N
    T: float
    #: the time stepper (``step``, ``stage_offsets``, and for ``reversible`` ``step_back``/``step_vjp``)
    integrator: Integrator
    dynamics: BlockDynamics

    @property
    def control_grid(self) -> ControlGrid:
        """The control grid of the dynamics' weights: θ(t) at any time (``coordinates``,
        ``stage_thetas``)."""

    def stage_weights(self, steps: int, device, weights: Sequence[torch.Tensor] | None = None, *,
                      eager: bool = True) -> tuple[StageThetas, StageIndex]:
        """θ at every stage of a ``steps``-step solve, computed from ``weights`` (default: the
        dynamics' control weights; modes pass detached copies), and the index of its rows."""

    def rhs(self, thetas, index: StageIndex, first: int = 0) -> RightHandSide:
        """f(j, c, state) with θ of stage (j, c) = ``thetas[index[j][c] − first]``."""
