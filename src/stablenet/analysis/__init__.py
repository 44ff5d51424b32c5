"""Stability analysis of ODE networks (usable on any ODEBlock or trained model).

* :mod:`.stability` — amplification factors and stability regions of every integrator;
* :mod:`.jacobian` — per-layer Jacobians ∂f/∂Y along the trajectory (torch.func), eigenvalues,
  h·λ against the region, per-layer and per-network summaries;
* :mod:`.sensitivity` — forward sensitivity against depth, random and worst-case directions;
* :mod:`.landscape` — loss landscapes: filter-normalized random directions, 2-D surfaces and 1-D
  slices (Li et al. 2018), curvature measures;
* :mod:`.report` — ``stablenet analyze RUN_DIR``.
"""

from .landscape import loss_slice_1d, loss_surface_2d, random_direction, surface_curvature
from .jacobian import LayerJacobians, layer_jacobians, stability_summary, summarize
from .sensitivity import forward_sensitivity, worst_direction
from .stability import amplification, boundary_locus, draw_region, is_stable

__all__ = [
    "LayerJacobians", "layer_jacobians", "stability_summary", "summarize", "forward_sensitivity", "worst_direction",
    "amplification", "boundary_locus", "draw_region", "is_stable",
    "random_direction", "loss_surface_2d", "loss_slice_1d", "surface_curvature",
]
