"""Newton-type optimizers for the network weights θ: Gauss–Newton–CG, Newton–CG, block coordinate descent.

All optimizers here minimize, per batch (x, labels),

    J(θ) = L(S(θ), labels) + Σ_groups wd/2 ‖θ_g‖² + R(θ),

where S are the class scores, L the mean loss (``cross_entropy`` or ``least_squares``), ``wd`` the
parameter groups' ``weight_decay`` (a true L2 term of the objective, with Hessian wd·I) and R an
optional ``penalty`` callable (e.g. the smoothness regularizer).  One call of ``step`` is one
inexact Newton iteration:

1. the objective and its gradient g on the full batch (one forward + one backward pass);
2. a curvature operator A on the batch or on a random subsample of it (Byrd et al. 2011):
   Gauss–Newton  A = Jᵀ H_L J + ∇²R + wd I (+ δI)   (:class:`GaussNewtonCG`), J = ∂S/∂θ, applied
   matrix-free: J v by double backward through a graph built once per step (or, with
   ``jvp_mode="forward"``, ``torch.func.jvp``) and Jᵀ u by a backward pass (``torch.func.vjp``);
   or the exact Hessian ∇²J (:class:`NewtonCG`) by double backward through the gradient's graph;
3. (preconditioned) CG on A p = −g to ‖Ap + g‖ ≤ ``cg_rtol``·‖g‖ or ``cg_max_iter`` products,
   stopped at the first direction of non-positive curvature (then the CG iterate so far, or the
   steepest-descent direction if that happens in the first iteration);
4. Armijo backtracking J(θ + t p) ≤ J(θ) + c₁ t gᵀp (+ 8 ulps of J(θ), so that steps at
   rounding level near a minimiser are not rejected; Hager & Zhang, SIAM J. Optim. 2005) from
   t = ``lr`` (1 is the full Newton step), halving up to ``max_backtracks`` times; if no step is
   accepted θ is left unchanged.

With a :class:`~stablenet.optim.varpro.VarPro` (``varpro=``) the optimizers work on the reduced
objective Φ(θ) of variable projection instead: every objective evaluation (including each trial
point of the line search) solves the inner problem for the classifier (W, μ), the gradient is the
reduced gradient (envelope theorem), and the curvature is that of the reduced problem, i.e. the
Schur complement of the joint (θ, Ŵ) curvature

    A_red = A_θθ − A_θŴ A_ŴŴ⁻¹ A_Ŵθ,

for Gauss–Newton Jθᵀ (M − M J_Ŵ K⁻¹ J_Ŵᵀ M) Jθ with M = H_L and K = J_ŴᵀMJ_Ŵ + Λ the inner
Hessian (the GNvpro matrix of Newman et al.), for Newton the exact reduced Hessian by implicit
differentiation of the inner optimality condition.  The classifier must then not be among the
optimized parameters.

Cost per step (F = one forward pass, B = one backward pass over the batch or subsample):
gradient F + B; line search one F per trial (+ one inner solve with VarPro); Gauss–Newton ≈ 3B
per CG iteration (a double backward for J v, a backward for Jᵀ u; forward mode: ≈ 2F + B) plus
F + B once per step for the graphs; Newton ≈ 2B per CG iteration (double backward) plus building
the graph of the gradient once (F + B, with ``create_graph``).  With sub-sampling all
per-CG-iteration costs scale with the subsample size.

References:
    J. Nocedal, S. Wright, "Numerical Optimization", 2nd ed., Springer 2006, ch. 7 (Newton–CG,
    negative curvature) and ch. 10 (Gauss–Newton).
    J. Martens, "Deep learning via Hessian-free optimization", ICML 2010.
    R. Byrd, G. Chin, W. Neveitt, J. Nocedal, "On the use of stochastic Hessian information in
    optimization methods for machine learning", SIAM J. Optim. 21 (2011).
    E. Haber, L. Ruthotto, "Stable architectures for deep neural networks", Inverse Problems 34
    (2018); Meganet's ``trnewton`` / ``dnnBatchObjFctn``.
    E. Newman, L. Ruthotto, J. Hart, B. van Bloemen Waanders, "Train like a (Var)Pro", SIAM J.
    Math. Data Sci. 3 (2021).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Callable, ClassVar, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .. import _checks
from ..block import ODEBlock
from ..gradients import require_autograd
from ..models import LOSSES, get_loss
from .cg import conjugate_gradient
from .curvature import JVP_MODES, Curvature, Penalty, flat, penalty_value, unflat
from .line_search import LineSearchResult, backtracking
from .varpro import InnerResult, VarPro


# -- results --------------------------------------------------------------------------------------
@dataclass
class QuadraticModel:
    """The local model of one step: value, gradient and curvature operator at the current θ.

    Attributes:
        value: the objective J(θ) (or Φ(θ) with VarPro) on the full batch.
        gradient: ∇J(θ) flattened in parameter order (see ``optimizer.parameters``).
        matvec: v ↦ A v (flat), the Gauss–Newton matrix or Hessian on ``sample``.
        scores: the class scores at θ on the full batch (detached; with VarPro those of (W*, μ*)).
        inner: the inner solve at θ (VarPro only).
        sample: indices of the curvature subsample, or ``None`` for the full batch.
    """

    value: float
    gradient: torch.Tensor
    matvec: Callable[[torch.Tensor], torch.Tensor]
    scores: torch.Tensor
    inner: InnerResult | None
    sample: torch.Tensor | None


@dataclass
class StepInfo:
    """What one ``step`` did (``optimizer.last``).

    Attributes:
        loss: objective before the step; loss_after: after it (equal if no step was taken).
        grad_norm: ‖∇J‖ before the step.
        cg_iterations, cg_residual, cg_converged, negative_curvature: from :class:`CGResult`.
        direction: ``"newton"`` (the CG solution), ``"steepest_descent"`` (fallback), or ``"none"``
            (gradient below ``grad_tol``: no step).
        step_length: the accepted t (0 if the line search failed or no step was taken).
        backtracks: step halvings in the line search; line_search_failed: no t was accepted.
        sample_size: points used for the curvature products.
        inner: VarPro's inner solve at the new θ (``None`` without VarPro).
        scores: class scores at the θ before the step (full batch, detached), e.g. for accuracy.
    """

    loss: float
    loss_after: float
    grad_norm: float
    cg_iterations: int
    cg_residual: float
    cg_converged: bool
    negative_curvature: bool
    direction: str
    step_length: float
    backtracks: int
    line_search_failed: bool
    sample_size: int
    inner: InnerResult | None = None
    scores: torch.Tensor | None = field(default=None, repr=False)


# -- helpers --------------------------------------------------------------------------------------
def network_parameters(model: nn.Module) -> list[nn.Parameter]:
    """All parameters of an ODEClassifier except the classifier (W, μ): the θ of VarPro."""
    ids = {id(p) for p in model.classifier.parameters()}
    return [p for p in model.parameters() if id(p) not in ids]


def check_twice_differentiable(model: nn.Module) -> None:
    """Refuse ODE blocks whose gradient mode has a non-differentiable backward.

    Gauss–Newton and Hessian products differentiate the backward pass again (double backward) or
    run forward-mode AD; the ``checkpoint``, ``reversible`` and ``adjoint`` gradient modes of
    :mod:`stablenet.gradients` are custom autograd functions without either, and would silently
    give zero or wrong curvature (:func:`stablenet.gradients.require_autograd`).  (First
    derivatives, i.e. VarPro's reduced gradient, are fine.)
    """
    for name, module in model.named_modules():
        if isinstance(module, ODEBlock):
            require_autograd(module.gradient, f"Newton-type optimizers need second derivatives through every "
                                              f"ODE block, but block {name!r} uses gradient={{gradient}} (its "
                                              f"backward is not differentiable); use gradient='autograd'")


def _check_samples(value) -> int | float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"hessian_samples must be None, an integer >= 1 or a fraction in (0, 1], got "
                        f"{value!r} ({type(value).__name__})")
    if isinstance(value, Integral):
        return _checks.positive_int("hessian_samples", value)
    if not (0 < value <= 1):
        raise ValueError(f"hessian_samples as a fraction must be in (0, 1], got {value!r}")
    return float(value)


# -- the optimizers -------------------------------------------------------------------------------
class NewtonTypeOptimizer(torch.optim.Optimizer):
    """Base of :class:`GaussNewtonCG` and :class:`NewtonCG` (see the module docstring for the method).

    Args:
        params: the tensors to optimize, or parameter groups (dicts with ``params`` and optionally
            ``weight_decay``/``lr``), as for ``torch.optim``.  All must be parameters of ``model``.
        model: the module whose ``forward(x)`` gives the class scores (an ODEClassifier with VarPro).
        loss: ``"cross_entropy"`` or ``"least_squares"``.
        lr: first trial step length of the line search (1 = full Newton step).  All groups must
            have the same lr when ``step`` runs (a scheduler scales them alike).
        weight_decay: default wd of the groups: the term wd/2‖θ‖² of the objective (not decoupled).
        varpro: a :class:`VarPro` for the same model: optimize the reduced objective Φ(θ); the
            classifier must then not be among ``params``.
        cg_rtol: CG stops at ‖A p + g‖ ≤ cg_rtol·‖g‖ ...
        cg_max_iter: ... or after cg_max_iter products.
        preconditioner: optional M ≈ A⁻¹, a function on flat vectors (SPD).
        damping: δ ≥ 0 added to the curvature (Levenberg–Marquardt).
        hessian_samples: ``None`` (curvature on the full batch), an integer k (a random subsample of
            k points per step) or a fraction in (0, 1] of the batch.
        seed: seed of the optimizer's own generator for the subsamples (in ``state_dict``).
        armijo: c₁ of the Armijo condition; backtrack: step factor (0, 1); max_backtracks.
        grad_tol: no step when ‖g‖ ≤ grad_tol.
        jvp_mode: how Gauss–Newton forms J v: ``"reverse"`` (double backward through a graph
            built once per step; default, faster on the CPU) or ``"forward"`` (``torch.func.jvp``,
            forward mode; less memory).  Newton–CG always uses double backward.

    Every ODE block of the model must use ``gradient="autograd"`` (the default): the curvature
    products differentiate the backward pass again (:func:`check_twice_differentiable`).

    Per batch, call ``loss = opt.step(x, labels, penalty=None)``; it returns J(θ) before the step
    (a detached tensor) and leaves a :class:`StepInfo` in ``opt.last``.  ``penalty`` is a
    zero-argument callable returning R(θ) as a scalar tensor computed (differentiably) from the
    model's current parameters, for instance ``lambda: alpha * smoothness(model)``; its gradient
    and Hessian-vector products come from autograd (double backward), so any twice-differentiable
    R works.  It must not call ``backward`` or change the model.
    """

    curvature: ClassVar[str] = ""

    def __init__(self, params, model: nn.Module, *, loss: str = "cross_entropy", lr: float = 1.0,
                 weight_decay: float = 0.0, varpro: VarPro | None = None, cg_rtol: float = 0.1,
                 cg_max_iter: int = 20, preconditioner: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 damping: float = 0.0, hessian_samples: int | float | None = None, seed: int = 0,
                 armijo: float = 1e-4, backtrack: float = 0.5, max_backtracks: int = 20,
                 grad_tol: float = 0.0, jvp_mode: str = "reverse"):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        check_twice_differentiable(model)
        _checks.positive_float("lr", lr)
        _checks.nonnegative_float("weight_decay", weight_decay)
        self.model = model
        self.loss = _checks.choice("loss", loss, LOSSES)
        self.loss_fn = get_loss(loss)
        if varpro is not None:
            if not isinstance(varpro, VarPro):
                raise TypeError(f"varpro must be a stablenet.optim.VarPro or None, got {type(varpro).__name__}")
            if varpro.model is not model:
                raise ValueError("varpro must be built for the same model as the optimizer (varpro.model is not model)")
            if varpro.loss != loss:
                raise ValueError(f"varpro.loss ({varpro.loss!r}) must equal the optimizer's loss ({loss!r})")
        self.varpro = varpro
        self.cg_rtol = _checks.positive_float("cg_rtol", cg_rtol)
        self.cg_max_iter = _checks.positive_int("cg_max_iter", cg_max_iter)
        if preconditioner is not None and not callable(preconditioner):
            raise TypeError(f"preconditioner must be callable or None, got {type(preconditioner).__name__}")
        self.preconditioner = preconditioner
        self.damping = _checks.nonnegative_float("damping", damping)
        self.hessian_samples = _check_samples(hessian_samples)
        if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        self.generator = torch.Generator().manual_seed(int(seed))
        self.armijo = _checks.positive_float("armijo", armijo)
        if self.armijo >= 0.5:
            raise ValueError(f"armijo must be in (0, 0.5), got {armijo!r}")
        self.backtrack = _checks.positive_float("backtrack", backtrack)
        if self.backtrack >= 1:
            raise ValueError(f"backtrack must be in (0, 1), got {backtrack!r}")
        self.max_backtracks = _checks.positive_int("max_backtracks", max_backtracks)
        self.grad_tol = _checks.nonnegative_float("grad_tol", grad_tol)
        self.jvp_mode = _checks.choice("jvp_mode", jvp_mode, JVP_MODES)
        self.steps = 0
        self.last: StepInfo | None = None
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay))

    def add_param_group(self, param_group: dict) -> None:
        """torch.optim's ``add_param_group``, checking that the tensors are parameters of the model
        (and, with VarPro, not the classifier's)."""
        names = {id(p): n for n, p in self.model.named_parameters()}
        classifier = ({id(p) for p in self.model.classifier.parameters()}
                      if hasattr(self.model, "classifier") else set())
        group = dict(param_group)
        params = group["params"]
        params = [params] if isinstance(params, torch.Tensor) else list(params)
        for p in params:
            if id(p) not in names:
                raise ValueError(f"params must be parameters of model; got a tensor of shape "
                                 f"{tuple(p.shape)} that model.named_parameters() does not hold")
            if self.varpro is not None and id(p) in classifier:
                raise ValueError(f"params must not contain the classifier weights when varpro is given "
                                 f"(VarPro eliminates them), got {names[id(p)]!r}; pass "
                                 f"network_parameters(model)")
        group["params"] = params
        super().add_param_group(group)
        for key in ("weight_decay", "lr"):
            check = _checks.nonnegative_float if key == "weight_decay" else _checks.positive_float
            check(key, self.param_groups[-1][key])

    # -- parameters ------------------------------------------------------------------------------
    @property
    def parameters(self) -> list[torch.Tensor]:
        """The optimized tensors, in the order of the flat vectors (groups in order)."""
        return [p for g in self.param_groups for p in g["params"]]

    def _unflat(self, v: torch.Tensor) -> list[torch.Tensor]:
        return unflat(v, self.parameters)

    def _decay_vector(self) -> torch.Tensor:
        return flat([torch.full_like(p, g["weight_decay"]) for g in self.param_groups for p in g["params"]])

    def _decay(self, tensors: Sequence[torch.Tensor]) -> torch.Tensor | float:
        total: torch.Tensor | float = 0.0
        k = 0
        for g in self.param_groups:
            for _ in g["params"]:
                if g["weight_decay"]:
                    total = total + 0.5 * g["weight_decay"] * tensors[k].pow(2).sum()
                k += 1
        return total

    # -- objective --------------------------------------------------------------------------------
    def _check_batch(self, x: torch.Tensor, labels: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() < 1 or len(x) == 0:
            raise ValueError(f"x must be a non-empty tensor (batch, features), got {type(x).__name__}")
        if not isinstance(labels, torch.Tensor) or labels.dtype != torch.long or labels.shape != x.shape[:1]:
            raise ValueError(f"labels must be an int64 tensor of shape ({len(x)},), got "
                             f"{getattr(labels, 'dtype', type(labels).__name__)} {tuple(getattr(labels, 'shape', ()))}")

    def _evaluate(self, x, labels, penalty, init=None) -> float:
        """J(θ) (Φ(θ) with VarPro, re-solving the inner problem) at the current parameters."""
        with torch.no_grad():
            if self.varpro is not None:
                features = self.model.features(x)
                inner = self.varpro.solve_inner(features, labels, init=init)
                data = self.varpro.reduced_value(features, labels, inner)
            else:
                data = self.loss_fn(self.model(x), labels)
            return float(data + self._decay(self.parameters) + penalty_value(penalty))

    def _sample(self, n: int) -> torch.Tensor | None:
        k = self.hessian_samples
        if k is None:
            return None
        size = min(n, k) if isinstance(k, int) else max(1, math.ceil(k * n))
        if size >= n:
            return None
        return torch.randperm(n, generator=self.generator)[:size]

    def quadratic_model(self, x: torch.Tensor, labels: torch.Tensor, penalty: Penalty | None = None,
                        sample: torch.Tensor | None = None) -> QuadraticModel:
        """Value, gradient (full batch) and curvature operator (on ``sample``) at the current θ.

        With VarPro this solves the inner problem first (and writes (W*, μ*) into the classifier).
        The returned ``matvec`` is valid until the parameters change.
        """
        self._check_batch(x, labels)
        check_twice_differentiable(self.model)
        params = self.parameters
        hessian_full = self.curvature == "hessian" and sample is None and self.varpro is None
        with torch.enable_grad():
            inner = None
            if self.varpro is not None:
                features = self.model.features(x)
                inner = self.varpro.solve_inner(features, labels)
                data = self.varpro.reduced_value(features, labels, inner)
                scores = F.linear(features.detach(), inner.weight, inner.bias)
            else:
                out = self.model(x)
                data = self.loss_fn(out, labels)
                scores = out.detach()
            value = data + self._decay(params) + penalty_value(penalty)
            grads = torch.autograd.grad(value, params, create_graph=hessian_full, allow_unused=True,
                                        materialize_grads=True)
        gradient = flat([g.detach() for g in grads])
        xs, ys = (x, labels) if sample is None else (x[sample.to(x.device)], labels[sample.to(labels.device)])
        matvec = self._curvature_product(xs, ys, inner, penalty, grads if hessian_full else None)
        return QuadraticModel(float(value.detach()), gradient, matvec, scores, inner, sample)

    def _curvature_product(self, xs, ys, inner, penalty, grads):
        """v ↦ A v on the (sub)sample (xs, ys): Gauss–Newton with the regularizers' curvature, or the
        Hessian (``grads``: the full-batch gradient's graph, reused when the sample is the batch)."""
        curvature = Curvature(self.model, self.parameters, loss=self.loss, varpro=self.varpro,
                              jvp_mode=self.jvp_mode, decay=self._decay, penalty=penalty)
        if self.curvature == "gauss_newton":
            return curvature.regularized(curvature.gauss_newton(xs, inner), self._decay_vector(), self.damping)
        matvec = curvature.hessian(xs, ys, inner, grads)
        if not self.damping:
            return matvec
        return lambda v: matvec(v) + self.damping * v

    # -- the step ---------------------------------------------------------------------------------
    def _common_lr(self) -> float:
        lrs = {g["lr"] for g in self.param_groups}
        if len(lrs) != 1:
            raise ValueError(f"all parameter groups must have the same lr (the line search's first trial "
                             f"step), got {sorted(lrs)}")
        return _checks.positive_float("lr", lrs.pop())

    def step(self, x: torch.Tensor, labels: torch.Tensor,  # type: ignore[override]
             penalty: Penalty | None = None) -> torch.Tensor:
        """One inexact Newton step on the batch (x, labels); returns the objective before the step.

        See the class docstring.  Afterwards ``self.last`` (a :class:`StepInfo`) holds the CG
        iterations, the step length, the line-search record and the scores; with VarPro the
        classifier holds (W*, μ*) of the new θ.
        """
        lr = self._common_lr()
        self._check_batch(x, labels)
        sample = self._sample(len(x))
        qm = self.quadratic_model(x, labels, penalty, sample)
        g = qm.gradient
        gnorm = float(torch.linalg.vector_norm(g))
        f0 = qm.value
        sample_size = len(x) if sample is None else len(sample)
        self.steps += 1
        if not math.isfinite(f0) or gnorm <= self.grad_tol:
            self.last = StepInfo(f0, f0, gnorm, 0, 0.0, True, False, "none", 0.0, 0, False, sample_size,
                                 qm.inner, qm.scores)
            return torch.tensor(f0, dtype=g.dtype)

        cg = conjugate_gradient(qm.matvec, -g, rtol=self.cg_rtol, max_iter=self.cg_max_iter,
                                preconditioner=self.preconditioner)
        direction, kind = cg.x, "newton"
        slope = float(torch.dot(g, direction))
        if not slope < 0 or not math.isfinite(slope):
            direction, kind, slope = -g, "steepest_descent", -gnorm ** 2
        search, inner = self._line_search(x, labels, penalty, qm, direction, slope, lr)
        self.last = StepInfo(f0, search.value, gnorm, cg.iterations, cg.relative_residual, cg.converged,
                             cg.negative_curvature, kind, search.step, search.backtracks, not search.accepted,
                             sample_size, inner, qm.scores)
        return torch.tensor(f0, dtype=g.dtype)

    def _line_search(self, x, labels, penalty, qm: QuadraticModel, direction: torch.Tensor, slope: float,
                     lr: float) -> tuple[LineSearchResult, InnerResult | None]:
        """Armijo backtracking θ + t·direction from t = lr; θ (and VarPro's classifier) are restored
        when no t is accepted.  Returns the search and VarPro's inner solve at the new θ."""
        params = self.parameters
        theta0 = [p.detach().clone() for p in params]
        init = None if qm.inner is None else (qm.inner.weight, qm.inner.bias)
        steps = self._unflat(direction)

        def trial(t):
            with torch.no_grad():
                for p, p0, d in zip(params, theta0, steps):
                    p.copy_(p0 + t * d)
            return self._evaluate(x, labels, penalty, init=init), None

        # Near a minimiser J changes by less than its rounding error: accept a trial point whose
        # value is within a few ulps of J(θ) + c₁ t gᵀp (Hager & Zhang's approximate Armijo test).
        rounding = 8 * torch.finfo(qm.gradient.dtype).eps * abs(qm.value)
        search = backtracking(trial, qm.value, slope, step=lr, c1=self.armijo, factor=self.backtrack,
                              max_backtracks=self.max_backtracks, tolerance=rounding)
        inner = self.varpro.last if self.varpro is not None else None
        if not search.accepted:
            with torch.no_grad():
                for p, p0 in zip(params, theta0):
                    p.copy_(p0)
                if self.varpro is not None:
                    self.model.classifier.weight.copy_(qm.inner.weight)
                    self.model.classifier.bias.copy_(qm.inner.bias)
                    self.varpro.last = inner = qm.inner
        return search, inner

    # -- checkpoints ------------------------------------------------------------------------------
    def state_dict(self):
        """torch.optim's state dict plus ``"newton"``: the step count and the subsample generator."""
        state = super().state_dict()
        state["newton"] = {"steps": self.steps, "generator": self.generator.get_state()}
        return state

    def load_state_dict(self, state_dict) -> None:
        state_dict = dict(state_dict)
        extra = state_dict.pop("newton", None)
        super().load_state_dict(state_dict)
        if extra is not None:
            self.steps = int(extra["steps"])
            self.generator.set_state(extra["generator"])


class GaussNewtonCG(NewtonTypeOptimizer):
    """Gauss–Newton–Krylov: A = Jᵀ H_L J + wd·I + ∇²R (+ δI), applied matrix-free, solved by CG.

    A is positive semidefinite (positive definite with wd > 0 or δ > 0), so CG gives a descent
    direction.  Each product costs one J v (a double backward, or a forward-mode ``torch.func.jvp``
    with ``jvp_mode="forward"``) and one Jᵀ u (a backward pass); the graphs are built once per step.
    With ``varpro`` the GNvpro matrix of the reduced problem is used (module docstring).
    All arguments: :class:`NewtonTypeOptimizer`.
    """

    curvature = "gauss_newton"


class NewtonCG(NewtonTypeOptimizer):
    """Newton–CG (Hessian-free Newton) with exact Hessian-vector products by double backward.

    The Hessian of a network objective is indefinite away from minima; CG stops at the first
    direction of non-positive curvature (``last.negative_curvature``) and returns the iterate so
    far, or steepest descent if it happens at once.  Each product costs about two backward passes
    through the graph of the gradient, which is built once per step.  With ``varpro`` the products
    are with the exact reduced Hessian ∇²Φ = H_θθ − H_θŴ H_ŴŴ⁻¹ H_Ŵθ (implicit differentiation of
    ∇_Ŵψ = 0; two double-backward passes and one inner Hessian solve per product).  All arguments:
    :class:`NewtonTypeOptimizer`.
    """

    curvature = "hessian"
