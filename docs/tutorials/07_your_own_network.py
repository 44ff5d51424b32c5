# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 7. Your own network: an ODE block inside a plain PyTorch model
#
# Everything so far used `stablenet`'s own classifier.  An `ODEBlock` is an ordinary
# `torch.nn.Module`, so it goes anywhere a layer goes: inside your `nn.Module`, with your
# optimizer, your data loader, your loss.  This tutorial
#
# 1. writes a **dynamics of its own** (a few lines: weights on the control grid and $f(Y, \theta)$),
# 2. builds a small network *opening → ODE block → classifier* as a plain `nn.Module`,
# 3. trains it with a hand-written PyTorch loop on scikit-learn's handwritten digits (8×8 images,
#    bundled with scikit-learn: nothing is downloaded),
# 4. and uses what the ODE view gives for free: another state grid at test time, another gradient
#    mode, the stability analysis.

# %%
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import stablenet as sn
from stablenet.analysis import draw_region, layer_jacobians, summarize
from stablenet.data import load_dataset

torch.manual_seed(0)
torch.set_num_threads(1)

# %% [markdown]
# ## The data
#
# `load_dataset("digits")` wraps `sklearn.datasets.load_digits`: 1797 images of $8\times8$
# pixels scaled to $[0, 1]$, 10 classes, split into training, validation and test sets.

# %%
data = load_dataset("digits", seed=0)
print({name: len(split) for name, split in [("train", data.train), ("val", data.val), ("test", data.test)]})

fig, axes = plt.subplots(1, 8, figsize=(10, 1.6))
for ax, image, label in zip(axes, data.train.x, data.train.y):
    ax.imshow(image.reshape(8, 8), cmap="gray_r")
    ax.set_title(f"label {int(label)}", fontsize=8)
    ax.axis("off")
plt.show()

# %% [markdown]
# ## A dynamics of your own
#
# A dynamics is a `stablenet.Dynamics` that registers its time-dependent weights with
# `_control_parameter(name, *shape, fan_in=…)` (each gets a leading dimension of size $n_t$, the
# control points) and implements `forward(y, *theta)` for **one** time slice of the weights.
# The block interpolates $\theta(t)$, calls `forward` at every stage of the integrator, and
# differentiates it (with autograd, or any other gradient mode).
#
# Ours is a *damped* single layer,
#
# $$ f(Y, \theta) = \tanh(KY + b) - \gamma Y , $$
#
# whose Jacobian $\operatorname{diag}(\tanh')K - \gamma I$ has its eigenvalues shifted left by
# the fixed damping $\gamma$: a knob on stability.

# %%
class DampedLayer(sn.Dynamics):
    """f(Y, θ) = tanh(K Y + b) − γ Y, θ = (K, b) on the control grid; γ ≥ 0 fixed."""

    def __init__(self, width, *, nt=1, gamma=0.5):
        super().__init__(width, nt=nt)
        self.gamma = gamma
        self._control_parameter("K", width, width, fan_in=width)   # shape (nt, width, width)
        self._control_parameter("b", width)                        # shape (nt, width), zeros

    def forward(self, y, K, b):
        return torch.tanh(F.linear(y, K, b)) - self.gamma * y     # batch first: K Y is y @ K.T

# %% [markdown]
# ## The network: a plain `nn.Module`
#
# A linear opening lifts the 64 pixels to 32 features, the ODE block (damped layer, RK4, $T = 3$,
# 8 steps, weights linear in time on 4 control points) transforms them, a linear layer reads the
# classes off $Y(T)$.

# %%
class DigitsNet(nn.Module):
    def __init__(self, width=32):
        super().__init__()
        self.opening = nn.Linear(64, width)
        self.ode = sn.ODEBlock(DampedLayer(width, nt=4, gamma=0.5), T=3.0, steps=8, method="rk4",
                               controls="linear")
        self.classifier = nn.Linear(width, 10)

    def forward(self, x):
        y0 = torch.tanh(self.opening(x))
        return self.classifier(self.ode(y0))


model = DigitsNet()
print(model)
print("parameters:", sum(p.numel() for p in model.parameters()),
      "  of which in the ODE block:", sum(p.numel() for p in model.ode.parameters()))

# %% [markdown]
# ## A plain training loop
#
# Nothing here is specific to `stablenet`: a `DataLoader` with a seeded generator, Adam,
# cross-entropy, a few epochs.

# %%
loader = DataLoader(TensorDataset(data.train.x, data.train.y), batch_size=64, shuffle=True,
                    generator=torch.Generator().manual_seed(0))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)


def accuracy(model, split):
    model.eval()
    with torch.no_grad():
        return (model(split.x).argmax(1) == split.y).float().mean().item()


history = {"loss": [], "train": [], "val": []}
for epoch in range(8):
    model.train()
    total = 0.0
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(xb)
    history["loss"].append(total / len(data.train))
    history["train"].append(accuracy(model, data.train))
    history["val"].append(accuracy(model, data.val))
    print(f"epoch {epoch + 1}: loss {history['loss'][-1]:.3f}, train {100 * history['train'][-1]:.1f}%, "
          f"validation {100 * history['val'][-1]:.1f}%")

