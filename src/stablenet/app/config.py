"""Typed, documented training configuration (TOML), validated with pydantic.

A configuration has four tables and an optional fifth, ``[multilevel]``; every key is listed in
``docs/configuration.md`` (generated from this schema by ``stablenet config-docs``) and in
``stablenet train --help``:

```toml
seed = 0

[data]
name = "peaks"            # peaks, ellipses, swiss_roll, moons, circles, digits, fashion_mnist
# options = { n_train_per_class = 1000 }

[model]
opening = "duplicate"     # or "linear"
[[model.blocks]]
dynamics = "hamiltonian"
width = 8
T = 5.0
steps = 32
nt = 32
method = "verlet"

[training]
epochs = 40
optimizer = "adam"
lr = 0.01

# [multilevel]            # optional: train 8 → 16 → 32 steps (see MultilevelConfig)
# levels = 3
# epochs_per_level = [20, 10, 10]
```

Unknown keys, wrong types and out-of-range values are errors that name the key; the CLI prints
them as one line.  Every number must be finite (``inf`` and ``nan``, valid TOML floats, are
refused), every count is at most :data:`MAX_COUNT` (widths: :data:`MAX_WIDTH`) and the seed lies in
0 … :data:`MAX_SEED`.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import (BaseModel, ConfigDict, Field, ValidationError, field_validator, model_serializer,
                      model_validator)

from ..dynamics import ACTIVATIONS, DYNAMICS
from ..gradients import make_gradient_mode
from ..integrators import available as available_methods
from ..integrators import get_integrator


class ConfigError(ValueError):
    """A configuration that does not match the schema; the message is one line per problem."""


#: upper bound of every count (epochs, steps, nt, batch size, iterations, …): the largest C int, so that
#: no count overflows a 32-bit index or a C ``int`` argument (torch.set_num_threads, …)
MAX_COUNT = 2**31 - 1
#: upper bound of feature widths and channel counts: nt·width² weights of one block stay below 2**63
MAX_WIDTH = 2**16
#: upper bound of the seed: torch.manual_seed and torch.Generator.manual_seed take −2**63 … 2**64 − 1
#: (else "Overflow when unpacking long long"); the seed is ≥ 0 and a signed int64 here
MAX_SEED = 2**63 - 1
#: upper bound of training.threads (torch CPU threads; more than the cores only slows torch down)
MAX_THREADS = 1024
#: upper bound of model.kernel_size and data.augment.padding (pixels; images are far smaller)
MAX_PIXELS = 1024


class _Strict(BaseModel):
    # allow_inf_nan=False: every float of every table (lists and tables of floats included) must be
    # finite; TOML has inf and nan, which would otherwise pass the range checks (inf > 0) or fail late
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class AugmentConfig(_Strict):
    """``[data.augment]``: image augmentation of every training batch (convolutional models).

    Random crop (zero padding, then a window of the original size), random left–right flip, then
    per-channel standardization, drawn from the trainer's seeded generator (so ``--resume`` stays
    exact); validation and test images get the standardization only.
    """

    padding: int = Field(0, ge=0, le=MAX_PIXELS, description="random crop: zero padding on every side "
                         "(0: no crop; 4 for CIFAR-10, 2 for 28×28 images)")
    flip: bool = Field(False, description="mirror each training image left–right with probability ½")
    erase: float = Field(0.0, ge=0, le=1, description="random erasing (Zhong et al. 2020): probability that a "
                         "rectangle of 2–40% of a training image's area (aspect ratio 0.3–3.3) is filled with "
                         "uniform noise in [0, 1)")
    normalize: bool = Field(False, description="standardize every channel with the mean and standard deviation "
                            "of the training split")
    mean: Optional[list[float]] = Field(None, description="fixed per-channel means instead (with std)")
    std: Optional[list[float]] = Field(None, description="fixed per-channel standard deviations (> 0; with mean)")

    @model_validator(mode="after")
    def _statistics(self):
        if (self.mean is None) != (self.std is None):
            raise ValueError(f"data.augment.{'std' if self.std is None else 'mean'}: missing; expected mean and "
                             f"std together (one value per channel)")
        if self.mean is not None:
            if self.normalize:
                raise ValueError("data.augment.normalize: true together with fixed mean/std; expected one of "
                                 "them (normalize = true uses the training split's statistics)")
            if len(self.mean) != len(self.std) or not self.mean:
                raise ValueError(f"data.augment.std: {len(self.std)} values for {len(self.mean)} means; expected "
                                 f"one of each per channel")
            if min(self.std) <= 0:
                raise ValueError(f"data.augment.std: {self.std}; expected every value > 0")
        return self


class DataConfig(_Strict):
    name: Literal["peaks", "ellipses", "swiss_roll", "moons", "circles", "digits", "fashion_mnist", "cifar10"] = Field(
        "peaks", description="data set")
    data_dir: Optional[str] = Field(
        None, description="directory with the data files: Fashion-MNIST IDX files (default "
        "/usr/share/datasets/fashion-mnist), CIFAR-10 binary batches (required; the folder with "
        "data_batch_1.bin … test_batch.bin or its parent)")
    options: dict[str, float | int] = Field(
        default_factory=dict,
        description="data-set options, e.g. { n_train_per_class = 1000 } for peaks, { n_train = 10000 } for fashion_mnist")
    augment: Optional[AugmentConfig] = Field(
        None, description="image augmentation for convolutional models; see [data.augment]")

    @field_validator("options")
    @classmethod
    def _counts_fit(cls, options):
        """The integer options are counts (n_train, …): at most MAX_COUNT (the loaders check the rest)."""
        for key, value in options.items():
            if isinstance(value, int) and not isinstance(value, bool) and value > MAX_COUNT:
                raise ValueError(f"data.options.{key}: {value}; expected an integer of at most {MAX_COUNT}")
        return options


DynamicsName = Literal["single", "double", "antisymmetric", "parabolic", "hamiltonian"]
ActivationName = Literal[tuple(ACTIVATIONS)]  # type: ignore[valid-type]
MethodName = Literal[tuple(available_methods())]  # type: ignore[valid-type]


class BlockConfig(_Strict):
    dynamics: DynamicsName = Field("antisymmetric", description="right-hand side f(Y, θ)")

    @field_validator("dynamics", mode="before")
    @classmethod
    def _dense_dynamics(cls, value):
        if isinstance(value, str) and value.startswith("conv_"):
            raise ValueError(f"{value!r} is a convolutional dynamics; expected a dense one (single, double, "
                             f"antisymmetric, parabolic, hamiltonian), or model.kind = 'conv' with model.dynamics")
        return value
    width: int = Field(8, ge=1, le=MAX_WIDTH, description="feature width of the block (y-stream for hamiltonian)")
    width_z: Optional[int] = Field(None, ge=1, le=MAX_WIDTH,
                                   description="z-stream width (hamiltonian only; default width)")
    hidden: Optional[int] = Field(None, ge=1, le=MAX_WIDTH,
                                  description="inner width of double / parabolic layers (default width)")
    gamma: float = Field(0.0, ge=0.0, description="damping γ of the antisymmetric layer ½(K − Kᵀ − γI)")
    activation: ActivationName = Field("tanh", description="activation σ")
    normalization: Optional[Literal["layer"]] = Field(None, description="normalization inside the layer")
    T: float = Field(..., gt=0, description="final time of the block (required)")
    steps: int = Field(..., ge=1, le=MAX_COUNT, description="number of state steps N, h = T/N (required)")
    nt: Optional[int] = Field(None, ge=1, le=MAX_COUNT,
                              description="control points of the weights (default: steps)")
    method: MethodName = Field(..., description="integrator (required)")
    controls: Literal["constant", "linear"] = Field("constant", description="interpolation of the weights in time")
    gradient: Literal["autograd", "checkpoint", "reversible", "adjoint"] = Field(
        "autograd", description="how the gradient is computed (docs/gradients.md): exact autograd, "
        "checkpointed segments, reversible (verlet/leapfrog, memory independent of depth), continuous adjoint")
    adjoint_method: Optional[Literal["euler", "midpoint", "rk3", "rk4"]] = Field(
        None, description="integrator of the backward adjoint solve (gradient 'adjoint'; default: method if one-step, else rk4)")
    adjoint_steps: Optional[int] = Field(
        None, ge=1, le=MAX_COUNT,
        description="steps of the backward adjoint solve (gradient 'adjoint'; default: steps)")
    checkpoint_segment: Optional[int] = Field(
        None, ge=1, le=MAX_COUNT,
        description="steps per recomputed segment (gradient 'checkpoint'; default ⌈√steps⌉)")

    @model_validator(mode="after")
    def _consistent(self):
        mode = make_gradient_mode(self.gradient, adjoint_method=self.adjoint_method,
                                  adjoint_steps=self.adjoint_steps,
                                  checkpoint_segment=self.checkpoint_segment)
        mode.check(DYNAMICS[self.dynamics], get_integrator(self.method))
        if self.width_z is not None and self.dynamics != "hamiltonian":
            raise ValueError(f"width_z applies to dynamics 'hamiltonian' only, not {self.dynamics!r}")
        if self.hidden is not None and self.dynamics not in ("double", "parabolic"):
            raise ValueError(f"hidden applies to dynamics 'double' and 'parabolic' only, not {self.dynamics!r}")
        if self.method == "verlet" and self.dynamics != "hamiltonian":
            raise ValueError(f"method 'verlet' needs dynamics 'hamiltonian', got {self.dynamics!r}")
        if self.method == "leapfrog" and self.dynamics == "hamiltonian":
            raise ValueError("method 'leapfrog' integrates one-stream dynamics, not 'hamiltonian'")
        return self


ConvDynamicsName = Literal["conv_single", "conv_parabolic", "conv_second_order", "conv_antisymmetric",
                           "conv_hamiltonian"]
#: the keys of a convolutional model (kind = "conv"), and of a dense one
CONV_MODEL_KEYS = ("widths", "blocks_per_stage", "dynamics", "method", "T", "steps", "nt", "controls",
                   "activation", "normalization", "gamma", "kernel_size", "gradient", "adjoint_method",
                   "adjoint_steps", "checkpoint_segment")
DENSE_MODEL_KEYS = ("opening", "blocks")


def _count(value: Any, top: float = MAX_COUNT) -> bool:
    """Whether ``value`` is an integer in 1 … top (a bool is not)."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= top


