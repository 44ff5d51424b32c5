"""Convolutional dynamics on image states Y of shape (batch, channels, H, W).

The image analogues of :mod:`.layers`, :mod:`.antisymmetric` and :mod:`.hamiltonian`, after
Ruthotto & Haber, "Deep neural networks motivated by partial differential equations", J. Math.
Imaging Vis. 62 (2020) 352–364 (arXiv:1804.04272).  K is a k×k convolution (k odd, default 3)
with zero "same" padding p = k // 2 and stride 1, and Kᵀ is its exact adjoint: the transposed
convolution with the *same* kernel, padding and stride (``conv_transpose2d``), so that
⟨KX, Y⟩ = ⟨X, KᵀY⟩ holds to round-off for all images X, Y.  As an operator on images the
adjoint of a same-padding convolution is again a convolution, with the kernel flipped in
space and its input/output channels swapped (:func:`adjoint_kernel`).

=======================  =============================================  ============================
class                    f                                              property
=======================  =============================================  ============================
``ConvSingleLayer``      σ(N(KY) + b)                                   none (the conv ResNet)
``ConvParabolic``        −Kᵀ σ(N(KY) + b)                               Jacobian ≼ 0 (for N = None)
``ConvSecondOrder``      Y'' = −Kᵀ σ(N(KY) + b)  (leapfrog only)        hyperbolic, reversible
``ConvAntisymmetric``    σ(N(AY) + b), A = ½(K − K*) − γ I              ⟨AX, X⟩ = −γ‖X‖²
``ConvHamiltonian``      y' = σ(N(Kz) + b_y), z' = −σ(N(Kᵀy) + b_z)     two streams, Verlet
=======================  =============================================  ============================

Weights carry the leading control dimension nt like every :class:`~.base.Dynamics`: a kernel is
(nt, C_out, C_in, k, k), a bias (nt, C_out), and the block interpolates them in time unchanged.
``feature_dim = 1``: the block checks the ``width`` channels along dimension 1.

Normalization N (applied to the convolution output, before the bias, which acts as the
normalization's shift):

* ``None``: none.
* ``"batch"``: per channel over (batch, H, W), always with the statistics of the current batch
  (no running averages, no train/eval switch).  f must be a deterministic function of (Y, θ):
  the integrators evaluate it several times per step, the checkpoint, reversible and adjoint
  gradient modes evaluate it again in the backward pass (running averages would be updated at
  every one of those evaluations, per stage rather than per layer), and ``step_back`` must
  invert exactly the map that ran forward.  The price: predictions depend on the batch they are
  evaluated in, until population statistics replace the batch's for inference
  (:meth:`stablenet.conv_models.ConvODENet.calibrate_batch_norm`, replayed with
  :func:`frozen_batch_statistics`); ``"instance"``/``"tv"`` act per image anyway.
* ``"instance"``: per image and channel over (H, W) (Ulyanov et al. 2016).
* ``"tv"``: total-variation normalization of Ruthotto & Haber (Meganet's ``tvNormLayer``):
  every pixel's channel vector divided by its length, X / sqrt(Σ_c X_c² + ε), ε = 1e-4.

With a normalization the stability statements in the table (which concern the linearization of
f) no longer hold in general: N's Jacobian enters between σ' and K.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from numbers import Integral

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from .. import _checks
from .base import Dynamics

CONV_NORMALIZATIONS = (None, "batch", "instance", "tv")
#: ε of each normalization (torch's default for batch/instance, Meganet's for TV)
NORMALIZATION_EPS = {"batch": 1e-5, "instance": 1e-5, "tv": 1e-4}


def check_normalization(normalization: object) -> str | None:
    """Return ``normalization`` if it is one of :data:`CONV_NORMALIZATIONS`."""
    if normalization not in CONV_NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {list(CONV_NORMALIZATIONS)}, got {normalization!r}")
    return normalization  # type: ignore[return-value]


def normalize(x: torch.Tensor, kind: str | None, eps: float | None = None) -> torch.Tensor:
    """N(x) for an image batch (batch, C, H, W): ``None``, ``"batch"``, ``"instance"`` or ``"tv"``.

    No learned scale or shift (the dynamics' bias is the shift); see the module docstring.
    """
    if kind is None:
        return x
    eps = NORMALIZATION_EPS[kind] if eps is None else eps
    if kind == "batch":
        # under torch.compile no recording/replaying (a ContextVar cannot be traced): batch statistics
        frozen = None if torch.compiler.is_compiling() else _FROZEN_BATCH_STATS.get()
        if frozen is None:
            return F.batch_norm(x, None, None, training=True, eps=eps)
        if frozen["record"]:
            mean, var = x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=False)
            frozen["stats"].append((mean.detach(), var.detach()))
        else:
            mean, var = frozen["stats"][frozen["next"] % len(frozen["stats"])]
            frozen["next"] += 1
        return (x - mean[:, None, None]) * torch.rsqrt(var[:, None, None] + eps)
    if kind == "instance":
        return F.instance_norm(x, eps=eps)
    if kind == "tv":
        return x * torch.rsqrt(x.pow(2).sum(1, keepdim=True) + eps)
    raise ValueError(f"normalization must be one of {list(CONV_NORMALIZATIONS)}, got {kind!r}")


_FROZEN_BATCH_STATS: ContextVar[dict | None] = ContextVar("stablenet_frozen_batch_stats", default=None)


@contextmanager
def frozen_batch_statistics(stats: list | None = None):
    """Batch normalization with fixed statistics inside the ``with`` block (for linearizations).

    ``with frozen_batch_statistics() as stats:`` *records* the per-channel (mean, variance) of
    every ``"batch"`` normalization evaluated inside, in call order (and normalizes with them, as
    usual); ``with frozen_batch_statistics(stats):`` *replays* them in the same order (cyclically),
    so N(x) = (x − μ)/√(σ² + ε) is an affine map of x with the recorded μ, σ².  The stability
    analysis records the statistics of a whole batch at a layer and then differentiates f for
    one sample at a time with them: ∂f(Y)_b/∂Y_b with the statistics' own dependence on Y_b
    (O(1/batch)) left out.  Other normalizations are not affected.
    """
    state = {"record": stats is None, "stats": [] if stats is None else list(stats), "next": 0}
    if not state["record"] and not state["stats"]:
        state = None  # nothing recorded: there is no batch normalization to replay
    token = _FROZEN_BATCH_STATS.set(state)
    try:
        yield state["stats"] if state is not None else []
    finally:
        _FROZEN_BATCH_STATS.reset(token)


def recording_or_replaying() -> bool:
    """Whether a :func:`frozen_batch_statistics` block is active."""
    return _FROZEN_BATCH_STATS.get() is not None


def odd_kernel_size(name: str, value: object) -> int:
    """Return ``value`` if it is an odd integer >= 1 (same padding needs a centre tap)."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an odd integer >= 1, got {value!r} ({type(value).__name__})")
    if value < 1 or value % 2 == 0:
        raise ValueError(f"{name} must be an odd integer >= 1, got {value!r}")
    return int(value)


