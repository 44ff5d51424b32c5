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
# # 2. Antisymmetric and Hamiltonian dynamics
#
# Tutorial 1 showed that a network is stable when the eigenvalues of its Jacobian sit where the
# integrator can handle them.  This tutorial builds networks that are stable **by design**
# (seed 003, Gonzalez & Mang, "Fast and stable algorithms for deep learning"):
#
# * **antisymmetric** layers $\;Y' = \sigma\big(\tfrac12(K - K^\top - \gamma I)\,Y + b\big)$:
#   for $\gamma = 0$ the Jacobian $\operatorname{diag}(\sigma')\,\tfrac12(K-K^\top)$ has purely
#   imaginary eigenvalues, so the ODE neither amplifies nor damps differences between features;
# * **Hamiltonian** two-stream layers
#   $$ y' = \sigma(K z + b_y), \qquad z' = -\sigma(K^\top y + b_z), $$
#   integrated by the staggered **Verlet** scheme
#   $$ z_{j+1/2} = z_{j-1/2} - h\,\sigma(K^\top y_j + b_z), \qquad
#      y_{j+1} = y_j + h\,\sigma(K z_{j+1/2} + b_y), $$
#   which is symplectic and **time-reversible**: the step can be undone exactly, so the
#   activations need not be stored for backpropagation (tutorial 4).
#
# We reproduce seed 003's phase-plane experiments and then measure Verlet's reversibility.

# %%
import matplotlib.pyplot as plt
import torch

import stablenet as sn

torch.manual_seed(0)
torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)

# %% [markdown]
# ## Phase planes with forward Euler (seed 003, Fig. 2)
#
# Three networks of $N = 21$ identical layers, $h = 0.1$, $\sigma = \tanh$, $b = 0$, with the
# constant $2\times2$ kernels
#
# $$ K_+ = \begin{pmatrix}2 & -2\\ 0 & 2\end{pmatrix},\quad
#    K_- = \begin{pmatrix}-2 & 0\\ 2 & -2\end{pmatrix},\quad
#    K_0 = \begin{pmatrix}0 & -1\\ 1 & 0\end{pmatrix}, $$
#
# applied to the features $y_1 = (0.1, 0.1)$, $y_2 = -y_1$, $y_3 = (0, 0.5)$.  $K_+$ has
# eigenvalues with positive real part (features are pushed apart), $K_-$ negative (they collapse
# together), $K_0$ is antisymmetric ($\pm i$).  The antisymmetric layer of the library uses
# $\tfrac12(K - K^\top)$; for both $K_+$ and $K_-$ that is exactly $K_0$.
#
# We set the weights of `stablenet` dynamics by hand: `SingleLayer.K` holds $K$ per control
# point; `Antisymmetric` stores the unconstrained $K$ behind a parametrization.

# %%
FEATURES = torch.tensor([[0.1, 0.1], [-0.1, -0.1], [0.0, 0.5]])
KERNELS = {"K+": [[2.0, -2.0], [0.0, 2.0]], "K−": [[-2.0, 0.0], [2.0, -2.0]], "K0": [[0.0, -1.0], [1.0, 0.0]]}
H, LAYERS = 0.1, 21


def constant_layers(K, antisymmetric=False, method="euler", steps=LAYERS):
    """A block of identical layers (nt = 1) with kernel K, b = 0, on [0, 21 h]."""
    dynamics = sn.Antisymmetric(2) if antisymmetric else sn.SingleLayer(2)
    with torch.no_grad():
        weight = dynamics.parametrizations.K.original if antisymmetric else dynamics.K
        weight.copy_(torch.tensor(K)[None])
        dynamics.b.zero_()
    return sn.ODEBlock(dynamics, T=H * LAYERS, steps=steps, method=method)


def paths(block, scale=1.0):
    with torch.no_grad():
        return block(scale * FEATURES, return_states=True)   # (N + 1, 3 features, 2)