def _count_or_counts(value: Any, per: str) -> Any:
    """Validate an integer in 1 … MAX_COUNT or a non-empty list of them (one per stage / level)."""
    values = value if isinstance(value, list) else [value]
    if values and all(_count(v) for v in values):
        return value
    if values and all(_count(v, top=float("inf")) for v in values):
        raise ValueError(f"expected integers of at most {MAX_COUNT}, one number or one per {per}")
    raise ValueError(f"expected an integer ≥ 1 or a non-empty list of integers ≥ 1, one per {per}")


def _other_kind_keys(kind: str) -> tuple[str, ...]:
    """The [model] keys that do not apply to a model of this kind."""
    return CONV_MODEL_KEYS if kind == "dense" else DENSE_MODEL_KEYS


#: data sets whose samples are images (what kind = "conv" needs)
IMAGE_DATASETS = ("digits", "fashion_mnist", "cifar10")


class ModelConfig(_Strict):
    """``[model]``: a dense :class:`~stablenet.models.ODEClassifier` (``kind = "dense"``: ``opening`` and
    ``[[model.blocks]]``) or a multi-stage convolutional :class:`~stablenet.conv_models.ConvODENet`
    (``kind = "conv"``: the keys of :class:`~stablenet.conv_models.ConvNetSpec` in ``[model]`` itself;
    one ODE block per stage and ``blocks_per_stage``, all with the same dynamics, grid and method)."""

    kind: Literal["dense", "conv"] = Field(
        "dense", description="dense: ODE blocks on feature vectors ([[model.blocks]]); conv: multi-stage "
        "convolutional ODE network on images (Ruthotto & Haber 2020; the keys marked conv)")
    opening: Literal["linear", "duplicate"] = Field(
        "linear", description="dense: opening layer: learned linear lift, or repeat the input features (seed 004)")
    blocks: list[BlockConfig] = Field(
        default_factory=list, description="dense (required): the ODE blocks, in order ([[model.blocks]])")
    widths: list[int] = Field([16, 32, 64], min_length=1, description="conv: channels of every stage; "
                              "stages are joined by 1×1 convolution + 2×2 average pooling")
    blocks_per_stage: int | list[int] = Field(1, description="conv: ODE blocks per stage, one number or one per stage")
    dynamics: ConvDynamicsName = Field("conv_parabolic", description="conv: right-hand side of every block "
                                       "(stablenet.dynamics.conv); conv_hamiltonian needs verlet, "
                                       "conv_second_order leapfrog")
    method: Optional[MethodName] = Field(None, description="conv (required): integrator")
    T: Optional[float] = Field(None, gt=0, description="conv (required): final time of every block")
    steps: Optional[int] = Field(None, ge=1, le=MAX_COUNT,
                                 description="conv (required): state steps N of every block, h = T/N")
    nt: Optional[int] = Field(None, ge=1, le=MAX_COUNT,
                              description="conv: control points of every block's weights (default: steps)")
    controls: Literal["constant", "linear"] = Field("constant",
                                                    description="conv: interpolation of the weights in time")
    activation: ActivationName = Field("relu", description="conv: activation σ (blocks, opening, connectors)")
    normalization: Literal["none", "batch", "instance", "tv"] = Field(
        "instance", description="conv: normalization inside the blocks (batch statistics always) and in the "
        "opening and connectors (batch: with running statistics there)")
    gamma: float = Field(0.0, ge=0.0, description="conv: damping γ of conv_antisymmetric")
    kernel_size: int = Field(3, ge=1, le=MAX_PIXELS,
                             description="conv: odd kernel size of the blocks' convolutions")
    gradient: Literal["autograd", "checkpoint", "reversible", "adjoint"] = Field(
        "autograd", description="conv: gradient mode of every block (as model.blocks.gradient)")
    adjoint_method: Optional[Literal["euler", "midpoint", "rk3", "rk4"]] = Field(
        None, description="conv: integrator of the backward adjoint solve (gradient 'adjoint')")
    adjoint_steps: Optional[int] = Field(None, ge=1, le=MAX_COUNT,
                                         description="conv: steps of the backward adjoint solve")
    checkpoint_segment: Optional[int] = Field(
        None, ge=1, le=MAX_COUNT, description="conv: steps per recomputed segment (gradient 'checkpoint')")

    @field_validator("blocks_per_stage", mode="before")
    @classmethod
    def _positive_counts(cls, value):
        return _count_or_counts(value, "stage")

    @field_validator("widths", mode="before")
    @classmethod
    def _positive_widths(cls, value):
        if isinstance(value, list) and value and all(_count(v, MAX_WIDTH) for v in value):
            return value
        raise ValueError(f"expected a non-empty list of channel counts ≥ 1 (at most {MAX_WIDTH}), "
                         f"e.g. [16, 32, 64]")

    @model_serializer(mode="wrap")
    def _only_this_kind(self, handler):
        """Dump the keys of this kind only (config.json), so that reading it back passes _kind_keys."""
        data = handler(self)
        for key in _other_kind_keys(self.kind):
            data.pop(key, None)
        return data

    @model_validator(mode="after")
    def _kind_keys(self):
        for key in _other_kind_keys(self.kind):
            if key in self.model_fields_set:
                raise ValueError(f"model.{key}: applies to model.kind {'conv' if self.kind == 'dense' else 'dense'!r} "
                                 f"only; expected it unset with kind {self.kind!r}")
        if self.kind == "dense":
            if not self.blocks:
                raise ValueError("model.blocks: a dense model needs at least one [[model.blocks]] table "
                                 "(or set model.kind = 'conv' for a convolutional network)")
            return self
        for key in ("method", "T", "steps"):
            if getattr(self, key) is None:
                raise ValueError(f"model.{key}: required with model.kind 'conv' (no default time grid or integrator)")
        if isinstance(self.blocks_per_stage, list) and len(self.blocks_per_stage) != len(self.widths):
            raise ValueError(f"model.blocks_per_stage: {self.blocks_per_stage} has {len(self.blocks_per_stage)} "
                             f"entries; expected one per stage ({len(self.widths)}, model.widths) or a single number")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"model.kernel_size: {self.kernel_size} is even; expected an odd size (same padding)")
        if self.gamma and self.dynamics != "conv_antisymmetric":
            raise ValueError(f"model.gamma: {self.gamma} applies to dynamics 'conv_antisymmetric' only, "
                             f"not {self.dynamics!r}")
        integrator = get_integrator(self.method)
        two_stream = DYNAMICS[self.dynamics].two_stream
        if integrator.separable and not two_stream:
            raise ValueError(f"model.method: {self.method!r} needs dynamics 'conv_hamiltonian', got {self.dynamics!r}")
        if integrator.second_order and self.dynamics != "conv_second_order":
            raise ValueError(f"model.method: {self.method!r} integrates Y'' = f; expected dynamics "
                             f"'conv_second_order', got {self.dynamics!r}")
        if self.dynamics == "conv_second_order" and not integrator.second_order:
            raise ValueError(f"model.dynamics: 'conv_second_order' needs method 'leapfrog', got {self.method!r}")
        mode = make_gradient_mode(self.gradient, adjoint_method=self.adjoint_method,
                                  adjoint_steps=self.adjoint_steps, checkpoint_segment=self.checkpoint_segment)
        try:
            mode.check(DYNAMICS[self.dynamics], integrator)
        except ValueError as error:
            raise ValueError(f"model.gradient: {self.gradient!r}: {error}") from None
        return self

    def conv_spec(self, in_channels: int, n_classes: int, *, steps: int | None = None, nt: int | None = None):
        """The :class:`~stablenet.conv_models.ConvNetSpec` of a conv model (``steps``/``nt``: another grid)."""
        from ..conv_models import ConvNetSpec

        keys = {k: getattr(self, k) for k in CONV_MODEL_KEYS}
        keys.update(normalization=None if self.normalization == "none" else self.normalization,
                    widths=tuple(self.widths), steps=steps or self.steps, nt=nt or self.nt or self.steps)
        if isinstance(keys["blocks_per_stage"], list):
            keys["blocks_per_stage"] = tuple(keys["blocks_per_stage"])
        return ConvNetSpec(in_channels=in_channels, n_classes=n_classes, **keys)

    def n_blocks(self) -> int:
        """Number of ODE blocks (conv: summed over the stages)."""
        if self.kind == "dense":
            return len(self.blocks)
        bps = self.blocks_per_stage
        return sum(bps) if isinstance(bps, list) else bps * len(self.widths)


