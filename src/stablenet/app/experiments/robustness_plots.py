"""Figures of the robustness experiment (``robustness.py``): accuracy against ε, AUC and Lipschitz."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import pyplot, save_figure
from .robustness_study import ARCHITECTURES

COLORS = {"resnet": "black", "antisymmetric-rk4": "tab:red", "antisymmetric-euler": "tab:orange",
          "hamiltonian-verlet": "tab:blue", "parabolic-euler": "tab:green"}


def plot_problem(out_dir: Path, problem: dict, per_seed: dict, archs) -> list[str]:
    """``<part>_accuracy.png`` (mean accuracy against ε, min–max band over seeds; rows: depths,
    columns: attacks) and ``<part>_auc_lipschitz.png`` (per-seed AUC per attack and depth, and the
    empirical / certified Lipschitz constants).  Returns the file names."""
    plt = pyplot()
    name, depths, attacks = problem["name"], problem["depths"], problem["attacks"]
    fig, axes = plt.subplots(len(depths), len(attacks), figsize=(3.4 * len(attacks), 3.0 * len(depths)),
                             squeeze=False)
    for i, depth in enumerate(depths):
        for j, attack in enumerate(attacks):
            ax = axes[i, j]
            eps = np.asarray(problem.get("attack_eps", {}).get(attack, problem["eps"]))  # conv: AutoAttack's own
            for arch in archs:
                curves = np.asarray(per_seed[str(depth)][arch]["curves"][attack], dtype=float)
                if curves.size == 0:
                    continue
                ax.plot(eps, 100 * curves.mean(0), "o-", ms=3, color=COLORS[arch],
                        label=f"{ARCHITECTURES[arch]['label']} (n = {len(curves)})")
                ax.fill_between(eps, 100 * curves.min(0), 100 * curves.max(0), color=COLORS[arch], alpha=0.12)
            ax.set_title(f"{name}, {depth} layers: {attack}", fontsize=9)
            ax.set_xlabel("ε"); ax.set_ylabel("accuracy (%)"); ax.set_ylim(-2, 102)
    axes[0, 0].legend(fontsize=6, loc="lower left")
    fig.suptitle(f"{name}: accuracy under perturbation (mean; band: min–max over seeds)", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    files = [f"{name}_accuracy.png"]
    save_figure(fig, out_dir / files[0], dpi=80)

    fig, axes = plt.subplots(1, len(attacks) + 1, figsize=(3.4 * (len(attacks) + 1), 3.6), squeeze=False)
    axes = axes[0]
    for k, depth in enumerate(depths):
        for j, attack in enumerate(attacks):
            for a, arch in enumerate(archs):
                v = 100 * np.asarray(per_seed[str(depth)][arch]["auc"][attack], dtype=float)
                x = a + (k - 0.5 * (len(depths) - 1)) * 0.3
                axes[j].plot(np.full(len(v), x), v, "o" if k == 0 else "s", ms=3, color=COLORS[arch], alpha=0.7)
                if len(v):
                    axes[j].plot([x - 0.12, x + 0.12], [v.mean()] * 2, color=COLORS[arch])
        for a, arch in enumerate(archs):
            x = a + (k - 0.5 * (len(depths) - 1)) * 0.3
            emp = np.asarray(per_seed[str(depth)][arch]["lipschitz_empirical"], dtype=float)
            cert = np.asarray([c for c in per_seed[str(depth)][arch]["lipschitz_certified"] if c is not None], float)
            axes[-1].plot(np.full(len(emp), x), emp, "o" if k == 0 else "s", ms=3, color=COLORS[arch])
            axes[-1].plot(np.full(len(cert), x), cert, "x", ms=4, color=COLORS[arch])
    short = [a.replace("antisymmetric", "anti").replace("-verlet", "").replace("-euler", "-E").replace("-rk4", "-RK4")
             for a in archs]
    for j, attack in enumerate(attacks):
        axes[j].set_title(f"AUC, {attack}\n(o: {depths[0]} layers" + (f", □: {depths[1]})" if len(depths) > 1 else ")"),
                          fontsize=9)
        axes[j].set_ylabel("AUC (mean accuracy over [0, ε_max], %)")
    axes[-1].set_yscale("log")
    axes[-1].set_title("Lipschitz constant input → logits\n(o/□ empirical, x certified bound)", fontsize=9)
    for ax in axes:
        ax.set_xticks(range(len(archs)), short, rotation=30, fontsize=7)
    fig.suptitle(f"{name}: per-seed AUC and Lipschitz constants", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    files.append(f"{name}_auc_lipschitz.png")
    save_figure(fig, out_dir / files[1], dpi=80)
    return files
