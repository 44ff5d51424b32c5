"""The continuous adjoint: differentiate the ODE, then discretize the adjoint equation."""

from __future__ import annotations

import torch

from .. import _checks
from ..integrators import get_integrator, is_one_step
from ..integrators import solve as solve_steps
from ..state import device_of, flat, unflat, zeros_for_none
from .backprop import apply_to_state
from .base import GradientMode, register


@register
class Adjoint(GradientMode):
    """"Differentiate, then discretize": solve the continuous adjoint equation backwards in time.

    For dY/dt = F(Y, θ(t)) on [0, T] and a loss ℓ(Y(T)), the adjoint a(t) = ∂ℓ/∂Y(t) solves

        da/dt = −(∂F/∂Y)ᵀ a,   a(T) = ∂ℓ/∂Y(T),     ∂ℓ/∂θ_k = ∫₀ᵀ aᵀ ∂F/∂θ(t) · ∂θ(t)/∂θ_k dt,

    and ∂ℓ/∂Y(0) = a(0) (Pontryagin; seed 002's "optimize → discretize" slide).  The forward pass
    runs the block's own integrator without recording anything and keeps Y(T) only.  The
    backward pass integrates the augmented system (Y, a, ∫ aᵀ∂F/∂θ) from T down to 0 with
    ``method`` and ``steps`` steps, re-solving Y backwards on the way (as torchdiffeq's
    ``odeint_adjoint`` does), and scatters the θ(t) integrals onto the control grid.  Memory is
    independent of depth; the cost is roughly one forward solve plus one backward solve with
    one vector-Jacobian product per stage.

    The result is the *continuous* gradient up to O(h^p) discretization errors, not the gradient
    of the discrete network: the two differ at coarse h and agree as h → 0 at the order p of the
    integrators (measured in docs/gradients.md).  Backwards re-solving also reintroduces the
    forward errors of Y, which grow for unstable dynamics.  Reference: Chen, Rubanova,
    Bettencourt & Duvenaud, "Neural ordinary differential equations", NeurIPS 2018; Gholami,
    Keutzer & Biros, "ANODE", IJCAI 2019 (on the mismatch with the discrete gradient).

    Supported: one-stream first-order dynamics with any integrator except leapfrog, and
    two-stream dynamics integrated by a Runge–Kutta method.  Verlet blocks end at the staggered
    Z_{N−1/2}, not at z(T), and leapfrog integrates Y'' = f: use ``reversible`` for those.

    Args:
        method: a one-step Runge–Kutta integrator for the backward solve (euler, midpoint, rk3,
            rk4); default: the block's own method if it is one, else rk4.
        steps: backward steps; default: the forward solve's number of steps.
    """

    name = "adjoint"
    exact = False

    def __init__(self, method: str | None = None, steps: int | None = None):
        if method is not None and not is_one_step(get_integrator(method)):
            raise ValueError(f"adjoint method must be a one-step Runge-Kutta method "
                             f"(euler, midpoint, rk3, rk4), got {method!r}")
        self.method = method
        self.steps = None if steps is None else _checks.positive_int("adjoint steps", steps)
        self.last_reconstruction_error: float | None = None
        self._grid_cache: dict = {}

    def options(self) -> dict:
        return {"method": self.method, "steps": self.steps}

    def check(self, dynamics, integrator):
        if integrator.separable or integrator.second_order:
            raise ValueError(
                f"gradient='adjoint' needs a block whose final state is Y(T); method={integrator.name!r} "
                f"ends at a staggered or second-order state: use gradient='reversible' (exact, "
                f"memory independent of depth) or a Runge-Kutta method")

    def backward_integrator(self, block):
        """The integrator of the backward (adjoint) solve: ``method`` if given, else the block's own
        integrator if it is a one-step method, else RK4 (for ``ab3``)."""
        if self.method is not None:
            return get_integrator(self.method)
        return block.integrator if is_one_step(block.integrator) else get_integrator("rk4")

    def backward_grid(self, block, integrator, steps: int, device):
        """(unique stage offsets per step, first row of each step, control-grid coordinates) of
        the backward solve, cached per grid.  Reversed step j covers t ∈ [T − (j+1)H, T − jH];
        its c = 0 stage sits at the right end, where piecewise-constant θ takes the left limit."""
        key = (block.control_grid, integrator.name, steps, str(device))
        if self._grid_cache.get("key") != key:
            H = block.T / steps
            offsets = [tuple(dict.fromkeys(integrator.stage_offsets(j))) for j in range(steps)]
            times, left, first = [], [], []
            for j, offs in enumerate(offsets):
                first.append(len(times))
                times.extend(block.T - (j + c) * H for c in offs)
                left.extend(c == 0 for c in offs)
            coords = block.control_grid.coordinates(times, left, device)
            self._grid_cache = {"key": key, "value": (offsets, first, coords)}
        return self._grid_cache["value"]

    def solve(self, block, state, steps):
        return apply_to_state(_AdjointSolve, block, state, self, steps)


