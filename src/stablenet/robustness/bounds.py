"""A certified upper bound on the Lipschitz constant (L2) of input → logits, from the layers.

The network is a composition x → opening → blocks (joined by connectors) → classifier, so its
Lipschitz constant is at most the product of the parts' constants: ‖W‖₂ for a linear layer
(exact spectral norm, SVD), √c for the ``duplicate`` opening (c copies of the features), and for
an ODE block a bound on the Lipschitz constant of Y_0 ↦ Y_N of its *discrete* forward map,
derived here per integrator from a Lipschitz constant L_s of the right-hand side at every stage s
(the weights of that very stage, as the block's solve uses them).

**The right-hand side.**  Every activation here (tanh, relu, smooth relu, identity) has
0 ≤ σ′ ≤ 1, so with ``normalization = None``:

=================  ================================  =====================================
dynamics           f                                 L (Lipschitz constant in the state)
=================  ================================  =====================================
single, antisym.   σ(KY + b)                         ‖K‖₂ (K constrained for antisymmetric)
double             K₂σ(K₁Y + b)                      ‖K₂‖₂‖K₁‖₂
parabolic          −Kᵀσ(KY + b)                      ‖K‖₂²
hamiltonian        (σ(Kz + b_y), −σ(Kᵀy + b_z))      ‖K‖₂ for each stream (and for the pair)
=================  ================================  =====================================

``normalization = "layer"`` (a layer norm without affine part, ε = 10⁻⁵, before the bias) has
Jacobian norm ≤ 1/√ε, so L is multiplied by 1/√ε ≈ 316: certified, and loose.

**The integrators.**  With e_j a bound on the Lipschitz constant of Y_0 ↦ Y_j (e_0 = 1):

* explicit Runge–Kutta (``euler``, ``midpoint``, ``rk3``, ``rk4``) with tableau (a, b): the stage
  values satisfy Lip(Y^(i)) ≤ 1 + h Σ_k |a_ik| L_k Lip(Y^(k)) and the step
  e_{j+1} ≤ e_j (1 + h Σ_i |b_i| L_i Lip(Y^(i))); for constant L this is the familiar
  1 + hL + … + (hL)⁴/24 of RK4 (Hairer, Nørsett & Wanner, *Solving ODEs I*, §II.3);
* **parabolic with forward Euler** (no normalization) uses the structure: the step's Jacobian
  I − hKᵀDK, D = diag(σ′) ∈ [0, I], is symmetric with eigenvalues in [1 − h‖K‖², 1], so the step
  is Lipschitz with constant max(1, h‖K‖² − 1) — at most 1 when h‖K‖² ≤ 2, the stability
  condition (Ruthotto & Haber, JMIV 2020, Thm 1): a stable parabolic network certifies a bound
  that does not grow with depth;
* ``ab3``: the RK3 start-up steps as above, then
  e_{j+1} ≤ e_j + h(23/12 L_j e_j + 16/12 L_{j−1} e_{j−1} + 5/12 L_{j−2} e_{j−2});
* ``verlet`` (Hamiltonian): with a_j, b_j bounds for the y and z streams (a_0 = 1, b_0 = 0: z
  starts at 0 whatever the input), b ← b + h L_z a (the z half step) then a ← a + h L_y b; the block
  passes on y, so its bound is a_N.  Verlet's stability (bounded, oscillating features for
  h‖K‖ < 2) is a statement about eigenvalues, not norms: the norm bound still grows like
  exp(T‖K‖) and says so.
* ``leapfrog`` (second-order dynamics, Y'' = f): e_1 ≤ e_0(1 + h²L/2),
  e_{j+1} ≤ (2 + h²L_j) e_j + e_{j−1}: valid but vacuous, growing like (1 + √2)^N.

Not bounded (``value`` None and a ``reason``): convolutional networks (their normalizations with
batch statistics make the output of one image depend on the others in its batch until the
statistics are calibrated, and a sharp bound for zero-padded convolutions is future work),
activations outside the table, and dynamics or integrators not listed.  The bound is for the
L2 norm; an L∞ bound follows as ‖·‖∞-Lipschitz ≤ √d · L2-Lipschitz for d input features.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ..block import ODEBlock
from ..dynamics import Antisymmetric, DoubleLayer, Hamiltonian, Parabolic, SingleLayer
from ..models import DuplicateFeatures, ODEClassifier

#: activations with 0 ≤ σ′ ≤ 1 everywhere (monotone, 1-Lipschitz)
MONOTONE_CONTRACTIVE = ("tanh", "relu", "smooth_relu", "identity")
LAYER_NORM_EPS = 1e-5  # torch.nn.functional.layer_norm's default, what Dynamics._pre_activation uses

#: explicit Runge–Kutta tableaus (a below the diagonal, b) of stablenet's integrators
TABLEAUS = {
    "euler": ((), (1.0,)),
    "midpoint": (((0.5,),), (0.0, 1.0)),
    "rk3": (((0.5,), (-1.0, 2.0)), (1 / 6, 4 / 6, 1 / 6)),
    "rk4": (((0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)), (1 / 6, 1 / 3, 1 / 3, 1 / 6)),
}
#: the stage offsets c of the tableaus (in the order of the stages)
OFFSETS = {"euler": (0.0,), "midpoint": (0.0, 0.5), "rk3": (0.0, 0.5, 1.0), "rk4": (0.0, 0.5, 0.5, 1.0)}


class Unbounded(Exception):
    """A part of the network this module cannot bound (the message says why)."""


@dataclass
class LipschitzBound:
    """``value``: the certified bound (None if some part cannot be bounded, then ``reason``);
    ``parts``: each part's name and bound, in order."""

    value: float | None
    parts: list[dict] = field(default_factory=list)
    reason: str | None = None
    norm: str = "l2"

    def to_dict(self) -> dict:
        """The bound as a JSON-ready dict: ``value``, ``norm``, ``reason``, ``parts``."""
        return {"value": self.value, "norm": self.norm, "reason": self.reason, "parts": self.parts}


