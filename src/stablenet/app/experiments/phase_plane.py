"""Seed 003 (Gonzalez & Mang), Fig. 2: phase planes of forward propagation.

**The seed's setup.**  Seed 003 (../shared/seeds/003_823b49f8770ebaad.txt), "Results", "Explicit
Euler method": "three networks consisting of N = 21 identical layers, i.e., on each layer we use
the activation function f = tanh, h = 0.1, b = 0, and a constant weight matrix", K₊ = (2 −2; 0 2),
K₋ = (−2 0; 2 −2), K₀ = (0 −1; 1 0), features y1 = (0.1, 0.1)ᵀ, y2 = −y1, y3 = (0, 0.5)ᵀ, and
"an antisymmetric discretization for K₊ in 2(e) and K₋ in 2(f)".  Its observations: with K₊ "the
features diverge from the origin and one another", with K₋ "the differences between the features
are annihilated", with K₀ "the features remain well separated and distances between them are
preserved", and for (e), (f) "we attain a stable behavior".

**Ours.**  The same networks, forward Euler in float64 through stablenet's `ODEBlock`; the
antisymmetric layers integrate ½(K − Kᵀ).  Note that ½(K₊ − K₊ᵀ) = ½(K₋ − K₋ᵀ) = K₀, so both
antisymmetric panels show the K₀ dynamics.  Forward Euler on K₀ (eigenvalues ±i) grows every
norm in the linear regime by |1 + ih| = √(1 + h²) per layer, (1 + h²)^(N/2) = 1.110 over 21
layers; the ODE's own flow (RK4 with 100 × 21 steps) is recorded for comparison.  **Deviations:**
none in the setup; the seed gives no numbers, so each observation is turned into a statistic
(below), and two checks are added: Euler's per-layer growth on K₀ against |1 + ih|, also for
features scaled by 10⁻⁴ (the linear regime, where it must hold to rounding).

**Claims and the rule** (`verdict.check`: supported if every value is within the tolerance of
the target).  A one-sided claim "x > a" (or "x < a") about a quantity with a priori bounds
[lo, hi] is written as the interval [a, hi] (or [lo, a]): target its midpoint, tolerance its
half-width (an end value, a tie, would count as supported; the values show the margin).
K₊ spreads: the three distance ratios |Δ_N|/|Δ_0| lie in [1, 1 + 2Nh√2/min|Δ_0|] (|tanh| ≤ 1, so
a feature moves at most h√2 per layer).  K₋ contracts: the ratios lie in [0, 1].  K₀, Euler's
analytic growth: (|y1_N|/|y1_0|)^(1/N) − 1 equals √(1 + h²) − 1 within h·max_j|y1_j|²/3 (tanh(u) =
u(1 − δ) with 0 ≤ δ ≤ u²/3 moves each layer's output by at most h|y|³/3 from the linear step),
and within 1e-9 for the scaled features.  K₀, the seed's "distances preserved": the ratios equal
1 within 5 %, more than the ≤ 4 % by which the exact tanh flow changes them (measured
`exact_flow_K_zero_distance_ratio`), less than Euler's 11 %.  (e), (f) are the K₀ dynamics:
their states equal K₀'s within 1e-12.  (e), (f) "stable": the features' norms max_j|y_j|/|y_0|
equal 1 within the same 5 % (the exact flow: `exact_flow_K_zero_max_norm_ratio`).

**Finding.**  The last two seed claims are refuted by the mathematics they rest on: forward
Euler adds |1 + ih| per layer on an imaginary eigenvalue, so over 21 layers the K₀ (= (e), (f))
distances and norms grow by up to 11 % (measured ×1.110 and ×1.112 for the pairs with y1, y2 and
y2, y3), outside what "preserved" can mean; it is what seeds 000/001 state ("Need other method
than forward Euler").  Slow growth it is, not divergence: K₊ grows distances 2.8–15 times.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from ... import Antisymmetric, ODEBlock, SingleLayer
from ..io import pyplot, save_figure, write_json
from .verdict import check

SUMMARY = "seed 003 Fig 2: forward Euler with K+, K-, K0 and antisymmetric versions (phase planes)"

H = 0.1
FEATURES = [[0.1, 0.1], [-0.1, -0.1], [0.0, 0.5]]
KERNELS = {
    "K_plus": [[2.0, -2.0], [0.0, 2.0]],
    "K_minus": [[-2.0, 0.0], [2.0, -2.0]],
    "K_zero": [[0.0, -1.0], [1.0, 0.0]],
}
N_LAYERS = 21
PRESERVED_TOLERANCE = 0.05     # "distances preserved": within 5 % (exact flow ≤ 4 %, Euler 11 %)
ROUNDING = 1e-12               # float64 rounding over 21 layers
LINEAR_SCALE = 1e-4            # the features scaled into tanh's linear regime


def euler_paths(K, antisymmetric: bool, steps: int = N_LAYERS, scale: float = 1.0,
                method: str = "euler") -> torch.Tensor:
    """States (steps + 1, 3, 2) of the three features (times ``scale``) through ``steps``
    identical layers of step h (forward Euler; ``method="rk4"`` with a smaller h for the flow)."""
    dynamics = (Antisymmetric(2) if antisymmetric else SingleLayer(2)).double()
    with torch.no_grad():
        weight = dynamics.parametrizations.K.original if antisymmetric else dynamics.K
        weight.copy_(torch.tensor(K, dtype=torch.float64)[None])
        dynamics.b.zero_()
        T = H * N_LAYERS if method != "euler" else H * steps
        block = ODEBlock(dynamics, T=T, steps=steps, method=method)
        return block(scale * torch.tensor(FEATURES, dtype=torch.float64), return_states=True)


def _distance_ratios(paths: torch.Tensor) -> list[float]:
    i, j = torch.triu_indices(3, 3, offset=1)
    first, last = torch.cdist(paths[0], paths[0]), torch.cdist(paths[-1], paths[-1])
    return (last[i, j] / first[i, j]).tolist()


def plot_paths(ax, paths, title):
    colors = ["tab:blue", "tab:orange", "gold"]
    for k in range(paths.shape[1]):
        ax.plot(paths[:, k, 0], paths[:, k, 1], "-", color=colors[k], lw=1)
        ax.plot(paths[0, k, 0], paths[0, k, 1], "o", color=colors[k], mfc="none")
        ax.plot(paths[-1, k, 0], paths[-1, k, 1], "o", color=colors[k])
    ax.set_title(title, fontsize=9)
    ax.set_aspect("equal", adjustable="datalim")
    ax.axhline(0, color="0.85", lw=0.5, zorder=0)
    ax.axvline(0, color="0.85", lw=0.5, zorder=0)


def run(out_dir: str | Path, quick: bool = False) -> dict:
    plt = pyplot()

    out_dir = Path(out_dir)
    cases = {name: euler_paths(K, False) for name, K in KERNELS.items()}
    cases.update({f"antisymmetric_{name}": euler_paths(KERNELS[name], True) for name in ("K_plus", "K_minus")})
    euler = {
        name: {
            "distance_ratio": _distance_ratios(p),  # pairs (y1,y2), (y1,y3), (y2,y3): |Δ_N| / |Δ_0|
            "max_norm_ratio": float((p.norm(dim=-1).max(0).values / p[0].norm(dim=-1)).max()),
        }
        for name, p in cases.items()
    }
    fig, axes = plt.subplots(2, 3, figsize=(10, 6.5))
    plot_paths(axes[0, 0], cases["K_zero"][:1], "(a) initial features")
    for ax, (name, label) in zip(axes.flat[1:], [("K_plus", "(b) Euler, K+"), ("K_minus", "(c) Euler, K-"),
                                                  ("K_zero", "(d) Euler, K0"),
                                                  ("antisymmetric_K_plus", "(e) antisymmetric K+"),
                                                  ("antisymmetric_K_minus", "(f) antisymmetric K-")]):
        plot_paths(ax, cases[name], f"{label}: dist x{min(euler[name]['distance_ratio']):.2g}"
                                     f"-{max(euler[name]['distance_ratio']):.2g}")
    fig.suptitle("Seed 003 Fig. 2: N = 21 layers, h = 0.1, tanh (open: start, filled: layer 21)")
    fig.tight_layout()
    save_figure(fig, out_dir / "phase_plane.png", dpi=110)

    records, extra = claims(cases, euler)
    results = {
        "experiment": "phase-plane",
        "claims": records,
        "euler": euler,
        **extra,
        "figures": ["phase_plane.png"],
        "quick": quick,
    }
    write_json(out_dir / "results.json", results)
    return results


def _pair_bound(features: torch.Tensor) -> float:
    """1 + 2Nh√2 / min|Δ_0|: no distance ratio can exceed it, each feature moving ≤ h√2 per layer."""
    i, j = torch.triu_indices(3, 3, offset=1)
    return 1 + 2 * N_LAYERS * H * math.sqrt(2) / float(torch.cdist(features, features)[i, j].min())


def claims(cases: dict, euler: dict) -> tuple[list[dict], dict]:
    """The verdict records (module docstring: statistics, targets, tolerances) and their extra numbers."""
    growth = math.sqrt(1 + H**2)                                   # |1 + ih|: Euler per layer on K₀
    k0 = cases["K_zero"]
    y1 = k0[:, 0].norm(dim=-1)
    per_layer = float(y1[-1] / y1[0]) ** (1 / N_LAYERS)
    tanh_tolerance = H * float(y1.max()) ** 2 / 3                 # the tanh correction's bound per layer
    small = euler_paths(KERNELS["K_zero"], False, scale=LINEAR_SCALE)[:, 0].norm(dim=-1)
    per_layer_linear = float(small[-1] / small[0]) ** (1 / N_LAYERS)
    linear_tolerance = max(1e-9, H * float(small.max()) ** 2 / 3)
    flow = euler_paths(KERNELS["K_zero"], False, steps=100 * N_LAYERS, method="rk4")
    flow_dist = _distance_ratios(flow)
    flow_norm = float((flow.norm(dim=-1).max(0).values / flow[0].norm(dim=-1)).max())
    bound = _pair_bound(cases["K_zero"][0])
    same = [float((cases[f"antisymmetric_{k}"] - k0).abs().max()) for k in ("K_plus", "K_minus")]
    records = [
        check("Fig. 2(b), K+: 'the features diverge from the origin and one another'",
              f"|Δ_N|/|Δ_0| of the pairs (y1,y2), (y1,y3), (y2,y3); claimed side > 1, a priori ≤ {bound:.4g} "
              "(interval [1, bound])",
              euler["K_plus"]["distance_ratio"], target=(1 + bound) / 2, tolerance=(bound - 1) / 2,
              seed="'diverge ... into opposite directions' (Fig. 2(b), no number)"),
        check("Fig. 2(c), K-: 'the differences between the features are annihilated'",
              "|Δ_N|/|Δ_0| of the three pairs; claimed side < 1, a priori ≥ 0 (interval [0, 1])",
              euler["K_minus"]["distance_ratio"], target=0.5, tolerance=0.5,
              seed="'accumulate in the center' (Fig. 2(c), no number)"),
        check("forward Euler on K0 (eigenvalues ±i) grows |y| by |1 + ih| = √(1 + h²) per layer",
              "(|y1_N|/|y1_0|)^(1/N) − 1; target √(1 + h²) − 1, tolerance h·max_j|y1_j|²/3 (the tanh "
              "correction)",
              [per_layer - 1], target=growth - 1, tolerance=tanh_tolerance,
              seed="not stated (seeds 000/001: 'eigenvalues of Jacobian are imaginary')"),
        check("the same in the linear regime (features × 1e-4): exactly |1 + ih| per layer",
              "(|y1_N|/|y1_0|)^(1/N) − 1, features scaled by 1e-4; target √(1 + h²) − 1",
              [per_layer_linear - 1], target=growth - 1, tolerance=linear_tolerance,
              seed="not stated"),
        check("Fig. 2(d), K0: 'distances between them are preserved'",
              f"|Δ_N|/|Δ_0| of the three pairs; target 1 within {PRESERVED_TOLERANCE:g} (the exact flow: "
              f"{min(flow_dist):.3f}–{max(flow_dist):.3f}; Euler's linear growth (1 + h²)^(N/2) = "
              f"{growth ** N_LAYERS:.3f})",
              euler["K_zero"]["distance_ratio"], target=1.0, tolerance=PRESERVED_TOLERANCE,
              seed="'preserved' (Fig. 2(d), no number)"),
        check("Fig. 2(e, f): the antisymmetric versions of K+ and K- are the K0 dynamics (½(K − Kᵀ) = K0)",
              "max |states − states(K0)| for (e), (f)",
              same, target=0.0, tolerance=ROUNDING,
              seed="not stated"),
        check("Fig. 2(e, f): 'we attain a stable behavior' (the features' norms do not grow)",
              f"max_j |y_j|/|y_0| over the three features for (e), (f); target 1 within {PRESERVED_TOLERANCE:g} "
              f"(the exact flow: {flow_norm:.3f})",
              [euler[f"antisymmetric_{k}"]["max_norm_ratio"] for k in ("K_plus", "K_minus")],
              target=1.0, tolerance=PRESERVED_TOLERANCE,
              seed="'stable behavior' (Fig. 2(e, f), no number)"),
    ]
    extra = {"euler_growth_per_layer_analytic": growth, "euler_growth_over_N_analytic": growth ** N_LAYERS,
             "K_zero_y1_growth_per_layer": per_layer, "K_zero_y1_growth_per_layer_linear_regime": per_layer_linear,
             "tanh_tolerance_per_layer": tanh_tolerance,
             "exact_flow_K_zero_distance_ratio": flow_dist, "exact_flow_K_zero_max_norm_ratio": flow_norm}
    return records, extra
