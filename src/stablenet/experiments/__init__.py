"""Seed experiments, one module each, run by ``stablenet experiment NAME``.

Each module has a one-line ``SUMMARY`` and ``run(out_dir, quick=False) -> dict`` that writes its
figures (PNG) and ``results.json`` into ``out_dir`` and returns the results.
"""

from __future__ import annotations

from . import antisymmetric_euler, eigenvalues, loss_landscape, objective_landscape, phase_plane, verlet_longterm

EXPERIMENTS = {
    "phase-plane": phase_plane,
    "verlet-longterm": verlet_longterm,
    "objective-landscape": objective_landscape,
    "antisymmetric-euler": antisymmetric_euler,
    "eigenvalues": eigenvalues,
    "loss-landscape": loss_landscape,
}

__all__ = ["EXPERIMENTS"]