def spectral_norm(weight: torch.Tensor) -> float:
    """‖W‖₂, the largest singular value (float64 SVD)."""
    return float(torch.linalg.matrix_norm(weight.detach().to(torch.float64).cpu(), ord=2))


def _linear(layer: nn.Module, name: str) -> float:
    if isinstance(layer, nn.Identity):
        return 1.0
    if isinstance(layer, DuplicateFeatures):
        return math.sqrt(layer.copies)
    if isinstance(layer, nn.Linear):
        return spectral_norm(layer.weight)
    raise Unbounded(f"{name}: a {type(layer).__name__} layer is not bounded")


def _rhs_constant(dynamics, theta) -> float | tuple[float, float]:
    """L of f(·, θ) for one stage's weights θ (Hamiltonian: (L_y, L_z) for dy/dz)."""
    if dynamics.activation_name not in MONOTONE_CONTRACTIVE:
        raise Unbounded(f"activation {dynamics.activation_name!r} is not known to satisfy 0 <= σ' <= 1")
    scale = 1.0 if dynamics.normalization is None else 1.0 / math.sqrt(LAYER_NORM_EPS)
    if isinstance(dynamics, Hamiltonian):
        k = scale * spectral_norm(theta[0])
        return (k, k)
    if isinstance(dynamics, (SingleLayer, Antisymmetric)):
        return scale * spectral_norm(theta[0])
    if isinstance(dynamics, DoubleLayer):
        return scale * spectral_norm(theta[0]) * spectral_norm(theta[2])
    if isinstance(dynamics, Parabolic):
        return scale * spectral_norm(theta[0]) ** 2
    raise Unbounded(f"dynamics {dynamics.kind} is not bounded here")


def _rk_factor(method: str, h: float, L: list[float]) -> float:
    """Lipschitz bound of one explicit RK step with stage constants L (tableau recursion)."""
    a, b = TABLEAUS[method]
    lips = []
    for i in range(len(b)):
        row = a[i - 1] if i else ()
        lips.append(1.0 + h * sum(abs(a_ik) * L[k] * lips[k] for k, a_ik in enumerate(row)))
    return 1.0 + h * sum(abs(b_i) * L[i] * lips[i] for i, b_i in enumerate(b))