test_accuracy = accuracy(model, data.test)
print(f"test accuracy: {100 * test_accuracy:.1f}%")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6))
epochs = range(1, len(history["loss"]) + 1)
ax1.plot(epochs, history["loss"], "o-", label="training loss")
ax1.set_xlabel("epoch")
ax1.set_ylabel("cross-entropy")
ax1.legend()
ax2.plot(epochs, [100 * a for a in history["train"]], "o-", label="training")
ax2.plot(epochs, [100 * a for a in history["val"]], "s--", label="validation")
ax2.set_xlabel("epoch")
ax2.set_ylabel("accuracy (%)")
ax2.legend()
fig.tight_layout()
plt.show()

# %%
assert history["loss"][-1] < 0.5 * history["loss"][0]
assert test_accuracy > 0.85            # a linear classifier on the pixels already gets ~95 %

# %% [markdown]
# ## What the ODE view gives for free
#
# **Another state grid.**  The trained weights define $\theta(t)$ on $[0, T]$; evaluating with
# more steps computes the same ODE more accurately, so the predictions hardly change.

# %%
predictions = {}
with torch.no_grad():
    y0 = torch.tanh(model.opening(data.test.x))
    for steps in [4, 8, 16, 64]:
        predictions[steps] = model.classifier(model.ode(y0, steps=steps)).argmax(1)
for steps, p in predictions.items():
    agree = (p == predictions[64]).float().mean().item()
    acc = (p == data.test.y).float().mean().item()
    print(f"steps = {steps:2d}: test accuracy {100 * acc:.1f}%, same prediction as 64 steps for {100 * agree:.1f}%")
assert (predictions[16] == predictions[64]).float().mean() > 0.97   # RK4 has converged by then

# %% [markdown]
# **Another gradient mode.**  `gradient="checkpoint"` recomputes segments in the backward pass
# instead of storing every stage (tutorial 4): the same gradient, less memory.  It works for your
# dynamics too, since it only calls your `forward`.

# %%
def gradients(model, x, y):
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()])


xb, yb = data.val.x[:128], data.val.y[:128]
g_autograd = gradients(model, xb, yb)
model.ode.gradient = "checkpoint"
g_checkpoint = gradients(model, xb, yb)
model.ode.gradient = "autograd"
difference = ((g_checkpoint - g_autograd).norm() / g_autograd.norm()).item()
print(f"‖g_checkpoint − g_autograd‖ / ‖g_autograd‖ = {difference:.1e} (float32)")
assert difference < 1e-5

# %% [markdown]
# **The stability analysis.**  `layer_jacobians` works on any `ODEBlock`, yours included: the
# eigenvalues of $\partial f/\partial Y$ along the trajectories of some test images, against
# RK4's stability region.  The damping $\gamma = 0.5$ shows up as a shift of the spectrum.

# %%
with torch.no_grad():
    y0 = torch.tanh(model.opening(data.test.x[:32]))
lj = layer_jacobians(model.ode, y0)
summary = summarize(lj)
z = lj.z().flatten()
fig, ax = plt.subplots(figsize=(5.5, 4.5))
draw_region(ax, "rk4", extent=3.5)
ax.plot(z.real, z.imag, ".", ms=2, alpha=0.4, label="hλ of the trained block (32 test images)")
ax.plot([], [], "s", color="tab:red", alpha=0.3, label="RK4 stability region")
ax.set_xlabel("Re(hλ)")
ax.set_ylabel("Im(hλ)")
ax.set_xlim(-3.5, 1.5)
ax.set_ylim(-3.5, 3.5)
ax.set_aspect("equal")
ax.legend(fontsize=8, loc="lower left")
ax.set_title(f"h = {model.ode.h}: {100 * summary['fraction_stable']:.0f}% inside, max Re λ = {summary['max_real']:.2f}")
plt.show()

# %%
# The damping bounds the spectrum: |λ(diag(tanh′) K(t))| ≤ ‖K(t)‖₂ ≤ max_k ‖K_k‖₂ (θ(t) interpolates
# the control points linearly), so every Re λ ≤ max_k ‖K_k‖₂ − γ.
K_bound = torch.linalg.matrix_norm(model.ode.dynamics.K.detach(), ord=2).max().item()
print(f"max Re λ = {summary['max_real']:.3f} ≤ max‖K_k‖₂ − γ = {K_bound - 0.5:.3f}")
assert summary["max_real"] <= K_bound - 0.5 + 1e-4

# %% [markdown]
# **Where to go from here.**  Register your dynamics (`stablenet.dynamics.register("damped",
# DampedLayer)`) to use it from a TOML config with `stablenet train`; see `docs/architecture.md`,
# "How to add an integrator, a dynamics or a gradient mode".  Swap `method="rk4"` for `"euler"`
# and look at the eigenvalue plot again (tutorial 1), or make the block deeper with
# `gradient="checkpoint"` (tutorial 4).
