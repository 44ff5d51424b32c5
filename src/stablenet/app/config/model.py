"""``[model]``: a dense network (``kind = "dense"``, ``[[model.blocks]]``) or a convolutional one
(``kind = "conv"``), a pydantic union discriminated by ``model.kind``.

The tables only *carry* the keys: each converts itself to the library's plain description
(:class:`stablenet.specs.BlockSpec`, :class:`~stablenet.specs.DenseNetSpec`,
:class:`stablenet.conv_models.ConvNetSpec`) and validates by building it, so the rules (the
dynamics' options, the pairing of dynamics and method, the gradient mode's check, nt = steps)
live in the library, once.  A spec's :class:`~stablenet._checks.ArgumentError` names its key; the
error report puts it under the table's path (``model.blocks.0.method: …``).  The choices of
``dynamics``, ``method``, ``gradient`` and ``activation`` are the registries' live names.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import Field, field_validator, model_validator

from ...conv_models import ConvNetSpec
from ...dynamics import ACTIVATIONS, DYNAMICS
from ...dynamics.base import NORMALIZATIONS
from ...dynamics.conv import CONV_NORMALIZATIONS, ConvDynamics
from ...gradients import available as gradient_modes
from ...integrators import available as methods
from ...integrators import get_integrator, is_one_step
from ...models import OPENINGS
from ...specs import BlockSpec, DenseNetSpec
from ...timegrid import INTERPOLATIONS
from .base import MAX_COUNT, MAX_PIXELS, MAX_WIDTH, Strict, count_or_counts, is_count, one_of

#: gradient modes chosen by a table of their own rather than a block's ``gradient`` key
TABLE_MODES = {"mgrit": "[parallel]"}


def dense_dynamics() -> list[str]:
    return [name for name, cls in DYNAMICS.items() if cls.feature_dim == -1]


def conv_dynamics() -> list[str]:
    return [name for name, cls in DYNAMICS.items() if issubclass(cls, ConvDynamics)]


def block_gradients() -> list[str]:
    return [name for name in gradient_modes() if name not in TABLE_MODES]


def one_step_methods() -> list[str]:
    return [name for name in methods() if is_one_step(get_integrator(name))]


def _not_convolutional(value: Any) -> None:
    if isinstance(value, str) and value in conv_dynamics():
        raise ValueError(f"{value!r} is a convolutional dynamics; expected a dense one ({', '.join(dense_dynamics())}), "
                         f"or model.kind = 'conv' with model.dynamics")


DenseDynamicsName = one_of(dense_dynamics, refuse=_not_convolutional)
ConvDynamicsName = one_of(conv_dynamics)
MethodName = one_of(methods)
OneStepMethodName = one_of(one_step_methods)
GradientName = one_of(block_gradients)
ActivationName = one_of(lambda: ACTIVATIONS)
Controls = Literal[tuple(INTERPOLATIONS)]  # type: ignore[valid-type]
Opening = Literal[tuple(OPENINGS)]  # type: ignore[valid-type]
DenseNormalization = Literal[tuple(n for n in NORMALIZATIONS if n)]  # type: ignore[valid-type]
ConvNormalization = Literal[tuple(n or "none" for n in CONV_NORMALIZATIONS)]  # type: ignore[valid-type]


class BlockConfig(Strict):
    dynamics: DenseDynamicsName = Field("antisymmetric", description="right-hand side f(Y, θ)")
    width: int = Field(8, ge=1, le=MAX_WIDTH, description="feature width of the block (y-stream for hamiltonian)")
    width_z: Optional[int] = Field(None, ge=1, le=MAX_WIDTH,
                                   description="z-stream width (hamiltonian only; default width)")
    hidden: Optional[int] = Field(None, ge=1, le=MAX_WIDTH,
                                  description="inner width of double / parabolic layers (default width)")
    gamma: float = Field(0.0, ge=0.0, description="damping γ of the antisymmetric layer ½(K − Kᵀ − γI)")
    activation: ActivationName = Field("tanh", description="activation σ")
    normalization: Optional[DenseNormalization] = Field(None, description="normalization inside the layer")
    T: float = Field(..., gt=0, description="final time of the block (required)")
    steps: int = Field(..., ge=1, le=MAX_COUNT, description="number of state steps N, h = T/N (required)")
    nt: Optional[int] = Field(None, ge=1, le=MAX_COUNT,
                              description="control points of the weights (default: steps)")
    method: MethodName = Field(..., description="integrator (required)")
    controls: Controls = Field("constant", description="interpolation of the weights in time")
    gradient: GradientName = Field(
        "autograd", description="how the gradient is computed (docs/gradients.md): exact autograd, "
        "checkpointed segments, reversible (verlet/leapfrog, memory independent of depth), continuous adjoint")
    adjoint_method: Optional[OneStepMethodName] = Field(
        None, description="integrator of the backward adjoint solve (gradient 'adjoint'; default: method if one-step, else rk4)")
    adjoint_steps: Optional[int] = Field(
        None, ge=1, le=MAX_COUNT,
        description="steps of the backward adjoint solve (gradient 'adjoint'; default: steps)")
    checkpoint_segment: Optional[int] = Field(
        None, ge=1, le=MAX_COUNT,
        description="steps per recomputed segment (gradient 'checkpoint'; default ⌈√steps⌉)")

    @model_validator(mode="after")
    def _valid_block(self):
        self.spec()  # the library's rules; an ArgumentError names the key
        return self

    def spec(self) -> BlockSpec:
        """The block's :class:`~stablenet.specs.BlockSpec` (its keys, flat)."""
        return BlockSpec.from_flat(self.model_dump())