#: optimizers of :mod:`stablenet.optim` (second derivatives through the network; autograd blocks only)
NEWTON_OPTIMIZERS = ("gauss_newton", "newton")


class TrainingConfig(_Strict):
    epochs: int = Field(20, ge=1, le=MAX_COUNT, description="number of passes over the training data "
                        "(with [multilevel]: ignored, see multilevel.epochs_per_level)")
    batch_size: int = Field(64, ge=1, le=MAX_COUNT, description="mini-batch size")
    optimizer: Literal["sgd", "adam", "lbfgs", "gauss_newton", "newton"] = Field(
        "adam", description="torch.optim SGD, Adam or L-BFGS, or a Newton-type optimizer of stablenet.optim "
        "(docs/optimizers.md): Gauss–Newton–CG or Newton–CG, one inexact Newton step with Armijo line search "
        "per batch")
    lr: float = Field(0.01, gt=0, description="learning rate; gauss_newton / newton: the first trial step of "
                      "the line search (1 = full Newton step; their default is 1.0)")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum")
    nesterov: bool = Field(False, description="Nesterov momentum (SGD)")
    schedule: Literal["constant", "step", "multistep", "cosine", "onecycle"] = Field(
        "constant", description="learning-rate schedule: per epoch constant, step (× lr_decay every lr_step_epochs), "
        "multistep (× lr_decay at each of lr_milestones), cosine (annealed to 0); onecycle: per batch, warm-up to "
        "lr then annealing (torch OneCycleLR, over each level's epochs)")
    lr_step_epochs: int = Field(10, ge=1, le=MAX_COUNT, description="step schedule: epochs between decays")
    lr_decay: float = Field(0.5, gt=0, le=1, description="step / multistep schedule: factor per decay")
    lr_milestones: list[int] = Field(default_factory=list, description="multistep schedule: the epochs after "
                                     "which lr is multiplied by lr_decay, increasing, e.g. [60, 80]")
    onecycle_pct_start: float = Field(0.3, gt=0, lt=1, description="onecycle schedule: fraction of the batches "
                                      "spent warming up")
    weight_decay: float = Field(0.0, ge=0, description="L2 penalty on the network weights θ (opening and blocks)")
    classifier_weight_decay: float = Field(0.0, ge=0, description="L2 penalty on the classifier (W, μ)")
    smoothness: float = Field(0.0, ge=0, description="α of the time-smoothness regularizer α·Σ‖θ_{k+1} − θ_k‖²/h")
    loss: Literal["cross_entropy", "least_squares"] = Field("cross_entropy", description="loss function")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="cross_entropy with sgd / adam / lbfgs: train "
                                   "against (1 − ε)·onehot + ε/classes (Szegedy et al. 2016); validation and test "
                                   "losses stay the plain cross-entropy")
    lbfgs_history: int = Field(20, ge=1, le=MAX_COUNT, description="L-BFGS history size")
    varpro: bool = Field(False, description="variable projection (gauss_newton / newton): eliminate the "
                         "classifier (W, μ) by an inner Newton solve per objective evaluation and optimize the "
                         "reduced objective in θ; its regularization is classifier_weight_decay (> 0 for "
                         "cross_entropy)")
    block_coordinate: bool = Field(False, description="with varpro: alternate the exact classifier solve and a "
                                   "Newton-type θ step with the classifier fixed (BlockCoordinateDescent) "
                                   "instead of the reduced objective")
    cg_rtol: float = Field(0.1, gt=0, lt=1, description="gauss_newton / newton: CG stops at "
                           "‖Ap + g‖ ≤ cg_rtol·‖g‖")
    cg_max_iter: int = Field(20, ge=1, le=MAX_COUNT, description="gauss_newton / newton: at most this many CG "
                             "iterations (curvature products) per step")
    hessian_samples: Optional[int | float] = Field(
        None, description="gauss_newton / newton: curvature on a random subsample of each batch, a number "
        "of points ≥ 1 or a fraction in (0, 1] (default: the whole batch); gradient and line search use the "
        "whole batch")
    damping: float = Field(0.0, ge=0, description="gauss_newton / newton: δ added to the curvature (δI, "
                           "Levenberg–Marquardt)")
    dtype: Literal["float32", "float64"] = Field("float32", description="floating-point precision")
    device: str = Field("cpu", description="torch device, e.g. cpu or cuda")
    mixed_precision: Literal["none", "bfloat16", "float16"] = Field(
        "none", description="sgd / adam with dtype float32 and gradient 'autograd': run the training forward "
        "pass and loss under torch.autocast in this precision (weights, optimizer state and evaluation stay "
        "float32); float16 with a dynamic loss scale (torch.amp.GradScaler, kept in checkpoints).  For GPUs: "
        "on a CPU without bfloat16 units both are slower than float32")
    threads: int = Field(0, ge=0, le=MAX_THREADS,
                         description="torch CPU threads (0: torch's default; 1 is fastest for small networks)")

    @model_validator(mode="before")
    @classmethod
    def _newton_lr_default(cls, data):
        """A Newton-type optimizer's lr is the first trial step of its line search: default 1.0."""
        if isinstance(data, dict) and data.get("optimizer") in NEWTON_OPTIMIZERS and "lr" not in data:
            return {**data, "lr": 1.0}
        return data

    @field_validator("hessian_samples", mode="before")
    @classmethod
    def _samples(cls, value):
        if value is None:
            return value
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or isinstance(value, int) and value < 1 or isinstance(value, float) and not 0 < value <= 1):
            raise ValueError("expected an integer ≥ 1 (points) or a fraction in (0, 1]")
        if isinstance(value, int) and value > MAX_COUNT:
            raise ValueError(f"expected at most {MAX_COUNT} points (an integer) or a fraction in (0, 1]")
        return value

    @model_validator(mode="after")
    def _milestones(self):
        ms = self.lr_milestones
        if self.schedule == "multistep":
            if not ms or ms[0] < 1 or ms[-1] > MAX_COUNT or any(b <= a for a, b in zip(ms, ms[1:])):
                raise ValueError(f"training.lr_milestones: {ms}; expected a non-empty increasing list of epochs "
                                 f"from 1 to {MAX_COUNT} with schedule 'multistep', e.g. [60, 80]")
        elif ms:
            raise ValueError(f"training.lr_milestones: {ms} applies to schedule 'multistep' only; expected it "
                             f"unset with schedule {self.schedule!r}")
        return self

    @model_validator(mode="after")
    def _optimizer_options(self):
        newton = self.optimizer in NEWTON_OPTIMIZERS
        if not newton:
            for key in ("varpro", "block_coordinate", "cg_rtol", "cg_max_iter", "hessian_samples", "damping"):
                if key in self.model_fields_set and getattr(self, key) != TrainingConfig.model_fields[key].default:
                    value = getattr(self, key)
                    value = str(value).lower() if isinstance(value, bool) else repr(value)
                    raise ValueError(f"training.{key}: {value} applies to optimizer 'gauss_newton' "
                                     f"or 'newton' only; expected it unset with optimizer {self.optimizer!r}")
        if self.mixed_precision != "none" and (self.optimizer not in ("sgd", "adam") or self.dtype != "float32"):
            raise ValueError(f"training.mixed_precision: {self.mixed_precision!r} needs optimizer 'sgd' or 'adam' and "
                             f"dtype 'float32'; got optimizer {self.optimizer!r}, dtype {self.dtype!r}")
        if self.label_smoothing and (newton or self.loss != "cross_entropy"):
            raise ValueError(f"training.label_smoothing: {self.label_smoothing} applies to loss 'cross_entropy' with "
                             f"optimizer 'sgd', 'adam' or 'lbfgs'; expected 0 with loss {self.loss!r} and "
                             f"optimizer {self.optimizer!r}")
        if self.block_coordinate and not self.varpro:
            raise ValueError("training.block_coordinate: true needs training.varpro = true (the classifier "
                             "solve of the alternation is VarPro's); expected varpro = true or "
                             "block_coordinate = false")
        if self.varpro and self.loss == "cross_entropy" and self.classifier_weight_decay == 0:
            raise ValueError("training.classifier_weight_decay: 0.0 with varpro = true and loss 'cross_entropy'; "
                             "expected > 0 (it regularizes VarPro's inner problem, which has no minimizer on "
                             "separable data without it), e.g. 1e-3")
        return self


