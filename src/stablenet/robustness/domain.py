"""The valid input domain of a data set: a box [lower_i, upper_i] per feature.

Perturbed inputs are clipped to it, so an attack never leaves the data's domain: 2-D point sets
stay in the box their generator draws from (peaks: [-3, 3]², :data:`stablenet.data.synthetic.PEAKS_DOMAIN`),
images in [0, 1] per pixel *before* standardization.  The image models standardize inside
themselves (:class:`stablenet.conv_models.ImageClassifier` divides by the channel statistics it
stores; the dense image networks take the [0, 1] pixels as they are), so the function an attack
sees is the model on raw [0, 1] pixels and the domain is the pixel box.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True, eq=False)
class Domain:
    """A box: ``lower`` and ``upper`` float64 tensors of one value per feature (``lower < upper``).

    ``image_shape`` is (C, H, W) for image data (attacks that need images, AutoAttack's Square
    attack, check it), None for point sets.
    """

    lower: torch.Tensor
    upper: torch.Tensor
    image_shape: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        lower = torch.as_tensor(self.lower, dtype=torch.float64).flatten()
        upper = torch.as_tensor(self.upper, dtype=torch.float64).flatten()
        if lower.shape != upper.shape or lower.numel() == 0:
            raise ValueError(f"domain lower and upper must hold one value per feature, got shapes "
                             f"{tuple(lower.shape)} and {tuple(upper.shape)}")
        if not (torch.isfinite(lower).all() and torch.isfinite(upper).all()) or not bool((lower < upper).all()):
            raise ValueError("domain bounds must be finite with lower < upper in every feature")
        if self.image_shape is not None and math.prod(self.image_shape) != lower.numel():
            raise ValueError(f"image_shape {self.image_shape} does not hold {lower.numel()} features")
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)

    @property
    def features(self) -> int:
        """Number of features: the box's dimension."""
        return int(self.lower.numel())

    @property
    def width(self) -> float:
        """The mean side length of the box (the scale of the default perturbation sizes)."""
        return float((self.upper - self.lower).mean())

    @classmethod
    def box(cls, lower, upper, features: int | None = None, image_shape=None) -> "Domain":
        """A box from scalars (repeated ``features`` times) or per-feature sequences."""
        lower, upper = torch.as_tensor(lower, dtype=torch.float64), torch.as_tensor(upper, dtype=torch.float64)
        if features is not None:
            lower, upper = lower.expand(features).clone(), upper.expand(features).clone()
        return cls(lower, upper, None if image_shape is None else tuple(int(s) for s in image_shape))

    @classmethod
    def of_dataset(cls, data) -> "Domain":
        """The domain of a :class:`stablenet.data.Dataset`: [0, 1] per pixel for image data sets, the
        data set's plotting box ``domain`` (xmin, xmax, ymin, ymax) for 2-D point sets, widened to
        every split's points (noisy generators may leave their box); else the range of the data."""
        splits = [s for s in (data.train, data.val, data.test) if s is not None]
        lo = torch.stack([s.x.to(torch.float64).amin(0) for s in splits]).amin(0)
        hi = torch.stack([s.x.to(torch.float64).amax(0) for s in splits]).amax(0)
        if data.image_shape is not None:
            shape = tuple(data.image_shape)
            shape = shape if len(shape) == 3 else (1, *shape)
            if lo.min() < 0 or hi.max() > 1:
                raise ValueError(f"data set {data.name!r}: image features outside [0, 1] "
                                 f"([{float(lo.min()):g}, {float(hi.max()):g}])")
            return cls.box(0.0, 1.0, data.in_features, image_shape=shape)
        if data.domain is not None and data.in_features == 2:
            box_lo = torch.tensor([data.domain[0], data.domain[2]], dtype=torch.float64)
            box_hi = torch.tensor([data.domain[1], data.domain[3]], dtype=torch.float64)
            return cls(torch.minimum(box_lo, lo), torch.maximum(box_hi, hi))
        return cls(lo, torch.where(hi > lo, hi, lo + 1.0))  # a constant feature gets a unit interval

    def clip(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (batch, features) clipped into the box."""
        lo, hi = self.lower.to(x), self.upper.to(x)
        return torch.maximum(torch.minimum(x, hi), lo)

    def contains(self, x: torch.Tensor, tol: float = 0.0) -> bool:
        """Whether every row of ``x`` lies in the box, up to ``tol`` in each feature."""
        lo, hi = self.lower.to(x), self.upper.to(x)
        return bool(((x >= lo - tol) & (x <= hi + tol)).all())

    def check(self, x: torch.Tensor, name: str = "x") -> torch.Tensor:
        """``x`` if it is a finite (batch, features) tensor inside the box, else a one-line error."""
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != self.features:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{name} must be a tensor (batch, {self.features}), got {shape}")
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"{name} holds non-finite values")
        if not self.contains(x, tol=1e-6):
            raise ValueError(f"{name} has points outside the domain box [{float(self.lower.min()):g}, "
                             f"{float(self.upper.max()):g}]; the perturbations are measured from valid inputs")
        return x

    def to_dict(self) -> dict:
        """JSON form: per-feature bounds, or one pair of numbers when every feature has the same box."""
        uniform = bool((self.lower == self.lower[0]).all() and (self.upper == self.upper[0]).all())
        lower, upper = (float(self.lower[0]), float(self.upper[0])) if uniform else (self.lower.tolist(),
                                                                                      self.upper.tolist())
        return {"lower": lower, "upper": upper, "features": self.features,
                "image_shape": None if self.image_shape is None else list(self.image_shape)}