class _ModelTable(Strict):
    """A kind of ``[model]``: refuses the keys of the other kind, naming the kind they belong to."""

    @model_validator(mode="before")
    @classmethod
    def _keys_of_the_other_kind(cls, data):
        if isinstance(data, dict):
            kind = cls.model_fields["kind"].default
            for other in (DenseModelConfig, ConvModelConfig):
                for key in other.model_fields:
                    if key in data and key not in cls.model_fields:
                        raise ValueError(f"model.{key}: applies to model.kind {other.model_fields['kind'].default!r} "
                                         f"only; expected it unset with kind {kind!r}")
        return data


class DenseModelConfig(_ModelTable):
    """``[model]`` with ``kind = "dense"``: an :class:`~stablenet.models.ODEClassifier` (``opening`` and
    ``[[model.blocks]]``)."""

    kind: Literal["dense"] = Field(
        "dense", description="dense: ODE blocks on feature vectors ([[model.blocks]]); conv: multi-stage "
        "convolutional ODE network on images (Ruthotto & Haber 2020; the keys marked conv)")
    opening: Opening = Field(
        "linear", description="dense: opening layer: learned linear lift, or repeat the input features (seed 004)")
    blocks: list[BlockConfig] = Field(
        default_factory=list, description="dense (required): the ODE blocks, in order ([[model.blocks]])")

    @model_validator(mode="after")
    def _has_blocks(self):
        if not self.blocks:
            raise ValueError("model.blocks: a dense model needs at least one [[model.blocks]] table "
                             "(or set model.kind = 'conv' for a convolutional network)")
        return self

    def spec(self, in_features: int, n_classes: int) -> DenseNetSpec:
        """The network's :class:`~stablenet.specs.DenseNetSpec` (the data give in_features, n_classes)."""
        return DenseNetSpec(in_features, n_classes, tuple(self.block_specs()), opening=self.opening)

    def block_specs(self) -> list[BlockSpec]:
        return [block.spec() for block in self.blocks]

    def block_key(self, k: int) -> str:
        """The table that sets block k's grid (for messages)."""
        return f"model.blocks.{k}"

    def gradients(self) -> list[tuple[str, str]]:
        """(key, gradient mode) of every ``gradient`` key."""
        return [(f"model.blocks.{k}.gradient", block.gradient) for k, block in enumerate(self.blocks)]

    def n_blocks(self) -> int:
        return len(self.blocks)