def block_bound(block: ODEBlock) -> dict:
    """Bound on the Lipschitz constant of Y_0 ↦ Y_N of ``block`` (the y-stream for two-stream
    blocks, z_0 = 0) and the largest per-step factor; raises :class:`Unbounded` with the reason."""
    dyn, method = block.dynamics, block.integrator.name
    N, h = block.steps, block.h
    if getattr(dyn, "feature_dim", -1) != -1:
        raise Unbounded(f"{dyn.kind}: convolutional dynamics are not bounded here")
    with torch.no_grad():
        thetas, index = block.stage_weights(N, next(dyn.parameters()).device)
        L = {(j, c): _rhs_constant(dyn, thetas[r]) for j in range(N) for c, r in index[j].items()}
    two = isinstance(dyn, Hamiltonian)
    joint = {key: max(v) if two else v for key, v in L.items()}  # the pair's constant
    e, factors = [1.0], []
    if method == "euler" and isinstance(dyn, Parabolic) and dyn.normalization is None:
        for j in range(N):
            e.append(e[-1] * max(1.0, h * joint[(j, 0.0)] - 1.0))
    elif method in TABLEAUS:
        for j in range(N):
            e.append(e[-1] * _rk_factor(method, h, [joint[(j, c)] for c in OFFSETS[method]]))
    elif method == "ab3":
        for j in range(N):
            if j < 2:
                e.append(e[-1] * _rk_factor("rk3", h, [joint[(j, c)] for c in OFFSETS["rk3"]]))
            else:
                Lj = [joint[(i, 0.0)] for i in (j, j - 1, j - 2)]
                e.append(e[j] + h * (23 / 12 * Lj[0] * e[j] + 16 / 12 * Lj[1] * e[j - 1] + 5 / 12 * Lj[2] * e[j - 2]))
    elif method == "verlet" and two:
        a, b = 1.0, 0.0
        for j in range(N):
            b = b + h * L[(j, 0.0)][1] * a
            a = a + h * L[(j, 0.5)][0] * b
            e.append(a)
    elif method == "leapfrog" and getattr(dyn, "second_order", False):
        for j in range(N):
            Lj = joint[(j, 0.0)]
            e.append(e[0] * (1 + 0.5 * h * h * Lj) if j == 0 else (2 + h * h * Lj) * e[j] + e[j - 1])
    else:
        raise Unbounded(f"integrator {method!r} with {dyn.kind} dynamics is not bounded here")
    factors = [b / a for a, b in zip(e, e[1:]) if a > 0]
    return {"bound": e[-1], "max_step_factor": max(factors) if factors else 1.0, "steps": N, "h": h,
            "method": method, "dynamics": dyn.kind, "max_rhs_lipschitz": max(joint.values())}


def lipschitz_bound(model) -> LipschitzBound:
    """A certified upper bound on the L2 Lipschitz constant of ``model``: input → logits.

    ``model`` an :class:`~stablenet.models.ODEClassifier` (dense); for anything else (the
    convolutional networks) or a part that cannot be bounded, ``value`` is None and ``reason``
    says why.  See the module docstring for the derivation.
    """
    if not isinstance(model, ODEClassifier):
        return LipschitzBound(None, reason=f"{type(model).__name__}: only dense ODEClassifier networks are bounded "
                                           f"(convolutional layers and normalizations with batch statistics are not)")
    parts = []
    try:
        parts.append({"part": "opening", "bound": _linear(model.opening, "opening")})
        for k, block in enumerate(model.blocks):
            if k:
                parts.append({"part": f"connector {k - 1}", "bound": _linear(model.connectors[k - 1], "connector")})
            parts.append({"part": f"block {k}", **block_bound(block)})
        parts.append({"part": "classifier", "bound": _linear(model.classifier, "classifier")})
    except Unbounded as exc:
        return LipschitzBound(None, parts=parts, reason=str(exc))
    return LipschitzBound(math.prod(p["bound"] for p in parts), parts=parts)