class _AdjointSolve(torch.autograd.Function):
    """inputs: block, mode, steps, pair?, *state tensors, *control weights → final state tensors."""

    @staticmethod
    def forward(ctx, block, mode, steps, pair, *inputs):
        n_state = 2 if pair else 1
        state, weights = unflat(inputs[:n_state], pair), inputs[n_state:]
        f = block.rhs(*block.stage_weights(steps, device_of(state), weights))
        final = solve_steps(block.integrator, f, state, block.T / steps, steps)
        ctx.block, ctx.mode, ctx.steps, ctx.pair = block, mode, steps, pair
        ctx.save_for_backward(*inputs[:n_state], *flat(final), *weights)
        return flat(final)

    @staticmethod
    def backward(ctx, *grad_out):
        block, mode, pair = ctx.block, ctx.mode, ctx.pair
        n = len(grad_out)
        saved = ctx.saved_tensors
        y0, yT, weights = saved[:n], saved[n:2 * n], saved[2 * n:]
        dyn, integrator = block.dynamics, mode.backward_integrator(block)
        M = mode.steps or ctx.steps
        H = block.T / M
        device = yT[0].device

        offsets, first, coords = mode.backward_grid(block, integrator, M, device)
        thetas = block.control_grid.stage_thetas(weights, coords, eager=False)
        w_grads = [torch.zeros_like(w) for w in weights]

        def F(ys, theta):
            return flat(dyn(unflat(ys, pair), *theta))

        def augmented(j, c, aug):
            ys, a = aug[:n], aug[n:2 * n]
            row = offsets[j].index(c)
            with torch.enable_grad():
                y_in = [y.detach().requires_grad_() for y in ys]
                th = [t.detach().requires_grad_() for t in thetas[first[j] + row]]
                Fy = F(y_in, th)
                grads = torch.autograd.grad(Fy, y_in + th, a, allow_unused=True)
            grads = zeros_for_none(grads, y_in + th)
            local = []
            for w, g in zip(weights, grads[n:]):
                rows = w.new_zeros(len(offsets[j]), *w.shape[1:])
                rows[row] = g
                local.append(rows)
            # d/dσ with σ = T − t: dY/dσ = −F, da/dσ = (∂F/∂Y)ᵀa, d(∫aᵀ∂F/∂θ)/dσ = aᵀ∂F/∂θ
            return tuple(-v.detach() for v in Fy) + tuple(grads[:n]) + tuple(local)

        a = tuple(zeros_for_none(grad_out, yT))
        ys = tuple(yT)
        for j in range(M):
            local = tuple(w.new_zeros(len(offsets[j]), *w.shape[1:]) for w in weights)
            aug, _ = integrator.step(augmented, j, ys + a + local, H, None)
            ys, a = aug[:n], aug[n:2 * n]
            for row in range(len(offsets[j])):
                thetas.accumulate(w_grads, first[j] + row, [rows[row] for rows in aug[2 * n:]])
        mode.last_reconstruction_error = float(
            sum((y - x).pow(2).sum() for y, x in zip(ys, y0)).sqrt()
            / sum(x.pow(2).sum() for x in y0).sqrt().clamp_min(1e-300))
        return (None, None, None, None, *a, *w_grads)