class ConvModelConfig(_ModelTable):
    """``[model]`` with ``kind = "conv"``: a multi-stage :class:`~stablenet.conv_models.ConvODENet`, the
    keys of :class:`~stablenet.conv_models.ConvNetSpec` in ``[model]`` itself (one ODE block per stage
    and ``blocks_per_stage``, all with the same dynamics, grid and method)."""

    kind: Literal["conv"] = "conv"
    widths: list[int] = Field([16, 32, 64], min_length=1, description="conv: channels of every stage; "
                              "stages are joined by 1×1 convolution + 2×2 average pooling")
    blocks_per_stage: int | list[int] = Field(1, description="conv: ODE blocks per stage, one number or one per stage")
    dynamics: ConvDynamicsName = Field("conv_parabolic", description="conv: right-hand side of every block "
                                       "(stablenet.dynamics.conv); verlet needs conv_hamiltonian, "
                                       "conv_second_order needs leapfrog")
    method: Optional[MethodName] = Field(None, description="conv (required): integrator")
    T: Optional[float] = Field(None, gt=0, description="conv (required): final time of every block")
    steps: Optional[int] = Field(None, ge=1, le=MAX_COUNT,
                                 description="conv (required): state steps N of every block, h = T/N")
    nt: Optional[int] = Field(None, ge=1, le=MAX_COUNT,
                              description="conv: control points of every block's weights (default: steps)")
    controls: Controls = Field("constant", description="conv: interpolation of the weights in time")
    activation: ActivationName = Field("relu", description="conv: activation σ (blocks, opening, connectors)")
    normalization: ConvNormalization = Field(
        "instance", description="conv: normalization inside the blocks (batch statistics always) and in the "
        "opening and connectors (batch: with running statistics there)")
    gamma: float = Field(0.0, ge=0.0, description="conv: damping γ of conv_antisymmetric")
    kernel_size: int = Field(3, ge=1, le=MAX_PIXELS,
                             description="conv: odd kernel size of the blocks' convolutions")
    gradient: GradientName = Field("autograd", description="conv: gradient mode of every block (as "
                                   "model.blocks.gradient)")
    adjoint_method: Optional[OneStepMethodName] = Field(
        None, description="conv: integrator of the backward adjoint solve (gradient 'adjoint')")
    adjoint_steps: Optional[int] = Field(None, ge=1, le=MAX_COUNT,
                                         description="conv: steps of the backward adjoint solve")
    checkpoint_segment: Optional[int] = Field(
        None, ge=1, le=MAX_COUNT, description="conv: steps per recomputed segment (gradient 'checkpoint')")

    @field_validator("blocks_per_stage", mode="before")
    @classmethod
    def _positive_counts(cls, value):
        return count_or_counts(value, "stage")

    @field_validator("widths", mode="before")
    @classmethod
    def _positive_widths(cls, value):
        if isinstance(value, list) and value and all(is_count(v, MAX_WIDTH) for v in value):
            return value
        raise ValueError(f"expected a non-empty list of channel counts ≥ 1 (at most {MAX_WIDTH}), "
                         f"e.g. [16, 32, 64]")

    @model_validator(mode="after")
    def _valid_network(self):
        for key in ("method", "T", "steps"):
            if getattr(self, key) is None:
                raise ValueError(f"model.{key}: required with model.kind 'conv' (no default time grid or integrator)")
        self.spec()  # the library's rules; an ArgumentError names the key
        return self

    def spec(self, in_channels: int = 1, n_classes: int = 1, *, steps: int | None = None,
             nt: int | None = None) -> ConvNetSpec:
        """The network's :class:`~stablenet.conv_models.ConvNetSpec` (the data give in_channels and
        n_classes: 1 stands in while validating); ``steps``/``nt``: every block on another grid."""
        keys = self.model_dump(exclude={"kind"})
        bps = self.blocks_per_stage
        keys.update(normalization=None if self.normalization == "none" else self.normalization,
                    widths=tuple(self.widths), blocks_per_stage=tuple(bps) if isinstance(bps, list) else bps)
        if steps is not None:
            keys.update(steps=steps, nt=nt)
        return ConvNetSpec(in_channels=in_channels, n_classes=n_classes, **keys)

    def block_specs(self) -> list[BlockSpec]:
        return [spec for spec, n in self.spec().stage_specs() for _ in range(n)]

    def block_key(self, k: int) -> str:
        return "model"  # every block of a conv model has the grid of [model]

    def gradients(self) -> list[tuple[str, str]]:
        return [("model.gradient", self.gradient)]

    def n_blocks(self) -> int:
        """Number of ODE blocks, summed over the stages."""
        return sum(n for _, n in self.spec().stage_specs())

    @property
    def blocks(self) -> tuple:
        """A conv model has no ``[[model.blocks]]`` tables."""
        return ()


#: the kinds of ``[model]`` by their ``kind``
MODEL_KINDS: dict[str, type[_ModelTable]] = {"dense": DenseModelConfig, "conv": ConvModelConfig}


def default_kind(value: Any) -> Any:
    """A ``[model]`` table without ``kind`` is dense."""
    if isinstance(value, dict) and "kind" not in value:
        return {"kind": "dense", **value}
    return value


#: ``[model]``: the table of its ``kind`` (:func:`default_kind` first: the default is dense)
ModelConfig = Annotated[Union[DenseModelConfig, ConvModelConfig], Field(discriminator="kind")]

#: the keys of a convolutional model (kind = "conv"), and of a dense one
CONV_MODEL_KEYS = tuple(k for k in ConvModelConfig.model_fields if k != "kind")
DENSE_MODEL_KEYS = tuple(k for k in DenseModelConfig.model_fields if k != "kind")
