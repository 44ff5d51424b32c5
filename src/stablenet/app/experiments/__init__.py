"""Seed experiments, one module each, run by ``stablenet experiment NAME``.

Each module has a one-line ``SUMMARY`` and ``run(out_dir, quick=False) -> dict`` that writes its
figures (PNG) and ``results.json`` into ``out_dir`` and returns the results.
"""

from __future__ import annotations

from . import (adjoint_vs_discrete, antisymmetric_euler, discretization_impact, eigenvalues, loss_landscape, multilevel_newton,
               objective_landscape, phase_plane, rk4_vs_euler, robustness, state_layers, verlet_longterm)

EXPERIMENTS = {
    "phase-plane": phase_plane,
    "verlet-longterm": verlet_longterm,
    "objective-landscape": objective_landscape,
    "antisymmetric-euler": antisymmetric_euler,
    "state-layers": state_layers,
    "rk4-vs-euler": rk4_vs_euler,
    "discretization-impact": discretization_impact,
    "eigenvalues": eigenvalues,
    "loss-landscape": loss_landscape,
    "adjoint-vs-discrete": adjoint_vs_discrete,
    "multilevel-newton": multilevel_newton,
    "robustness": robustness,
}

__all__ = ["EXPERIMENTS"]
