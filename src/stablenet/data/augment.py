"""Image augmentation and normalization as batched tensor operations with an explicit generator.

Every random draw takes a ``torch.Generator``, so a training run is reproducible from the
generator's seed (and resumable from its state); nothing touches torch's global random state.

* :func:`random_crop`: pad by ``padding`` zeros on each side and cut a random window of the
  original size per image (the standard CIFAR augmentation with padding 4; He et al. 2016).
* :func:`random_flip`: mirror each image left–right with probability ½.
* :func:`random_erase`: fill a random rectangle of each image with noise, with probability p
  (random erasing, Zhong et al., AAAI 2020).
* :func:`normalize_channels` / :func:`channel_stats`: per-channel standardization.
* :class:`Augmentation`: crop, then flip, then erase, then normalize, as one callable for a
  training loop.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F


def _check_images(x: object) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"images must be a tensor (batch, channels, H, W), got {shape}")
    return x


def _check_padding(padding: object) -> int:
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be an integer >= 0, got {padding!r}")
    return padding


def _check_probability(name: str, p: object) -> float:
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
    return float(p)


def random_crop(x: torch.Tensor, padding: int = 4, *, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad (batch, C, H, W) images by ``padding`` on every side and crop an H×W window at a
    random offset (independently per image, offsets uniform in 0..2·padding).

    Draws: the row offsets, then the column offsets, each ``torch.randint`` of size batch.
    """
    x = _check_images(x)
    p = _check_padding(padding)
    if p == 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (p, p, p, p))
    dev = generator.device
    oy = torch.randint(0, 2 * p + 1, (n,), generator=generator, device=dev).to(x.device)
    ox = torch.randint(0, 2 * p + 1, (n,), generator=generator, device=dev).to(x.device)
    rows = (oy[:, None] + torch.arange(h, device=x.device))[:, :, None]        # (n, h, 1)
    cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, :]        # (n, 1, w)
    batch = torch.arange(n, device=x.device)[:, None, None]
    # advanced indexing on dims 0, 2, 3 puts the broadcast (n, h, w) first: (n, h, w, C)
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2).contiguous()


def random_flip(x: torch.Tensor, p: float = 0.5, *, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left–right with probability ``p`` (one uniform draw per image)."""
    x = _check_images(x)
    p = _check_probability("p", p)
    u = torch.rand(x.shape[0], generator=generator, device=generator.device).to(x.device)
    flip = (u < p)[:, None, None, None]
    return torch.where(flip, x.flip(-1), x)


def random_erase(x: torch.Tensor, p: float = 0.5, *, generator: torch.Generator,
                 area: tuple[float, float] = (0.02, 0.4), ratio: tuple[float, float] = (0.3, 10 / 3)) -> torch.Tensor:
    """Random erasing (Zhong et al., "Random erasing data augmentation", AAAI 2020): with
    probability ``p`` per image, a rectangle of a random fraction ``area`` of the image's area and
    aspect ratio h/w log-uniform in ``ratio``, at a random position, is filled with uniform noise
    in [0, 1) (images in [0, 1] before standardization), the same rectangle in every channel.

    A rectangle larger than the image in one direction is clipped to it.  Draws: the per-image
    decision, the area fraction, the log aspect ratio, the two position fractions (each
    ``torch.rand`` of size batch), then the noise (the shape of ``x``).
    """
    x = _check_images(x)
    p = _check_probability("p", p)
    lo, hi = area
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"area must be fractions 0 < low <= high <= 1, got {area!r}")
    if not 0 < ratio[0] <= ratio[1]:
        raise ValueError(f"ratio must be aspect ratios 0 < low <= high, got {ratio!r}")
    if p == 0:
        return x
    n, _, h, w = x.shape
    dev = generator.device
    u = torch.rand(5, n, generator=generator, device=dev, dtype=torch.float64).to(x.device)
    s = (lo + (hi - lo) * u[1]) * (h * w)                                       # erased area (pixels)
    r = torch.exp(math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[2])
    eh = torch.sqrt(s * r).round().clamp(1, h)                                 # rectangle height
    ew = torch.sqrt(s / r).round().clamp(1, w)
    top = (u[3] * (h - eh + 1)).floor()
    left = (u[4] * (w - ew + 1)).floor()
    rows = torch.arange(h, device=x.device, dtype=torch.float64)
    cols = torch.arange(w, device=x.device, dtype=torch.float64)
    inside_r = (rows >= top[:, None]) & (rows < (top + eh)[:, None])          # (n, h)
    inside_c = (cols >= left[:, None]) & (cols < (left + ew)[:, None])        # (n, w)
    mask = (u[0] < p)[:, None, None] & inside_r[:, :, None] & inside_c[:, None, :]
    noise = torch.rand(x.shape, generator=generator, device=dev, dtype=x.dtype).to(x.device)
    return torch.where(mask[:, None], noise, x)


def channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (population) standard deviation of images (batch, C, H, W), in float64."""
    x = _check_images(x).to(torch.float64)
    return x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3), unbiased=False)


