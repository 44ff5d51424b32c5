"""Matrix-free curvature products of a network objective: Gauss–Newton and Hessian times a vector.

For the objective of :mod:`stablenet.optim.newton`, J(θ) = L(S(θ), labels) + Σ wd/2‖θ_g‖² + R(θ)
(or VarPro's reduced Φ(θ)), on flat θ-vectors:

* Gauss–Newton  A v = Jᵀ H_L J v (+ wd·v + ∇²R v + δ v): J v by double backward through a graph
  built once (or, ``jvp_mode="forward"``, ``torch.func.jvp``), Jᵀ u by a backward pass
  (``torch.func.vjp``); with VarPro the GNvpro matrix Jθᵀ (M − M J_Ŵ K⁻¹ J_ŴᵀM) Jθ;
* Hessian  ∇²J v by double backward through the gradient's graph; with VarPro the exact reduced
  Hessian H_θθ − H_θŴ H_ŴŴ⁻¹ H_Ŵθ (implicit differentiation of the inner optimality condition).

Every product is valid until the parameters change.  Costs: docs/optimizers.md.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, jvp, vjp

from ..models import get_loss
from .varpro import InnerResult, VarPro, score_hessian

Penalty = Callable[[], torch.Tensor]
Matvec = Callable[[torch.Tensor], torch.Tensor]
JVP_MODES = ("reverse", "forward")


def flat(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Tensors concatenated into one flat vector (in order)."""
    return torch.cat([t.reshape(-1) for t in tensors])


