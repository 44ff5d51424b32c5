"""Train a Hamiltonian (Verlet) network on peaks in a plain PyTorch loop, then plot it.

Uses the Python API directly: data set, ODE block, classifier, loss, torch.optim.

    python examples/train_peaks.py            # about a minute, ~97% validation accuracy
    python examples/train_peaks.py --quick    # seconds
"""

import argparse
from pathlib import Path

import torch

import stablenet as sn
from stablenet.data import load_dataset
from stablenet.app.plots import plot_decision_regions

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="tiny data and few epochs")
parser.add_argument("--out", default="runs/examples", help="where to write the figure")
args = parser.parse_args()
torch.set_num_threads(1)
torch.manual_seed(0)

sizes = dict(n_train_per_class=100, n_val_per_class=50, n_test_per_class=10) if args.quick else {}
data = load_dataset("peaks", seed=0, **sizes)
epochs = 3 if args.quick else 30

# width 8 by repeating (x1, x2) four times; y and z streams of width 8; 32 Verlet steps on [0, 5]
block = sn.ODEBlock(sn.Hamiltonian(8, 8, nt=32), T=5.0, steps=32, method="verlet")
model = sn.ODEClassifier(2, data.n_classes, block, opening="duplicate")
optimizer = torch.optim.Adam(model.parameters(), lr=0.02)

for epoch in range(epochs):
    order = torch.randperm(len(data.train.x))
    for batch in order.split(32):
        optimizer.zero_grad()
        loss = sn.softmax_cross_entropy(model(data.train.x[batch]), data.train.y[batch])
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        accuracy = (model(data.val.x).argmax(1) == data.val.y).float().mean().item()
    print(f"epoch {epoch + 1:2d}  loss {loss.item():.4f}  validation accuracy {100 * accuracy:.1f}%")

figure = plot_decision_regions(model, data, Path(args.out) / "peaks_decision_regions.png")
print(f"wrote {figure}")
