"""stablenet: deep neural networks designed, trained and analysed as discretized ODEs.

    dY/dt = f(Y, θ(t)),  Y(0) = Y0,  t ∈ [0, T]

A network is four separable choices: the dynamics f (:mod:`stablenet.dynamics`), the integrator
(:mod:`stablenet.integrators`), the time grids (:mod:`stablenet.timegrid`) and the way gradients
are computed (:mod:`stablenet.gradients`).  :class:`ODEBlock` composes them into a
``torch.nn.Module``;
:func:`integrate` steps any right-hand side func(t, y).  Layer-parallel training
(:mod:`stablenet.parallel`, ``gradient="mgrit"``) is imported when first used.
"""

from .block import ODEBlock
from .dynamics import (Antisymmetric, DoubleLayer, Dynamics, Hamiltonian, Parabolic,
                       SingleLayer)
from .functional import integrate
from .gradients import Adjoint, Autograd, Checkpoint, GradientMode, Reversible
from .integrators import Integrator, available, get_integrator
from .models import DuplicateFeatures, ODEClassifier, get_loss, least_squares, softmax_cross_entropy
from .timegrid import ControlGrid, StateGrid

__version__ = "0.1.0"

__all__ = [
    "ODEBlock", "integrate", "Integrator", "available", "get_integrator",
    "Dynamics", "SingleLayer", "DoubleLayer", "Antisymmetric", "Parabolic", "Hamiltonian",
    "ControlGrid", "StateGrid", "ODEClassifier", "DuplicateFeatures", "get_loss",
    "softmax_cross_entropy", "least_squares", "GradientMode", "Autograd", "Checkpoint",
    "Reversible", "Adjoint", "__version__",
]
