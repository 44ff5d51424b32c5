"""Seeds 000/001, "Stability: a non-trivial example": forward Euler on K − Kᵀ grows for every h.

**The seed's setup.**  Seed 000 (../shared/seeds/000_083db503af07b4c0.txt, slide "Stability: A
Non-Trivial Example"; the same frame in seed 001's LaTeX): "Consider the antisymmetric kernel
model K(t) = K(t) − K(t)ᵀ.  Here, Re(eig(J(t))) = 0 for all θ.  Assume we use the forward Euler
to discretize Y_{l+1} = Y_l + hσ((K_l − K_lᵀ)Y_l + b_l).  Tricky question: How to pick h to ensure
stability? Answer: Impossible since eigenvalues of Jacobian are imaginary.  Need other method
than forward Euler."  No matrix, width, h or figure is given.  **Ours** (below): random
antisymmetric matrices, a range of h, the exact stability functions and integrated networks.
**Deviations and why:** the slide has no numbers, so the sizes are ours (width 6, 3 matrices,
N = 100, h·ρ ∈ [0.01, 3]); "other method" is made concrete with RK4 and leapfrog (the latter on
the second-order form, the one it applies to); b = 0 and the linear σ(x) = x besides tanh, because
the stability functions are exact only for linear dynamics.  This experiment measures that, and
what the alternatives do:

* A few random antisymmetric matrices A = (K − Kᵀ)/ρ(K − Kᵀ), K with i.i.d. N(0, 1) entries,
  scaled to spectral radius ρ(A) = 1 so that the step size h *is* h·ρ(A); h runs from 0.01 to 3
  (log-spaced).  Width 6, so that every eigenvalue ±iω_k is nonzero.
* Linear dynamics dY/dt = AY.  The exact per-step amplification is max_k |R(hλ_k)| over the
  eigenvalues λ_k = ±iω_k of A, R the stability polynomial: Euler R(z) = 1 + z, so
  |R(ihρ)| = √(1 + (hρ)²) > 1 for every h > 0; RK4 R(z) = 1 + z + z²/2 + z³/6 + z⁴/24, with
  |R(iy)|² = 1 − y⁶/72 + y⁸/576 ≤ 1 exactly for |y| ≤ 2√2.  The empirical amplification
  integrates the N-layer network with :func:`stablenet.integrate` from Y_0 = I (the batch of unit
  vectors) and takes (‖Y_N‖₂ / ‖Y_0‖₂)^(1/N) with the spectral norm, i.e. the worst initial state.
  Because A is normal, so is the one-step matrix M = R(hA), ‖M^N‖₂ = ρ(M)^N, and the empirical
  number must equal the exact one to rounding: a check of the integrators themselves.
* Leapfrog is for second-order (hyperbolic) dynamics, so it is applied to Y'' = −AᵀA Y
  (AᵀA = −A² symmetric positive semidefinite, eigenvalues ω_k²), zero initial velocity.  Its
  exact amplification is the spectral radius of the two-step recurrence
  ξ² − (2 − (hω)²) ξ + 1 = 0: 1 for h·ω ≤ 2, i.e. h²ρ(AᵀA) ≤ 4, and growing beyond.  With the
  zero-velocity start of :class:`~stablenet.integrators.symplectic.Leapfrog` the iterates are
  exactly Y_j = T_j(I − h²AᵀA/2) Y_0 (T_j the Chebyshev polynomial), so max_j ‖Y_j‖₂/‖Y_0‖₂ ≤ 1
  for h·ρ ≤ 2.  Its empirical amplification is (max_{j ≤ N} ‖Y_j‖₂ / ‖Y_0‖₂)^(1/N): 1 where the
  run stays bounded, ≈ the exact root (times 2^(−1/N)) where it does not.
* Nonlinear dynamics dY/dt = tanh(AY) from random unit vectors, Euler and RK4:
  (‖Y_N‖_F / ‖Y_0‖_F)^(1/N).  The continuous tanh flow does not conserve ‖Y‖ exactly (Yᵀtanh(AY)
  ≠ 0 away from Y = 0), so the raw Euler number can dip below 1 for tiny h; what the seed's
  argument predicts is that Euler adds growth on top of the flow: its amplification exceeds
  RK4's (a proxy for the exact flow) at every h.

**Claims and the rule** (`verdict.check`: supported if every value, one per matrix, is within the
tolerance of the target).  Each stability claim is a measured amplification compared with its
analytic value (ρ(A) = 1, so one value for all matrices), to 1e-10, float64 rounding over 100
steps of a normal matrix (measured ≤ 1.2e-13): Euler at the smallest h·ρ = 0.01 (minus 1)
against |1 + 0.01i| − 1 = 5.0e-5 (> 0: no h is small enough) and at every h against √(1 + h²); RK4's largest
amplification for h·ρ ≤ 2.5 against its exact maximum 1 (|R(iy)| < 1 for 0 < y ≤ 2√2, → 1 as
y → 0) and at h·ρ = 3 against |R(3i)| = 1.505; leapfrog's max_j ‖Y_j‖/‖Y_0‖ for h·ρ ≤ 2 against 1
and its per-step growth at h·ρ = 3 against T_100(−3.5)^(1/100) = 6.807; the integrators against
the closed forms (target 0).  The nonlinear claim has no analytic value: "Euler grows more than
RK4" is the ratio RK4 / Euler in [0, 1] (target 0.5, tolerance 0.5; a tie would count as
supported, the values show the margin).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from ... import integrate
from ..io import pyplot, save_figure, write_json
from .verdict import check

SUMMARY = "seeds 000/001: forward Euler on K - K^T grows for every h; RK4 and leapfrog not for small h"

WIDTH = 6
N_MATRICES = 3
STEPS = 100
H_MIN, H_MAX = 0.01, 3.0
RK4_SAFE = 2.5                 # claim: RK4 ≤ 1 (+1e-12) for h·ρ ≤ 2.5 ...
RK4_LIMIT = 2.0 * math.sqrt(2.0)  # ... and > 1 beyond 2√2
LEAPFROG_LIMIT = 2.0           # h·ρ(A) ≤ 2  ⇔  h²ρ(AᵀA) ≤ 4
TOL = 1e-12
ROUNDING = 1e-10               # float64 rounding of 100 steps of a normal matrix (measured ≤ 1e-13)


def random_antisymmetric(n: int = N_MATRICES, width: int = WIDTH, seed: int = 0) -> torch.Tensor:
    """(n, width, width) float64 matrices A = (K − Kᵀ)/ρ(K − Kᵀ), K ~ N(0, 1), so ρ(A) = 1."""
    g = torch.Generator().manual_seed(seed)
    K = torch.randn(n, width, width, generator=g, dtype=torch.float64)
    A = K - K.transpose(-1, -2)
    return A / torch.linalg.eigvals(A).abs().amax(-1)[:, None, None]


def frequencies(A: torch.Tensor) -> torch.Tensor:
    """ω_k ≥ 0 with eigenvalues ±iω_k of each antisymmetric A: the square roots of eig(AᵀA)."""
    return torch.linalg.eigvalsh(A.transpose(-1, -2) @ A).clamp(min=0.0).sqrt()


def euler_R(z):
    return 1 + z


def rk4_R(z):
    return 1 + z + z**2 / 2 + z**3 / 6 + z**4 / 24


def exact_amplification(R, h: float, omegas: torch.Tensor) -> torch.Tensor:
    """max_k |R(i h ω_k)| per matrix (omegas (n, width))."""
    return R(1j * h * omegas.to(torch.complex128)).abs().amax(-1)


def leapfrog_root(x: torch.Tensor) -> torch.Tensor:
    """Largest |ξ| of ξ² − (2 − x²)ξ + 1 = 0: 1 for |x| ≤ 2, else |b|/2 + √(b²/4 − 1), b = 2 − x²."""
    half_b = (x**2 / 2 - 1).abs()
    return torch.where(x.abs() <= 2, torch.ones_like(x), half_b + (half_b**2 - 1).clamp(min=0).sqrt())


def chebyshev_bound(h: float, omegas: torch.Tensor, steps: int) -> torch.Tensor:
    """max_{j ≤ steps} max_k |T_j(1 − (hω_k)²/2)| per matrix.

    This is exactly max_j ‖Y_j‖₂/‖Y_0‖₂ of leapfrog on Y'' = −AᵀA Y from Y_0 = I, zero velocity.
    """
    c = 1 - (h * omegas) ** 2 / 2
    t_prev, t = torch.ones_like(c), c.clone()
    best = torch.maximum(t_prev.abs(), t.abs())
    for _ in range(2, steps + 1):
        t_prev, t = t, 2 * c * t - t_prev
        best = torch.maximum(best, t.abs())
    return best.amax(-1)


def _linear_rhs(A):
    At = A.transpose(-1, -2)
    return lambda t, y: y @ At


def empirical_linear(A: torch.Tensor, h: float, method: str, steps: int = STEPS) -> torch.Tensor:
    """(‖Y_N‖₂/‖Y_0‖₂)^(1/N) per matrix, Y_0 = I, for dY/dt = AY with ``method`` ('euler', 'rk4')."""
    eye = torch.eye(A.shape[-1], dtype=A.dtype).expand_as(A).clone()
    YN = integrate(_linear_rhs(A), eye, T=steps * h, steps=steps, method=method)
    return torch.linalg.matrix_norm(YN, ord=2) ** (1.0 / steps)


def leapfrog_norms(A: torch.Tensor, h: float, steps: int = STEPS) -> torch.Tensor:
    """max_{j ≤ N} ‖Y_j‖₂/‖Y_0‖₂ per matrix for leapfrog on Y'' = −AᵀA Y, Y_0 = I, zero velocity."""
    eye = torch.eye(A.shape[-1], dtype=A.dtype).expand_as(A).clone()
    minus_AtA = -(A.transpose(-1, -2) @ A)
    states = integrate(lambda t, y: y @ minus_AtA, eye, T=steps * h, steps=steps, method="leapfrog",
                       return_states=True)
    return torch.linalg.matrix_norm(states, ord=2).amax(0)


def empirical_nonlinear(A: torch.Tensor, Y0: torch.Tensor, h: float, method: str,
                        steps: int = STEPS) -> torch.Tensor:
    """(‖Y_N‖_F/‖Y_0‖_F)^(1/N) per matrix for dY/dt = tanh(AY)."""
    At = A.transpose(-1, -2)
    YN = integrate(lambda t, y: torch.tanh(y @ At), Y0, T=steps * h, steps=steps, method=method)
    return (YN.norm(dim=(-1, -2)) / Y0.norm(dim=(-1, -2))) ** (1.0 / steps)


def compute(quick: bool = False) -> dict:
    n_h = 25 if quick else 121
    hs = torch.logspace(math.log10(H_MIN), math.log10(H_MAX), n_h, dtype=torch.float64).tolist()
    A = random_antisymmetric()
    omegas = frequencies(A)
    g = torch.Generator().manual_seed(1)
    Y0 = torch.randn(A.shape[0], 16, A.shape[-1], generator=g, dtype=torch.float64)
    Y0 = Y0 / Y0.norm(dim=-1, keepdim=True)

    rows = {key: [] for key in ("euler_exact", "euler_empirical", "rk4_exact", "rk4_empirical",
                                "leapfrog_exact", "leapfrog_max_norm", "leapfrog_chebyshev",
                                "nonlinear_euler", "nonlinear_rk4")}
    for h in hs:
        rows["euler_exact"].append(exact_amplification(euler_R, h, omegas))
        rows["euler_empirical"].append(empirical_linear(A, h, "euler"))
        rows["rk4_exact"].append(exact_amplification(rk4_R, h, omegas))
        rows["rk4_empirical"].append(empirical_linear(A, h, "rk4"))
        rows["leapfrog_exact"].append(leapfrog_root(h * omegas).amax(-1))
        rows["leapfrog_max_norm"].append(leapfrog_norms(A, h))
        rows["leapfrog_chebyshev"].append(chebyshev_bound(h, omegas, STEPS))
        rows["nonlinear_euler"].append(empirical_nonlinear(A, Y0, h, "euler"))
        rows["nonlinear_rk4"].append(empirical_nonlinear(A, Y0, h, "rk4"))
    # (n_matrices, n_h) each
    data = {key: torch.stack(v, dim=-1) for key, v in rows.items()}
    data["leapfrog_empirical"] = data["leapfrog_max_norm"] ** (1.0 / STEPS)
    return {"h": torch.tensor(hs, dtype=torch.float64), "omegas": omegas, "A": A, **data}


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a - b).abs() / b.abs()).max())


def _plot(d: dict, path: Path) -> None:
    plt = pyplot()

    h = d["h"].numpy()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    styles = {"euler": ("tab:red", "forward Euler"), "rk4": ("tab:blue", "RK4"),
              "leapfrog": ("tab:green", "leapfrog on Y'' = -A^T A Y")}

    for ax, transform, ylabel in ((axes[0], lambda a: a, "amplification per step"),
                                  (axes[1], torch.log, "log(amplification per step)")):
        for key, (color, label) in styles.items():
            exact, emp = d[f"{key}_exact"], d[f"{key}_empirical"]
            for m in range(exact.shape[0]):
                ax.plot(h, transform(exact[m]).numpy(), "-", color=color, lw=1.2, alpha=0.8,
                        label=f"{label} (exact)" if m == 0 else None)
                ax.plot(h[::2], transform(emp[m]).numpy()[::2], "o", color=color, ms=3, mfc="none",
                        label=f"{label} (integrated)" if m == 0 else None)
        ax.axhline(transform(torch.tensor(1.0)).item(), color="k", lw=0.8)
        for x, ls in ((LEAPFROG_LIMIT, ":"), (RK4_LIMIT, "--")):
            ax.axvline(x, color="0.5", lw=0.8, ls=ls)
        ax.set_xscale("log")
        ax.set_xlabel("h * rho(A)")
        ax.set_ylabel(ylabel)
    axes[0].set_ylim(0.4, 3.6)
    axes[0].set_title("linear dY/dt = AY, A = K - K^T (3 random, width 6)", fontsize=10)
    axes[0].legend(fontsize=7, loc="upper left")
    axes[1].set_yscale("symlog", linthresh=1e-8)
    axes[1].set_title("same, log scale: Euler > 0 for every h (dotted 2, dashed 2*sqrt(2))", fontsize=10)

    ax = axes[2]
    for key, color, label in (("nonlinear_euler", "tab:red", "Euler"), ("nonlinear_rk4", "tab:blue", "RK4")):
        for m in range(d[key].shape[0]):
            ax.plot(h, d[key][m].numpy(), "-", color=color, lw=1, label=label if m == 0 else None)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("h * rho(A)")
    ax.set_ylabel("(|Y_N| / |Y_0|)^(1/N)")
    ax.set_title(f"nonlinear dY/dt = tanh(AY), N = {STEPS}, |y_0| = 1", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def run(out_dir: str | Path, quick: bool = False) -> dict:
    out_dir = Path(out_dir)
    d = compute(quick)
    h = d["h"]
    figure = "antisymmetric_amplification.png"
    _plot(d, out_dir / figure)

    safe, beyond = h <= RK4_SAFE, h > RK4_LIMIT
    bounded, unbounded = h <= LEAPFROG_LIMIT, h > LEAPFROG_LIMIT
    agreement = {
        "euler_exact_vs_closed_form_sqrt_1_plus_h2": _rel(d["euler_exact"],
                                                          torch.sqrt(1 + h**2).expand_as(d["euler_exact"])),
        "euler_empirical_vs_exact": _rel(d["euler_empirical"], d["euler_exact"]),
        "rk4_empirical_vs_exact": _rel(d["rk4_empirical"], d["rk4_exact"]),
        "leapfrog_max_norm_vs_chebyshev": _rel(d["leapfrog_max_norm"], d["leapfrog_chebyshev"]),
    }
    euler_min = float(d["euler_empirical"].min())
    rk4_max_safe = float(d["rk4_empirical"][:, safe].max())
    rk4_min_beyond = float(d["rk4_empirical"][:, beyond].min()) if bool(beyond.any()) else float("nan")
    lf_max_bounded = float(d["leapfrog_max_norm"][:, bounded].max())
    lf_min_unbounded = float(d["leapfrog_max_norm"][:, unbounded].min()) if bool(unbounded.any()) else float("nan")
    nonlinear_ratio = d["nonlinear_euler"] / d["nonlinear_rk4"]

    records = claims(d, agreement)

    def rows(key):
        return [[float(v) for v in row] for row in d[key]]

    results = {
        "experiment": "antisymmetric-euler",
        "claims": records,
        "setup": {"width": WIDTH, "n_matrices": N_MATRICES, "steps": STEPS, "rho_A": 1.0,
                  "h_range": [H_MIN, H_MAX], "n_h": int(h.numel()), "dtype": "float64",
                  "empirical": "(||Y_N||_2 / ||Y_0||_2)^(1/N), Y_0 = I (spectral norm: the worst initial state); "
                               "leapfrog: (max_j ||Y_j||_2 / ||Y_0||_2)^(1/N); nonlinear: Frobenius norm, "
                               "16 random unit vectors per matrix"},
        "omegas": rows("omegas"),
        "h": [float(v) for v in h],
        "amplification": {key: rows(key) for key in (
            "euler_exact", "euler_empirical", "rk4_exact", "rk4_empirical", "leapfrog_exact",
            "leapfrog_empirical", "nonlinear_euler", "nonlinear_rk4")},
        "leapfrog_max_norm_ratio": rows("leapfrog_max_norm"),
        "summary": {
            "euler_min_amplification": euler_min,
            "euler_amplification_at_smallest_h": float(d["euler_empirical"][:, 0].min()),
            "rk4_max_amplification_h_le_2.5": rk4_max_safe,
            "rk4_min_amplification_h_gt_2sqrt2": rk4_min_beyond,
            "leapfrog_max_norm_ratio_h_le_2": lf_max_bounded,
            "leapfrog_min_max_norm_ratio_h_gt_2": lf_min_unbounded,
            "nonlinear_euler_min": float(d["nonlinear_euler"].min()),
            "nonlinear_min_euler_over_rk4": float(nonlinear_ratio.min()),
            "max_relative_disagreement": agreement,
        },
        "figures": [figure],
        "quick": quick,
    }
    write_json(out_dir / "results.json", results)
    return results


def claims(d: dict, agreement: dict) -> list[dict]:
    """The verdict records (module docstring: statistics, targets, tolerances).  ρ(A) = 1 for every
    matrix, so each analytic value is one number for all three."""
    h = d["h"]
    safe, bounded = h <= RK4_SAFE, h <= LEAPFROG_LIMIT
    h_min, h_max = float(h[0]), float(h[-1])

    def per_matrix(x):
        return [float(v) for v in x]

    euler_dev = ((d["euler_empirical"] / torch.sqrt(1 + h**2)) - 1).abs().amax(-1)
    # leapfrog at h·ρ = 3: max_j ‖Y_j‖ is |T_N(1 − 9/2)| of the ω = 1 mode, T_N(x) = cosh(N·acosh|x|)
    lf_max = math.cosh(STEPS * math.acosh(abs(1 - h_max**2 / 2))) ** (1.0 / STEPS)
    ratio = d["nonlinear_rk4"] / d["nonlinear_euler"]
    return [
        check("forward Euler on K − Kᵀ: per-step amplification > 1 already at the smallest step "
              "('impossible since eigenvalues of Jacobian are imaginary')",
              f"(‖Y_N‖₂/‖Y_0‖₂)^(1/N) − 1 at h·ρ = {h_min:g}, per matrix; target |1 + ih| − 1 = √(1 + h²) − 1",
              per_matrix(d["euler_empirical"][:, 0] - 1), target=math.sqrt(1 + h_min**2) - 1, tolerance=ROUNDING,
              seed="'Impossible [to pick h]' (slides 'Stability: A Non-Trivial Example')"),
        check("forward Euler on K − Kᵀ: the amplification is √(1 + (hρ)²) > 1 at every h",
              "max over h of |amplification / √(1 + (hρ)²) − 1|, per matrix; target 0",
              per_matrix(euler_dev), target=0.0, tolerance=ROUNDING, seed="'Need other method than forward Euler'"),
        check(f"RK4 is not amplifying for h·ρ ≤ {RK4_SAFE:g} (|R(iy)|² = 1 − y⁶/72 + y⁸/576 ≤ 1 for y ≤ 2√2)",
              f"max over h·ρ ≤ {RK4_SAFE:g} of the integrated amplification, per matrix; target max |R| = 1 "
              "(at y → 0)",
              per_matrix(d["rk4_empirical"][:, safe].amax(-1)), target=1.0, tolerance=ROUNDING,
              seed="not stated ('Need other method')"),
        check("RK4 amplifies beyond h·ρ = 2√2",
              f"integrated amplification at h·ρ = {h_max:g}, per matrix; target |R({h_max:g}i)|",
              per_matrix(d["rk4_empirical"][:, -1]),
              target=math.sqrt(1 - h_max**6 / 72 + h_max**8 / 576), tolerance=ROUNDING, seed="not stated"),
        check("leapfrog on Y'' = −AᵀA Y is bounded for h·ρ ≤ 2 (|T_j(1 − (hω)²/2)| ≤ 1)",
              f"max over h·ρ ≤ {LEAPFROG_LIMIT:g} and j ≤ N of ‖Y_j‖₂/‖Y_0‖₂, per matrix; target 1 (j = 0)",
              per_matrix(d["leapfrog_max_norm"][:, bounded].amax(-1)), target=1.0, tolerance=ROUNDING,
              seed="not stated"),
        check("leapfrog grows beyond h·ρ = 2",
              f"(max_j ‖Y_j‖₂/‖Y_0‖₂)^(1/N) at h·ρ = {h_max:g}, per matrix; target T_N({1 - h_max**2 / 2:g})^(1/N)",
              per_matrix(d["leapfrog_empirical"][:, -1]), target=lf_max, tolerance=ROUNDING, seed="not stated"),
        check("the integrated linear amplifications equal the stability functions (a check of the integrators)",
              "max relative disagreement: Euler exact vs √(1 + h²), Euler, RK4 integrated vs exact, "
              "leapfrog vs Chebyshev; target 0",
              list(agreement.values()), target=0.0, tolerance=ROUNDING, seed="not stated"),
        check("nonlinear dY/dt = tanh(AY): forward Euler grows more than RK4 at every h",
              "max over h of RK4 / Euler amplification, per matrix; claimed side < 1, ≥ 0 (interval [0, 1])",
              per_matrix(ratio.amax(-1)), target=0.5, tolerance=0.5, seed="not stated"),
    ]
