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
# # 5. Multilevel training and Gauss–Newton with variable projection
#
# Seed 002 trains its Hamiltonian networks (ellipses, swiss roll) with two ideas from numerical
# optimization rather than stochastic gradient descent:
#
# **Multilevel in depth.**  Train a shallow network (few layers, large $h$), then refine:
# $(n, h) \leftarrow (2n, h/2)$, $\theta^0 \leftarrow \text{prolongate}(\theta^*)$,
# $(W^0, \mu^0) \leftarrow (W^*, \mu^*)$, and continue training.  Because the network is a
# discretization of one ODE, the coarse solution is a good initial guess for the fine one, and
# most of the work is done where it is cheap.
#
# **Variable projection (VarPro) + Gauss–Newton.**  The class scores $S = W Y_N(\theta) + \mu$
# are *linear* in the classifier $(W, \mu)$.  For fixed network weights $\theta$ the best
# classifier solves a small convex problem, so it can be eliminated:
#
# $$ \Phi(\theta) = \min_{W,\mu}\; L\big(W Y_N(\theta) + \mu\big) + \tfrac{\lambda}{2}\|W\|^2
#    + \tfrac{\lambda}{2}\|\mu\|^2 , $$
#
# and $\nabla\Phi(\theta) = \partial_\theta L(\theta, W^*, \mu^*)$ (the envelope theorem).  The
# reduced problem in $\theta$ is then minimized by **Gauss–Newton–CG** steps: solve
# $(J^\top H_L J + \dots)\,p = -\nabla\Phi$ approximately with conjugate gradients (matrix-free),
# then an Armijo line search.  Each step is more expensive than an Adam step, but uses curvature.
#
# The library pieces: `stablenet.optim.VarPro`, `stablenet.optim.GaussNewtonCG`
# (`docs/optimizers.md`), `ODEClassifier.prolongate`, and from the training application
# `stablenet.app.train_parts.refine` (the refinement between levels that `[multilevel]` in a
# config file performs) and `smoothness` (the time-smoothness regularizer of seed 002 / Meganet).

# %%
import time

import matplotlib.pyplot as plt
import torch

import stablenet as sn
from stablenet.app.train_parts import refine, smoothness
from stablenet.data import load_dataset
from stablenet.optim import GaussNewtonCG, VarPro, network_parameters

torch.manual_seed(0)
torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)

# %% [markdown]
# ## The problem: the swiss roll
#
# Seed 002's second example: two interleaved spirals, 256 training and 256 validation points, a
# Hamiltonian network of width 4 (the two coordinates duplicated), Verlet, $\tanh$.  We use
# $T = 5$, weights linear in time on $n_t$ control points with $n_t = N$, weight decay
# $10^{-4}$ on $\theta$ and on $(W, \mu)$, and the smoothness regularizer
# $R(\theta) = \alpha \sum_k \|\theta_{k+1} - \theta_k\|^2 / h_c$ with $\alpha = 2.5\cdot10^{-3}$.

# %%
data = load_dataset("swiss_roll", seed=0, n_train=256, n_val=256, n_test=None)
x, y = data.train.x.double(), data.train.y
x_val, y_val = data.val.x.double(), data.val.y
WEIGHT_DECAY, ALPHA, T = 1e-4, 2.5e-3, 5.0


def make_model(steps, seed=0):
    torch.manual_seed(seed)
    block = sn.ODEBlock(sn.Hamiltonian(4, nt=steps), T=T, steps=steps, method="verlet", controls="linear")
    return sn.ODEClassifier(2, 2, block, opening="duplicate")


def gauss_newton(model):
    """Gauss–Newton–CG on VarPro's reduced objective Φ(θ), as `stablenet train` builds it."""
    varpro = VarPro(model, "cross_entropy", regularization=WEIGHT_DECAY)
    return GaussNewtonCG([{"params": network_parameters(model), "weight_decay": WEIGHT_DECAY}], model,
                         loss="cross_entropy", varpro=varpro, cg_rtol=0.1, cg_max_iter=20)


