"""Plain descriptions of networks, and the one place where their names become torch modules.

A spec is a frozen dataclass of plain values: names of the registries (dynamics, integrator,
gradient mode), numbers, and mappings of options.

==================  ===========================================================================
``BlockSpec``       one :class:`~stablenet.block.ODEBlock`: dynamics name, width and options,
                    T, steps, nt (default: steps), method, controls, gradient mode and its options
``DenseNetSpec``    an :class:`~stablenet.models.ODEClassifier`: in_features, n_classes, opening,
                    its BlockSpecs
``ConvNetSpec``     a :class:`~stablenet.conv_models.ConvODENet` (in :mod:`stablenet.conv_models`;
                    its flat keys make one BlockSpec per stage, :meth:`BlockSpec.from_flat`)
==================  ===========================================================================

Constructing a spec validates it, with the library's own rules and none of its own: the
dynamics' constructor (:meth:`~stablenet.dynamics.Dynamics.check_options`, which allocates no
weights), the pairing rule (:func:`stablenet.block.check_compatible`) and the gradient mode's
check (:meth:`~stablenet.gradients.GradientMode.check`).  Every error is an
:class:`~stablenet._checks.ArgumentError` whose ``argument`` is the spec's field or option it is
about, so the configuration file reports it under its own key.  ``spec.build()`` makes the module
(initialized from torch's global random state: seed before calling).

    >>> spec = BlockSpec("antisymmetric", width=4, T=1.0, steps=8, method="rk4", options={"gamma": 0.1})
    >>> block = spec.build()          # ODEBlock(Antisymmetric(4, gamma=0.1, nt=8), T=1.0, steps=8, …)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from typing import Any

from . import _checks
from .block import ODEBlock, check_compatible
from .dynamics import DYNAMICS, dynamics_name
from .gradients import GradientMode, make_gradient_mode
from .gradients import available as gradient_modes
from .integrators import get_integrator
from .models import OPENINGS, ODEClassifier
from .timegrid import INTERPOLATIONS

ArgumentError = _checks.ArgumentError
"""``ArgumentError(argument, message)``: a ``ValueError`` that knows which argument it is about
(``argument``: a parameter or spec field name such as ``"method"``), so that a caller can report
it under its own name for that argument (the configuration file: ``model.blocks.0.method``).
The spec checks raise it; defined in ``stablenet._checks``."""


@contextmanager
def argument(name: str):
    """Re-raise a ``ValueError`` inside the block as an :class:`ArgumentError` for ``name``
    (one that already names its argument passes unchanged)."""
    try:
        yield
    except ArgumentError:
        raise
    except ValueError as error:
        raise ArgumentError(name, str(error)) from None


@dataclass(frozen=True)
class BlockSpec:
    """One ODE block, by name.

    ``dynamics`` is a name of :data:`stablenet.dynamics.DYNAMICS`, built with ``width`` and the
    dynamics ``options`` (``activation``, ``normalization``, ``hidden``, ``gamma``, …: an option
    another dynamics takes may be given at its unset value, see
    :meth:`~stablenet.dynamics.Dynamics.from_options`); ``nt`` control points (``None``: one per
    state step, nt = steps, the ResNet); ``method`` an integrator name; ``gradient`` a gradient
    mode name with ``gradient_options`` in their flat form (``{"adjoint_steps": 64}``, see
    :func:`stablenet.gradients.option_keys`).
    """

    dynamics: str
    width: int
    T: float
    steps: int
    method: str
    nt: int | None = None
    controls: str = "constant"
    options: Mapping[str, Any] = field(default_factory=dict)
    gradient: str = "autograd"
    gradient_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", dict(self.options))
        object.__setattr__(self, "gradient_options", dict(self.gradient_options))
        with argument("dynamics"):
            cls = DYNAMICS[_checks.choice("dynamics", self.dynamics, list(DYNAMICS))]
        with argument("T"):
            _checks.positive_float("T", self.T)
        with argument("steps"):
            _checks.positive_int("steps", self.steps)
        with argument("nt"):  # the default nt = steps lives here and nowhere else
            object.__setattr__(self, "nt", self.steps if self.nt is None else _checks.positive_int("nt", self.nt))
        with argument("method"):
            integrator = get_integrator(self.method)
        with argument("controls"):
            _checks.choice("controls", self.controls, INTERPOLATIONS)
        cls.check_options(self.width, **self.options)
        check_compatible(cls, integrator)
        with argument("gradient"):
            self.gradient_mode().check(cls, integrator)

    @classmethod
    def from_flat(cls, keys: Mapping[str, Any]) -> BlockSpec:
        """A spec from one flat table of keys, as a config file's block writes them: the fields
        of this class, the gradient modes' options ``<mode>_<option>`` (``adjoint_steps``), and
        every other key a dynamics option."""
        own = {f.name for f in fields(cls)} - {"options", "gradient_options"}
        modes = tuple(f"{m}_" for m in gradient_modes())
        rest = {k: v for k, v in keys.items() if k not in own}
        return cls(**{k: v for k, v in keys.items() if k in own},
                   options={k: v for k, v in rest.items() if not k.startswith(modes)},
                   gradient_options={k: v for k, v in rest.items() if k.startswith(modes)})

    def gradient_mode(self) -> GradientMode:
        """A new instance of the block's gradient mode (each block needs its own)."""
        try:
            return make_gradient_mode(self.gradient, **self.gradient_options)
        except ValueError as error:
            raise ArgumentError(self._gradient_argument(), str(error)) from None

    def _gradient_argument(self) -> str:
        """What a failed :meth:`gradient_mode` is about: the first option refused on its own, else
        the mode."""
        if self.gradient in gradient_modes():
            for key, value in self.gradient_options.items():
                try:
                    make_gradient_mode(self.gradient, **{key: value})
                except ValueError:
                    return key
        return "gradient"

    def with_grid(self, steps: int, nt: int | None = None) -> BlockSpec:
        """The same block on another grid (a multilevel level): ``steps`` state steps, ``nt``
        control points (default: steps)."""
        return replace(self, steps=steps, nt=nt)

    def build(self) -> ODEBlock:
        """The block (weights drawn from torch's global random state)."""
        dynamics = DYNAMICS[self.dynamics].from_options(self.width, nt=self.nt, **self.options)
        return ODEBlock(dynamics, T=self.T, steps=self.steps, method=self.method, controls=self.controls,
                        gradient=self.gradient_mode())


