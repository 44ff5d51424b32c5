"""Seed 003 (Gonzalez & Mang), Fig. 2: phase planes of forward propagation.

N = 21 identical layers, h = 0.1, tanh, b = 0, features y1 = (0.1, 0.1), y2 = −y1,
y3 = (0, 0.5), forward Euler with K₊ (features pushed apart), K₋ (features collapse), K₀
(distances kept), and the antisymmetric versions ½(K − Kᵀ) of K₊ and K₋ (stable).  Note that
½(K₊ − K₊ᵀ) = ½(K₋ − K₋ᵀ) = K₀, so both antisymmetric panels show the K₀ dynamics; forward
Euler still grows them slowly, like (1 + h²)^(N/2) = 1.11.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ... import Antisymmetric, ODEBlock, SingleLayer
from ..io import pyplot, save_figure, write_json

SUMMARY = "seed 003 Fig 2: forward Euler with K+, K-, K0 and antisymmetric versions (phase planes)"

H = 0.1
FEATURES = [[0.1, 0.1], [-0.1, -0.1], [0.0, 0.5]]
KERNELS = {
    "K_plus": [[2.0, -2.0], [0.0, 2.0]],
    "K_minus": [[-2.0, 0.0], [2.0, -2.0]],
    "K_zero": [[0.0, -1.0], [1.0, 0.0]],
}
def euler_paths(K, antisymmetric: bool, steps: int = 21) -> torch.Tensor:
    """States (N + 1, 3, 2) of the three features through N identical forward-Euler layers."""
    dynamics = (Antisymmetric(2) if antisymmetric else SingleLayer(2)).double()
    with torch.no_grad():
        weight = dynamics.parametrizations.K.original if antisymmetric else dynamics.K
        weight.copy_(torch.tensor(K, dtype=torch.float64)[None])
        dynamics.b.zero_()
        block = ODEBlock(dynamics, T=H * steps, steps=steps, method="euler")
        return block(torch.tensor(FEATURES, dtype=torch.float64), return_states=True)


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

    results = {
        "experiment": "phase-plane",
        "claims": {
            "K_plus_spreads": min(euler["K_plus"]["distance_ratio"]) > 1,
            "K_minus_contracts": max(euler["K_minus"]["distance_ratio"]) < 1,
            "K_zero_keeps_distances_within_12_percent": max(abs(r - 1) for r in euler["K_zero"]["distance_ratio"]) < 0.12,
            "antisymmetric_bounded": all(euler[f"antisymmetric_{k}"]["max_norm_ratio"] < 1.12
                                         for k in ("K_plus", "K_minus")),
        },
        "euler": euler,
        "figures": ["phase_plane.png"],
    }
    write_json(out_dir / "results.json", results)
    return results
