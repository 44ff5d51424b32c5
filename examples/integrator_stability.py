"""Why the integrator matters: antisymmetric dynamics under forward Euler, RK4 and leapfrog.

dY/dt = (K − Kᵀ) Y has purely imaginary eigenvalues, so ‖Y(t)‖ stays constant.  Forward Euler
grows for every step size (|1 + iλh| > 1), RK4 does not for small h, and leapfrog on the
second-order form Y'' = −(K − Kᵀ)ᵀ(K − Kᵀ) Y keeps a bounded oscillation (seeds 000/001).

    python examples/integrator_stability.py [--quick] [--out DIR]
"""

import argparse
from pathlib import Path

import torch

import stablenet as sn
from stablenet.app.io import save_figure

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="fewer steps")
parser.add_argument("--out", default="runs/examples", help="where to write the figure")
args = parser.parse_args()

torch.manual_seed(0)
K = torch.randn(6, 6, dtype=torch.float64)
A = K - K.T
y0 = torch.randn(1, 6, dtype=torch.float64)
T = 20.0 if args.quick else 100.0
steps = 400 if args.quick else 2000
print(f"h = {T / steps}, h·max|λ| = {T / steps * torch.linalg.eigvals(A).abs().max().item():.2f}")

norms = {}
for method in ["euler", "rk4"]:
    states = sn.integrate(lambda t, y: y @ A.T, y0, T=T, steps=steps, method=method, return_states=True)
    norms[method] = states.norm(dim=-1).squeeze(1)
states = sn.integrate(lambda t, y: -(y @ A.T) @ A, y0, T=T, steps=steps, method="leapfrog", return_states=True)
norms["leapfrog"] = states.norm(dim=-1).squeeze(1)

for method, n in norms.items():
    print(f"{method:9s} ‖Y_N‖ / ‖Y_0‖ = {(n[-1] / n[0]).item():.3e}, max over the path {(n.max() / n[0]).item():.3e}")

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(6, 4))
t = torch.linspace(0, T, steps + 1).numpy()
for method, n in norms.items():
    ax.semilogy(t, (n / n[0]).numpy(), label=method)
ax.set_xlabel("t"); ax.set_ylabel("‖Y(t)‖ / ‖Y(0)‖"); ax.legend(); ax.set_title("antisymmetric dynamics")
print(f"wrote {save_figure(fig, Path(args.out) / 'integrator_stability.png', dpi=100)}")
