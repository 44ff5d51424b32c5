"""Variable projection (VarPro): eliminate the linear classifier (W, μ) by an inner Newton solve.

The class scores of an :class:`~stablenet.models.ODEClassifier` are affine in the classifier,
``S = Y_N(θ) Wᵀ + μ``, so for fixed network weights θ the classifier problem

    min_{W, μ}  ψ(W, μ) = L(Y Wᵀ + μ, labels) + λ/2 ‖W‖² + λ_μ/2 ‖μ‖²                  (inner)

is convex (a generalized linear model) and, for λ, λ_μ > 0, strongly convex.  VarPro replaces the
joint problem in (θ, W, μ) by the *reduced* problem in θ alone,

    Φ(θ) = L(Y(θ) W*(θ)ᵀ + μ*(θ)) + λ/2 ‖W*‖² + λ_μ/2 ‖μ*‖²,    (W*, μ*)(θ) = argmin ψ,

and, because (W*, μ*) is a minimizer, ∇Φ(θ) = ∂_θ L(θ, W*, μ*) with (W*, μ*) held fixed (the
envelope theorem): no derivative of the inner solution is ever needed for the gradient.

Notation: Z = [Y, 1] ∈ R^{n×(d+1)} (features with a column of ones), Ŵ = [W, μ] ∈ R^{c×(d+1)},
S = Z Ŵᵀ.  For the mean softmax cross-entropy with probabilities P = softmax(S),

    ∇ψ = (P − E)ᵀ Z / n + Λ ⊙ Ŵ,
    ∇²ψ = (1/n) Σ_i (diag(p_i) − p_i p_iᵀ) ⊗ z_i z_iᵀ + diag(Λ),

a (c(d+1))² matrix (E the one-hot labels, Λ the per-column regularization).  For the least-squares
loss ½‖S − E‖² / n the Hessian is I_c ⊗ ZᵀZ / n + diag(Λ) and Newton converges in one step.

Cost of the inner solve, per Newton iteration: forming the dense Hessian costs O(n c² (d+1)²) and
its Cholesky factorization O(c³ (d+1)³); with ``hessian="cg"`` each Hessian-vector product costs
O(n c (d+1)) and nothing of size (c(d+1))² is stored.  Both are negligible next to one forward
pass of the network for the widths stablenet uses; warm starts from the previous outer iteration
typically leave 1–3 Newton iterations.

References:
    G. Golub, V. Pereyra, "The differentiation of pseudo-inverses and nonlinear least squares
    problems whose variables separate", SIAM J. Numer. Anal. 10 (1973).
    E. Newman, L. Ruthotto, J. Hart, B. van Bloemen Waanders, "Train like a (Var)Pro: efficient
    training of neural networks with variable projection", SIAM J. Math. Data Sci. 3 (2021),
    arXiv:2007.13171.
    Meganet (L. Ruthotto, E. Haber): ``dnnVarProObjFctn``.
    J. Nocedal, S. Wright, "Numerical Optimization", 2nd ed., Springer 2006 (Newton, Armijo).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .. import _checks
from ..models import LOSSES, ODEClassifier, get_loss
from .cg import conjugate_gradient
from .line_search import backtracking

HESSIAN_MODES = ("auto", "dense", "cg")
#: ``hessian="auto"`` forms the dense inner Hessian up to this many unknowns c·(d+1), else uses CG.
DENSE_LIMIT = 2048


# -- the loss in score space ----------------------------------------------------------------------
def _onehot(labels: torch.Tensor, n_classes: int, dtype) -> torch.Tensor:
    return F.one_hot(labels, n_classes).to(dtype)


def score_gradient(loss: str, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """∂L/∂S of the mean loss: (softmax(S) − E)/n (cross-entropy) or (S − E)/n (least squares)."""
    target = _onehot(labels, scores.shape[-1], scores.dtype)
    if loss == "cross_entropy":
        return (torch.softmax(scores, -1) - target) / scores.shape[0]
    return (scores - target) / scores.shape[0]


def score_hessian(loss: str, scores: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """U ↦ ∇²_S L · U for the mean loss, U of the shape of the scores (n, c).  Cost O(n c).

    Cross-entropy: row i is (diag(p_i) − p_i p_iᵀ) u_i / n (positive semidefinite); least squares:
    U / n.  This is the H_L of the Gauss–Newton matrix Jᵀ H_L J.
    """
    n = scores.shape[0]
    if loss == "cross_entropy":
        p = torch.softmax(scores.detach(), -1)

        def apply(u: torch.Tensor) -> torch.Tensor:
            pu = p * u
            return (pu - p * pu.sum(-1, keepdim=True)) / n

        return apply
    return lambda u: u / n


# -- results --------------------------------------------------------------------------------------
@dataclass
class InnerResult:
    """Outcome of one inner solve (see :meth:`VarPro.solve_inner`).

    Attributes:
        weight, bias: the solution W* (c, d) and μ* (c,), detached.
        value: ψ(W*, μ*), the inner objective (loss + classifier regularization).
        loss: the data loss L alone at (W*, μ*).
        grad_norm: ‖∇ψ(W*, μ*)‖ (Euclidean norm over all c(d+1) unknowns).
        initial_grad_norm: ‖∇ψ‖ at the starting point.
        iterations: Newton iterations taken (0: the start already met the tolerance).
        backtracks: total Armijo step halvings over all iterations.
        converged: whether grad_norm ≤ the tolerance.
        reason: ``"tolerance"``, ``"max_iter"`` or ``"line_search"`` (no decrease possible, which in
            floating point means the gradient is at round-off level).
    """

    weight: torch.Tensor
    bias: torch.Tensor
    value: float
    loss: float
    grad_norm: float
    initial_grad_norm: float
    iterations: int
    backtracks: int
    converged: bool
    reason: str


def _default_tol(dtype: torch.dtype) -> float:
    return 1e-10 if dtype == torch.float64 else 1e-5


# -- VarPro ---------------------------------------------------------------------------------------
class VarPro:
    """Variable projection for an :class:`~stablenet.models.ODEClassifier`.

    Args:
        model: the classifier network; its ``classifier`` (an ``nn.Linear`` holding W and μ) is the
            linear block that gets eliminated.  The solution of every inner solve is written into
            it (in place), so ``model(x)`` always uses the latest (W*, μ*).
        loss: ``"cross_entropy"`` or ``"least_squares"`` (as :func:`stablenet.models.get_loss`).
        regularization: λ ≥ 0 of the Tikhonov term λ/2‖W‖².  Must be > 0 for cross-entropy: on
            separable data the unregularized inner problem has no minimizer.  This plays the role
            of the trainer's ``classifier_weight_decay``.
        bias_regularization: λ_μ ≥ 0 for λ_μ/2‖μ‖²; ``None`` means the same as ``regularization``
            (the trainer's classifier weight decay also acts on μ).
        max_iter: maximum Newton iterations per inner solve.
        tol: stop when ‖∇ψ‖ ≤ tol.  ``None``: 1e-10 in float64, 1e-5 otherwise.
        warm_start: start from the classifier's current (W, μ) (the previous outer iterate's
            solution); otherwise from zero.
        hessian: ``"dense"`` (form ∇²ψ and use a Cholesky factorization), ``"cg"`` (matrix-free
            Hessian-vector products and CG with forcing term min(0.1, ‖∇ψ‖)) or ``"auto"`` (dense
            up to :data:`DENSE_LIMIT` unknowns).
        armijo: sufficient-decrease constant c₁ of the backtracking line search.
        max_backtracks: step halvings before the line search gives up.

    Inspect ``varpro.last`` (an :class:`InnerResult`) after a solve.
    """

    def __init__(self, model: ODEClassifier, loss: str = "cross_entropy", *, regularization: float = 1e-3,
                 bias_regularization: float | None = None, max_iter: int = 50, tol: float | None = None,
                 warm_start: bool = True, hessian: str = "auto", armijo: float = 1e-4,
                 max_backtracks: int = 40):
        if not isinstance(model, ODEClassifier):
            raise TypeError(f"model must be a stablenet ODEClassifier, got {type(model).__name__}")
        self.model = model
        self.loss = _checks.choice("loss", loss, LOSSES)
        self.loss_fn = get_loss(loss)
        self.regularization = _checks.nonnegative_float("regularization", regularization)
        self.bias_regularization = (self.regularization if bias_regularization is None else
                                    _checks.nonnegative_float("bias_regularization", bias_regularization))
        if loss == "cross_entropy" and self.regularization == 0:
            raise ValueError("regularization must be > 0 for loss='cross_entropy' (without it the inner "
                             "problem has no minimizer on separable data), got 0.0")
        self.max_iter = _checks.positive_int("max_iter", max_iter)
        self.tol = None if tol is None else _checks.positive_float("tol", tol)
        if not isinstance(warm_start, bool):
            raise TypeError(f"warm_start must be a bool, got {warm_start!r} ({type(warm_start).__name__})")
        self.warm_start = warm_start
        self.hessian = _checks.choice("hessian", hessian, HESSIAN_MODES)
        self.armijo = _checks.positive_float("armijo", armijo)
        if self.armijo >= 0.5:
            raise ValueError(f"armijo must be in (0, 0.5), got {armijo!r}")
        self.max_backtracks = _checks.positive_int("max_backtracks", max_backtracks)
        self.last: InnerResult | None = None

    # -- sizes and the regularization -----------------------------------------------------------
    @property
    def n_classes(self) -> int:
        """Number of classes: the classifier's output size."""
        return self.model.classifier.out_features

    @property
    def n_features(self) -> int:
        """Width of the features the classifier takes: its input size."""
        return self.model.classifier.in_features

    def _dense(self) -> bool:
        if self.hessian == "auto":
            return self.n_classes * (self.n_features + 1) <= DENSE_LIMIT
        return self.hessian == "dense"

    def _lam(self, like: torch.Tensor) -> torch.Tensor:
        """Λ as a (1, d+1) row: λ on the W columns, λ_μ on the bias column."""
        lam = like.new_full((1, self.n_features + 1), self.regularization)
        lam[0, -1] = self.bias_regularization
        return lam

    def _check_features(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        _checks.finite_state("features", features, self.n_features)
        if features.dim() != 2:
            raise ValueError(f"features must be (batch, {self.n_features}), got shape {tuple(features.shape)}")
        if not isinstance(labels, torch.Tensor) or labels.dtype != torch.long or labels.shape != features.shape[:1]:
            raise ValueError(f"labels must be an int64 tensor of shape ({features.shape[0]},), got "
                             f"{getattr(labels, 'dtype', type(labels).__name__)} {tuple(getattr(labels, 'shape', ()))}")
        if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= self.n_classes):
            raise ValueError(f"labels must lie in [0, {self.n_classes - 1}], got values in "
                             f"[{int(labels.min())}, {int(labels.max())}]")

    # -- the inner objective and its derivatives (Ŵ = [W, μ], Z = [Y, 1]) -------------------------
    @staticmethod
    def augment(features: torch.Tensor) -> torch.Tensor:
        """Z = [Y, 1] (n, d+1)."""
        return torch.cat([features, features.new_ones(features.shape[0], 1)], 1)

    def inner_value(self, Z: torch.Tensor, labels: torch.Tensor, What: torch.Tensor) -> tuple[float, float]:
        """(ψ(Ŵ), L(Ŵ)): inner objective and data loss."""
        loss = float(self.loss_fn(Z @ What.T, labels))
        return loss + 0.5 * float((self._lam(What) * What.pow(2)).sum()), loss

    def inner_gradient(self, Z: torch.Tensor, labels: torch.Tensor, What: torch.Tensor) -> torch.Tensor:
        """∇ψ(Ŵ) = (∂L/∂S)ᵀ Z + Λ ⊙ Ŵ, shape (c, d+1).  Cost O(n c (d+1))."""
        return score_gradient(self.loss, Z @ What.T, labels).T @ Z + self._lam(What) * What

    def inner_hessian(self, Z: torch.Tensor, What: torch.Tensor) -> torch.Tensor:
        """The dense ∇²ψ(Ŵ), (c(d+1), c(d+1)), row-major vec of Ŵ.  Cost O(n c² (d+1)²)."""
        n, m = Z.shape
        c = self.n_classes
        lam = self._lam(What).expand(c, m).reshape(-1)
        if self.loss == "least_squares":
            H = torch.kron(torch.eye(c, dtype=Z.dtype, device=Z.device), Z.T @ Z / n)
        else:
            P = torch.softmax(Z @ What.T, -1)                                   # (n, c)
            PZ = (P[:, :, None] * Z[:, None, :]).reshape(n, c * m)              # rows p_i ⊗ z_i
            H = -(PZ.T @ PZ)
            diag_blocks = torch.einsum("ia,ij,ik->ajk", P, Z, Z)                  # Zᵀ diag(P_a) Z
            H = H.reshape(c, m, c, m)
            idx = torch.arange(c, device=Z.device)
            H[idx, :, idx, :] += diag_blocks
            H = H.reshape(c * m, c * m) / n
        return H + torch.diag(lam)

    def inner_hessian_matvec(self, Z: torch.Tensor, What: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """V ↦ ∇²ψ(Ŵ) V for V of shape (c, d+1), matrix-free.  Cost O(n c (d+1)) per product."""
        apply_h = score_hessian(self.loss, Z @ What.T)
        lam = self._lam(What)
        return lambda V: apply_h(Z @ V.T).T @ Z + lam * V

    def hessian_solver(self, features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                       *, rtol: float | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
        """A function s ↦ ∇²ψ⁻¹ s for right-hand sides s of shape (c, d+1), at (W, μ) on ``features``.

        Dense mode factorizes once (Cholesky, O(c³(d+1)³)) and then costs O(c²(d+1)²) per solve; CG
        mode costs O(n c (d+1)) per CG iteration, to ``rtol`` (default max(1e-12, 10·ε) for the
        dtype's ε).  Used by the Gauss–Newton and Newton products of
        the reduced problem (:mod:`stablenet.optim.curvature`).
        """
        Z = self.augment(features.detach())
        What = torch.cat([weight, bias[:, None]], 1).detach()
        shape = What.shape
        if self._dense():
            L = self._cholesky(self.inner_hessian(Z, What))
            return lambda s: torch.cholesky_solve(s.reshape(-1, 1), L).reshape(shape)
        matvec = self.inner_hessian_matvec(Z, What)
        max_iter = 10 * What.numel()
        if rtol is None:
            rtol = max(1e-12, 10 * torch.finfo(Z.dtype).eps)
        return lambda s: conjugate_gradient(lambda v: matvec(v.reshape(shape)).reshape(-1), s.reshape(-1),
                                            rtol=rtol, max_iter=max_iter).x.reshape(shape)

    @staticmethod
    def _cholesky(H: torch.Tensor) -> torch.Tensor:
        """Cholesky factor of H, adding the smallest shift 10^k·ε·max|diag| that makes it succeed."""
        L, info = torch.linalg.cholesky_ex(H)
        if int(info) == 0:
            return L
        scale = float(H.diagonal().abs().max()) or 1.0
        eps = torch.finfo(H.dtype).eps
        eye = torch.eye(H.shape[0], dtype=H.dtype, device=H.device)
        for k in range(1, 17):
            L, info = torch.linalg.cholesky_ex(H + (10.0 ** k) * eps * scale * eye)
            if int(info) == 0:
                return L
        raise FloatingPointError("the inner Hessian is not positive definite even after a shift "
                                 "(non-finite features?)")

    # -- the inner solve ---------------------------------------------------------------------------
    def solve_inner(self, features: torch.Tensor, labels: torch.Tensor, *,
                    init: tuple[torch.Tensor, torch.Tensor] | None = None, write: bool = True) -> InnerResult:
        """Newton's method with Armijo backtracking for min_{W,μ} ψ on fixed (detached) features.

        Args:
            features: Y_N, shape (n, d); detached internally.
            labels: int64 class labels (n,).
            init: starting (W, μ); default: the classifier's current values (``warm_start``) or 0.
            write: copy the solution into ``model.classifier`` (default).

        Each iteration: gradient (O(n c d)), Newton direction from the dense Hessian (Cholesky) or
        by CG on Hessian-vector products, backtracking ψ(Ŵ + t d) ≤ ψ(Ŵ) + c₁ t ∇ψ·d from t = 1
        (where ψ(Ŵ + t d) and ψ(Ŵ) agree to round-off, 100·ε relative, a trial is accepted if it
        reduces ‖∇ψ‖ instead: near the solution ψ no longer resolves the Newton decrease).
        Stops when ‖∇ψ‖ ≤ tol, after ``max_iter`` iterations, or when no step decreases ψ.
        """
        self._check_features(features, labels)
        Y = features.detach()
        Z = self.augment(Y)
        What = self._start(init).to(Y.dtype).clone()
        tol = self.tol if self.tol is not None else _default_tol(Y.dtype)
        value, loss = self.inner_value(Z, labels, What)
        grad = self.inner_gradient(Z, labels, What)
        gnorm = g0 = float(torch.linalg.vector_norm(grad))
        iterations = backtracks = 0
        reason = "tolerance"
        while gnorm > tol:
            if iterations == self.max_iter:
                reason = "max_iter"
                break
            direction = self._newton_direction(Z, What, grad, gnorm)
            slope = float((grad * direction).sum())
            if not slope < 0:                     # round-off: fall back to steepest descent
                direction, slope = -grad, -gnorm ** 2
            search = self._inner_line_search(Z, labels, What, direction, value, slope, gnorm)
            backtracks += search.backtracks
            iterations += 1
            if not search.accepted:
                reason = "line_search"
                break
            What, value, loss = search.info["What"], search.value, search.info["loss"]
            grad = search.info.get("grad")
            grad = self.inner_gradient(Z, labels, What) if grad is None else grad
            gnorm = float(torch.linalg.vector_norm(grad))
        weight, bias = What[:, :-1].contiguous(), What[:, -1].contiguous()
        if write:
            with torch.no_grad():
                self.model.classifier.weight.copy_(weight)
                self.model.classifier.bias.copy_(bias)
        self.last = InnerResult(weight=weight, bias=bias, value=value, loss=loss, grad_norm=gnorm,
                                initial_grad_norm=g0, iterations=iterations, backtracks=backtracks,
                                converged=gnorm <= tol, reason=reason)
        return self.last

    def _start(self, init: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        """Ŵ₀ = [W₀, μ₀]: ``init``, the classifier's current values (``warm_start``) or zero (detached)."""
        cls = self.model.classifier
        if init is not None:
            W0, b0 = init
        elif self.warm_start:
            W0, b0 = cls.weight, cls.bias
        else:
            W0, b0 = torch.zeros_like(cls.weight), torch.zeros_like(cls.bias)
        return torch.cat([W0.detach(), b0.detach()[:, None]], 1)

    def _newton_direction(self, Z: torch.Tensor, What: torch.Tensor, grad: torch.Tensor, gnorm: float) -> torch.Tensor:
        """−∇²ψ⁻¹ ∇ψ: by Cholesky of the dense Hessian, or by CG on Hessian-vector products to the
        forcing term max(min(0.1, ‖∇ψ‖), 10ε)."""
        if self._dense():
            return -torch.cholesky_solve(grad.reshape(-1, 1),
                                         self._cholesky(self.inner_hessian(Z, What))).reshape(What.shape)
        matvec = self.inner_hessian_matvec(Z, What)
        rtol = max(min(0.1, gnorm), 10 * torch.finfo(Z.dtype).eps)
        return -conjugate_gradient(lambda v: matvec(v.reshape(What.shape)).reshape(-1), grad.reshape(-1),
                                   rtol=rtol, max_iter=10 * What.numel()).x.reshape(What.shape)

    def _inner_line_search(self, Z, labels, What, direction, value: float, slope: float, gnorm: float):
        """Armijo backtracking Ŵ + t·direction from t = 1, halving; a trial whose ψ equals ψ(Ŵ) to
        round-off (100·ε relative) is accepted if it reduces ‖∇ψ‖.  ``info`` of the result: the
        trial's ``What``, ``loss`` and, when computed, ``grad``."""
        roundoff = 100 * torch.finfo(Z.dtype).eps

        def trial(t):
            point = What + t * direction
            trial_value, trial_loss = self.inner_value(Z, labels, point)
            return trial_value, {"What": point, "loss": trial_loss}

        def smaller_gradient(t, trial_value, info):
            if not abs(trial_value - value) <= roundoff * abs(value):
                return False
            grad = self.inner_gradient(Z, labels, info["What"])
            if float(torch.linalg.vector_norm(grad)) < gnorm:
                info["grad"] = grad
                return True
            return False

        return backtracking(trial, value, slope, step=1.0, c1=self.armijo, factor=0.5,
                            max_backtracks=self.max_backtracks, accept=smaller_gradient)

    def classifier_penalty(self, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """λ/2‖W‖² + λ_μ/2‖μ‖²."""
        return 0.5 * (self.regularization * weight.pow(2).sum() + self.bias_regularization * bias.pow(2).sum())

    # -- the reduced objective -------------------------------------------------------------------
    def reduced_objective(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Φ(θ) = L(Y(θ) W*ᵀ + μ*) + λ/2‖W*‖² + λ_μ/2‖μ*‖², differentiable in the network weights θ.

        The features Y = ``model.features(x)`` are computed once (with the autograd graph); the
        inner problem is solved on the detached features (result in ``self.last`` and written into
        the classifier); the loss is then recomputed from the same features with (W*, μ*) as
        constants.  ``Φ.backward()`` therefore gives the reduced gradient ∇Φ = ∂_θ L(θ, W*, μ*)
        (envelope theorem) and leaves the classifier's ``.grad`` untouched.  Add the network
        regularizers R(θ) (weight decay, smoothness) to the returned value yourself.

        Cost: one forward pass + one inner solve (+ one backward pass if differentiated).
        """
        features = self.model.features(x)
        result = self.solve_inner(features, labels)
        return self.reduced_value(features, labels, result)

    def reduced_value(self, features: torch.Tensor, labels: torch.Tensor, result: InnerResult) -> torch.Tensor:
        """Φ from features already computed and an inner solution (W*, μ*) treated as constants."""
        scores = F.linear(features, result.weight, result.bias)
        return self.loss_fn(scores, labels) + self.classifier_penalty(result.weight, result.bias)
