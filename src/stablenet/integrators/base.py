"""The integrator interface, the registry that finds integrators by name, and the stepping loop.

An integrator is a small object with a ``name``, an ``order`` and one ``step`` method (the shape of
torchdiffeq's fixed-grid solvers).  It never sees weights or times directly: it calls the
right-hand side as ``f(j, c, y)``, "evaluate at stage position (j, c)", i.e. at time (j + c)·h
inside step j.  The caller decides what that means: :func:`stablenet.integrate` turns it into
``func(t, y)``, an :class:`~stablenet.block.ODEBlock` into a look-up of the weights it
interpolated for that stage once per forward pass.  Because every integrator announces its stage
positions up front (:meth:`Integrator.stage_offsets`), the per-step cost is the arithmetic of the
scheme and nothing else.

States are tensors, or pairs ``(y, z)`` of tensors for two-stream systems; :mod:`stablenet.state`
does the vector-space arithmetic on both.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, NamedTuple

import torch

from .. import state as _state
from ..state import State

RHS = Callable[[int, float, State], State]


class SeparableRHS(NamedTuple):
    """A two-stream right-hand side split by stream: dy/dt = dy(j, c, z), dz/dt = dz(j, c, y)."""

    dy: Callable[[int, float, torch.Tensor], torch.Tensor]
    dz: Callable[[int, float, torch.Tensor], torch.Tensor]

    def __call__(self, j: int, c: float, state):
        y, z = state
        return (self.dy(j, c, z), self.dz(j, c, y))


class Integrator:
    """Base class of the fixed-step integrators.

    Subclasses set ``name`` and ``order`` and implement :meth:`step`.  Two flags describe what
    kind of system a scheme integrates:

    * ``separable``: the state is a pair (y, z) and the right-hand side must come split by stream
      (:class:`SeparableRHS`); Verlet needs this.
    * ``second_order``: the scheme integrates Y'' = f(t, Y) instead of Y' = f(t, Y) (leapfrog).
    * ``multistep``: ``memory`` carries evaluations of earlier steps (Adams–Bashforth), so a step
      is not a function of the state alone.

    Reversible schemes (Verlet, leapfrog) also implement ``step_back(f, j, state, h, memory)``,
    the exact inverse of ``step`` returning the (state, memory) before step j, and
    ``step_vjp(vjp, j, state, memory, h, g_state, g_memory)``, the step's vector-Jacobian
    product written with the right-hand side's ``vjp(stream, c, cotangent, arg, scale, add_to)``
    = ``add_to + scale·J_fᵀ·cotangent`` of the evaluation at stage offset c, ``add_to`` updated in
    place (so a scheme passes a tensor it no longer needs, or a fresh one) (used by
    ``gradient="reversible"``, which supplies it); see :func:`is_reversible`.
    """

    name: ClassVar[str] = ""
    order: ClassVar[int] = 0
    separable: ClassVar[bool] = False
    second_order: ClassVar[bool] = False
    multistep: ClassVar[bool] = False
    _offsets: ClassVar[tuple[float, ...]] = (0.0,)
    #: steps j ≥ uniform_from all take one form: the same stage offsets, memory of the same
    #: structure in and out, no branch on j.  Those steps can run as one loop body
    #: (:func:`scan_solve`); a scheme with start-up steps (Adams–Bashforth) sets it past them.
    uniform_from: ClassVar[int] = 0

    def stage_offsets(self, j: int) -> tuple[float, ...]:
        """The stage positions c (in units of h from t_j) at which step j evaluates f."""
        return self._offsets

    def step(self, f: RHS, j: int, y: State, h: float, memory: Any) -> tuple[State, Any]:
        """Advance from Y_j to Y_{j+1}.  ``memory`` carries what multistep schemes need."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def is_reversible(integrator: Integrator) -> bool:
    """Whether the scheme can be run backwards exactly (it has ``step_back``)."""
    return callable(getattr(integrator, "step_back", None))


