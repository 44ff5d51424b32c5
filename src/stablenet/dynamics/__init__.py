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

:data:`DYNAMICS` is the registry of names (what a config file and :class:`stablenet.specs.BlockSpec`
say); a new dynamics is its own module plus one :func:`register` (here, or by the user).  Every
dynamics builds itself from a mapping of options (:meth:`Dynamics.from_options`), so nothing that
builds networks needs to know the names.
"""

from torch.nn.utils import parametrize

from .antisymmetric import Antisymmetric, AntisymmetricKernel
from .base import ACTIVATIONS, Dynamics, smooth_relu
from .conv import (ConvAntisymmetric, ConvDynamics, ConvHamiltonian, ConvParabolic, ConvSecondOrder,
                   ConvSingleLayer)
from .hamiltonian import Hamiltonian
from .layers import DoubleLayer, Parabolic, SingleLayer

DYNAMICS: dict[str, type[Dynamics]] = {
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



def register(name: str, cls: type[Dynamics] | None = None):
    """Make a :class:`Dynamics` subclass available by ``name``: ``register("mine", Mine)``, or as a
    class decorator ``@register("mine")``.  A name already taken by another class is refused."""
    def add(cls: type[Dynamics]) -> type[Dynamics]:
        if not (isinstance(cls, type) and issubclass(cls, Dynamics)):
            raise TypeError(f"dynamics {name!r} must be a Dynamics subclass, got {cls!r}")
        if DYNAMICS.get(name, cls) is not cls:
            raise ValueError(f"dynamics name {name!r} is taken by {DYNAMICS[name].__name__}")
        DYNAMICS[name] = cls
        return cls
    return add if cls is None else add(cls)


def dynamics_name(dynamics: Dynamics | type[Dynamics]) -> str:
    """How messages name a dynamics class or instance: its registry name quoted (``'single'``), or
    its class name if it is not registered."""
    cls = dynamics if isinstance(dynamics, type) else type(dynamics)
    if not isinstance(dynamics, type) and parametrize.is_parametrized(dynamics):
        cls = cls.__bases__[0]  # torch parametrizations wrap the class in a subclass
    names = [n for n, c in DYNAMICS.items() if c is cls]
    return repr(names[0]) if names else cls.__name__


__all__ = [
    "Dynamics", "SingleLayer", "DoubleLayer", "Antisymmetric", "AntisymmetricKernel", "Parabolic",
    "Hamiltonian", "ACTIVATIONS", "DYNAMICS", "register", "dynamics_name", "smooth_relu", "ConvDynamics", "ConvSingleLayer",
    "ConvParabolic", "ConvSecondOrder", "ConvAntisymmetric", "ConvHamiltonian",
]
