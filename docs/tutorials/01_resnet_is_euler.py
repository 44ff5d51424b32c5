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
# # 1. A ResNet is forward Euler
#
# A residual network updates its features layer by layer,
#
# $$ Y_{j+1} = Y_j + h\,\sigma(K_j Y_j + b_j), \qquad j = 0, \dots, N-1, $$
#
# which is exactly one step of **forward Euler** with step $h = T/N$ for the ordinary
# differential equation
#
# $$ \frac{dY}{dt} = \sigma\big(K(t)\,Y + b(t)\big), \qquad t \in [0, T], $$
#
# with $K(t_j) = K_j$, $b(t_j) = b_j$ (the lecture notes of seeds 000/001).  Once a network is an
# ODE, numerical analysis tells us when it is **stable**: small changes of the input $Y_0$ must
# not blow up as they pass through many layers.  Two questions, kept apart:
#
# 1. *Is the ODE stable?*  Linearize: $\delta Y' = J\,\delta Y$ with the Jacobian
#    $J = \partial f/\partial Y$.  Perturbations do not grow if every eigenvalue has
#    $\operatorname{Re}\lambda(J) \le 0$.
# 2. *Is the discretization stable?*  Applied to the test equation $y' = \lambda y$ a one-step
#    method multiplies $y$ by an amplification factor $R(h\lambda)$ each step; forward Euler has
#    $R(z) = 1 + z$.  The method is stable where $|R(z)| \le 1$, its **stability region**.
#    Every $h\lambda$ must lie inside it.
#
# This notebook (i) checks that `stablenet`'s Euler block *is* a ResNet, (ii) draws the stability
# regions of the integrators, (iii) puts the Jacobian eigenvalues $h\lambda$ of real networks on
# them and (iv) shows what "outside the region" does to a perturbation over many layers.

# %%
import matplotlib.pyplot as plt
import torch

import stablenet as sn
from stablenet.analysis import (amplification, draw_region, forward_sensitivity, is_stable,
                                layer_jacobians, summarize)

torch.manual_seed(0)
torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)   # float64: the checks below are at round-off level

# %% [markdown]
# ## A ResNet written by hand and an `ODEBlock` with `method="euler"`
#
# `SingleLayer` is the dynamics $f(Y, \theta) = \sigma(KY + b)$.  With `nt = N` piecewise-constant
# control points every layer $j$ has its own weights $(K_j, b_j)$: the classic ResNet.  We read
# those weights back from the block and run the ResNet update by hand.

# %%
width, N, T = 4, 10, 2.0
block = sn.ODEBlock(sn.SingleLayer(width, nt=N), T=T, steps=N, method="euler", controls="constant")
K, b = block.dynamics.control_weights()          # (N, width, width), (N, width)
print("K:", tuple(K.shape), " b:", tuple(b.shape), " h =", block.h)

Y0 = torch.randn(5, width)
Y = Y0
with torch.no_grad():
    for j in range(N):                                    # the ResNet, layer by layer
        Y = Y + block.h * torch.tanh(Y @ K[j].T + b[j])   # batch first: KY is Y @ K.T
    Y_block = block(Y0)
print("max |ResNet − ODEBlock(euler)| =", (Y - Y_block).abs().max().item())

# %%
assert torch.allclose(Y, Y_block, atol=1e-12, rtol=0), "the Euler block must be the ResNet"

# %% [markdown]
# ## Stability regions
#
# `stablenet.analysis.amplification(method, z)` gives the growth per step at $z = h\lambda$ for
# every integrator of the library, and `draw_region` shades $\{z : \text{growth} \le 1\}$:
#
# | method | growth at $z$ | region |
# |---|---|---|
# | `euler` | $\lvert 1+z\rvert$ | disc of radius 1 around $-1$ |
# | `rk4` | $\lvert 1+z+z^2/2+z^3/6+z^4/24\rvert$ | contains $i[-2\sqrt2, 2\sqrt2]$ |
# | `ab3` | largest root of its characteristic polynomial | small, bounded |
# | `verlet` | roots of $\xi^2-(2+z^2)\xi+1$ | only the segment $i[-2, 2]$ |
#
# **What to look at:** the imaginary axis.  Forward Euler's disc touches it only at $0$: for a
# purely imaginary $\lambda$ (an antisymmetric $K$, a Hamiltonian system) Euler amplifies
# $|1 + ih\lambda| = \sqrt{1 + h^2\lambda^2} > 1$ for *every* $h > 0$.  RK4 and Verlet contain a
# piece of the imaginary axis.