class MultilevelConfig(_Strict):
    """``[multilevel]``: cascadic (coarse-to-fine) training in depth.

    Haber & Ruthotto, "Stable architectures for deep neural networks" (2017), and Meganet train a
    network with few layers first, then *prolongate* its weights to a grid with twice the layers
    (h → h/2; θ(t) kept exactly by :meth:`stablenet.timegrid.ControlGrid.prolongate`) and continue
    training; the coarse solution is a good, cheap initial guess for the fine problem.  Each of the
    ``levels`` doubles every block's state steps and control points nt (so a block's nt/steps
    ratio is kept).  By default each block's configured ``steps`` and ``nt`` are the finest level;
    ``start_steps`` instead fixes the first level's steps of every block.
    """

    levels: int = Field(..., ge=1, le=16, description="number of levels (1–16); each level doubles every "
                        "block's steps and nt (control points follow by exact prolongation)")
    epochs_per_level: int | list[int] = Field(
        ..., description="epochs on each level: one number for every level or a list with one entry per "
        "level, coarsest first (replaces training.epochs)")
    start_steps: Optional[int] = Field(
        None, ge=1, le=MAX_COUNT, description="state steps of every block on the first (coarsest) level; default: "
        "each block's steps is the finest level, the first uses steps / 2^(levels − 1)")

    @field_validator("epochs_per_level", mode="before")
    @classmethod
    def _positive_epochs(cls, value):
        return _count_or_counts(value, "level")

    @model_validator(mode="after")
    def _one_entry_per_level(self):
        if isinstance(self.epochs_per_level, list) and len(self.epochs_per_level) != self.levels:
            raise ValueError(f"multilevel.epochs_per_level: {self.epochs_per_level} has "
                             f"{len(self.epochs_per_level)} entries; expected {self.levels}, one per level "
                             f"(multilevel.levels = {self.levels}), or a single number")
        return self

    def epochs(self) -> list[int]:
        """Epochs of every level, coarsest first."""
        if isinstance(self.epochs_per_level, list):
            return list(self.epochs_per_level)
        return [self.epochs_per_level] * self.levels


