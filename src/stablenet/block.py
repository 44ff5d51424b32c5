"""ODEBlock: dynamics × integrator × time grids as one ``torch.nn.Module``."""

from __future__ import annotations

import torch
from torch import nn

from . import _checks
from .dynamics import Dynamics
from .gradients import GradientMode, get_gradient_mode
from .integrators import Integrator, SeparableRHS, get_integrator, is_reversible, scan_solve, solve
from .state import device_of
from .timegrid import INTERPOLATIONS, ControlGrid, StateGrid


#: values of ODEBlock's ``compiled_loop``
COMPILED_LOOPS = ("auto", "scan", "unroll")
#: ``compiled_loop="auto"`` unrolls a solve of at most this many stage evaluations (N × stages)
#: and scans a longer one.  Measured (benchmarks/RESULTS.md, "Compiled blocks"): unrolling 64
#: Euler steps builds in about the time a scan does (18 s vs 20 s) and runs faster at batch 1024
#: (0.96× vs 1.5× the hand loop: a scan copies every step's saved activations); 256 steps unrolled
#: take 49 s (Euler) to 98 s (Verlet) to build, against 15-25 s for the scan, and RK4's 1,024
#: evaluations more than 10 minutes.
UNROLL_UP_TO = 128


def check_compatible(dynamics: Dynamics | type[Dynamics], integrator: Integrator) -> None:
    """Refuse a dynamics/integrator pairing that would compute something other than asked.

    The pairing rule of the package, in this one place (ODEBlock, :mod:`stablenet.specs` and so
    the configuration file call it):

    * a *separable* integrator (verlet) steps the two streams of a dynamics (y, z) in turn: it
      needs a two-stream dynamics (``two_stream``);
    * a *second-order* integrator (leapfrog) reads f as the acceleration of one state,
      Y'' = f(Y): it needs a one-stream dynamics (any one-stream f defines such a system; with
      the parabolic f = −Kᵀσ(KY + b) it is the hyperbolic network of Ruthotto & Haber 2020);
    * a dynamics *defined* as an acceleration (``second_order``: conv_second_order) needs a
      second-order integrator: a first-order one would integrate Y' = f, another network (the
      parabolic one) under its name.

    ``dynamics`` is a :class:`~stablenet.dynamics.Dynamics` instance or class.  Raises
    :class:`~stablenet._checks.ArgumentError` for ``"method"`` (first two rules) or
    ``"dynamics"`` (third), naming the registered methods that would do.
    """
    from .dynamics import DYNAMICS, dynamics_name
    from .integrators import available

    rule = _broken_rule(dynamics, integrator)
    name, method = dynamics_name(dynamics), integrator.name
    if rule in ("separable", "one-stream"):
        fits = [n for n in available() if _broken_rule(dynamics, get_integrator(n)) is None]
        use = f"; use {_checks.listing(fits)}" if fits else ""
        if rule == "separable":
            pairs = [n for n, c in DYNAMICS.items() if c.two_stream and c.feature_dim == dynamics.feature_dim]
            such = f" such as {_checks.listing(pairs)}" if pairs else ""
            raise _checks.ArgumentError("method", f"method={method!r} needs a two-stream dynamics (y, z){such}, "
                                                  f"got one-stream {name}{use}")
        raise _checks.ArgumentError("method", f"method={method!r} integrates one-stream second-order dynamics "
                                              f"Y'' = f(Y), got two-stream {name}{use}")
    if rule == "acceleration":
        second = [n for n in available() if get_integrator(n).second_order]
        raise _checks.ArgumentError("dynamics", f"dynamics={name} needs method {_checks.listing(second or ['?'])} "
                                                f"(its f is the acceleration in Y'' = f(Y)), got method={method!r}")


def _broken_rule(dynamics, integrator: Integrator) -> str | None:
    """The first rule of :func:`check_compatible` the pairing breaks, or None."""
    if integrator.separable and not dynamics.two_stream:
        return "separable"
    if integrator.second_order and dynamics.two_stream:
        return "one-stream"
    if dynamics.second_order and not integrator.second_order:
        return "acceleration"
    return None