def penalty(model):
    return lambda: ALPHA * smoothness(model)


def accuracy(model, x, y):
    with torch.no_grad():
        return (model(x).argmax(1) == y).double().mean().item()


fig, ax = plt.subplots(figsize=(4.5, 4.2))
for c in range(2):
    ax.scatter(x[y == c, 0], x[y == c, 1], s=8, label=f"class {c}")
ax.set_xlabel("x₁")
ax.set_ylabel("x₂")
ax.set_title("swiss roll, training points")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## Gauss–Newton + VarPro against Adam on one network
#
# First a fixed network of $N = 16$ layers.  For a fair comparison Adam minimizes the *same*
# objective, $J(\theta, W, \mu) = L + \tfrac{\lambda}{2}(\|W\|^2 + \|\mu\|^2)
# + \tfrac{wd}{2}\|\theta\|^2 + R(\theta)$, over all weights at once; `GaussNewtonCG.step` returns
# $\Phi(\theta) = \min_{W,\mu} J$ before each step.  We record the objective against the iteration
# and against wall-clock time.

# %%
def adam_objective(model):
    theta = network_parameters(model)
    W, mu = model.classifier.weight, model.classifier.bias
    return (sn.softmax_cross_entropy(model(x), y) + WEIGHT_DECAY / 2 * (W.pow(2).sum() + mu.pow(2).sum())
            + WEIGHT_DECAY / 2 * sum(p.pow(2).sum() for p in theta) + ALPHA * smoothness(model))


runs = {}
model = make_model(16)
optimizer = gauss_newton(model)
values, clock, start = [], [], time.perf_counter()
for step in range(15):
    values.append(optimizer.step(x, y, penalty=penalty(model)).item())
    clock.append(time.perf_counter() - start)
    assert optimizer.last.loss_after <= optimizer.last.loss      # Armijo: J never increases
runs["Gauss–Newton–CG + VarPro"] = (values, clock, accuracy(model, x_val, y_val))

model = make_model(16)
optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
values, clock, start = [], [], time.perf_counter()
for step in range(300):
    optimizer.zero_grad()
    objective = adam_objective(model)
    objective.backward()
    optimizer.step()
    values.append(objective.item())
    clock.append(time.perf_counter() - start)
runs["Adam (lr 0.02)"] = (values, clock, accuracy(model, x_val, y_val))

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.2))
for name, (values, clock, acc) in runs.items():
    ax1.semilogy(range(1, len(values) + 1), values, ".-", label=f"{name}: validation {100 * acc:.0f}%")
    ax2.semilogy(clock, values, ".-", label=name)
ax1.set_xscale("log")
ax1.set_xlabel("iteration")
ax1.set_ylabel("objective J (Φ for VarPro)")
ax1.set_title("16 layers: objective per iteration")
ax2.set_xlabel("wall-clock time (s)")
ax2.set_ylabel("objective J (Φ for VarPro)")
ax2.set_title("… and per second (one CPU thread)")
for ax in (ax1, ax2):
    ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# **What to look at.**  Per iteration, Gauss–Newton with VarPro is far ahead: a handful of steps
# reach an objective Adam needs hundreds of iterations for.  Per second the gap is smaller, since
# one Gauss–Newton step costs up to 20 CG products, each about three backward passes; on the full
# batch of a small problem like this one it still wins.  (Times are on a shared machine: read the
# right panel as a rough picture.)

# %%
gn_values, adam_values = runs["Gauss–Newton–CG + VarPro"][0], runs["Adam (lr 0.02)"][0]
assert all(b <= a + 1e-12 for a, b in zip(gn_values, gn_values[1:]))   # monotone (line search)
assert gn_values[-1] < adam_values[len(gn_values) - 1]                  # same number of iterations
assert runs["Gauss–Newton–CG + VarPro"][2] > 0.9                        # the spirals are separated