def unflat(v: torch.Tensor, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """A flat vector cut into views shaped like the tensors of ``like`` (inverse of :func:`flat`)."""
    out, start = [], 0
    for p in like:
        out.append(v[start:start + p.numel()].view_as(p))
        start += p.numel()
    return out


def penalty_value(penalty: Penalty | None) -> torch.Tensor | float:
    """R(θ) from the ``penalty`` callable as a scalar tensor (0.0 without one)."""
    if penalty is None:
        return 0.0
    value = penalty()
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        raise TypeError(f"penalty must return a scalar tensor, got {type(value).__name__}")
    return value.reshape(())


class _Call(nn.Module):
    """Runs a zero-argument function with the wrapped model's parameters substituted (functional_call)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, fn):
        return fn()


def _double_backward(grads, params, live, vs):
    """Σ_k ∂(grads[k]·vs[k])/∂params over the ``live`` k, through the retained graph of ``grads``."""
    return torch.autograd.grad([grads[k] for k in live], params, [vs[k] for k in live],
                               retain_graph=True, allow_unused=True, materialize_grads=True)


class Curvature:
    """The curvature products of the objective at the current parameters.

    Args:
        model: the network (an ODEClassifier with ``varpro``).
        params: the optimized tensors, in the order of the flat vectors.
        loss: ``"cross_entropy"`` or ``"least_squares"``.
        varpro: a :class:`VarPro` for the reduced problem, or ``None``.
        jvp_mode: ``"reverse"`` (double backward) or ``"forward"`` (``torch.func.jvp``) for J v.
        decay: θ ↦ Σ wd/2‖θ_g‖² on a list of tensors shaped like ``params``.
        penalty: R(θ) as a zero-argument callable, or ``None``.
    """

    def __init__(self, model: nn.Module, params: Sequence[torch.Tensor], *, loss: str, varpro: VarPro | None,
                 jvp_mode: str, decay: Callable[[Sequence[torch.Tensor]], torch.Tensor | float],
                 penalty: Penalty | None):
        self.model, self.params = model, list(params)
        self.loss, self.loss_fn = loss, get_loss(loss)
        self.varpro, self.jvp_mode = varpro, jvp_mode
        self.decay, self.penalty = decay, penalty

    def unflat(self, v: torch.Tensor) -> list[torch.Tensor]:
        return unflat(v, self.params)

    def functional(self, fn: Callable[[], object]) -> Callable[..., object]:
        """θ ↦ fn() with the optimized parameters replaced by θ (``torch.func.functional_call``)."""
        names = {id(p): n for n, p in self.model.named_parameters()}
        keys = ["model." + names[id(p)] for p in self.params]
        caller = _Call(self.model)

        def call(*theta):
            return functional_call(caller, dict(zip(keys, theta)), (fn,))

        return call

    def jacobian_products(self, fn: Callable[[], torch.Tensor]):
        """(output, v ↦ J v, u ↦ Jᵀ u) of θ ↦ fn() at the current θ, on flat θ-vectors.

        ``jvp_mode="reverse"``: the graph of the output and of Jᵀu (u a dummy leaf) is built once;
        J v = ∂(Jᵀu · v)/∂u is a double backward, Jᵀ u a backward through the retained graph.
        ``"forward"``: ``torch.func.jvp`` (forward mode, re-running fn with dual numbers) and a
        ``torch.func.vjp`` pullback; less memory, but slower on the CPU (docs/optimizers.md).
        """
        params = self.params
        if self.jvp_mode == "forward":
            theta = tuple(p.detach() for p in params)
            f = self.functional(fn)
            with torch.no_grad():
                out, pullback = vjp(f, *theta)

            def jmul(v):
                with torch.no_grad():
                    return jvp(f, theta, tuple(self.unflat(v)))[1]

            def jtmul(u):
                with torch.no_grad():
                    return flat(pullback(u))

            return out.detach(), jmul, jtmul

        with torch.enable_grad():
            out = fn()
            dummy = torch.zeros_like(out, requires_grad=True)
            jtu = torch.autograd.grad(out, params, dummy, create_graph=True, allow_unused=True,
                                      materialize_grads=True)
        live = [k for k, g in enumerate(jtu) if g.requires_grad]

        def jmul(v):
            if not live:
                return torch.zeros_like(out)
            return _double_backward(jtu, dummy, live, self.unflat(v))[0]

        def jtmul(u):
            return flat(torch.autograd.grad(out, params, u, retain_graph=True, allow_unused=True,
                                            materialize_grads=True))

        return out.detach(), jmul, jtmul

    def gauss_newton(self, xs: torch.Tensor, inner: InnerResult | None) -> Matvec:
        """v ↦ Jᵀ H_L J v (plain) or Jθᵀ (M − M J_Ŵ K⁻¹ J_ŴᵀM) Jθ v (VarPro), matrix-free."""
        model = self.model
        if self.varpro is None:
            out, jmul, jtmul = self.jacobian_products(lambda: model(xs))
            apply_h = score_hessian(self.loss, out)
            return lambda v: jtmul(apply_h(jmul(v)))

        vp = self.varpro
        W, b = inner.weight, inner.bias
        Y, jmul, jtmul = self.jacobian_products(lambda: model.features(xs))
        Z = vp.augment(Y)
        apply_h = score_hessian(self.loss, F.linear(Y, W, b))
        solve = vp.hessian_solver(Y, W, b)

        def matvec(v):
            w = apply_h(jmul(v) @ W.T)                                # M Jθ v           (n, c)
            q = solve(w.T @ Z)                                        # K⁻¹ J_Ŵᵀ M Jθ v  (c, d+1)
            r = w - apply_h(Z @ q.T)
            return jtmul(r @ W)                                       # Jθᵀ r = J_Yᵀ (r W)

        return matvec

    def hessian(self, xs: torch.Tensor, ys: torch.Tensor, inner: InnerResult | None, grads=None) -> Matvec:
        """v ↦ ∇²J v (plain) or the reduced Hessian ∇²Φ v (VarPro), by double backward.

        ``grads``: the objective's gradient on (xs, ys) built with ``create_graph`` (plain only;
        computed here if ``None``)."""
        params = self.params
        if self.varpro is None:
            if grads is None:
                with torch.enable_grad():
                    value = self.loss_fn(self.model(xs), ys) + self.decay(params) + penalty_value(self.penalty)
                    grads = torch.autograd.grad(value, params, create_graph=True, allow_unused=True,
                                                materialize_grads=True)
            live = [k for k, g in enumerate(grads) if g.requires_grad]
            return lambda v: flat(_double_backward(grads, params, live, self.unflat(v)))
        return self._reduced_hessian(xs, ys, inner)

    def _reduced_hessian(self, xs: torch.Tensor, ys: torch.Tensor, inner: InnerResult) -> Matvec:
        """v ↦ (H_θθ − H_θŴ H_ŴŴ⁻¹ H_Ŵθ) v at (θ, Ŵ*) (VarPro)."""
        params, vp = self.params, self.varpro
        W = inner.weight.clone().requires_grad_(True)
        b = inner.bias.clone().requires_grad_(True)
        with torch.enable_grad():
            features = self.model.features(xs)
            value = (self.loss_fn(F.linear(features, W, b), ys) + vp.classifier_penalty(W, b)
                     + self.decay(params) + penalty_value(self.penalty))
            grads = torch.autograd.grad(value, [*params, W, b], create_graph=True, allow_unused=True,
                                        materialize_grads=True)
        g_theta, g_w, g_b = grads[:len(params)], grads[-2], grads[-1]
        live = [k for k, g in enumerate(g_theta) if g.requires_grad]
        solve = vp.hessian_solver(features.detach(), inner.weight, inner.bias)

        def matvec(v):
            # H (v, 0) = (H_θθ v, H_Ŵθ v)
            h1 = _double_backward(g_theta, [*params, W, b], live, self.unflat(v))
            h_wtheta = torch.cat([h1[-2], h1[-1][:, None]], 1)
            dw = -solve(h_wtheta)                                      # δŴ = −H_ŴŴ⁻¹ H_Ŵθ v
            h2 = torch.autograd.grad([g_w, g_b], params, [dw[:, :-1], dw[:, -1]],
                                     retain_graph=True, allow_unused=True, materialize_grads=True)
            return flat(h1[:len(params)]) + flat(h2)                  # H_θθ v + H_θŴ δŴ

        return matvec

    def regularized(self, matvec: Matvec, decay: torch.Tensor, damping: float) -> Matvec:
        """``matvec`` plus wd·v (``decay``: wd per entry, flat), ∇²R·v (double backward through R's
        gradient, built once) and δ·v (``damping``)."""
        penalty_hvp = None
        if self.penalty is not None:
            params = self.params
            with torch.enable_grad():
                grads = torch.autograd.grad(penalty_value(self.penalty), params, create_graph=True,
                                            allow_unused=True, materialize_grads=True)
            live = [k for k, g in enumerate(grads) if g.requires_grad]
            if live:
                def penalty_hvp(v):
                    return flat(_double_backward(grads, params, live, self.unflat(v)))

        def apply(v):
            out = matvec(v) + decay * v
            if penalty_hvp is not None:
                out = out + penalty_hvp(v)
            return out + damping * v if damping else out

        return apply
