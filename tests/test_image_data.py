"""Image augmentation (stablenet.data.augment) and the synthetic segmentation set
(stablenet.data.segmentation): exact crops and flips, determinism from the generator / seed."""

import numpy as np
import pytest
import torch

from stablenet.data.augment import (Augmentation, channel_stats, normalize_channels, random_crop, random_erase,
                                   random_flip)
from stablenet.data.cifar import CIFAR10_MEAN, CIFAR10_STD
from stablenet.data.segmentation import make_shapes, shapes_segmentation


def gen(seed):
    return torch.Generator().manual_seed(seed)


def test_random_crop_is_a_shifted_window_of_the_zero_padded_image():
    x = torch.randn(16, 3, 8, 10)
    out = random_crop(x, 2, generator=gen(0))
    g = gen(0)
    oy, ox = torch.randint(0, 5, (16,), generator=g), torch.randint(0, 5, (16,), generator=g)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(16):
        assert torch.equal(out[i], padded[i, :, oy[i]:oy[i] + 8, ox[i]:ox[i] + 10])
    assert len({(int(a), int(b)) for a, b in zip(oy, ox)}) > 4      # offsets really vary
    assert torch.equal(random_crop(x, 0, generator=gen(0)), x)


def test_random_flip():
    x = torch.randn(64, 2, 4, 5)
    out = random_flip(x, generator=gen(3))
    flipped = torch.tensor([torch.equal(o, xi.flip(-1)) for o, xi in zip(out, x)])
    kept = torch.tensor([torch.equal(o, xi) for o, xi in zip(out, x)])
    assert bool((flipped ^ kept).all()) and 16 < int(flipped.sum()) < 48
    assert torch.equal(flipped, torch.rand(64, generator=gen(3)) < 0.5)
    assert torch.equal(random_flip(x, 0.0, generator=gen(3)), x)
    with pytest.raises(ValueError, match="p must be a probability in \\[0, 1\\], got 1.5"):
        random_flip(x, 1.5, generator=gen(0))


def test_augmentation_is_deterministic_given_the_generator():
    x = torch.rand(8, 3, 32, 32)
    aug = Augmentation(padding=4, flip=True, mean=CIFAR10_MEAN, std=CIFAR10_STD)
    a, b, c = aug(x, gen(7)), aug(x, gen(7)), aug(x, gen(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    g = gen(7)
    assert torch.equal(a, normalize_channels(random_flip(random_crop(x, 4, generator=g), generator=g),
                                             CIFAR10_MEAN, CIFAR10_STD))
    state = torch.random.get_rng_state()
    aug(x, gen(1))
    assert torch.equal(torch.random.get_rng_state(), state)   # the global stream is untouched
    assert torch.equal(aug.eval_transform(x), normalize_channels(x, CIFAR10_MEAN, CIFAR10_STD))


def test_random_erase_fills_one_rectangle_per_chosen_image_with_noise():
    x = torch.full((400, 2, 12, 16), -1.0)           # noise is in [0, 1): erased pixels are >= 0
    out = random_erase(x, 0.5, generator=gen(4))
    erased = out >= 0
    assert torch.equal(erased[:, 0], erased[:, 1])   # the same rectangle in every channel
    hit = erased.flatten(1).any(1)
    assert 160 < int(hit.sum()) < 240                # about half the images
    u = torch.rand(5, 400, generator=gen(4), dtype=torch.float64)
    assert torch.equal(hit, u[0] < 0.5)              # the documented draw order
    for mask in erased[hit, 0]:
        rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
        h, w = len(rows), len(cols)
        assert int(mask.sum()) == h * w              # a full rectangle ...
        assert int(rows[-1] - rows[0]) == h - 1 and int(cols[-1] - cols[0]) == w - 1   # ... in one piece
        assert 0.02 * 192 - 3 <= h * w <= 0.4 * 192 + 8    # the area range, up to rounding
    assert float(out[erased].min()) >= 0 and float(out[erased].max()) < 1 and float(out[erased].std()) > 0.2
    assert torch.equal(out[~erased], x[~erased])
    assert torch.equal(random_erase(x, 0.0, generator=gen(4)), x)
    assert torch.equal(random_erase(x, 0.5, generator=gen(4)), out)
    assert bool(random_erase(x, 1.0, generator=gen(5)).ge(0).flatten(1).any(1).all())
    with pytest.raises(ValueError, match=r"area must be fractions 0 < low <= high <= 1, got \(0.5, 0.2\)"):
        random_erase(x, 0.5, generator=gen(0), area=(0.5, 0.2))
    aug = Augmentation(padding=0, flip=False, erase=0.5)
    assert torch.equal(aug(x, gen(4)), out) and "erase=0.5" in repr(aug)
    with pytest.raises(ValueError, match=r"erase must be a probability in \[0, 1\], got 2"):
        Augmentation(erase=2)


def test_channel_normalization():
    x = torch.rand(10, 3, 6, 6) * torch.tensor([1.0, 2.0, 3.0])[:, None, None] + 5
    mean, std = channel_stats(x)
    z = normalize_channels(x.double(), mean, std)
    m2, s2 = channel_stats(z)
    assert torch.allclose(m2, torch.zeros(3, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(s2, torch.ones(3, dtype=torch.float64), atol=1e-12)
    with pytest.raises(ValueError, match=r"one value per channel \(3\), got shapes \(2,\) and \(2,\)"):
        normalize_channels(x, [0.0, 0.0], [1.0, 1.0])
    with pytest.raises(ValueError, match=r"images must be a tensor \(batch, channels, H, W\), got \(3, 6, 6\)"):
        random_crop(x[0], 2, generator=gen(0))


def test_shapes_segmentation_is_deterministic_and_sensible():
    a = shapes_segmentation(seed=3, n_train=32, n_val=8, n_test=8, size=16)
    b = shapes_segmentation(seed=3, n_train=32, n_val=8, n_test=8, size=16)
    c = shapes_segmentation(seed=4, n_train=32, n_val=8, n_test=8, size=16)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    assert not torch.equal(a.train.x, c.train.x)
    assert a.train.x.shape == (32, 1, 16, 16) and a.train.y.shape == (32, 16, 16)
    assert a.class_names == ("background", "ellipse", "rectangle")
    freq = a.class_frequencies()
    assert abs(float(freq.sum()) - 1) < 1e-12 and 0.6 < float(freq[0]) < 0.95 and bool((freq > 0.02).all())
    # validation unchanged when only the training size changes (independent streams)
    d = shapes_segmentation(seed=3, n_train=40, n_val=8, n_test=8, size=16)
    assert torch.equal(d.val.x, a.val.x)
    # noise-free: shape pixels have intensities in [0.5, 1], background exactly 0
    x, y = make_shapes(16, np.random.default_rng(0), size=16, noise=0.0, n_classes=4)
    assert set(y.unique().tolist()) == {0, 1, 2, 3}
    assert bool((x[:, 0][y == 0] == 0).all()) and float(x[:, 0][y > 0].min()) >= 0.5
    x2, y2 = make_shapes(16, np.random.default_rng(0), size=16, noise=0.0, n_classes=2)
    assert set(y2.unique().tolist()) == {0, 1}


def test_shapes_errors():
    with pytest.raises(ValueError, match="n_classes must be 2, 3 or 4, got 5"):
        shapes_segmentation(n_classes=5)
    with pytest.raises(ValueError, match="n_train must be an integer >= 1, got 0"):
        shapes_segmentation(n_train=0)
    with pytest.raises(ValueError, match="noise must be a finite number >= 0, got -0.1"):
        shapes_segmentation(noise=-0.1)
