"""Multi-stage convolutional ODE networks for images: classification and segmentation.

The layout of Ruthotto & Haber, "Deep neural networks motivated by partial differential
equations" (J. Math. Imaging Vis. 2020):

    x ─ opening: 3×3 conv → N → σ ─▶ stage 1 ─ connector ─▶ stage 2 ─ … ─▶ stage S ─▶ head

* a **stage** is one or more :class:`~stablenet.block.ODEBlock` of a convolutional dynamics
  (:mod:`stablenet.dynamics.conv`) at a fixed width w_i and resolution; each block has its own
  weights (θ(t) on its own control grid);
* a **connector** changes the width between stages: 1×1 convolution w_i → w_{i+1}, N, σ, and (for
  classification) 2×2 average pooling, halving the resolution;
* the **head**: global average pooling and a linear classifier (``head="classifier"``, output
  (batch, classes)), or a 1×1 convolution per pixel (``head="segmentation"``, no pooling anywhere,
  output (batch, classes, H, W)).

:class:`ConvNetSpec` is the plain description (widths, blocks per stage, dynamics, method, T,
steps, nt, normalization, gradient mode, …) that a configuration file can carry;
``ConvNetSpec.from_dict(d).build()`` (or :func:`build_conv_net`) makes the network.

The normalization outside the ODE blocks (opening, connectors) is an ordinary layer
(:func:`image_norm`): ``"batch"`` is ``nn.BatchNorm2d`` with running statistics (so ``eval()``
matters there), ``"instance"`` ``nn.InstanceNorm2d(affine=True)``, ``"tv"`` :class:`TVNorm`.
Inside the blocks the dynamics normalize with batch statistics (see :mod:`stablenet.dynamics.conv`
for why), so in training mode, and until calibrated, predictions depend on the batch.
:meth:`ConvODENet.calibrate_batch_norm` computes *population* statistics instead (every in-block
normalization's mean and variance over a whole data set, as "precise BN": Wu & Johnson,
"Rethinking 'batch' in BatchNorm", 2021); in ``eval()`` mode the network then normalizes with
them, and an image's prediction no longer depends on the batch it comes in.  The trainer
calibrates on the training images at the end of a run (``batch_norm_statistics.safetensors``).
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import _checks
from .block import ODEBlock
from .dynamics import ACTIVATIONS, DYNAMICS
from .dynamics.conv import (NORMALIZATION_EPS, ConvDynamics, check_normalization, frozen_batch_statistics,
                            odd_kernel_size, recording_or_replaying)
from .models import propagate
from .specs import ArgumentError, BlockSpec, argument

HEADS = ("classifier", "segmentation")


class TVNorm(nn.Module):
    """Total-variation normalization with a learned per-channel shift (Meganet's ``tvNormLayer``
    with its affine part): x / sqrt(Σ_c x_c² + ε) + β, per pixel."""

    def __init__(self, channels: int, eps: float = NORMALIZATION_EPS["tv"]):
        super().__init__()
        self.channels = _checks.positive_int("channels", channels)
        self.eps = _checks.positive_float("eps", eps)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).sum(1, keepdim=True) + self.eps) + self.bias[:, None, None]

    def extra_repr(self) -> str:
        return f"{self.channels}, eps={self.eps}"


def image_norm(kind: str | None, channels: int) -> nn.Module:
    """The normalization layer of the opening and the connectors (see the module docstring)."""
    check_normalization(kind)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "tv":
        return TVNorm(channels)
    return nn.Identity()


class _Activation(nn.Module):
    def __init__(self, name: str):
        super().__init__()
        self.name = _checks.choice("activation", name, ACTIVATIONS)
        self.fn = ACTIVATIONS[name]

    def forward(self, x):
        return self.fn(x)

    def extra_repr(self) -> str:
        return repr(self.name)


def _conv_norm_act(c_in: int, c_out: int, k: int, normalization: str | None, activation: str) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=normalization is None),
                         image_norm(normalization, c_out), _Activation(activation))


class ConvODENet(nn.Module):
    """Opening convolution, stages of convolutional ODE blocks joined by connectors, and a head.

    Args:
        in_channels: channels of the input images (3 for CIFAR-10).
        n_classes: number of classes.
        stages: one entry per stage: an :class:`ODEBlock` or a non-empty sequence of them, all of
            the stage's width and with a convolutional dynamics (``feature_dim == 1``).
        head: ``"classifier"`` (connectors pool 2×2; global average pooling + linear layer;
            output (batch, n_classes)) or ``"segmentation"`` (no pooling; 1×1 convolution per
            pixel; output (batch, n_classes, H, W)).
        normalization: normalization of the opening and connector layers (``None``, ``"batch"``,
            ``"instance"``, ``"tv"``).
        activation: their activation (a name of :data:`stablenet.dynamics.ACTIVATIONS`).
        opening_kernel: kernel size of the opening convolution (odd).

    Attributes as in :class:`~stablenet.models.ODEClassifier`: ``opening``, ``classifier`` (the
    head's weights W, μ), ``blocks`` (every ODE block, stage by stage), ``prolongate()``; plus
    ``stages``, ``connectors`` and ``batch_norm_statistics`` (see :meth:`calibrate_batch_norm`).
    """

    def __init__(self, in_channels: int, n_classes: int,
                 stages: Sequence[ODEBlock | Sequence[ODEBlock]], *, head: str = "classifier",
                 normalization: str | None = None, activation: str = "relu", opening_kernel: int = 3):
        super().__init__()
        self.in_channels = _checks.positive_int("in_channels", in_channels)
        self.n_classes = _checks.positive_int("n_classes", n_classes)
        self.head = _checks.choice("head", head, HEADS)
        check_normalization(normalization)
        _checks.choice("activation", activation, ACTIVATIONS)
        opening_kernel = odd_kernel_size("opening_kernel", opening_kernel)
        if isinstance(stages, ODEBlock) or not isinstance(stages, Sequence) or not stages:
            raise TypeError("stages must be a non-empty sequence of stages (an ODEBlock or a sequence of them)")
        grouped: list[list[ODEBlock]] = []
        for i, stage in enumerate(stages):
            blocks = [stage] if isinstance(stage, ODEBlock) else list(stage)
            if not blocks or not all(isinstance(b, ODEBlock) for b in blocks):
                raise TypeError(f"stages[{i}] must be an ODEBlock or a non-empty sequence of ODEBlocks")
            for b in blocks:
                if not isinstance(b.dynamics, ConvDynamics):
                    raise TypeError(f"stages[{i}] has a block with {b.dynamics.kind} dynamics, expected a "
                                    "convolutional dynamics (stablenet.dynamics.conv) on (batch, C, H, W)")
            widths = {b.dynamics.width for b in blocks}
            if len(widths) != 1:
                raise ValueError(f"stages[{i}] mixes block widths {sorted(widths)}; a stage has one width")
            grouped.append(blocks)
        self.widths = tuple(blocks[0].dynamics.width for blocks in grouped)
        self.normalization, self.activation = normalization, activation

        self.opening = _conv_norm_act(in_channels, self.widths[0], opening_kernel, normalization, activation)
        self.stages = nn.ModuleList(nn.ModuleList(blocks) for blocks in grouped)
        pool = self.head == "classifier"
        self.connectors = nn.ModuleList(
            nn.Sequential(*_conv_norm_act(a, b, 1, normalization, activation),
                          *([nn.AvgPool2d(2)] if pool else []))
            for a, b in zip(self.widths[:-1], self.widths[1:]))
        # the classifier (W, μ): a linear layer on the pooled features, or per pixel (1×1 conv);
        # named as in ODEClassifier, so weight decay groups and regularizers find it
        if pool:
            self.classifier = nn.Linear(self.widths[-1], n_classes)
        else:
            self.classifier = nn.Conv2d(self.widths[-1], n_classes, 1)
        self._n_statistics, self.batch_norm_grid = 0, None

    @property
    def blocks(self) -> list[ODEBlock]:
        """All ODE blocks, stage by stage."""
        return [b for stage in self.stages for b in stage]

    def features(self, x: torch.Tensor, *, return_states: bool = False):
        """The last stage's output (batch, w_S, H', W'); with ``return_states`` a list of every
        block's stacked states (N + 1, batch, w, H', W')."""
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must be an image batch (batch, {self.in_channels}, H, W), got {shape}")
        _checks.finite_state("x", x, self.in_channels, 1)
        _checks.same_device_and_dtype("ConvODENet input x", x, self.classifier.weight, "the model's weights",
                                      "; convert with model.to({got}) or x.to({expected})")
        layers = list(self.stages[0])
        for connector, stage in zip(self.connectors, self.stages[1:]):
            layers += [connector, *stage]
        if _checks.compiling():
            # population statistics are replayed through a ContextVar, which torch.compile cannot
            # trace: a compiled network normalizes with batch statistics, so refuse eval() with
            # calibrated statistics rather than silently using the batch's
            if not self.training and self._n_statistics:
                raise ValueError("a compiled ConvODENet in eval() mode with population batch-norm statistics: "
                                 "evaluate the original module (compiled._orig_mod) instead")
            return propagate(self.opening(x), layers, return_states=return_states)
        stats = self._inference_statistics()
        with nullcontext() if stats is None else frozen_batch_statistics(stats):
            return propagate(self.opening(x), layers, return_states=return_states)

    # -- population statistics of the in-block batch normalization ---------------------------------
    def has_batch_norm(self) -> bool:
        """Whether a block's dynamics normalizes with batch statistics (``normalization="batch"``)."""
        return any(b.dynamics.normalization == "batch" for b in self.blocks)

    def state_grids(self) -> list[list]:
        """Every block's [steps, integrator]: what fixes the sequence of normalizations evaluated."""
        return [[b.steps, b.integrator.name] for b in self.blocks]

    def batch_norm_statistics_stale(self) -> bool:
        """Whether population statistics are installed for other state grids than the blocks' now."""
        return self._n_statistics > 0 and self.batch_norm_grid != self.state_grids()

    @property
    def batch_norm_statistics(self) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        """The population (mean, variance) of every in-block batch normalization, in the order of
        evaluation in one forward pass, or None if not calibrated."""
        if not self._n_statistics:
            return None
        return [(getattr(self, f"bn_mean_{i}"), getattr(self, f"bn_var_{i}")) for i in range(self._n_statistics)]

    def set_batch_norm_statistics(self, stats, grid: list[list] | None = None) -> None:
        """Install population statistics (a list of per-channel (mean, variance)) recorded with the
        state grids ``grid`` (default: the current ones), or remove them with ``None``."""
        for i in range(self._n_statistics):
            delattr(self, f"bn_mean_{i}")
            delattr(self, f"bn_var_{i}")
        self._n_statistics, self.batch_norm_grid = 0, None
        if stats is None:
            return
        ref = next(self.parameters())
        for i, (mean, var) in enumerate(stats):
            # buffers, so that .to(device / dtype) moves them; not persistent: they are saved apart
            # from the weights (checkpoint.save_batch_norm_statistics), as they exist only once calibrated
            self.register_buffer(f"bn_mean_{i}", mean.detach().to(ref), persistent=False)
            self.register_buffer(f"bn_var_{i}", var.detach().to(ref), persistent=False)
        self._n_statistics = len(stats)
        self.batch_norm_grid = self.state_grids() if grid is None else [list(g) for g in grid]

    @torch.no_grad()
    def calibrate_batch_norm(self, x: torch.Tensor, batch_size: int = 500) -> int:
        """Population statistics for inference: run ``x`` through the network (``eval()`` mode) in
        batches of ``batch_size``, record every in-block batch normalization's per-channel mean and
        variance (over batch, H, W) and pool them over all of ``x`` — exactly the mean and variance
        over every image's pixels, whatever the batch size, given the normalizations' inputs.  In
        ``eval()`` mode the network then normalizes with these; in ``train()`` mode it keeps
        using each batch's.  Returns the number of images.  Recalibrate after changing a block's
        ``steps`` (evaluating in ``eval()`` mode refuses stale statistics).
        """
        if not self.has_batch_norm():
            raise ValueError("calibrate_batch_norm: no block of this network uses normalization='batch'")
        batch_size = _checks.positive_int("batch_size", batch_size)
        if not isinstance(x, torch.Tensor) or x.shape[0] == 0:
            raise ValueError("calibrate_batch_norm: x must be a non-empty batch of images")
        was_training = self.training
        self.set_batch_norm_statistics(None)
        self.eval()
        sums: list[tuple[torch.Tensor, torch.Tensor]] = []
        try:
            for start in range(0, x.shape[0], batch_size):
                xb = x[start:start + batch_size]
                with frozen_batch_statistics() as stats:
                    self(xb)
                m = xb.shape[0]
                # pooled first and second moments, in float64 (each batch's mean over its pixels)
                moments = [(m * mean.double(), m * (var.double() + mean.double() ** 2)) for mean, var in stats]
                sums = moments if not sums else [(a + c, b + d) for (a, b), (c, d) in zip(sums, moments)]
        finally:
            self.train(was_training)
        n = x.shape[0]
        self.set_batch_norm_statistics([(a / n, (b / n - (a / n) ** 2).clamp_min(0.0)) for a, b in sums])
        return n

    def _inference_statistics(self):
        """The population statistics to normalize with now, or None (training mode, not
        calibrated, or a caller already recording/replaying statistics)."""
        if self.training or not self._n_statistics or recording_or_replaying():
            return None
        if self.batch_norm_statistics_stale():
            raise ValueError(f"the batch-norm population statistics were computed with state grids "
                             f"{self.batch_norm_grid} ([steps, integrator] per block), the network now has "
                             f"{self.state_grids()}; call calibrate_batch_norm again")
        return self.batch_norm_statistics

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores (batch, n_classes), or per-pixel scores (batch, n_classes, H, W)."""
        y = self.features(x)
        if self.head == "classifier":
            return self.classifier(y.mean(dim=(-2, -1)))
        return self.classifier(y)

    def prolongate(self) -> "ConvODENet":
        """Double every block's control points nt → 2nt keeping θ(t) (rebuild the optimizer after)."""
        for block in self.blocks:
            block.prolongate()
        return self

    def extra_repr(self) -> str:
        return f"head={self.head!r}, widths={self.widths}"


#: the keys of a ConvNetSpec that describe the network around its blocks (the rest describe a block)
NETWORK_KEYS = ("in_channels", "n_classes", "widths", "blocks_per_stage", "head")


@dataclass(frozen=True)
class ConvNetSpec:
    """A plain description of a :class:`ConvODENet` (what a config file would carry).

    Required: ``in_channels``, ``n_classes``, ``T`` (final time of each block), ``steps`` (state
    steps per block) and ``method`` (integrator) — there is no default time grid.  ``widths``
    are the stage widths (e.g. (16, 32, 64, 128) or (32, 64, 112)); ``blocks_per_stage`` an int
    for every stage or one int per stage; ``nt`` the control points per block (default
    ``steps``: one weight set per step, the ResNet); ``dynamics`` a convolutional name of
    :data:`stablenet.dynamics.DYNAMICS`; ``normalization`` is used inside the blocks and in the
    opening/connectors; ``gamma`` applies to ``conv_antisymmetric`` only; hidden channels
    (parabolic) and z-channels (Hamiltonian) equal the stage width.

    Every key but :data:`NETWORK_KEYS` describes the blocks: a stage of width w has blocks of
    :meth:`block_spec` (w), a :class:`stablenet.specs.BlockSpec` that validates them (errors are
    :class:`~stablenet._checks.ArgumentError` naming the key).

        >>> spec = ConvNetSpec.from_dict({"in_channels": 3, "n_classes": 10, "widths": [16, 32, 64],
        ...                               "dynamics": "conv_parabolic", "method": "rk4", "T": 1.0,
        ...                               "steps": 2})
        >>> net = spec.build()
    """

    in_channels: int
    n_classes: int
    T: float
    steps: int
    method: str
    widths: tuple[int, ...] = (16, 32, 64)
    blocks_per_stage: int | tuple[int, ...] = 1
    dynamics: str = "conv_parabolic"
    nt: int | None = None
    controls: str = "constant"
    activation: str = "relu"
    normalization: str | None = "instance"
    gamma: float = 0.0
    kernel_size: int = 3
    gradient: str = "autograd"
    adjoint_method: str | None = None
    adjoint_steps: int | None = None
    checkpoint_segment: int | None = None
    head: str = "classifier"

    def __post_init__(self) -> None:
        with argument("in_channels"):
            _checks.positive_int("in_channels", self.in_channels)
        with argument("n_classes"):
            _checks.positive_int("n_classes", self.n_classes)
        widths = tuple(self.widths) if isinstance(self.widths, (list, tuple)) else None
        if not widths:
            raise ArgumentError("widths", f"widths must be a non-empty list of channel counts, got {self.widths!r}")
        with argument("widths"):
            for w in widths:
                _checks.positive_int("widths[...]", w)
        object.__setattr__(self, "widths", widths)
        bps = self.blocks_per_stage
        if isinstance(bps, (list, tuple)):
            if len(bps) != len(widths):
                raise ArgumentError("blocks_per_stage", f"blocks_per_stage={list(bps)!r} has {len(bps)} entries; "
                                                        f"expected one per stage ({len(widths)}, widths) or a single int")
            with argument("blocks_per_stage"):
                bps = tuple(_checks.positive_int("blocks_per_stage[...]", b) for b in bps)
        else:
            with argument("blocks_per_stage"):
                bps = (_checks.positive_int("blocks_per_stage", bps),) * len(widths)
        object.__setattr__(self, "blocks_per_stage", bps)
        with argument("dynamics"):
            _checks.choice("dynamics", self.dynamics, [n for n, c in DYNAMICS.items() if issubclass(c, ConvDynamics)])
        with argument("head"):
            _checks.choice("head", self.head, HEADS)
        # one BlockSpec per stage (not per block: a stage may have 2**31 blocks), validated once per width
        specs = {w: self.block_spec(w) for w in dict.fromkeys(widths)}
        object.__setattr__(self, "_stage_specs", tuple(specs[w] for w in widths))

    @classmethod
    def keys(cls) -> list[str]:
        """The names of the spec's fields, in declaration order."""
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, description: Mapping[str, Any]) -> "ConvNetSpec":
        """From a plain mapping (e.g. a TOML table); unknown keys are refused, naming the valid ones."""
        if not isinstance(description, Mapping):
            raise TypeError(f"a ConvNetSpec description must be a mapping, got {type(description).__name__}")
        valid = cls.keys()
        unknown = sorted(set(description) - set(valid))
        if unknown:
            raise ValueError(f"unknown ConvNetSpec key(s) {unknown}; valid keys: {valid}")
        missing = sorted(k for k in ("in_channels", "n_classes", "T", "steps", "method") if k not in description)
        if missing:
            raise ValueError(f"ConvNetSpec needs {missing} (no default time grid or integrator)")
        return cls(**dict(description))

    def to_dict(self) -> dict[str, Any]:
        """The description as plain data (lists, numbers, strings, None)."""
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def block_spec(self, width: int) -> BlockSpec:
        """The :class:`~stablenet.specs.BlockSpec` of every block of a stage of ``width`` channels."""
        keys = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in NETWORK_KEYS}
        return BlockSpec.from_flat({**keys, "width": width})

    def stage_specs(self) -> list[tuple[BlockSpec, int]]:
        """(block spec, number of blocks) of every stage."""
        return list(zip(self._stage_specs, self.blocks_per_stage))

    def build_stages(self) -> list[list[ODEBlock]]:
        """New blocks, stage by stage (weights drawn from torch's global random state)."""
        return [[spec.build() for _ in range(n)] for spec, n in self.stage_specs()]

    def build(self) -> ConvODENet:
        """The network (initialized from torch's global random state: seed before calling)."""
        return ConvODENet(self.in_channels, self.n_classes, self.build_stages(), head=self.head,
                          normalization=self.normalization, activation=self.activation)