def distance_ratios(p):
    """|y_a − y_b| at the last layer over the first, for the three pairs."""
    i, j = torch.triu_indices(3, 3, offset=1)
    return torch.cdist(p[-1], p[-1])[i, j] / torch.cdist(p[0], p[0])[i, j]


cases = {f"Euler, {name}": paths(constant_layers(K)) for name, K in KERNELS.items()}
cases["Euler, antisymmetric K+"] = paths(constant_layers(KERNELS["K+"], antisymmetric=True))
cases["RK4, K0 (≈ exact flow)"] = paths(constant_layers(KERNELS["K0"], method="rk4"))

fig, axes = plt.subplots(1, len(cases), figsize=(18, 3.8))
colors = ["tab:blue", "tab:orange", "tab:green"]
for ax, (name, p) in zip(axes, cases.items()):
    for k in range(3):
        ax.plot(p[:, k, 0], p[:, k, 1], "-", color=colors[k], lw=1, label=f"feature y{k + 1}")
        ax.plot(p[0, k, 0], p[0, k, 1], "o", color=colors[k], mfc="none")
        ax.plot(p[-1, k, 0], p[-1, k, 1], "o", color=colors[k])
    r = distance_ratios(p)
    ax.set_title(f"{name}\ndistances ×{r.min():.2f}–{r.max():.2f}", fontsize=9)
    ax.set_xlabel("y[0]")
    ax.set_aspect("equal", adjustable="datalim")
axes[0].set_ylabel("y[1]")
axes[0].legend(fontsize=7, loc="lower right")
fig.suptitle("N = 21 layers, h = 0.1 (open circle: input, filled: output)")
fig.tight_layout()
plt.show()

# %% [markdown]
# **What to look at.**  $K_+$ spreads the features, $K_-$ collapses them, $K_0$ rotates them.
# The antisymmetric version of $K_+$ gives exactly the $K_0$ picture.  The titles show the
# factor by which the pairwise distances changed: with forward Euler even $K_0$ *grows* the
# distances a little (by up to $(1 + h^2)^{N/2} \approx 1.11$, since $|1 + ih| > 1$, tutorial 1),
# while RK4 on the same layers keeps them.  Seed 003 calls the Euler $K_0$ distances
# "preserved"; measured, they grow by about 11 %.

# %%
r = {name: distance_ratios(p) for name, p in cases.items()}
assert (r["Euler, K+"] > 1.5).all()              # K+ pushes the features apart
assert (r["Euler, K−"] < 1.0).all()              # K− pulls them together
# ½(K+ − K+ᵀ) = K0: the antisymmetric layer of K+ is the K0 network, to round-off
assert torch.allclose(cases["Euler, antisymmetric K+"], cases["Euler, K0"], atol=1e-12)
# Euler on K0 grows every distance, by up to about 11 %
assert (r["Euler, K0"] > 1.0).all() and r["Euler, K0"].max() > 1.05
# in tanh's linear regime (features × 1e-4) the growth is exactly |1 + ih|^N = (1 + h²)^(N/2)
linear = distance_ratios(paths(constant_layers(KERNELS["K0"]), scale=1e-4))
assert torch.allclose(linear, torch.full((3,), (1 + H**2) ** (LAYERS / 2)), rtol=1e-6)
# RK4 (stable on the imaginary axis) keeps them to within a few per cent
assert ((r["RK4, K0 (≈ exact flow)"] - 1).abs() < 0.05).all()

# %% [markdown]
# ## A Hamiltonian network with Verlet: stable for 1000 identical layers (seed 003, Fig. 3)
#
# Seed 003 takes $\sigma = \tanh$, $h = 0.1$, $b = 0$ and the constant kernel
# $K_v = (k_1\,k_2)$, $k_1 = (2, -1, 0)^\top$, $k_2 = (1, 2, 1)^\top$, for $N = 20 \dots 1000$
# layers.  We let the features be the 2-dimensional stream $y$, so the library's
# `Hamiltonian(2, 3)` with $K = K_v^\top$ ($2\times3$) and $z_{-1/2} = 0$.
#
# Why it is stable: with $p = Kz$ the system is $y' = \tanh(p)$, $p' = -K\tanh(K^\top y)$, a
# Hamiltonian system with the energy
#
# $$ \mathcal H(y, p) = \sum_i \log\cosh p_i + \sum_j \log\cosh (K^\top y)_j , $$
#
# which the exact flow conserves.  Verlet conserves a slightly perturbed energy, so
# $\mathcal H$ oscillates by $O(h^2)$ but does not drift, however many layers; forward Euler
# on the same two-stream system gains energy every step.