class ParallelConfig(_Strict):
    """``[parallel]``: layer-parallel training with MGRIT, optionally combined with data parallelism.

    Every ODE block's forward and backward propagation is solved by multigrid reduction in time
    (``gradient = "mgrit"``, :mod:`stablenet.parallel`; Günther et al., SIMODS 2020) with the time
    steps split over ``layer_ranks`` processes.  Launch with ``torchrun --nproc_per_node=P
    -m stablenet train CONFIG``: the P = layer_ranks × D processes form D data-parallel groups of
    ``layer_ranks`` layer-parallel ranks; each group takes 1/D of every batch and the gradients
    are averaged over the groups (the all-reduce DistributedDataParallel performs).  Without
    torchrun (one process) layer_ranks must be 1 and MGRIT runs serially (same iterations, for
    testing its effect on training).  Only rank 0 writes the run directory.
    """

    layer_ranks: int = Field(1, ge=1, le=MAX_COUNT, description="processes that split every block's time steps "
                             "(MGRIT); the world size given by torchrun must be a multiple of it")
    coarsening: int = Field(4, ge=2, le=MAX_COUNT,
                            description="MGRIT coarsening factor m (every m-th time point is a C-point)")
    max_levels: int = Field(3, ge=1, le=MAX_COUNT, description="MGRIT grid levels (1: sequential stepping, exact)")
    relaxation: str = Field("FCF", pattern=r"^F(CF)*$", description="MGRIT relaxation: F, FCF, FCFCF, …")
    max_iterations: int = Field(10, ge=0, le=MAX_COUNT, description="most MGRIT V-cycles per solve (forward and "
                                "adjoint); with tolerance = 0 a fixed number of cycles: inexact forward and gradient")
    tolerance: float = Field(1e-8, ge=0, description="MGRIT stops at a relative residual ≤ tolerance "
                             "(converged: the exact discrete gradient up to it)")
    fmg: bool = Field(False, description="start each MGRIT solve from a full-multigrid (nested iteration) guess")

    def mgrit_options(self) -> dict[str, Any]:
        """The keyword arguments of :class:`stablenet.parallel.MGRITOptions`."""
        return dict(m=self.coarsening, max_levels=self.max_levels, relax=self.relaxation,
                    max_iter=self.max_iterations, rtol=self.tolerance, fmg=self.fmg)