# %% [markdown]
# ## Multilevel: 2 → 4 → 8 → 16 → 32 layers
#
# Start with $N = n_t = 2$ and a few Gauss–Newton steps, then refine: `refine(model, [(2N, 2n_t)])`
# prolongates $\theta(t)$ exactly ($n_t \to 2n_t$, `ODEClassifier.prolongate`) and sets the
# state grid to $2N$ steps ($h \to h/2$); the classifier is kept.  A new optimizer is built per
# level, as `stablenet train` does with `[multilevel]`.
#
# At every level we also record the objective of a *randomly initialized* network of the same
# depth: what training from scratch at that depth would start from.

# %%
steps_per_level = [10, 10, 5, 5, 3]
model = make_model(2)
levels = []
for level, n_steps in enumerate(steps_per_level):
    if level:
        N = 2 * model.blocks[0].steps
        refine(model, [(N, N)])                  # nt → 2nt (θ(t) unchanged), steps → 2·steps
    N = model.blocks[0].steps
    scratch = make_model(N, seed=1)
    scratch_value = gauss_newton(scratch).step(x, y, penalty=penalty(scratch)).item()
    optimizer = gauss_newton(model)
    values = [optimizer.step(x, y, penalty=penalty(model)).item() for _ in range(n_steps)]
    values.append(float(optimizer.last.loss_after))
    levels.append({"layers": N, "values": values, "scratch": scratch_value,
                   "train": accuracy(model, x, y), "val": accuracy(model, x_val, y_val)})
    print(f"level {level}: {N:2d} layers, Φ {values[0]:.3f} → {values[-1]:.3f} "
          f"(a random start at this depth: {scratch_value:.3f}), validation accuracy {100 * levels[-1]['val']:.1f}%")

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.2))
offset = 0
for lv in levels:
    its = range(offset, offset + len(lv["values"]))
    line, = ax1.semilogy(its, lv["values"], "o-", ms=3, label=f"{lv['layers']} layers")
    ax1.plot(offset, lv["scratch"], "x", color=line.get_color(), ms=8)
    offset += len(lv["values"]) - 1
ax1.plot([], [], "kx", label="random start at that depth")
ax1.set_xlabel("Gauss–Newton step (cumulative over levels)")
ax1.set_ylabel("reduced objective Φ")
ax1.set_title("multilevel training: each level starts from the coarser one")
ax1.legend(fontsize=8)
layers = [lv["layers"] for lv in levels]
ax2.semilogx(layers, [100 * lv["train"] for lv in levels], "o-", base=2, label="training")
ax2.semilogx(layers, [100 * lv["val"] for lv in levels], "s--", base=2, label="validation")
ax2.set_xticks(layers, [str(n) for n in layers])
ax2.set_ylim(min(90.0, 100 * min(lv["val"] for lv in levels) - 1), 100.5)
ax2.set_xlabel("layers N (= control points nt)")
ax2.set_ylabel("accuracy after the level (%)")
ax2.set_title("accuracy is kept while the network is refined")
ax2.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# **What to look at.**  On the fine levels the prolongated network starts close to where the
# coarser level ended, far below a random start of the same depth (crosses), and needs only a few
# steps; the accuracy reached on a coarse level is kept as the network is refined.  The first
# refinements (from $h = 2.5$) change the network more: a 2-layer network is a rough
# discretization of its ODE.

# %%
fine = levels[2:]                                          # 8, 16, 32 layers
assert all(lv["values"][0] < lv["scratch"] for lv in fine)  # better than starting from scratch
assert all(lv["values"][-1] <= lv["values"][0] for lv in levels)
assert levels[-1]["val"] > 0.9
assert refine is not None and levels[-1]["layers"] == 32

# %% [markdown]
# **In a config file** the same is `training.optimizer = "gauss_newton"`, `varpro = true` and a
# `[multilevel]` table (`levels`, `epochs_per_level`, `start_steps`);
# `stablenet experiment multilevel-newton` runs seed 002's full protocol (2 → 1024 layers).
