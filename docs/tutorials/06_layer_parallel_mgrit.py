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
# # 6. Layer-parallel propagation with MGRIT (run serially)
#
# Forward propagation through $N$ layers, $Y_{j+1} = \Phi_j(Y_j)$, looks inherently sequential:
# layer $j+1$ waits for layer $j$.  Written as one system for all states at once,
#
# $$ \begin{pmatrix} I & & & \\ -\Phi_0 & I & & \\ & \ddots & \ddots & \\ & & -\Phi_{N-1} & I
#    \end{pmatrix} \begin{pmatrix} Y_0 \\ Y_1 \\ \vdots \\ Y_N \end{pmatrix}
#    = \begin{pmatrix} g_0 \\ 0 \\ \vdots \\ 0 \end{pmatrix}, $$
#
# it can be solved *iteratively*, and **multigrid reduction in time** (MGRIT; Falgout et al.
# 2014, applied to ResNets by Günther, Ruthotto, Schroder, Cyr & Gauger 2020, seed 002's
# "layer-parallel training") does so with parallelism across the layers:
#
# * every $m$-th state is a **C-point**, the others **F-points**;
# * **F-relaxation** propagates from each C-point through the $m - 1$ following layers; the
#   intervals are independent, so $P$ processors can do them at the same time;
# * the **coarse grid** keeps only the C-points and uses one step of the same integrator with
#   step $m h$ (with $\theta(t)$ sampled at the coarse times) to correct them, recursively
#   (a FAS V-cycle);
# * the residual at the C-points, $r_i = Y_{mi} - \Phi^m(Y_{m(i-1)})$, measures how far the
#   iterate is from sequential propagation.
#
# Here everything runs in one process (`stablenet.parallel` with its serial communicator): we see
# the iteration converge and use the library's **cost model** to predict what $P$ processors
# would gain (`docs/parallel.md`; `torchrun` runs the same code on several processes).

# %%
import matplotlib.pyplot as plt
import torch

import stablenet as sn
from stablenet.parallel import MGRIT, MGRITOptions, mgrit_forward
from stablenet.parallel.cost import mgrit_cost

torch.manual_seed(0)
torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)

# %% [markdown]
# ## The iterates approach sequential propagation
#
# An antisymmetric RK4 block (width 8, $T = 8$, weights linear in time on 4 control points) with
# $N = 64$ layers.  `mgrit_forward(block, x, m=4, relax="F", max_iter=k, rtol=0)` stops after
# exactly $k$ V-cycles; `result.stacked()` returns all $N + 1$ states of the iterate, which we
# compare layer by layer with the sequential forward pass.

# %%
def study_block(kind, steps):
    """The three networks of benchmarks/bench_mgrit.py (T = 8, width 8, 4 linear control points)."""
    torch.manual_seed(0)
    if kind == "antisymmetric + RK4 (stable)":
        dynamics, method = sn.Antisymmetric(8, nt=4, gamma=0.1), "rk4"
    elif kind == "parabolic + Euler (stable)":
        dynamics, method = sn.Parabolic(8, nt=4), "euler"
    else:  # linear single layer (0.5 I + 0.3 G(t)) Y: eigenvalues with Re λ > 0
        dynamics, method = sn.SingleLayer(8, nt=4, activation="identity"), "euler"
        with torch.no_grad():
            dynamics.K.copy_(0.5 * torch.eye(8) + 0.3 * torch.randn(4, 8, 8))
            dynamics.b.zero_()
    return sn.ODEBlock(dynamics, T=8.0, steps=steps, method=method, controls="linear")


x = torch.linspace(-1, 1, 40).reshape(5, 8)
block = study_block("antisymmetric + RK4 (stable)", 64)
with torch.no_grad():
    sequential = block(x, return_states=True)                # (65, 5, 8)

fig, ax = plt.subplots(figsize=(7, 4))
for k in range(4):
    iterate = mgrit_forward(block, x, m=4, max_levels=3, relax="F", max_iter=k, rtol=0.0).stacked()
    error = (iterate - sequential).norm(dim=(1, 2)) / sequential.norm(dim=(1, 2))
    ax.semilogy(range(65), error.clamp_min(1e-17), label=f"after {k} V-cycles")