class ODEBlock(nn.Module):
    """Y_N from Y_0 by ``steps`` steps of ``method`` on dY/dt = f(Y, θ(t)), t ∈ [0, T].

    Args:
        dynamics: a :class:`~stablenet.dynamics.Dynamics`; its weights carry nt control points.
        T: final time (> 0).  Required: there is no default grid.
        steps: number N of state steps, h = T / N.  Required.  Can be changed after training
            (``block.steps = 4 * N`` or ``block(x, steps=…)``) to evaluate the same weights on
            another state grid (seed 004's control vs state layers).
        method: integrator name (``euler``, ``midpoint``, ``rk3``, ``rk4``, ``ab3``, ``verlet``,
            ``leapfrog``) or an :class:`~stablenet.integrators.Integrator` instance.
        controls: how the nt control weights become θ(t): ``"constant"`` (piecewise constant;
            nt = steps is one weight set per layer) or ``"linear"``.
        gradient: how backpropagation gets the gradient (:mod:`stablenet.gradients`):
            ``"autograd"`` (default; exact discrete gradient, stores every stage),
            ``"reversible"`` (Verlet/leapfrog: exact, memory independent of depth),
            ``"adjoint"`` (continuous adjoint solved backwards), ``"checkpoint"`` (recomputes
            segments), or a configured mode such as ``Adjoint(method="rk4", steps=64)``.
        compiled_loop: what ``torch.compile`` makes of the N steps (docs/compile.md):
            ``"scan"`` traces one step and loops over it in the compiled code (build time
            independent of N; used with ``gradient="autograd"`` and without gradients),
            ``"unroll"`` traces every step into one graph (build time grows with N, fastest
            code), ``"auto"`` (default) unrolls up to :data:`UNROLL_UP_TO` stage evaluations
            and scans beyond.  Eager execution ignores it.

    Input and output are batch-first, (batch, width).  For two-stream dynamics a tensor input is
    y(0) with z starting at 0 (Verlet: Z_{−1/2} = 0, the seeds' convention) and the output is
    y(T); a pair (y, z) in gives the pair out.  ``return_states=True`` returns all N + 1 states
    stacked on a new leading dimension (for a tensor input to a two-stream block, those of y).
    Inputs are checked before the solve (width, finiteness, the weights' device and dtype, equal
    batch sizes of the two streams; see :meth:`forward`); under ``torch.autocast`` the input dtype
    may differ from the weights'.

    Note on Verlet networks: Z_{−1/2} = 0 fixes z at t = −h/2, a time that moves with h, so
    re-evaluating the same weights on finer state grids converges at first order (the integrator
    itself is second order for a given z(−h/2); see :func:`stablenet.integrate`).
    """

    def __init__(self, dynamics: Dynamics, *, T: float, steps: int, method: str | Integrator,
                 controls: str = "constant", gradient: str | GradientMode = "autograd",
                 compiled_loop: str = "auto"):
        super().__init__()
        if not isinstance(dynamics, Dynamics):
            raise TypeError(f"dynamics must be a stablenet Dynamics module, got {type(dynamics).__name__}")
        self.dynamics = dynamics
        self.T = _checks.positive_float("T", T)
        self.steps = steps
        self.integrator = get_integrator(method)
        check_compatible(dynamics, self.integrator)
        self.controls = _checks.choice("controls", controls, INTERPOLATIONS)
        self._coordinate_cache: dict = {}
        self.gradient = gradient
        self.compiled_loop = _checks.choice("compiled_loop", compiled_loop, COMPILED_LOOPS)

    @property
    def gradient(self) -> GradientMode:
        """The gradient mode (settable by name or instance; checked against the integrator).

        The mode sees this block through :class:`stablenet.gradients.GradientBlock`: ``T``,
        ``integrator``, ``dynamics``, ``control_grid``, ``stage_weights`` and ``rhs``.
        """
        return self._gradient

    @gradient.setter
    def gradient(self, value: str | GradientMode) -> None:
        mode = get_gradient_mode(value)
        mode.check(self.dynamics, self.integrator)
        self._gradient = mode

    # -- grids ------------------------------------------------------------------------------------
    @property
    def steps(self) -> int:
        """Number N of state steps, h = T / N; settable (``block.steps = 4 * N``) to evaluate the
        same weights on another state grid."""
        return self._steps

    @steps.setter
    def steps(self, value: int) -> None:
        self._steps = _checks.positive_int("steps", value)

    @property
    def h(self) -> float:
        """The state step h = T / steps."""
        return self.T / self.steps

    @property
    def state_grid(self) -> StateGrid:
        """The state grid: :class:`~stablenet.timegrid.StateGrid` (T, steps)."""
        return StateGrid(self.T, self.steps)

    @property
    def control_grid(self) -> ControlGrid:
        """The weights' control grid: :class:`~stablenet.timegrid.ControlGrid` (T, the dynamics' nt,
        ``controls``)."""
        return ControlGrid(self.T, self.dynamics.nt, self.controls)

    def weights_at(self, times) -> tuple[torch.Tensor, ...]:
        """θ(t) at the given times, one tensor (len(times), …) per weight (e.g. for analysis)."""
        grid = self.control_grid
        return tuple(grid.evaluate(w, times) for w in self.dynamics.control_weights())

    def prolongate(self) -> "ODEBlock":
        """Double the control points nt → 2nt keeping θ(t) exactly (rebuild the optimizer after)."""
        self.dynamics.prolongate(self.controls)
        return self

    def _stage_table(self, steps: int, device):
        """(coordinates of every stage θ, per-step {c: row}), cached per grid.

        Rows are ordered by step, so the stages of step j occupy the contiguous rows
        ``min(index[j].values()) … max(index[j].values())``.
        """
        key = (steps, self.dynamics.nt, self.controls, str(device))
        entry = self._coordinate_cache.get(key)
        if entry is None:
            positions, index = [], []
            for j in range(steps):
                offsets = self.integrator.stage_offsets(j)
                index.append({c: len(positions) + k for k, c in enumerate(offsets)})
                positions.extend((j, c) for c in offsets)
            coords = self.control_grid.stage_coordinates(positions, steps, device)
            entry = self._coordinate_cache[key] = (coords, index)
        return entry

    def stage_weights(self, steps: int, device, weights=None, *, eager: bool = True):
        """θ at every stage of a ``steps``-step solve: (:class:`~stablenet.timegrid.StageThetas`, index).

        ``index[j][c]`` is the row of stage position (j, c); rows of piecewise-constant weights
        are views of the control slices (no copies).  ``weights`` defaults to the dynamics'
        control weights (the gradient modes pass detached copies); ``eager=False`` computes
        interpolated rows on demand.
        """
        coords, index = self._stage_table(steps, device)
        weights = self.dynamics.control_weights() if weights is None else weights
        return self.control_grid.stage_thetas(weights, coords, eager=eager), index

    def rhs(self, thetas, index, first: int = 0):
        """The right-hand side f(j, c, state) the integrator calls, θ of stage (j, c) being
        ``thetas[index[j][c] − first]`` (a sequence of per-weight tuples; ``first`` lets it hold
        a single step's rows)."""
        return self._rhs(lambda j, c: thetas[index[j][c] - first])

    def _rhs(self, theta):
        """f(j, c, state) with the stage's θ = ``theta(j, c)`` (a tuple of weights)."""
        dyn = self.dynamics
        if self.integrator.separable:
            dy, dz = dyn.dy, dyn.dz
            return SeparableRHS(lambda j, c, z: dy(z, *theta(j, c)), lambda j, c, y: dz(y, *theta(j, c)))
        forward = dyn.forward

        def f(j, c, y):
            return forward(y, *theta(j, c))

        return f

    def _scans(self, steps: int) -> bool:
        """Whether a compiled solve of ``steps`` steps runs as a scan (``compiled_loop``)."""
        if self.compiled_loop == "auto":
            integrator = self.integrator
            return steps * len(integrator.stage_offsets(integrator.uniform_from)) > UNROLL_UP_TO
        return self.compiled_loop == "scan"

    def _scan_solve(self, state, steps: int):
        """Y_N by :func:`~stablenet.integrators.scan_solve`: the uniform steps as one scan, their
        θ gathered per stage offset into tensors with one row per step (what the compiled loop
        body indexes).  Differentiated by autograd (the gradient of the same discrete network)."""
        integrator, device = self.integrator, device_of(state)
        first = min(integrator.uniform_from, steps)
        f = self.rhs(*self.stage_weights(steps, device, eager=False))  # rows of the start-up steps only
        offsets = integrator.stage_offsets(first)
        grid, weights = self.control_grid, self.dynamics.control_weights()
        rows = tuple(tuple(grid.gather(w, grid.stage_coordinates([(j, c) for j in range(first, steps)], steps, device))
                           for w in weights) for c in offsets)
        position = {c: k for k, c in enumerate(offsets)}
        return scan_solve(integrator, f, lambda row: self._rhs(lambda j, c: row[position[c]]), rows, state,
                          self.T / steps, steps)

    # -- forward ----------------------------------------------------------------------------------
    def _check_state(self, names: tuple[str, str], y, z=None, *, what: str = "ODEBlock input") -> None:
        """Check a state before a solve: y (and z for a pair (y, z)) a finite floating tensor with
        the dynamics' width (width_z) along its feature dimension, on the device of the weights and
        of their dtype — any dtype under ``torch.autocast`` (mixed precision) — and the two streams
        of a pair equal in every other dimension (batch size, image size).

        ``names`` name the streams in the messages.  Costs one finiteness reduction per stream
        (one device synchronization each) and metadata comparisons.
        """
        dyn = self.dynamics
        weight = next(dyn.parameters())
        streams = [(names[0], y, dyn.width)] + ([] if z is None else [(names[1], z, dyn.width_z)])
        for name, stream, width in streams:
            _checks.finite_state(name, stream, width, dyn.feature_dim)
            _checks.same_device_and_dtype(f"{what} {name}", stream, weight, "the block's weights",
                                          f"; convert with block.to({{got}}) or {name}.to({{expected}})")
        if z is not None:
            _checks.same_shape(f"{what} {names[1]}", z, y, names[0], except_dim=dyn.feature_dim,
                               hint="; the streams of a pair (y, z) must agree in batch size and every other "
                                    "dimension but the features")

    def forward(self, x, *, steps: int | None = None, return_states: bool = False):
        """Y_N from the input x (a tensor, or a pair (y, z) for two-stream dynamics); see the class.

        The input is checked first: a ``ValueError``/``TypeError`` names the stream (y0, z0), the
        value and what was expected — a finite floating tensor of the dynamics' width, on the
        weights' device with their dtype (any dtype under ``torch.autocast``), and for a pair
        (y, z) the same batch size (every dimension but the features) for both streams.
        """
        dyn = self.dynamics
        N = self.steps if steps is None else _checks.positive_int("steps", steps)
        pair_in = isinstance(x, (tuple, list)) and all(isinstance(v, torch.Tensor) for v in x)
        if dyn.two_stream:
            if pair_in:
                if len(x) != 2:
                    raise ValueError(f"a two-stream state must be a pair (y, z), got {len(x)} tensors")
                y0, z0 = x
                self._check_state(("y0", "z0"), y0, z0)
            else:
                y0 = x
                self._check_state(("y0", "z0"), y0)
                shape = list(y0.shape)
                shape[dyn.feature_dim] = dyn.width_z
                z0 = y0.new_zeros(shape)
            state = (y0, z0)
        else:
            if pair_in:
                raise ValueError(f"{dyn.kind} is one-stream: pass a tensor, not a pair")
            self._check_state(("y0", "z0"), x)
            state = x

        device = device_of(state)
        if (not return_states and _checks.compiling() and self._scans(N)
                and (self.gradient.name == "autograd" or not torch.is_grad_enabled())):
            out = self._scan_solve(state, N)  # traced as one step: build time independent of N
        elif return_states or not torch.is_grad_enabled():
            # all states are kept anyway (or nothing is differentiated): plain stepping
            out = solve(self.integrator, self.rhs(*self.stage_weights(N, device)), state,
                        self.T / N, N, return_states)
        else:
            # fill the stage-table cache here, outside any custom autograd Function the mode may
            # run: under torch.compile, a cache entry created inside one would escape its subgraph
            self._stage_table(N, device)
            out = self.gradient.solve(self, state, N)
        if dyn.two_stream and not pair_in:
            return out[0]
        return out

    def reverse(self, state, *, steps: int | None = None):
        """Run a reversible integrator backwards: (Y_N, Z_{N−1/2}) → (Y_0, Z_{−1/2}).

        Exact up to rounding (no stored states), so activations need not be kept for backprop.
        ``state`` = (Y_N, Z_{N−1/2}) is checked like a pair input of :meth:`forward`.
        """
        if not is_reversible(self.integrator) or self.integrator.second_order:
            raise ValueError(f"method={self.integrator.name!r} is not reversible from its final state; use verlet")
        N = self.steps if steps is None else _checks.positive_int("steps", steps)
        y, z = state
        self._check_state(("yN", "zN"), y, z, what="ODEBlock.reverse state")
        f, h = self.rhs(*self.stage_weights(N, y.device)), self.T / N
        state, memory = (y, z), None
        for j in reversed(range(N)):
            state, memory = self.integrator.step_back(f, j, state, h, memory)
        return state

    def extra_repr(self) -> str:
        grad = "" if self.gradient.name == "autograd" else f", gradient={self.gradient!r}"
        loop = "" if self.compiled_loop == "auto" else f", compiled_loop={self.compiled_loop!r}"
        return (f"T={self.T}, steps={self.steps}, method={self.integrator.name!r}, "
                f"controls={self.controls!r}{grad}{loop}")