# %%
K_v = torch.tensor([[2.0, -1.0, 0.0], [1.0, 2.0, 1.0]])        # = (k1 k2)ᵀ, 2 × 3


def hamiltonian_block(steps, method="verlet"):
    dynamics = sn.Hamiltonian(2, 3)
    with torch.no_grad():
        dynamics.K.copy_(K_v[None])
        dynamics.b_y.zero_()
        dynamics.b_z.zero_()
    return sn.ODEBlock(dynamics, T=H * steps, steps=steps, method=method)


def energy(ys, zs, staggered):
    """H(y_j, p_j) per layer; for Verlet p_j = K(z_{j−1/2} + z_{j+1/2})/2 (synchronized)."""
    p = (zs[:-1] + zs[1:]) / 2 @ K_v.T if staggered else zs[:-1] @ K_v.T
    y = ys[:-1]
    log_cosh = lambda u: torch.log(torch.cosh(u)).sum(-1)  # noqa: E731
    return log_cosh(p) + log_cosh(y @ K_v)


start = (FEATURES, torch.zeros(3, 3))
results = {}
with torch.no_grad():
    for N in [20, 100, 1000]:
        results[N] = hamiltonian_block(N)(start, return_states=True)
    euler_ys, euler_zs = hamiltonian_block(1000, "euler")(start, return_states=True)

fig, axes = plt.subplots(1, 4, figsize=(18, 4.2))
for ax, (N, (ys, zs)) in zip(axes, results.items()):
    for k in range(3):
        ax.plot(ys[:, k, 0], ys[:, k, 1], "-", color=colors[k], lw=0.6, label=f"feature y{k + 1}")
        ax.plot(ys[0, k, 0], ys[0, k, 1], "o", color=colors[k], mfc="none")
        ax.plot(ys[-1, k, 0], ys[-1, k, 1], "o", color=colors[k])
    ax.set_title(f"Verlet, N = {N} layers")
    ax.set_xlabel("y[0]")
    ax.set_ylabel("y[1]")
    ax.set_aspect("equal", adjustable="datalim")
axes[0].legend(fontsize=7)
ys, zs = results[1000]
verlet_H = energy(ys, zs, staggered=True)
euler_H = energy(euler_ys, euler_zs, staggered=False)
ax = axes[3]
for k in range(3):
    ax.semilogy(verlet_H[:, k] / verlet_H[0, k], color=colors[k], label=f"Verlet, y{k + 1}")
    ax.semilogy(euler_H[:, k] / euler_H[0, k], ls="--", color=colors[k], label=f"Euler, y{k + 1}")
ax.set_xlabel("layer j")
ax.set_ylabel("energy H_j / H_0")
ax.set_title("energy over 1000 layers (y1 and y2 = −y1 overlap)")
ax.legend(fontsize=7, ncol=2)
fig.tight_layout()
plt.show()
drift = (verlet_H / verlet_H[0] - 1).abs().max().item()
print(f"Verlet: largest relative energy change over 1000 layers {drift:.4f}; "
      f"Euler: energy ×{(euler_H[-1] / euler_H[0]).min():.1f} to ×{(euler_H[-1] / euler_H[0]).max():.1f}")

# %% [markdown]
# **What to look at.**  The features keep circling through the phase plane, neither exploding
# nor collapsing, even after 1000 identical layers; the energy (right) wiggles around its initial
# value under Verlet, and climbs steadily under forward Euler.