# %%
methods = ["euler", "midpoint", "rk4", "ab3", "verlet"]
fig, axes = plt.subplots(1, len(methods), figsize=(16, 5.2), sharey=True)
for ax, method in zip(axes, methods):
    draw_region(ax, method, extent=3.5)              # verlet: draws and labels its segment
    if method != "verlet":
        ax.plot([], [], "s", color="tab:red", alpha=0.3, label="|growth| ≤ 1")
    ax.set_title(method)
    ax.set_xlabel("Re(hλ)")
    ax.set_xlim(-3.5, 1.0)
    ax.set_ylim(-3.5, 3.5)
    ax.set_aspect("equal")
    ax.legend(loc="lower left", fontsize=8)
axes[0].set_ylabel("Im(hλ)")
fig.suptitle("stability regions of the integrators (shaded: stable)")
fig.tight_layout()
plt.show()

# %%
# The region facts the library encodes, checked at points where they are unambiguous.
assert float(amplification("euler", -1.0)) == 0.0                       # centre of Euler's disc
for y in [0.01, 0.5, 2.0]:                                              # imaginary axis: Euler grows
    assert float(amplification("euler", 1j * y)) > 1.0
assert bool(is_stable("rk4", 2.8j)) and not bool(is_stable("rk4", 2.9j))  # RK4: up to 2√2 ≈ 2.83
assert bool(is_stable("verlet", 1.9j)) and not bool(is_stable("verlet", 2.1j))
assert not bool(is_stable("verlet", -0.5))                               # Verlet: nothing off the axis

# %% [markdown]
# ## Eigenvalues of real networks against the regions
#
# `layer_jacobians(block, x)` propagates the inputs `x` through the block and returns, for every
# layer $j$ and sample, the Jacobian $J = \partial f/\partial Y$ at the state $Y_j$ with the
# weights $\theta(t_j)$; `summarize` reports the largest $\operatorname{Re}\lambda$, the largest
# amplification of the block's integrator at $h\lambda$ and the fraction of $h\lambda$ inside the
# region.
#
# Three networks of width 8, all with $T = 8$ and $N = 16$ steps ($h = 0.5$):
#
# * a plain ResNet (`SingleLayer`, Euler) with random weights: nothing controls the spectrum;
# * an **antisymmetric** layer $\sigma(\tfrac12(K - K^\top - \gamma I)Y + b)$ with $\gamma = 0$:
#   $J = \operatorname{diag}(\sigma')\,\tfrac12(K - K^\top)$ is similar to an antisymmetric
#   matrix, so $\operatorname{Re}\lambda = 0$: the ODE is stable.  With **Euler** the
#   discretization is not;
# * the same antisymmetric weights with **RK4**.

# %%
width, T, N = 8, 8.0, 16
x = torch.randn(64, width)
resnet = sn.ODEBlock(sn.SingleLayer(width, nt=N), T=T, steps=N, method="euler")
anti_euler = sn.ODEBlock(sn.Antisymmetric(width, gamma=0.0, nt=4), T=T, steps=N, method="euler",
                         controls="linear")
anti_rk4 = sn.ODEBlock(sn.Antisymmetric(width, gamma=0.0, nt=4), T=T, steps=N, method="rk4",
                       controls="linear")
anti_rk4.load_state_dict(anti_euler.state_dict())   # the very same weights, another integrator

blocks = {"ResNet (single layer, Euler)": resnet, "antisymmetric, Euler": anti_euler,
          "antisymmetric, RK4": anti_rk4}
summaries, zs = {}, {}
for name, blk in blocks.items():
    lj = layer_jacobians(blk, x)
    zs[name] = lj.z().flatten()
    summaries[name] = summarize(lj)
    s = summaries[name]
    print(f"{name:30s} max Re λ = {s['max_real']:+.3f}   max growth per step = {s['max_amplification']:.4f}"
          f"   inside the region: {100 * s['fraction_stable']:.0f}%")

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 6))
for ax, (name, blk) in zip(axes, blocks.items()):
    draw_region(ax, blk.integrator.name, extent=3.5)
    z = zs[name]
    ax.plot(z.real, z.imag, ".", ms=3, color="tab:blue", alpha=0.5, label="hλ, all layers and samples")
    ax.plot([], [], "s", color="tab:red", alpha=0.3, label=f"{blk.integrator.name} stability region")
    ax.set_title(name)
    ax.set_xlabel("Re(hλ)")
    ax.set_ylabel("Im(hλ)")
    ax.set_xlim(-3.5, 1.5)
    ax.set_ylim(-3.5, 3.5)
    ax.set_aspect("equal")
    ax.legend(loc="lower left", fontsize=8)