class ImageClassifier(ConvODENet):
    """A classifying :class:`ConvODENet` for :class:`stablenet.data.Dataset` images, what
    ``stablenet train`` builds for ``model.kind = "conv"``.

    It accepts the data sets' flat feature vectors (batch, C·H·W) as well as image batches
    (batch, C, H, W): flat input is reshaped to ``image_shape`` (C, H, W); then every channel is
    standardized, (x − mean_c) / std_c, with the buffers ``input_mean`` / ``input_std`` (saved
    with the weights; 0 and 1 unless given), so evaluation, plots and analysis of a trained run
    need no separate preprocessing.  Training-time augmentation (crop, flip) acts on the raw
    images before the model.
    """

    def __init__(self, image_shape: Sequence[int], n_classes: int,
                 stages: Sequence[ODEBlock | Sequence[ODEBlock]], *, mean=None, std=None, **kwargs):
        shape = tuple(int(s) for s in image_shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"image_shape must be (channels, H, W), got {tuple(image_shape)!r}")
        super().__init__(shape[0], n_classes, stages, head="classifier", **kwargs)
        self.image_shape = shape
        mean = torch.zeros(shape[0]) if mean is None else torch.as_tensor(mean, dtype=torch.float32)
        std = torch.ones(shape[0]) if std is None else torch.as_tensor(std, dtype=torch.float32)
        if mean.shape != (shape[0],) or std.shape != (shape[0],) or not bool((std > 0).all()):
            raise ValueError(f"mean and std must hold one value per channel ({shape[0]}), std > 0; got "
                             f"{mean.tolist()} and {std.tolist()}")
        self.register_buffer("input_mean", mean.clone())
        self.register_buffer("input_std", std.clone())

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Flat vectors → images (batch, C, H, W), standardized per channel."""
        if isinstance(x, torch.Tensor) and x.dim() == 2:
            if x.shape[1] != math.prod(self.image_shape):
                raise ValueError(f"x has {x.shape[1]} features, expected {math.prod(self.image_shape)} "
                                 f"(images {self.image_shape})")
            x = x.reshape(-1, *self.image_shape)
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must be flat images (batch, {math.prod(self.image_shape)}) or (batch, "
                             f"{', '.join(map(str, self.image_shape))}), got {shape}")
        return (x - self.input_mean[:, None, None]) / self.input_std[:, None, None]

    def features(self, x: torch.Tensor, *, return_states: bool = False):
        return super().features(self.prepare(x), return_states=return_states)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", image_shape={self.image_shape}"


def build_image_classifier(spec: ConvNetSpec, image_shape: Sequence[int], *, mean=None, std=None) -> ImageClassifier:
    """The :class:`ImageClassifier` of a (classifier) :class:`ConvNetSpec` for images of ``image_shape``."""
    if spec.head != "classifier":
        raise ValueError(f"an ImageClassifier needs head 'classifier', got {spec.head!r}")
    return ImageClassifier(image_shape, spec.n_classes, spec.build_stages(), mean=mean, std=std,
                           normalization=spec.normalization, activation=spec.activation)


def build_conv_net(description: Mapping[str, Any] | ConvNetSpec) -> ConvODENet:
    """A :class:`ConvODENet` from a :class:`ConvNetSpec` or its plain-mapping form."""
    spec = description if isinstance(description, ConvNetSpec) else ConvNetSpec.from_dict(description)
    return spec.build()


def pixel_accuracy(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of pixels whose arg-max class (scores (batch, classes, H, W)) equals the label
    (batch, H, W)."""
    return float((scores.argmax(1) == labels).float().mean())


def segmentation_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean per-pixel softmax cross-entropy of scores (batch, classes, H, W) against labels (batch, H, W)."""
    return F.cross_entropy(scores, labels)


__all__ = ["ConvODENet", "ConvNetSpec", "NETWORK_KEYS", "build_conv_net", "ImageClassifier", "build_image_classifier", "TVNorm",
           "image_norm", "pixel_accuracy", "segmentation_loss", "HEADS"]
