"""Semantic segmentation with a convolutional ODE network, in a plain PyTorch loop.

The data: synthetic noisy images of ellipses and rectangles (stablenet.data.segmentation), the
label of every pixel being background, ellipse or rectangle.  Both shapes have the same
intensities, so the network has to look at the geometry around a pixel.  The network: a 3×3
opening convolution, one block of the parabolic dynamics f(Y) = −Kᵀσ(N(KY) + b) (K a 3×3
convolution, Kᵀ its adjoint; Ruthotto & Haber, JMIV 2020) at full resolution, and a 1×1
convolution giving per-pixel class scores (batch, classes, H, W).

    python examples/segmentation.py            # full: 600 Adam steps, ≥ 95 % pixel accuracy
    python examples/segmentation.py --quick    # a few seconds, for the test suite
"""

from __future__ import annotations

import argparse
import time

import torch

from stablenet.conv_models import ConvNetSpec, pixel_accuracy, segmentation_loss
from stablenet.data.segmentation import shapes_segmentation


def evaluate(net, split, batch: int = 256) -> tuple[float, torch.Tensor]:
    """Pixel accuracy and the confusion matrix (rows: true class) of ``net`` on ``split``."""
    net.eval()
    n_classes = net.n_classes
    confusion = torch.zeros(n_classes, n_classes, dtype=torch.int64)
    with torch.no_grad():
        for i in range(0, len(split), batch):
            pred = net(split.x[i:i + batch]).argmax(1)
            truth = split.y[i:i + batch]
            confusion += torch.bincount(truth.flatten() * n_classes + pred.flatten(),
                                        minlength=n_classes ** 2).reshape(n_classes, n_classes)
    net.train()
    return float(confusion.diag().sum() / confusion.sum()), confusion


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny run (seconds), for tests")
    parser.add_argument("--iters", type=int, help="Adam steps (default 600, quick 40)")
    parser.add_argument("--dynamics", default="conv_parabolic", help="convolutional dynamics name")
    parser.add_argument("--method", default="euler", help="integrator")
    parser.add_argument("--steps", type=int, default=4, help="state steps N of the ODE block")
    parser.add_argument("--T", type=float, default=2.0, help="final time of the ODE block")
    parser.add_argument("--width", type=int, default=16, help="channels of the ODE block")
    parser.add_argument("--normalization", default="instance", help="none, batch, instance or tv")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    size, n_train, iters, batch = (16, 128, 40, 16) if args.quick else (32, 2048, 600, 32)
    iters = args.iters or iters
    ds = shapes_segmentation(seed=args.seed, n_train=n_train, n_val=64 if args.quick else 256,
                             n_test=64 if args.quick else 512, size=size, n_classes=3)
    chance = float(ds.class_frequencies("test").max())

    torch.manual_seed(args.seed)
    spec = ConvNetSpec(in_channels=ds.in_channels, n_classes=ds.n_classes, head="segmentation",
                       widths=(args.width,), dynamics=args.dynamics, method=args.method,
                       T=args.T, steps=args.steps,
                       normalization=None if args.normalization == "none" else args.normalization)
    net = spec.build()
    lr = 0.01
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=iters)
    batches = torch.Generator().manual_seed(args.seed)

    print(f"{len(ds.train)} training images {size}x{size}, classes {ds.class_names}; "
          f"{args.dynamics} + {args.method}, T={args.T}, N={args.steps}, width {args.width}, "
          f"{sum(p.numel() for p in net.parameters())} weights")
    start = time.perf_counter()
    for it in range(1, iters + 1):
        idx = torch.randint(0, len(ds.train), (batch,), generator=batches)
        loss = segmentation_loss(net(ds.train.x[idx]), ds.train.y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if it % max(1, iters // 6) == 0 or it == iters:
            val, _ = evaluate(net, ds.val)
            print(f"step {it:4d}  loss {loss.item():.4f}  val pixel accuracy {val:.4f}  "
                  f"({time.perf_counter() - start:.1f} s)", flush=True)
    seconds = time.perf_counter() - start
    test, confusion = evaluate(net, ds.test)
    recall = (confusion.diag() / confusion.sum(1).clamp_min(1)).tolist()
    print(f"test pixel accuracy {test:.4f} (majority class {chance:.4f}); per-class recall "
          + ", ".join(f"{n} {r:.3f}" for n, r in zip(ds.class_names, recall))
          + f"; training {seconds:.1f} s on {args.threads} thread(s)")
    return {"test_accuracy": test, "chance": chance, "seconds": seconds, "final_loss": loss.item()}


if __name__ == "__main__":
    main()
