"""Fashion-MNIST with a multi-stage convolutional ODE network, in a plain PyTorch loop.

The network (Ruthotto & Haber, JMIV 2020 layout): a 3×3 opening convolution, three stages of
one ODE block each (widths 16-32-64 by default) joined by 1×1 convolutions + 2×2 average
pooling, global average pooling and a linear classifier.  Each block integrates the parabolic
dynamics f(Y) = −Kᵀσ(N(KY) + b) (K a 3×3 convolution, Kᵀ its exact adjoint, N batch
normalization) with forward Euler, T = 2, 2 steps (h = 1, as in the paper).  Training: SGD with
Nesterov momentum 0.9, weight decay 5·10⁻⁴, batch 128, a one-cycle learning-rate schedule
peaking at 0.1, random crop (padding 2) + horizontal flip.

The data are the four IDX files of Debian's ``dataset-fashion-mnist`` (or ``--data-dir``):
55,000 training, 5,000 validation (split from the official training set, seeded) and the
official 10,000 test images.  Nothing is downloaded.

    python examples/fashion_mnist_conv.py --epochs 20            # the measured run (see RESULTS.md)
    python examples/fashion_mnist_conv.py --quick                # seconds, for the test suite
    python examples/fashion_mnist_conv.py --dynamics conv_hamiltonian --method verlet
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from stablenet.conv_models import ConvNetSpec
from stablenet.data import load_dataset
from stablenet.data.augment import Augmentation


def accuracy(net, aug, x, y, batch: int = 1000) -> float:
    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += int((net(aug.eval_transform(x[i:i + batch])).argmax(1) == y[i:i + batch]).sum())
    net.train()
    return correct / len(x)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few batches on a subset (seconds), for tests")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--widths", default="16,32,64", help="stage widths, comma-separated")
    parser.add_argument("--dynamics", default="conv_parabolic", help="convolutional dynamics name")
    parser.add_argument("--method", default="euler", help="integrator")
    parser.add_argument("--steps", type=int, default=2, help="state steps per block")
    parser.add_argument("--T", type=float, default=2.0, help="final time of each block")
    parser.add_argument("--normalization", default="batch", help="none, batch, instance or tv")
    parser.add_argument("--lr", type=float, default=0.1, help="peak learning rate")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None, help="directory with the four IDX files")
    parser.add_argument("--out", default=None, help="write results.json here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    data = load_dataset("fashion_mnist", seed=args.seed, data_dir=args.data_dir)
    def images(split, n=None):
        return split.x[:n].reshape(-1, 1, 28, 28), split.y[:n]
    n_train, n_eval, epochs = (512, 500, 1) if args.quick else (None, None, args.epochs)
    x_train, y_train = images(data.train, n_train)
    x_val, y_val = images(data.val, n_eval)
    x_test, y_test = images(data.test, n_eval)
    mean, std = float(x_train.mean()), float(x_train.std())
    aug = Augmentation(padding=2, flip=True, mean=[mean], std=[std])

    widths = tuple(int(w) for w in args.widths.split(","))
    normalization = None if args.normalization == "none" else args.normalization
    net = ConvNetSpec(in_channels=1, n_classes=10, T=args.T, steps=args.steps, method=args.method,
                      widths=widths, dynamics=args.dynamics, normalization=normalization).build()
    n_weights = sum(p.numel() for p in net.parameters())
    print(f"{args.dynamics}/{args.method} widths {widths}, {n_weights:,} weights; "
          f"{len(x_train):,} training images, {epochs} epochs", flush=True)

    batches = math.ceil(len(x_train) / args.batch)
    opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=epochs * batches,
                                                   pct_start=0.15)
    generator = torch.Generator().manual_seed(args.seed)
    history, start = [], time.perf_counter()
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(x_train), generator=generator)
        loss_sum = 0.0
        for b in range(batches):
            idx = order[b * args.batch:(b + 1) * args.batch]
            loss = F.cross_entropy(net(aug(x_train[idx], generator)), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
            loss_sum += float(loss.detach()) * len(idx)
        val = accuracy(net, aug, x_val, y_val)
        history.append({"epoch": epoch, "train_loss": loss_sum / len(x_train), "val_accuracy": val,
                        "time_s": time.perf_counter() - start})
        print(f"epoch {epoch}: train loss {loss_sum / len(x_train):.4f}, validation accuracy {val:.4f}, "
              f"{time.perf_counter() - start:.0f} s", flush=True)
    if net.has_batch_norm():  # population statistics for inference: test predictions independent of the batch
        net.calibrate_batch_norm(aug.eval_transform(x_train))
    test = accuracy(net, aug, x_test, y_test)
    result = {"dynamics": args.dynamics, "method": args.method, "widths": list(widths), "weights": n_weights,
              "epochs": epochs, "threads": args.threads, "test_accuracy": test,
              "val_accuracy": history[-1]["val_accuracy"], "train_time_s": history[-1]["time_s"],
              "history": history}
    print(f"test accuracy {test:.4f} after {epochs} epochs, {history[-1]['time_s']:.0f} s of training")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "results.json").write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
