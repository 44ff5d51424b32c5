"""Seed 003 (Gonzalez & Mang), Fig. 3: long-term behaviour of a Hamiltonian network under Verlet.

dy/dt = tanh(K z), dz/dt = −tanh(Kᵀ y) with K = K_vᵀ, K_v = (k1 k2), k1 = (2, −1, 0),
k2 = (1, 2, 1): the three seed-003 features y ∈ R² and z ∈ R³ starting at Z_{−1/2} = 0, h = 0.1,
b = 0, N = 20, 50, 100, 200, 500, 1000 identical layers.  The seed's claim: with constant kernels
the features neither explode nor vanish, for short (N = 20) and long (N = 1000) networks alike.
(The seed does not say which stream is 2-D; we take the features as y, so K is 2 × 3.)
"""

from __future__ import annotations

from pathlib import Path

import torch

from ... import Hamiltonian, ODEBlock
from ..io import pyplot, save_figure, write_json
from .phase_plane import FEATURES, H, plot_paths

SUMMARY = "seed 003 Fig 3: Hamiltonian network with K_v under Verlet for N = 20 ... 1000 layers"

K_V = [[2.0, 1.0], [-1.0, 2.0], [0.0, 1.0]]  # columns k1 = (2, −1, 0), k2 = (1, 2, 1)
STEPS = (20, 50, 100, 200, 500, 1000)


def verlet_paths(steps: int) -> torch.Tensor:
    """y-states (N + 1, 3, 2) of the Hamiltonian network with K_v, Z_{−1/2} = 0."""
    dynamics = Hamiltonian(2, 3).double()
    with torch.no_grad():
        dynamics.K.copy_(torch.tensor(K_V, dtype=torch.float64).T[None])
        dynamics.b_y.zero_()
        dynamics.b_z.zero_()
        block = ODEBlock(dynamics, T=H * steps, steps=steps, method="verlet")
        return block(torch.tensor(FEATURES, dtype=torch.float64), return_states=True)


def run(out_dir: str | Path, quick: bool = False) -> dict:
    plt = pyplot()

    out_dir = Path(out_dir)
    steps = STEPS[:3] if quick else STEPS
    paths = {n: verlet_paths(n) for n in steps}
    initial = torch.tensor(FEATURES, dtype=torch.float64).norm(dim=-1)
    numbers = {}
    for n, ys in paths.items():
        norms = ys.norm(dim=-1)
        tail = norms[-(n // 10 + 1):]
        numbers[str(n)] = {"max_norm": float(norms.max()), "max_norm_over_initial": float(norms.max() / initial.max()),
                           "final_norms": norms[-1].tolist(), "min_tail_peak": float(tail.amax(0).min())}

    fig, axes = plt.subplots(2, 3, figsize=(10, 6.5))
    for ax, n in zip(axes.flat, steps):
        plot_paths(ax, paths[n], f"Verlet, N = {n}")
    for ax in axes.flat[len(steps):]:
        ax.axis("off")
    fig.suptitle("Seed 003 Fig. 3: Hamiltonian network with K_v, h = 0.1, Z_{-1/2} = 0")
    fig.tight_layout()
    save_figure(fig, out_dir / "verlet_longterm.png", dpi=110)

    results = {
        "experiment": "verlet-longterm",
        "claims": {
            "features_do_not_explode": all(v["max_norm_over_initial"] < 1.2 for v in numbers.values()),
            # over the last tenth of the layers every feature still reaches a norm above 0.05
            "features_do_not_vanish": all(v["min_tail_peak"] > 0.05 for v in numbers.values()),
        },
        "networks": numbers,
        "figures": ["verlet_longterm.png"],
    }
    write_json(out_dir / "results.json", results)
    return results