fig.suptitle(f"Jacobian eigenvalues times h = {T / N} against the integrator's region")
fig.tight_layout()
plt.show()

# %% [markdown]
# **What to look at:** the antisymmetric network's $h\lambda$ sit on the imaginary axis (left
# panel, middle panel).  Under Euler they are all outside the disc (growth
# $\sqrt{1 + h^2|\lambda|^2}$ per step); under RK4 the same points are inside its region.  The
# random ResNet has eigenvalues with positive real part: there even the ODE amplifies.

# %%
anti_e, anti_r = summaries["antisymmetric, Euler"], summaries["antisymmetric, RK4"]
# the antisymmetric ODE is stable: Re λ ≤ 0 up to round-off (the library's own criterion)
assert anti_e["continuous_stable"] and anti_r["continuous_stable"]
# ... but Euler amplifies every non-zero mode: growth per step √(1 + h²|λ|²) > 1
assert anti_e["max_amplification"] > 1.0 + 1e-3
# ... and RK4 does not, as long as |hλ| stays below 2√2 (checked here, not assumed)
assert anti_r["max_abs_z"] < 2.8 and anti_r["max_amplification"] <= 1.0 + 1e-6

# %% [markdown]
# ## What it does to a perturbation: forward sensitivity against depth
#
# `forward_sensitivity` pushes $y_0$ and $y_0 + \varepsilon v$ through the block and records
# $s_j = \|Y_j(y_0 + \varepsilon v) - Y_j(y_0)\| / (\varepsilon\|v\|)$ for every layer $j$.  We
# take the antisymmetric weights on a longer interval, $T = 32$ with $N = 64$ steps, and small
# inputs (the linear regime of $\tanh$, where the eigenvalue picture is exact).  Euler's
# sensitivity grows geometrically, RK4's stays of order one, and the exact flow would keep it
# bounded too.

# %%
T_long, N_long = 32.0, 64
x_small = 0.01 * torch.randn(32, width)
sens = {}
for name, blk in [("Euler", anti_euler), ("RK4", anti_rk4)]:
    long_block = sn.ODEBlock(blk.dynamics, T=T_long, steps=N_long, method=blk.integrator.name,
                             controls="linear")
    sens[name] = forward_sensitivity(long_block, x_small, eps=1e-6, direction="random",
                                     generator=torch.Generator().manual_seed(0))

fig, ax = plt.subplots(figsize=(6.5, 4))
for name, s in sens.items():
    ax.semilogy(s["depth"], s["mean"], label=f"antisymmetric, {name}: mean over samples")
    ax.semilogy(s["depth"], s["max"], ls=":", color=ax.lines[-1].get_color(), label=f"{name}: max")
ax.set_xlabel("layer j")
ax.set_ylabel("sensitivity ‖δY_j‖ / ‖δY_0‖")
ax.set_title(f"same weights, T = {T_long:g}, N = {N_long}: Euler vs RK4")
ax.legend(fontsize=8)
plt.show()
print({name: round(s["max"][-1], 3) for name, s in sens.items()})

# %%
# Euler's growth is not a small effect: at the last layer it is far beyond RK4's.
assert sens["Euler"]["mean"][-1] > 3 * sens["RK4"]["mean"][-1]
# RK4 on the stable antisymmetric ODE keeps perturbations bounded (no exponential growth)
assert max(sens["RK4"]["max"]) < 3.0

# %% [markdown]
# **Take-away.**  Designing a deep network is choosing an ODE *and* an integrator.  Make the
# dynamics stable (antisymmetric, Hamiltonian, parabolic: tutorial 2) and pick an integrator
# whose stability region contains the $h\lambda$ those dynamics produce: for eigenvalues on the
# imaginary axis that excludes forward Euler, i.e. the plain ResNet update.