# %%
# Linear theory: Verlet's energy oscillates with relative amplitude about ε/(1 − ε),
# ε = h²·λmax(K Kᵀ)/4 = 0.015; we allow a safe factor of 3 over it — but no drift.
eps = H**2 * torch.linalg.eigvalsh(K_v @ K_v.T).max().item() / 4
assert drift < 3 * eps / (1 - eps)
assert (euler_H[-1] / euler_H[0] > 1.5).all()        # Euler pumps energy in

# %% [markdown]
# ## Reversibility: run the network backwards
#
# A Verlet step can be solved for its input:
#
# $$ y_j = y_{j+1} - h\,\sigma(K z_{j+1/2} + b_y), \qquad
#    z_{j-1/2} = z_{j+1/2} + h\,\sigma(K^\top y_j + b_z). $$
#
# `ODEBlock.reverse((Y_N, Z_{N-1/2}))` does this for all layers and returns $(Y_0, Z_{-1/2})$.
# In exact arithmetic the reconstruction is perfect; in floating point each step adds a rounding
# error, and for a stable (Hamiltonian) network those errors are not amplified.  We take a
# trained-looking network (random weights varying in time, 8 control points, width 8) and
# measure the reconstruction error
# $\|Y_0 - \text{reverse}(\text{forward}(Y_0))\| / \|Y_0\|$ against depth, in float32 and
# float64.

# %%
def reconstruction_error(steps, dtype):
    torch.manual_seed(1)
    block = sn.ODEBlock(sn.Hamiltonian(8, nt=8), T=5.0, steps=steps, method="verlet",
                        controls="linear").to(dtype)
    y0 = torch.randn(64, 8, dtype=dtype)
    z0 = torch.zeros(64, 8, dtype=dtype)
    with torch.no_grad():
        yN, zN = block((y0, z0))
        y_back, z_back = block.reverse((yN, zN))
    return ((y_back - y0).norm() / y0.norm()).item(), ((z_back - z0).norm() / y0.norm()).item()


depths = [16, 64, 256, 1024]
errors = {dtype: [reconstruction_error(n, dtype) for n in depths] for dtype in (torch.float32, torch.float64)}

fig, ax = plt.subplots(figsize=(6.5, 4))
for dtype, marker in [(torch.float32, "o"), (torch.float64, "s")]:
    ax.loglog(depths, [e[0] for e in errors[dtype]], marker + "-", label=f"{dtype}: y")
    ax.loglog(depths, [e[1] for e in errors[dtype]], marker + ":", label=f"{dtype}: z")
    ax.axhline(torch.finfo(dtype).eps, color="0.6", lw=0.8, ls="--")
ax.text(depths[0], torch.finfo(torch.float32).eps * 1.3, "float32 unit roundoff", fontsize=8)
ax.text(depths[0], torch.finfo(torch.float64).eps * 1.3, "float64 unit roundoff", fontsize=8)
ax.set_xlabel("depth N (Verlet steps)")
ax.set_ylabel("relative reconstruction error")
ax.set_title("reverse(forward(Y0)) − Y0, Hamiltonian network, T = 5")
ax.legend(fontsize=8)
plt.show()
for dtype in errors:
    print(dtype, ["%.1e" % e[0] for e in errors[dtype]])

# %% [markdown]
# **What to look at.**  The errors stay at the level of the unit round-off of the floating-point
# type, whatever the depth: running the network backwards recovers the input.  This is what the
# `gradient="reversible"` mode relies on (tutorial 4): instead of storing every $Y_j$ for the
# backward pass, it rebuilds them from $Y_N$.

# %%
assert max(e for pair in errors[torch.float64] for e in pair) < 1e-10
assert max(e for pair in errors[torch.float32] for e in pair) < 1e-4
# An irreversible integrator is refused with a clear error instead of a wrong answer
euler_block = sn.ODEBlock(sn.Hamiltonian(8), T=1.0, steps=4, method="euler")
try:
    euler_block.reverse((torch.zeros(1, 8), torch.zeros(1, 8)))
    raise AssertionError("reverse must refuse forward Euler")
except ValueError as error:
    print("forward Euler:", error)