class Config(_Strict):
    seed: int = Field(0, ge=0, le=MAX_SEED, description="seed for data, initialization and batch order")
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    multilevel: Optional[MultilevelConfig] = Field(
        None, description="multilevel (cascadic) training in depth; see [multilevel]")
    parallel: Optional[ParallelConfig] = Field(
        None, description="layer-parallel (MGRIT) and data-parallel training under torchrun; see [parallel]")

    @model_validator(mode="after")
    def _multilevel_fits_the_blocks(self):
        if self.multilevel is not None:
            self.level_grids()
        return self

    @model_validator(mode="after")
    def _parallel_fits_the_model(self):
        if self.parallel is None:
            return self
        if self.training.optimizer in NEWTON_OPTIMIZERS:
            raise ValueError(f"parallel: layer-parallel training works with optimizers sgd, adam, lbfgs; "
                             f"expected one of them, got training.optimizer {self.training.optimizer!r}")
        for k, block in enumerate(self.model.blocks):
            if block.gradient != "autograd":
                raise ValueError(f"model.blocks.{k}.gradient: {block.gradient!r} with [parallel], which solves "
                                 f"every block by MGRIT; expected it unset ('autograd')")
            scheme = get_integrator(block.method)
            if scheme.multistep or scheme.second_order:
                raise ValueError(f"model.blocks.{k}.method: {block.method!r} with [parallel]: MGRIT needs a "
                                 f"one-step scheme (its step must depend on Y_j alone); expected a Runge–Kutta "
                                 f"method or verlet")
        return self

    @model_validator(mode="after")
    def _mixed_precision_fits_the_model(self):
        if self.training.mixed_precision == "none":
            return self
        if self.parallel is not None:
            raise ValueError(f"training.mixed_precision: {self.training.mixed_precision!r} with [parallel] (MGRIT "
                             f"solves in the training dtype); expected 'none'")
        gradients = ([("model.gradient", self.model.gradient)] if self.model.kind == "conv" else
                     [(f"model.blocks.{k}.gradient", b.gradient) for k, b in enumerate(self.model.blocks)])
        for key, gradient in gradients:
            if gradient != "autograd":
                raise ValueError(f"{key}: {gradient!r} with training.mixed_precision "
                                 f"{self.training.mixed_precision!r} (its backward pass recomputes outside "
                                 f"autocast); expected 'autograd'")
        return self

    @model_validator(mode="after")
    def _blocks_fit_the_optimizer(self):
        if self.training.optimizer in NEWTON_OPTIMIZERS:
            for k, block in enumerate(self.model.blocks):
                if block.gradient != "autograd":
                    raise ValueError(
                        f"model.blocks.{k}.gradient: {block.gradient!r} cannot be used with training.optimizer "
                        f"{self.training.optimizer!r} (its curvature products differentiate the backward pass "
                        f"again); expected 'autograd'")
        return self

    @model_validator(mode="after")
    def _conv_model_fits(self):
        """kind = "conv" needs image data and a first-order optimizer; [data.augment] needs kind = "conv"."""
        conv = self.model.kind == "conv"
        if self.data.augment is not None and not conv:
            raise ValueError("data.augment: applies to convolutional models (model.kind = 'conv') only; "
                             "expected it unset with model.kind 'dense'")
        if not conv:
            return self
        if self.data.name not in IMAGE_DATASETS:
            raise ValueError(f"model.kind: 'conv' needs an image data set ({', '.join(IMAGE_DATASETS)}); "
                             f"got data.name {self.data.name!r}")
        if self.training.optimizer in NEWTON_OPTIMIZERS:
            raise ValueError(f"training.optimizer: {self.training.optimizer!r} is not available for "
                             f"model.kind 'conv'; expected sgd, adam or lbfgs")
        if self.parallel is not None:
            raise ValueError("parallel: layer-parallel training is not available for model.kind 'conv'; "
                             "expected [parallel] unset")
        return self

    def level_grids(self) -> list[list[tuple[int, int]]]:
        """(steps, nt) of every block on every training level, coarsest level first.

        Without ``[multilevel]`` one level: the blocks as configured.  With it, level ℓ has
        2^(ℓ−1) times the steps and control points of the first level.  ValueError (one line,
        naming the keys) when the configured grids cannot be halved down to the first level.
        """
        m = self.model
        if m.kind == "conv":  # every block of a conv model has the grid of [model]
            blocks = [(m.steps, m.nt or m.steps)] * m.n_blocks()
        else:
            blocks = [(b.steps, b.nt or b.steps) for b in m.blocks]

        def name(k):
            return f"model.blocks.{k}" if m.kind == "dense" else "model"

        ml = self.multilevel
        if ml is None:
            return [blocks]
        factor = 2 ** (ml.levels - 1)
        first = []
        for k, (steps, nt) in enumerate(blocks):
            if ml.start_steps is not None:
                start = ml.start_steps
                if (start * nt) % steps:
                    raise ValueError(
                        f"multilevel.start_steps: {start} steps with {name(k)}'s nt/steps = {nt}/{steps} "
                        f"give {start * nt / steps:g} control points on the first level; expected "
                        f"start_steps·nt/steps to be a whole number")
                first.append((start, start * nt // steps))
                finest = max(start, start * nt // steps) << (ml.levels - 1)
                if finest > MAX_COUNT:
                    raise ValueError(
                        f"multilevel.start_steps: {start} steps doubled over {ml.levels} levels give {finest} "
                        f"steps or control points on the finest level of {name(k)}; expected at most {MAX_COUNT}")
                continue
            for key, value in (("steps", steps), ("nt", nt)):
                if value % factor:
                    raise ValueError(
                        f"multilevel.levels: {ml.levels} levels start from {name(k)}.{key} / "
                        f"2^(levels − 1) = {value}/{factor}, not a whole number; expected {key} divisible "
                        f"by {factor} (or set multilevel.start_steps)")
            first.append((steps // factor, nt // factor))
        return [[(steps << level, nt << level) for steps, nt in first] for level in range(ml.levels)]


def _key(part) -> str:
    """A key as written in the message: quoted when it is empty or has odd characters."""
    text = str(part)
    return text if text and text.isprintable() and " " not in text and "." not in text else repr(text)


#: the members of an ``int | float`` union, which pydantic appends to the location of each failed member
_UNION_MEMBERS = ("float", "int")


def _errors(error: ValidationError) -> list[dict[str, Any]]:
    """The errors of ``error``, those of the members of an ``int | float`` union (data.options values)
    merged into one at the value's own location (the float member's message: the more general)."""
    errors = error.errors()
    merged = []
    for e in errors:
        loc = e["loc"]
        if loc and loc[-1] in _UNION_MEMBERS:
            siblings = [o for o in errors if o["loc"][:-1] == loc[:-1] and o["loc"][-1] in _UNION_MEMBERS]
            if {o["loc"][-1] for o in siblings} == set(_UNION_MEMBERS):
                if loc[-1] == "float":
                    merged.append({**e, "loc": loc[:-1]})
                continue
        merged.append(e)
    return merged


def _format(error: ValidationError) -> str:
    lines = []
    for e in _errors(error):
        loc = ".".join(_key(p) for p in e["loc"]) or "config"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "value_error" and re.match(rf"{re.escape(loc if e['loc'] else '')}[\w.]*: ", msg):
            lines.append(msg)  # a cross-field check that names its key, value and expectation itself
            continue
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "missing":
            msg = "required key is missing"
        got = e.get("input")
        suffix = "" if e["type"] in ("missing", "extra_forbidden") or isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"{loc}: {msg}{suffix}")
    return "; ".join(lines)


def parse_config(raw: dict[str, Any]) -> Config:
    """Validate a configuration dictionary."""
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"invalid config: {_format(exc)}") from None


def parse_saved_config(raw: dict[str, Any]) -> Config:
    """Validate a run directory's config.json.  Runs written by earlier 0.1.0 builds dumped every
    ``[model]`` key of both kinds at its default; those of the other kind are dropped here (a key
    of the other kind set to anything else is still an error)."""
    model = raw.get("model") if isinstance(raw, dict) else None
    if isinstance(model, dict):
        defaults = {k: ModelConfig.model_fields[k].get_default(call_default_factory=True)
                    for k in _other_kind_keys(model.get("kind", "dense"))}
        model = {k: v for k, v in model.items() if not (k in defaults and v == defaults[k])}
        raw = {**raw, "model": model}
    return parse_config(raw)


_MISSING = object()


def _show(value: Any) -> str:
    """A value of a JSON dump as a difference line writes it (JSON: strings quoted, null, true)."""
    if value is _MISSING:
        return "missing"
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=True)
    except (TypeError, ValueError):
        return repr(value)


def _same(a: Any, b: Any) -> bool:
    """Equal leaves of two JSON dumps: 1 and 1.0 are the same number, true and 1 are not."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or (a != a and b != b)  # nan equals nan here
    return type(a) is type(b) and a == b


def config_differences(saved: Any, current: Any, ignore: Iterable[str] = ("data.data_dir",)) -> list[str]:
    """The differences between two JSON dumps of configurations (``Config.model_dump(mode="json")``:
    nested dicts and lists), one line per differing key as its dotted path with both values::

        training.lr: 0.01 in the run, 0.1 now
        model.blocks.0.steps: 16 in the run, 32 now
        training.momentum: missing in the run, 0.9 now

    ``saved`` is the run's configuration, ``current`` the one given now; keys are listed in the order
    of ``saved`` (then those only in ``current``), list entries by index.  A key, or a list entry,
    present on one side only is "missing" on the other; a table on one side and a value on the other
    is one line with both.  ``ignore``: dotted keys (and everything below them) left out — by
    default data.data_dir, which may move between a run and its resume.  [] when they agree.
    """
    skip = set(ignore)
    lines: list[str] = []

    def walk(a: Any, b: Any, path: tuple[str, ...]) -> None:
        if ".".join(path) in skip:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for key in [*a, *(k for k in b if k not in a)]:
                walk(a.get(key, _MISSING), b.get(key, _MISSING), (*path, str(key)))
        elif isinstance(a, list) and isinstance(b, list):
            for i in range(max(len(a), len(b))):
                walk(a[i] if i < len(a) else _MISSING, b[i] if i < len(b) else _MISSING, (*path, str(i)))
        elif a is _MISSING or b is _MISSING or not _same(a, b):
            key = ".".join(_key(p) for p in path) or "config"
            lines.append(f"{key}: {_show(a)} in the run, {_show(b)} now")

    walk(saved, current, ())
    return lines


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides (value in TOML syntax, bare words as strings)."""
    import copy

    raw = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        node: Any = raw
        for i, part in enumerate(parts[:-1]):
            nxt = parts[i + 1]
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(f"--set {key}: {part!r} is not an index into a list of {len(node)}")
                node = node[int(part)]
            else:
                node = node.setdefault(part, [] if nxt.isdigit() else {})
        last = parts[-1]
        if isinstance(node, list):
            if not last.isdigit() or int(last) >= len(node):
                raise ConfigError(f"--set {key}: {last!r} is not an index into a list of {len(node)}")
            node[int(last)] = _parse_value(value.strip())
        elif isinstance(node, dict):
            node[last] = _parse_value(value.strip())
        else:
            raise ConfigError(f"--set {key}: {'.'.join(parts[:-1])} is not a table")
    return raw


def read_config_text(path: str | Path) -> str:
    """The text of a TOML configuration file (UTF-8, a leading byte-order mark dropped); ConfigError
    (one line naming the file) for a missing file, a directory, an unreadable or a binary file."""
    path = Path(path)
    name = repr(str(path))
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {name} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {name} is a directory; expected a TOML file") from None
    except OSError as exc:
        if path.is_dir():  # Windows: PermissionError for a directory
            raise ConfigError(f"config file {name} is a directory; expected a TOML file") from None
        raise ConfigError(f"cannot read config file {name}: {exc.strerror or exc}") from None
    if b"\x00" in data:  # valid UTF-8, but no text file has it
        raise ConfigError(f"config file {name} is not a UTF-8 TOML text file (NUL byte at offset "
                          f"{data.index(0)}: binary data)")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")  # tomllib refuses a byte-order mark
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {name} is not a UTF-8 TOML text file (byte 0x{data[exc.start]:02x} at "
                          f"offset {exc.start} is not UTF-8)") from None


def load_config(path: str | Path, overrides: list[str] | None = None) -> tuple[Config, dict[str, Any]]:
    """Read, override and validate a TOML configuration; returns (config, raw dictionary)."""
    path = Path(path)
    text = read_config_text(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    raw = apply_overrides(raw, overrides or [])
    return parse_config(raw), raw


def _type_name(annotation) -> str:
    """A readable type for the reference table: choices spelled out, Optional as "or none"."""
    from types import UnionType
    from typing import Union, get_args, get_origin

    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin is Union or origin is UnionType:
        names = [_type_name(a) for a in args if a is not type(None)]
        return " or ".join(names) + (" or none" if type(None) in args else "")
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return "table"
    return getattr(annotation, "__name__", str(annotation))


def config_reference() -> str:
    """Markdown reference of every key, generated from the schema."""
    out = []
    for title, model in [("top level", Config), ("[data]", DataConfig),
                         ("[data.augment] (optional; convolutional models)", AugmentConfig), ("[model]", ModelConfig),
                         ("[[model.blocks]]", BlockConfig), ("[training]", TrainingConfig),
                         ("[multilevel] (optional)", MultilevelConfig),
                         ("[parallel] (optional; torchrun)", ParallelConfig)]:
        out.append(f"### {title}\n\n| key | type | default | meaning |\n|---|---|---|---|")
        for name, field in model.model_fields.items():
            if name in ("data", "model", "training", "multilevel", "parallel", "augment"):
                continue
            if field.is_required():
                default = "**required**"
            elif field.default_factory is not None:
                default = f"`{field.default_factory()!r}`".replace("'", '"')
            else:
                default = f"`{field.default!r}`".replace("'", '"')
            out.append(f"| `{name}` | {_type_name(field.annotation)} | {default} | {field.description or ''} |")
        out.append("")
    from ..data import DATASETS

    out.append("### data options (`[data] options = { … }`)\n\n| data set | options and defaults | what it is |\n|---|---|---|")
    for name, spec in DATASETS.items():
        options = ", ".join(f"`{k} = {v}`" for k, v in spec.options.items())
        out.append(f"| `{name}` | {options} | {spec.description} |")
    out.append("")
    return "\n".join(out)