def normalize_channels(x: torch.Tensor, mean: Sequence[float] | torch.Tensor,
                       std: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """(x − mean_c) / std_c per channel c of images (batch, C, H, W)."""
    x = _check_images(x)
    mean = torch.as_tensor(mean, dtype=x.dtype, device=x.device)
    std = torch.as_tensor(std, dtype=x.dtype, device=x.device)
    if mean.shape != (x.shape[1],) or std.shape != (x.shape[1],):
        raise ValueError(f"mean and std must have one value per channel ({x.shape[1]}), got shapes "
                         f"{tuple(mean.shape)} and {tuple(std.shape)}")
    if not bool((std > 0).all()):
        raise ValueError(f"std must be > 0 in every channel, got {std.tolist()}")
    return (x - mean[:, None, None]) / std[:, None, None]


class Augmentation:
    """Training-time transform: random crop (``padding``; 0 disables it), random flip (``flip``),
    random erasing with probability ``erase`` (0 disables it), then per-channel normalization (if
    ``mean``/``std`` are given).  ``eval_transform`` applies
    the normalization alone (for validation and test batches).

        >>> from stablenet.data.cifar import CIFAR10_MEAN, CIFAR10_STD
        >>> aug = Augmentation(padding=4, flip=True, mean=CIFAR10_MEAN, std=CIFAR10_STD)
        >>> g = torch.Generator().manual_seed(0)
        >>> xb = aug(xb, g)
    """

    def __init__(self, padding: int = 4, flip: bool = True, mean=None, std=None, flip_p: float = 0.5,
                 erase: float = 0.0):
        self.padding = _check_padding(padding)
        self.flip = bool(flip)
        self.flip_p = _check_probability("flip_p", flip_p)
        self.erase = _check_probability("erase", erase)
        if (mean is None) != (std is None):
            raise ValueError("mean and std must be given together (or neither)")
        self.mean, self.std = mean, std

    def eval_transform(self, x: torch.Tensor) -> torch.Tensor:
        """The transform of validation and test batches: the per-channel normalization alone (``x``
        unchanged without ``mean``/``std``); nothing random."""
        return x if self.mean is None else normalize_channels(x, self.mean, self.std)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.padding:
            x = random_crop(x, self.padding, generator=generator)
        if self.flip:
            x = random_flip(x, self.flip_p, generator=generator)
        if self.erase:
            x = random_erase(x, self.erase, generator=generator)
        return self.eval_transform(x)

    def __repr__(self) -> str:
        norm = "" if self.mean is None else f", mean={tuple(self.mean)}, std={tuple(self.std)}"
        erase = f", erase={self.erase}" if self.erase else ""
        return f"Augmentation(padding={self.padding}, flip={self.flip}{erase}{norm})"


__all__ = ["random_crop", "random_flip", "random_erase", "channel_stats", "normalize_channels", "Augmentation"]
