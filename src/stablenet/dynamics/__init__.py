"""Dynamics f(Y, θ(t)): the "layer" of a network seen as an ODE.

==================  ===========================================  ==============================
class               f                                            stability
==================  ===========================================  ==============================
``SingleLayer``     σ(KY + b)                                    none by design
``DoubleLayer``     K₂ σ(K₁Y + b)                                none by design
``Antisymmetric``   σ(½(K − Kᵀ − γI)Y + b)                      eigenvalues near iℝ (γ ≥ 0)
``Parabolic``       −Kᵀ σ(KY + b)                                negative semidefinite Jacobian
``Hamiltonian``     y' = σ(Kz + b_y), z' = −σ(Kᵀy + b_z)        imaginary spectrum, two streams
==================  ===========================================  ==============================

Convolutional versions on images (batch, C, H, W) live in :mod:`.conv` (``conv_single``,
``conv_parabolic``, ``conv_second_order``, ``conv_antisymmetric``, ``conv_hamiltonian``).
"""

from .antisymmetric import Antisymmetric, AntisymmetricKernel
from .base import ACTIVATIONS, Dynamics, smooth_relu
from .conv import (ConvAntisymmetric, ConvDynamics, ConvHamiltonian, ConvParabolic, ConvSecondOrder,
                   ConvSingleLayer)
from .hamiltonian import Hamiltonian
from .layers import DoubleLayer, Parabolic, SingleLayer

DYNAMICS = {
    "single": SingleLayer,
    "double": DoubleLayer,
    "antisymmetric": Antisymmetric,
    "parabolic": Parabolic,
    "hamiltonian": Hamiltonian,
    "conv_single": ConvSingleLayer,
    "conv_parabolic": ConvParabolic,
    "conv_second_order": ConvSecondOrder,
    "conv_antisymmetric": ConvAntisymmetric,
    "conv_hamiltonian": ConvHamiltonian,
}

__all__ = [
    "Dynamics", "SingleLayer", "DoubleLayer", "Antisymmetric", "AntisymmetricKernel", "Parabolic",
    "Hamiltonian", "ACTIVATIONS", "DYNAMICS", "smooth_relu", "ConvDynamics", "ConvSingleLayer",
    "ConvParabolic", "ConvSecondOrder", "ConvAntisymmetric", "ConvHamiltonian",
]
