"""Control layers vs state layers (seed 004): train once, evaluate on other state grids.

An antisymmetric RK4 block with nt = 8 control points is trained with N = 8 state steps; the same
weights are then evaluated with N = 4 … 64.  Accuracy holds once the state grid resolves the
dynamics, because the network is a discretization of one ODE, not a fixed stack of layers.

    python examples/state_grid.py [--quick]
"""

import argparse

import torch

import stablenet as sn
from stablenet.data import load_dataset

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="tiny data and few epochs")
args = parser.parse_args()
torch.set_num_threads(1)
torch.manual_seed(0)

data = load_dataset("swiss_roll", seed=0, **(dict(n_train=200, n_val=100, n_test=100) if args.quick else {}))
block = sn.ODEBlock(sn.Antisymmetric(4, gamma=0.01, nt=8), T=5.0, steps=8, method="rk4", controls="linear")
model = sn.ODEClassifier(2, 2, block, opening="duplicate")
optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
for epoch in range(5 if args.quick else 60):
    for batch in torch.randperm(len(data.train.x)).split(32):
        optimizer.zero_grad()
        sn.softmax_cross_entropy(model(data.train.x[batch]), data.train.y[batch]).backward()
        optimizer.step()

with torch.no_grad():
    for steps in [4, 8, 16, 32, 64]:
        block.steps = steps
        accuracy = (model(data.val.x).argmax(1) == data.val.y).float().mean().item()
        print(f"N = {steps:3d} state steps: validation accuracy {100 * accuracy:.1f}%")