ax.set_xlabel("layer j")
ax.set_ylabel("‖Y_j(MGRIT) − Y_j(sequential)‖ / ‖Y_j‖")
ax.set_title("antisymmetric RK4, N = 64, m = 4, 3 levels, F-relaxation")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# **What to look at.**  The initial guess (0 cycles: F-relaxation from $Y_0$ copied to every
# C-point) is wrong after the first interval; every V-cycle gains several digits on *all* layers
# at once.  An exactness property of two-level MGRIT with F-relaxation: after $N/m$ iterations the
# answer is the sequential one, whatever the dynamics (each iteration propagates the exact
# solution one more coarse interval).  We check it below.

# %%
two_level = mgrit_forward(block, x, m=4, max_levels=2, relax="F", max_iter=64 // 4, rtol=0.0)
assert torch.allclose(two_level.stacked(), sequential, atol=1e-12, rtol=0)
converged = mgrit_forward(block, x, m=4, max_levels=3, relax="FCF", rtol=1e-12, max_iter=30)
assert converged.stats.converged
assert torch.allclose(converged.final, sequential[-1], atol=1e-9, rtol=0)

# %% [markdown]
# ## Residual per iteration for stable and unstable dynamics
#
# Now the residual history until $\|r\| \le 10^{-8}\|r_0\|$ (FCF-relaxation, $m = 4$, as many
# levels as fit, down to 2 coarse steps) for three networks of $N = 64$ and $N = 256$ layers:
# the antisymmetric RK4 network, a parabolic network $-K^\top\sigma(KY + b)$ with Euler (stable,
# stiffer), and an *unstable* linear single layer ($\operatorname{Re}\lambda > 0$).

# %%
study = {}
kinds = ["antisymmetric + RK4 (stable)", "parabolic + Euler (stable)", "single layer, Re λ > 0 (unstable)"]
options = MGRITOptions(m=4, max_levels=10, relax="FCF", rtol=1e-8, max_iter=40)
for kind in kinds:
    for N in [64, 256]:
        blk = study_block(kind, N)
        result = mgrit_forward(blk, x, options=options)
        with torch.no_grad():
            reference = blk(x)
        study[kind, N] = (result.stats, ((result.final - reference).norm() / reference.norm()).item())
        print(f"{kind:36s} N = {N:3d}: {result.stats.iterations:2d} iterations, levels {result.stats.levels}, "
              f"relative error of Y_N {study[kind, N][1]:.1e}")

fig, axes = plt.subplots(1, 3, figsize=(15, 4), sharey=True)
for ax, kind in zip(axes, kinds):
    for N in [64, 256]:
        res = study[kind, N][0].relative_residuals
        ax.semilogy(range(len(res)), [max(r, 1e-16) for r in res], "o-", ms=3, label=f"N = {N}")
    ax.axhline(1e-8, color="0.5", ls="--", lw=0.8, label="tolerance 1e-8")
    ax.set_title(kind, fontsize=10)
    ax.set_xlabel("MGRIT iteration (FCF, m = 4)")
    ax.legend(fontsize=8)
axes[0].set_ylabel("relative residual ‖r‖ / ‖r₀‖")
fig.tight_layout()
plt.show()

# %% [markdown]
# **What to look at.**  For the stable networks the number of iterations hardly depends on $N$:
# that is what makes MGRIT scale.  The antisymmetric RK4 network converges fastest (RK4's coarse
# steps stay accurate on its imaginary spectrum).  For the unstable network the residual first
# *grows*, because errors of the coarse grid are amplified by $e^{\operatorname{Re}\lambda\,t}$,
# and convergence is slow: layer-parallelism needs stable dynamics (and weights smooth in time).

# %%
for kind in kinds[:2]:
    its = [study[kind, N][0].iterations for N in (64, 256)]
    assert all(study[kind, N][0].converged for N in (64, 256))
    assert its[1] <= its[0] + 2                          # depth-independent, up to a couple
for key, (stats, error) in study.items():
    if stats.converged:
        assert error < 1e-6                              # converged MGRIT = sequential propagation
unstable = study[kinds[2], 256][0]
assert max(unstable.relative_residuals) > 1.0           # the residual grows before it falls
assert unstable.iterations > study[kinds[0], 256][0].iterations

# %% [markdown]
# ## Gradients through MGRIT
#
# `block.gradient = MGRIT(...)` makes the block propagate forward *and* backward by MGRIT: the
# backward pass solves the discrete adjoint $\lambda_j = (\partial\Phi_j/\partial Y_j)^\top
# \lambda_{j+1}$ by the same iteration, backwards in time.  Converged, it is autograd's gradient.

# %%
def gradient(blk, x):
    blk.zero_grad()
    x = x.clone().requires_grad_(True)
    blk(x).pow(2).sum().backward()
    return torch.cat([p.grad.flatten() for p in blk.parameters()] + [x.grad.flatten()])


blk = study_block("antisymmetric + RK4 (stable)", 256)
g_autograd = gradient(blk, x)
blk.gradient = MGRIT(m=4, max_levels=10, relax="FCF", rtol=1e-10, max_iter=30)
g_mgrit = gradient(blk, x)
difference = ((g_mgrit - g_autograd).norm() / g_autograd.norm()).item()
print(f"forward: {blk.gradient.last_forward.iterations} iterations, adjoint: "
      f"{blk.gradient.last_adjoint.iterations} iterations; ‖g_MGRIT − g_autograd‖ / ‖g‖ = {difference:.1e}")
assert difference < 1e-7

# %% [markdown]
# ## What would $P$ processors gain?  The cost model
#
# `stablenet.parallel.cost.mgrit_cost(N, P, options, iterations=k, t_step=…, t_msg=…)` replays
# the solver's operations on the same grids with the same assignment of layers to $P$ ranks, and
# charges $t_\text{step}$ per step evaluation and $t_\text{msg}$ per message on the critical path.
# Its per-rank evaluation counts are exact (here: compared with what the serial solver did); the
# predicted speedup is $N t_\text{step} / T_\text{MGRIT}$.  Below: 2 V-cycles with F-relaxation
# (what layer-parallel *training* uses: an inexact forward pass), messages free or as expensive
# as one step.

# %%
training = MGRITOptions(m=4, max_levels=10, relax="F", rtol=0.0, max_iter=2)
serial = mgrit_forward(study_block("antisymmetric + RK4 (stable)", 256), x, options=training)
model = mgrit_cost(256, 1, training, iterations=serial.stats.iterations)
print("evaluations counted by the solver:", sum(serial.stats.evaluations),
      " predicted by the model:", model.evaluations[0], " sequential:", 256)

ranks = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
fig, ax = plt.subplots(figsize=(7, 4.3))
for N, color in [(1024, "tab:blue"), (4096, "tab:orange"), (16384, "tab:green")]:
    for t_msg, style in [(0.0, "-"), (1.0, "--")]:
        P = [p for p in ranks if p <= N // 4]
        speedup = [mgrit_cost(N, p, training, iterations=2, t_step=1.0, t_msg=t_msg).speedup for p in P]
        ax.loglog(P, speedup, "o" + style, ms=3, color=color,
                  label=f"N = {N}, t_msg = {t_msg:g}·t_step")
ax.axhline(1, color="k", lw=0.8)
ax.set_xlabel("processors P")
ax.set_ylabel("predicted speedup over sequential")
ax.set_title("MGRIT cost model: 2 V-cycles, F-relaxation, m = 4")
ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# **What to look at.**  MGRIT does several times the work of sequential stepping, so it *loses*
# on 1–4 processors (below the black line); the speedup grows with $P$ and saturates when the
# coarse levels and messages dominate, later for deeper networks.  Message cost lowers the curve.

# %%
assert sum(serial.stats.evaluations) == model.evaluations[0]     # the model counts exactly
work = mgrit_cost(4096, 1, training, iterations=2)
assert work.speedup < 1.0                                          # one rank: pure overhead
assert mgrit_cost(4096, 2, training, iterations=2).speedup < 1.0
assert mgrit_cost(4096, 64, training, iterations=2).speedup > 5.0  # docs/parallel.md: 11.5