@dataclass(frozen=True)
class DenseNetSpec:
    """An :class:`~stablenet.models.ODEClassifier` on feature vectors: an ``opening``
    (``"linear"`` or ``"duplicate"``) to the first block's width, the ``blocks`` (dense dynamics,
    joined by linear maps where widths change) and a linear classifier onto ``n_classes``."""

    in_features: int
    n_classes: int
    blocks: Sequence[BlockSpec]
    opening: str = "linear"

    def __post_init__(self) -> None:
        with argument("in_features"):
            _checks.positive_int("in_features", self.in_features)
        with argument("n_classes"):
            _checks.positive_int("n_classes", self.n_classes)
        with argument("opening"):
            _checks.choice("opening", self.opening, OPENINGS)
        blocks = (self.blocks,) if isinstance(self.blocks, BlockSpec) else tuple(self.blocks)
        if not blocks or not all(isinstance(b, BlockSpec) for b in blocks):
            raise TypeError(f"blocks must be a non-empty sequence of BlockSpecs, got {self.blocks!r}")
        for k, block in enumerate(blocks):
            if DYNAMICS[block.dynamics].feature_dim != -1:
                raise ArgumentError("blocks", f"blocks[{k}] has dynamics {dynamics_name(DYNAMICS[block.dynamics])} "
                                              f"on images; a dense network needs dense dynamics (feature vectors)")
        object.__setattr__(self, "blocks", blocks)

    def with_grids(self, grids: Sequence[tuple[int, int]]) -> DenseNetSpec:
        """The same network with block k on the grid ``grids[k]`` = (steps, nt)."""
        if len(grids) != len(self.blocks):
            raise ValueError(f"grids: {len(grids)} (steps, nt) pairs for {len(self.blocks)} blocks")
        return replace(self, blocks=tuple(b.with_grid(*grid) for b, grid in zip(self.blocks, grids)))

    def build(self) -> ODEClassifier:
        """The classifier (weights drawn from torch's global random state)."""
        return ODEClassifier(self.in_features, self.n_classes, [b.build() for b in self.blocks],
                             opening=self.opening)


__all__ = ["ArgumentError", "BlockSpec", "DenseNetSpec", "argument"]
