"""Stability analysis of ODE networks (usable on any ODEBlock or trained model).

* :mod:`.stability` — amplification factors and stability regions of every integrator;
* :mod:`.jacobian` — per-layer Jacobians ∂f/∂Y along the trajectory (torch.func), eigenvalues,
  h·λ against the region, per-layer and per-network summaries;
* :mod:`.sensitivity` — forward sensitivity against depth, random and worst-case directions;
* :mod:`.report` — ``stablenet analyze RUN_DIR``.
"""

from .jacobian import LayerJacobians, layer_jacobians, stability_summary
from .sensitivity import forward_sensitivity, worst_direction
from .stability import amplification, boundary_locus, draw_region, is_stable

__all__ = [
    "LayerJacobians", "layer_jacobians", "stability_summary", "forward_sensitivity", "worst_direction",
    "amplification", "boundary_locus", "draw_region", "is_stable",
]
