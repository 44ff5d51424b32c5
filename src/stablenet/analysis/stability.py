"""Linear stability of the integrators: amplification factors and stability regions.

Applied to the test equation y' = λy, a one-step method multiplies y by R(z), z = hλ, every step;
a multistep method's growth is the largest root ξ of its characteristic polynomial.  The method
is stable at z when that amplification is ≤ 1.  Stated per method (Hairer & Wanner, *Solving ODEs
II*, §IV.2 and §V.1):

=============  =================================================================  ============
method         amplification at z = hλ                                            region
=============  =================================================================  ============
``euler``      |1 + z|                                                            disc |1 + z| ≤ 1
``midpoint``   |1 + z + z²/2|                                                     RK2 region
``rk3``        |1 + z + z²/2 + z³/6|                                              RK3 region
``rk4``        |1 + z + z²/2 + z³/6 + z⁴/24|                                      contains i·[−2√2, 2√2]
``ab3``        max |ξ|, ξ³ − ξ² = z (23ξ² − 16ξ + 5)/12                           boundary locus
``verlet``     max |ξ|, ξ² − (2 + z²) ξ + 1 = 0                                   segment i·[−2, 2]
``leapfrog``   same as verlet, with z = h·√μ for Y'' = μY                          segment i·[−2, 2]
=============  =================================================================  ============

For Verlet, z = hλ with λ an eigenvalue of the Jacobian of the first-order two-stream system
(y, z)' = (f_y(z), f_z(y)); for the linear Hamiltonian y' = Bz, z' = −Bᵀy it is ±iσ(B), and the
staggered scheme is the leapfrog recursion Y_{j+1} − (2 − h²σ²)Y_j + Y_{j−1} = 0 (seed 002).  For
leapfrog on Y'' = f(Y) the Jacobian eigenvalues μ of f enter through z² = h²μ.
"""

from __future__ import annotations

import math

import torch

from .. import _checks

RUNGE_KUTTA = {
    "euler": (1.0, 1.0),
    "midpoint": (1.0, 1.0, 0.5),
    "rk3": (1.0, 1.0, 0.5, 1 / 6),
    "rk4": (1.0, 1.0, 0.5, 1 / 6, 1 / 24),
}
METHODS = tuple(RUNGE_KUTTA) + ("ab3", "verlet", "leapfrog")


def _complex(z) -> torch.Tensor:
    if isinstance(z, torch.Tensor):
        return z.to(torch.complex128)
    return torch.tensor(z, dtype=torch.complex128)


def _max_root_modulus(coefficients: list[torch.Tensor]) -> torch.Tensor:
    """Largest |root| of Σ_k c_k ξ^(n−k) for batched complex coefficients (highest power first)."""
    c = torch.stack(torch.broadcast_tensors(*coefficients), dim=-1)  # (..., n + 1)
    lead = c[..., :1]
    n = c.shape[-1] - 1
    companion = torch.zeros(*c.shape[:-1], n, n, dtype=c.dtype)
    companion[..., 0, :] = -c[..., 1:] / lead
    if n > 1:
        companion[..., 1:, :-1] = torch.eye(n - 1, dtype=c.dtype)
    return torch.linalg.eigvals(companion).abs().amax(dim=-1)


def amplification(method: str, z) -> torch.Tensor:
    """The growth factor per step of ``method`` at z = hλ (tensor of the shape of z, float64)."""
    _checks.choice("method", method, METHODS)
    z = _complex(z)
    if method in RUNGE_KUTTA:
        R = torch.zeros_like(z)
        for k, c in enumerate(RUNGE_KUTTA[method]):
            R = R + c * z ** k
        return R.abs()
    one = torch.ones_like(z)
    if method == "ab3":
        return _max_root_modulus([one, -one - 23 / 12 * z, 16 / 12 * z, -5 / 12 * z])
    return _max_root_modulus([one, -(2 + z * z), one])


def is_stable(method: str, z, tol: float = 1e-9) -> torch.Tensor:
    """Whether z = hλ lies in the stability region of ``method`` (amplification ≤ 1 + tol)."""
    return amplification(method, z) <= 1 + tol


def leapfrog_z(h: float, mu) -> torch.Tensor:
    """First-order-equivalent z = h·√μ for leapfrog on Y'' = μY (either root: z² = h²μ)."""
    return h * torch.sqrt(_complex(mu))


def boundary_locus(points: int = 400) -> torch.Tensor:
    """AB3's boundary locus z(θ) = ρ(e^{iθ})/σ(e^{iθ}), ρ(ξ) = ξ³ − ξ², σ(ξ) = (23ξ² − 16ξ + 5)/12.

    The stability region's boundary is part of this curve (Hairer & Wanner II, §V.1).
    """
    theta = torch.linspace(0, 2 * math.pi, points, dtype=torch.float64)
    xi = torch.exp(1j * theta.to(torch.complex128))
    return (xi ** 3 - xi ** 2) / ((23 * xi ** 2 - 16 * xi + 5) / 12)


def draw_region(ax, method: str, extent: float = 4.0, color: str = "tab:red") -> None:
    """Shade the stability region of ``method`` on a matplotlib axis of the complex z-plane."""
    if method in ("verlet", "leapfrog"):
        ax.plot([0, 0], [-2, 2], color=color, lw=3, alpha=0.6, label=f"{method} region")
    else:
        re = torch.linspace(-extent, 1.0, 300, dtype=torch.float64)
        im = torch.linspace(-extent, extent, 300, dtype=torch.float64)
        Z = re[None, :] + 1j * im[:, None]
        A = amplification(method, Z)
        ax.contourf(re.numpy(), im.numpy(), (A <= 1).double().numpy(), levels=[0.5, 1.5], colors=[color],
                    alpha=0.15)
        if method == "ab3":
            locus = boundary_locus()
            ax.plot(locus.real.numpy(), locus.imag.numpy(), color=color, lw=1)
        else:
            ax.contour(re.numpy(), im.numpy(), A.numpy(), levels=[1.0], colors=[color], linewidths=1)
    ax.axhline(0, color="0.7", lw=0.5)
    ax.axvline(0, color="0.7", lw=0.5)