def conv(y: torch.Tensor, K: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """KY: the k×k convolution (cross-correlation) with kernel K (C_out, C_in, k, k), zero
    "same" padding k // 2, stride 1: (batch, C_in, H, W) → (batch, C_out, H, W)."""
    return F.conv2d(y, K, bias, padding=K.shape[-1] // 2)


def conv_adjoint(y: torch.Tensor, K: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """KᵀY: the exact adjoint of :func:`conv` with the same kernel, (batch, C_out, H, W) →
    (batch, C_in, H, W): ``conv_transpose2d`` with the same kernel, padding and stride, so
    ⟨conv(X, K), Y⟩ = ⟨X, conv_adjoint(Y, K)⟩ for all X, Y."""
    return F.conv_transpose2d(y, K, bias, padding=K.shape[-1] // 2)


def adjoint_kernel(K: torch.Tensor) -> torch.Tensor:
    """The kernel K* of the adjoint operator: channels swapped, flipped in space.

    ``conv(y, adjoint_kernel(K)) == conv_adjoint(y, K)`` for same-padding convolutions (odd k,
    stride 1, zero padding).  Works on stacks (..., C_out, C_in, k, k).
    """
    return K.transpose(-4, -3).flip(-2, -1)


def identity_kernel(channels: int, k: int, *, dtype=None, device=None) -> torch.Tensor:
    """The kernel (C, C, k, k) of the identity operator: 1 at the centre tap of channel c → c."""
    eye = torch.zeros(channels, channels, k, k, dtype=dtype, device=device)
    idx = torch.arange(channels, device=device)
    eye[idx, idx, k // 2, k // 2] = 1.0
    return eye


class ConvDynamics(Dynamics):
    """Base class of the convolutional dynamics: image states (batch, C, H, W), ``feature_dim = 1``.

    Accepts the image normalizations :data:`CONV_NORMALIZATIONS` and an odd ``kernel_size``.
    """

    feature_dim = 1

    def __init__(self, width: int, *, nt: int = 1, activation: str = "tanh",
                 normalization: str | None = None, kernel_size: int = 3):
        check_normalization(normalization)
        super().__init__(width, nt=nt, activation=activation, normalization=None)
        self.normalization = normalization
        self.kernel_size = odd_kernel_size("kernel_size", kernel_size)

    def _kernel(self, name: str, c_out: int, c_in: int) -> None:
        k = self.kernel_size
        self._control_parameter(name, c_out, c_in, k, k, fan_in=c_in * k * k)

    def _pre_activation(self, x: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """σ(N(x) + b) with a per-channel bias b (C,)."""
        return self.activation(normalize(x, self.normalization) + b[:, None, None])

    def extra_repr(self) -> str:
        return super().extra_repr() + f", kernel_size={self.kernel_size}"


class ConvSingleLayer(ConvDynamics):
    """f(Y, θ) = σ(N(KY) + b), K a k×k convolution C → C: the convolutional ResNet layer.

    Forward Euler gives Y_{j+1} = Y_j + h σ(N(K_j Y_j) + b_j) (He et al. 2016).  No stability by
    design: K's spectrum is arbitrary.
    """

    def __init__(self, width: int, *, nt: int = 1, activation: str = "tanh",
                 normalization: str | None = None, kernel_size: int = 3):
        super().__init__(width, nt=nt, activation=activation, normalization=normalization,
                         kernel_size=kernel_size)
        self._kernel("K", width, width)
        self._control_parameter("b", width)

    def forward(self, y, K, b):
        if self.normalization is None:
            return self.activation(conv(y, K, b))
        return self._pre_activation(conv(y, K), b)


class AntisymmetricConvKernel(nn.Module):
    """The parametrization K ↦ ½(K − K*) − γ·I of a stack of square kernels (…, C, C, k, k).

    K* = :func:`adjoint_kernel` (K) is the kernel of the adjoint operator and I the identity
    kernel, so the convolution operator A of the result satisfies Aᵀ = −A − 2γI, i.e.
    ⟨AX, X⟩ = −γ‖X‖² for every image X: its spectrum lies on the line Re λ = −γ (purely
    imaginary for γ = 0).  (Note the damping: −γI here, against −½γI in the dense
    :class:`~.antisymmetric.AntisymmetricKernel` ½(K − Kᵀ − γI).)
    """

    def __init__(self, gamma: float = 0.0):
        super().__init__()
        self.gamma = _checks.nonnegative_float("gamma", gamma)

    def forward(self, K: torch.Tensor) -> torch.Tensor:
        if K.dim() < 4 or K.shape[-4] != K.shape[-3] or K.shape[-2] != K.shape[-1]:
            raise ValueError(f"an antisymmetric kernel must be (..., C, C, k, k), got shape {tuple(K.shape)}")
        A = 0.5 * (K - adjoint_kernel(K))
        if self.gamma:  # − γ·identity_kernel, on the centre taps of channel c → c only (no C×C×k×k copy)
            centre = K.shape[-1] // 2
            A.diagonal(dim1=-4, dim2=-3)[..., centre, centre, :].sub_(self.gamma)
        return A

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}"


class ConvAntisymmetric(ConvSingleLayer):
    """f(Y, θ) = σ(N(AY) + b), A = ½(K − K*) − γI, γ ≥ 0: the antisymmetric convolution.

    K* is the adjoint operator's kernel (channels swapped, spatially flipped; see
    :func:`adjoint_kernel`), so A is antisymmetric *as an operator on images* up to the damping:
    ⟨AX, X⟩ = −γ‖X‖².  Without normalization the Jacobian diag(σ') A has its eigenvalues near the
    imaginary axis: stable continuous dynamics (Haber & Ruthotto, "Stable architectures for deep
    neural networks", Inverse Problems 2017; Chang et al., "AntisymmetricRNN", ICLR 2019), for
    which forward Euler is unstable at every h without damping (use rk4 or ab3).

    The constraint is a torch parametrization of the stored kernel (``self.K`` is A; the free
    parameter is ``self.parametrizations.K.original``), so interpolation in time, prolongation
    and every integrator and gradient mode see an ordinary :class:`ConvSingleLayer`.
    """

    def __init__(self, width: int, *, gamma: float = 0.0, nt: int = 1, activation: str = "tanh",
                 normalization: str | None = None, kernel_size: int = 3):
        super().__init__(width, nt=nt, activation=activation, normalization=normalization,
                         kernel_size=kernel_size)
        parametrize.register_parametrization(self, "K", AntisymmetricConvKernel(gamma))

    @property
    def gamma(self) -> float:
        """The damping γ ≥ 0 of the kernel ½(K − K*) − γI: the spectrum lies on Re λ = −γ."""
        return self.parametrizations.K[0].gamma


class ConvParabolic(ConvDynamics):
    """f(Y, θ) = −Kᵀ σ(N(KY) + b), K a k×k convolution C → m (m = ``hidden``), Kᵀ its adjoint.

    The parabolic CNN of Ruthotto & Haber (JMIV 2020, §3), a learned nonlinear diffusion
    (for σ(x) = x and K a discrete gradient it is the heat equation).  Without normalization and
    with a monotone activation (σ' ≥ 0) the Jacobian −Kᵀ diag(σ'(KY + b)) K is symmetric
    negative semidefinite, so the dynamics are stable for any K (perturbations of Y(0) do not
    grow; their stability theorem for parabolic CNNs).  Forward Euler needs
    h·λ_max(Kᵀ diag(σ') K) ≤ 2 on top of that.
    """

    def __init__(self, width: int, hidden: int | None = None, *, nt: int = 1,
                 activation: str = "tanh", normalization: str | None = None, kernel_size: int = 3):
        super().__init__(width, nt=nt, activation=activation, normalization=normalization,
                         kernel_size=kernel_size)
        self.hidden = width if hidden is None else _checks.positive_int("hidden", hidden)
        self._kernel("K", self.hidden, width)
        self._control_parameter("b", self.hidden)

    def forward(self, y, K, b):
        if self.normalization is None:
            s = self.activation(conv(y, K, b))
        else:
            s = self._pre_activation(conv(y, K), b)
        return -conv_adjoint(s, K)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", hidden={self.hidden}"


class ConvSecondOrder(ConvParabolic):
    """The hyperbolic CNN's acceleration: Y'' = f(Y, θ) = −Kᵀ σ(N(KY) + b) (pair with leapfrog).

    Ruthotto & Haber (JMIV 2020, §3, hyperbolic CNNs): the second-order (telegraph/wave-like) network,
    integrated by ``method="leapfrog"`` as Y_{j+1} = 2Y_j − Y_{j−1} + h² f(Y_j) from rest.  For
    σ = identity the energy ½‖Y'‖² + ½‖KY‖² is conserved, and the scheme is time-reversible, so
    ``gradient="reversible"`` gives exact gradients with memory independent of depth.  f is the
    parabolic right-hand side, read as an acceleration: ``second_order = True`` makes a block
    refuse a first-order integrator, which would integrate the parabolic network Y' = f(Y) under
    this name (:func:`stablenet.block.check_compatible`).
    """

    second_order = True


class ConvHamiltonian(ConvDynamics):
    """Two-stream convolutional Hamiltonian dynamics (the image version of
    :class:`~.hamiltonian.Hamiltonian`):

        dy/dt = σ(N(K z) + b_y),    dz/dt = −σ(N(Kᵀ y) + b_z),

    K a k×k convolution from the z-stream's ``width_z`` channels to the y-stream's ``width``
    channels and Kᵀ its adjoint (transposed convolution, same kernel).  For σ = identity, no
    normalization and zero biases the Jacobian [[0, K], [−Kᵀ, 0]] is antisymmetric:
    ‖y‖² + ‖z‖² is conserved and the eigenvalues are imaginary.  ``dy``/``dz`` are the stream-wise
    right-hand sides the staggered Verlet scheme needs; Verlet is exactly reversible
    (``gradient="reversible"``).  References: Haber & Ruthotto, Inverse Problems 2017; Chang et
    al., "Reversible architectures for arbitrarily deep residual neural networks", AAAI 2018;
    Ruthotto & Haber, JMIV 2020 (hyperbolic CNNs).
    """

    two_stream = True

    def __init__(self, width: int, width_z: int | None = None, *, nt: int = 1,
                 activation: str = "tanh", normalization: str | None = None, kernel_size: int = 3):
        super().__init__(width, nt=nt, activation=activation, normalization=normalization,
                         kernel_size=kernel_size)
        self.width_z = width if width_z is None else _checks.positive_int("width_z", width_z)
        self._kernel("K", width, self.width_z)
        self._control_parameter("b_y", width)
        self._control_parameter("b_z", self.width_z)

    def dy(self, z, K, b_y, b_z):
        """dy/dt = σ(N(K z) + b_y)."""
        if self.normalization is None:
            return self.activation(conv(z, K, b_y))
        return self._pre_activation(conv(z, K), b_y)

    def dz(self, y, K, b_y, b_z):
        """dz/dt = −σ(N(Kᵀ y) + b_z)."""
        if self.normalization is None:
            return -self.activation(conv_adjoint(y, K, b_z))
        return -self._pre_activation(conv_adjoint(y, K), b_z)

    def forward(self, state, K, b_y, b_z):
        y, z = state
        return (self.dy(z, K, b_y, b_z), self.dz(y, K, b_y, b_z))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", width_z={self.width_z}"


__all__ = [
    "ConvDynamics", "ConvSingleLayer", "ConvAntisymmetric", "AntisymmetricConvKernel", "ConvParabolic",
    "ConvSecondOrder", "ConvHamiltonian", "CONV_NORMALIZATIONS", "NORMALIZATION_EPS", "normalize",
    "conv", "conv_adjoint", "adjoint_kernel", "identity_kernel", "check_normalization", "frozen_batch_statistics",
]