def is_one_step(integrator: Integrator) -> bool:
    """Whether the scheme is a one-step method for a first-order ODE Y' = f(t, Y) (Runge–Kutta)."""
    return not (integrator.multistep or integrator.separable or integrator.second_order)


_REGISTRY: dict[str, type[Integrator]] = {}


def register(cls: type[Integrator]) -> type[Integrator]:
    """Class decorator: make an integrator available by its ``name``."""
    if not cls.name:
        raise ValueError(f"integrator class {cls.__name__} has no name")
    _REGISTRY[cls.name] = cls
    return cls


def available() -> list[str]:
    """Names of the registered integrators."""
    return sorted(_REGISTRY)


def get_integrator(method: str | Integrator) -> Integrator:
    """An integrator instance from a name (``"rk4"``) or an instance (returned as is)."""
    if isinstance(method, Integrator):
        return method
    if isinstance(method, type) and issubclass(method, Integrator):
        return method()
    if not isinstance(method, str) or method not in _REGISTRY:
        raise ValueError(f"method must be one of {available()} or an Integrator instance, got {method!r}")
    return _REGISTRY[method]()


def solve(integrator: Integrator, f: RHS, y0: State, h: float, steps: int,
          return_states: bool = False):
    """Take ``steps`` steps of size ``h`` from ``y0``; the final state, or all N + 1 states.

    All states come back stacked along a new leading dimension (for pairs, each stream stacked).
    """
    step = integrator.step
    memory = None
    y = y0
    if not return_states:
        for j in range(steps):
            y, memory = step(f, j, y, h, memory)
        return y
    states = [y0]
    for j in range(steps):
        y, memory = step(f, j, y, h, memory)
        states.append(y)
    return _state.stack(states)


def scan_solve(integrator: Integrator, f: RHS, rhs_of_row: Callable[[Any], RHS], rows, y0: State, h: float,
               steps: int) -> State:
    """Y_N as :func:`solve` gives it, with the steps j ≥ ``integrator.uniform_from`` run as one
    ``torch`` scan (``torch._higher_order_ops.scan``) instead of a Python loop.

    Under ``torch.compile`` a Python loop is unrolled: the graph, and the time to build it, grow
    with N (minutes for RK4 at N = 256).  A scan is traced once, as one step, and the compiled
    code loops over it, so building costs the same for any N (docs/compile.md).  Used by
    :class:`~stablenet.block.ODEBlock` while it is being compiled.

    ``f`` is the right-hand side of the start-up steps (j < ``uniform_from``, run as usual);
    ``rows`` the θ of the scanned steps, stacked along a leading dimension of length
    N − ``uniform_from`` (any pytree of tensors); ``rhs_of_row(row)`` the right-hand side of a
    step given its slice of ``rows``.  The step is called with j = ``uniform_from`` throughout: a
    uniform step does not depend on j other than through θ.
    """
    from torch._higher_order_ops import scan

    first = min(integrator.uniform_from, steps)
    y, memory = y0, None
    for j in range(first):
        y, memory = integrator.step(f, j, y, h, memory)
    if first == steps:
        return y

    stateless = memory is None  # one-step schemes: nothing but the state is carried

    def body(carry, row):
        y, new_memory = integrator.step(rhs_of_row(row), first, carry[0], h, None if stateless else carry[1])
        # the carry comes out as fresh tensors: torch 2.13's scan refuses a body whose outputs may
        # alias its inputs (leapfrog's and Adams–Bashforth's memory pass old values on, and the
        # autograd of a Verlet step trips the same check); inductor fuses the copies away
        out = torch.utils._pytree.tree_map(torch.clone, (y,) if stateless else (y, new_memory))
        # one scalar per step as the scan's stacked output: with none, inductor (torch 2.13)
        # fails to lower the scan or, for some right-hand sides, miscompiles it
        return out, torch.utils._pytree.tree_leaves(out)[0].new_zeros(())

    carry, _ = scan(body, (y,) if stateless else (y, memory), rows)
    return carry[0]
