"""Training throughput of convolutional ODE networks vs a plain PyTorch ResNet of similar size.

Images per second of one training step (forward, cross-entropy, backward, SGD-momentum step)
on random images of Fashion-MNIST's shape (1 × 28 × 28) and CIFAR-10's (3 × 32 × 32), for:

* **parabolic / hamiltonian / second-order**: :class:`stablenet.conv_models.ConvODENet` of the
  JMIV 2020 layout (opening 3×3 conv, stages of ODE blocks joined by 1×1 conv + 2×2 average
  pooling, global pooling, linear classifier), instance normalization, widths 16-32-64, one
  block per stage with 2 steps (forward Euler, Verlet, leapfrog);
* **plain ResNet**: a hand-written torchvision-free ResNet with the same layout, every ODE
  block replaced by 2 textbook basic blocks ``y + conv(σ(N(conv(σ(N(y))))))`` (two 3×3
  convolutions per residual step, as the parabolic dynamics −Kᵀσ(N(KY)) does), its own weights
  per residual step; instance normalization.

The models run round-robin (rotating order, after a warm-up) so that the noise of a shared
machine falls on all alike; medians.  This measures the cost of stablenet's machinery (the
block, stage tables, the dynamics' transposed convolution) against the same arithmetic written
by hand, not accuracy.

With ``--mixed-precision bfloat16`` (or ``float16``) the parabolic network and the plain ResNet
run a second time with their forward pass and loss under ``torch.autocast`` in that precision
(``training.mixed_precision``; the loss scaling of float16 is left out, it costs a few scalar
operations per step), compared with the float32 rows of the same run.

    python benchmarks/bench_conv.py                    # 1 thread, batch 128, 10 repeats
    python benchmarks/bench_conv.py --threads 2 --device cuda --mixed-precision bfloat16
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from _machine import cpu_model
from stablenet.conv_models import ConvNetSpec

WIDTHS, STEPS = (16, 32, 64), 2


class BasicBlock(nn.Module):
    """y + conv2(σ(N(conv1(σ(N(y)))))): a pre-activation residual step with its own weights."""

    def __init__(self, width: int):
        super().__init__()
        self.n1, self.n2 = nn.InstanceNorm2d(width, affine=True), nn.InstanceNorm2d(width, affine=True)
        self.c1 = nn.Conv2d(width, width, 3, padding=1)
        self.c2 = nn.Conv2d(width, width, 3, padding=1, bias=False)

    def forward(self, y):
        return y + self.c2(F.relu(self.n2(self.c1(F.relu(self.n1(y))))))


class PlainResNet(nn.Module):
    def __init__(self, in_channels: int, n_classes: int, widths=WIDTHS, steps=STEPS):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, widths[0], 3, padding=1),
                                   nn.InstanceNorm2d(widths[0], affine=True), nn.ReLU()]
        for i, w in enumerate(widths):
            if i:
                layers += [nn.Conv2d(widths[i - 1], w, 1), nn.InstanceNorm2d(w, affine=True), nn.ReLU(),
                           nn.AvgPool2d(2)]
            layers += [BasicBlock(w) for _ in range(steps)]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(widths[-1], n_classes)

    def forward(self, x):
        return self.classifier(self.features(x).mean(dim=(-2, -1)))


PARABOLIC, PLAIN = "parabolic (euler)", "plain ResNet (hand-written)"


def models(in_channels: int) -> dict[str, nn.Module]:
    out = {}
    for name, dynamics, method in [(PARABOLIC, "conv_parabolic", "euler"),
                                   ("hamiltonian (verlet)", "conv_hamiltonian", "verlet"),
                                   ("second-order (leapfrog)", "conv_second_order", "leapfrog")]:
        torch.manual_seed(0)
        out[name] = ConvNetSpec(in_channels=in_channels, n_classes=10, T=float(STEPS), steps=STEPS,
                                method=method, widths=WIDTHS, dynamics=dynamics,
                                normalization="instance").build()
    torch.manual_seed(0)
    out[PLAIN] = PlainResNet(in_channels, 10)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--mixed-precision", choices=["none", "bfloat16", "float16"], default="none",
                        help="also time the parabolic network and the plain ResNet under autocast")
    args = parser.parse_args()
    mixed = None if args.mixed_precision == "none" else getattr(torch, args.mixed_precision)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{cpu_model()}, {args.threads} thread(s)"
    print(f"training images/s, batch {args.batch}, {where}, torch {torch.__version__}\n")
    print("| data shape | model | weights | images/s | time / plain ResNet |")
    print("|---|---|---:|---:|---:|")
    for shape in [(1, 28, 28), (3, 32, 32)]:
        nets = {k: m.to(device) for k, m in models(shape[0]).items()}
        autocast = {k: None for k in nets}
        if mixed is not None:  # the same networks (fresh copies) once more, under autocast
            for k in (PARABOLIC, PLAIN):
                name = f"{k} + {args.mixed_precision} autocast"
                nets[name], autocast[name] = copy.deepcopy(nets[k]), mixed
        opts = {k: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for k, m in nets.items()}
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(args.batch, *shape, generator=gen).to(device)
        y = torch.randint(0, 10, (args.batch,), generator=gen).to(device)

        def step(name):
            opts[name].zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=autocast[name], enabled=autocast[name] is not None):
                loss = F.cross_entropy(nets[name](x), y)
            loss.backward()
            opts[name].step()
            if device.type == "cuda":
                torch.cuda.synchronize()

        names = list(nets)
        for name in names:  # warm-up
            step(name)
        times = {n: [] for n in names}
        for r in range(args.repeats):
            for n in names[r % len(names):] + names[:r % len(names)]:
                t0 = time.perf_counter()
                step(n)
                times[n].append(time.perf_counter() - t0)
        base = statistics.median(times[PLAIN])
        for n in names:
            t = statistics.median(times[n])
            n_w = sum(p.numel() for p in nets[n].parameters())
            print(f"| {'×'.join(map(str, shape))} | {n} | {n_w:,} | {args.batch / t:.0f} | {t / base:.2f} |")


if __name__ == "__main__":
    main()
