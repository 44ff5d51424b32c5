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
# # 4. Gradients: autograd, checkpoint, reversible, adjoint
#
# Training needs $\nabla_\theta \ell(Y_N)$ for a loss $\ell$ of the network's output.  Seed 002
# (Ruthotto, "Deep neural networks motivated by ODEs") contrasts two routes:
#
# * **discretize → differentiate**: differentiate the discrete network $Y_{j+1} = \Phi_j(Y_j)$
#   exactly, i.e. backpropagation
#   $\bar Y_j = (\partial\Phi_j/\partial Y_j)^\top \bar Y_{j+1}$.  This is the gradient of the
#   function the network computes.  It needs the states $Y_j$ (and the stages inside each step)
#   during the backward pass: **memory grows linearly with depth**.
# * **differentiate → discretize**: the continuous adjoint
#   $a'(t) = -(\partial f/\partial Y)^\top a$, $a(T) = \nabla\ell(Y(T))$, solved backwards in time
#   together with $Y$, and
#   $\nabla_\theta\ell = \int_0^T a^\top \partial f/\partial\theta\,dt$.  Memory does not grow
#   with depth, but the result is the gradient of the *ODE*, which differs from the discrete
#   network's by $O(h^p)$.
#
# `stablenet` offers four **gradient modes**, chosen per block with one argument:
#
# | `gradient=` | computes | activation memory |
# |---|---|---|
# | `"autograd"` (default) | exact discrete gradient | $O(N)$: every stage |
# | `"checkpoint"` | the same, recomputing segments of $\lceil\sqrt N\rceil$ steps | $O(\sqrt N)$ |
# | `"reversible"` | the same, rebuilding the states backwards (Verlet, leapfrog only) | $O(1)$ |
# | `"adjoint"` | the continuous adjoint, discretized | $O(1)$ |
#
# This notebook measures both sides of the trade: the **accuracy** of each gradient against
# autograd's, and the **memory and time** of each against depth.

# %%
import math
import time

import matplotlib.pyplot as plt
import torch

import stablenet as sn

torch.manual_seed(0)
torch.set_num_threads(1)


def gradient(block, x):
    """∇ of ℓ = ½‖Y_N‖² with respect to every weight and to the input, as one flat vector."""
    block.zero_grad()
    x = x.clone().requires_grad_(True)
    (0.5 * block(x).pow(2).sum()).backward()
    return torch.cat([p.grad.flatten() for p in block.parameters()] + [x.grad.flatten()])


def relative_difference(g, reference):
    return ((g - reference).norm() / reference.norm()).item()

# %% [markdown]
# ## Exact modes agree with autograd to round-off
#
# A Hamiltonian network (width 8, weights linear in time on 8 control points) integrated by
# Verlet with $N = 128$ steps, in float64.  `block.gradient` can be switched at any time; the
# forward computation is the same, only the backward pass changes.

# %%
torch.manual_seed(1)
block = sn.ODEBlock(sn.Hamiltonian(8, nt=8), T=4.0, steps=128, method="verlet", controls="linear").double()
x = torch.randn(32, 8, dtype=torch.float64)

exact = {}
for mode in ["autograd", "checkpoint", "reversible"]:
    block.gradient = mode
    exact[mode] = gradient(block, x)
for mode in ["checkpoint", "reversible"]:
    print(f"{mode:10s}: ‖g − g_autograd‖ / ‖g_autograd‖ = {relative_difference(exact[mode], exact['autograd']):.1e}")

# %%
assert relative_difference(exact["checkpoint"], exact["autograd"]) < 1e-12   # same operations, reordered sums
assert relative_difference(exact["reversible"], exact["autograd"]) < 1e-10   # rebuilt states: round-off only

# %% [markdown]
# ## The adjoint's gradient converges to autograd's at the integrator's order
#
# For the single layer $f = \tanh(K(t)Y + b(t))$ (width 4, $T = 2$, 4 linear control points) we
# compute, for $N = 4 \dots 128$ steps, the discrete gradient (autograd) and the continuous
# adjoint solved with the same method and the same $N$
# (`gradient=sn.Adjoint(method=m, steps=N)`).  Both converge to the ODE's gradient at the
# method's order $p$, so their difference falls like $h^p$.
#
# **What to look at:** straight lines with slopes $-1$ (Euler), $-2$ (midpoint), $-4$ (RK4).  At
# the few layers a network is trained with, the two gradients are *not* the same: with 4 Euler
# steps they differ by tens of per cent.

# %%
torch.manual_seed(2)
dynamics = sn.SingleLayer(4, nt=4).double()
x = torch.randn(16, 4, dtype=torch.float64)
grid = [4, 8, 16, 32, 64, 128]
orders = {"euler": 1, "midpoint": 2, "rk4": 4}
adjoint_error = {}
for method in orders:
    adjoint_error[method] = []
    for N in grid:
        blk = sn.ODEBlock(dynamics, T=2.0, steps=N, method=method, controls="linear")
        g_discrete = gradient(blk, x)
        blk.gradient = sn.Adjoint(method=method, steps=N)
        adjoint_error[method].append(relative_difference(gradient(blk, x), g_discrete))

fig, ax = plt.subplots(figsize=(6.5, 4.2))
for method, p in orders.items():
    line, = ax.loglog(grid, adjoint_error[method], "o-", label=f"{method} (order {p})")
    ref = adjoint_error[method][-1] * (grid[-1] / torch.tensor(grid, dtype=torch.float64)) ** p
    ax.loglog(grid, ref, ":", color=line.get_color(), lw=0.8)
ax.set_xlabel("steps N")
ax.set_ylabel("‖g_adjoint − g_autograd‖ / ‖g_autograd‖")
ax.set_title("continuous adjoint vs exact discrete gradient (dotted: slope −p)")
ax.legend()
plt.show()


def fitted_order(errs):
    return math.log(errs[-2] / errs[-1]) / math.log(grid[-1] / grid[-2])


for method in orders:
    print(f"{method:8s}: difference at N = 4: {adjoint_error[method][0]:.3f}, "
          f"fitted order {fitted_order(adjoint_error[method]):.2f}")

# %%
for method, p in orders.items():
    assert abs(fitted_order(adjoint_error[method]) - p) < 0.3
    assert adjoint_error[method][-1] < adjoint_error[method][0]
assert adjoint_error["euler"][0] > 0.05     # at coarse steps the two gradients are different objects

# %% [markdown]
# ## Memory against depth
#
# What a gradient mode changes is what the forward pass keeps for the backward pass.  PyTorch
# lets us watch exactly that: `torch.autograd.graph.saved_tensors_hooks` calls a hook for every
# tensor autograd (or a custom `autograd.Function`, which is how the checkpoint, reversible and
# adjoint modes are written) saves for backward.  The small class below counts the bytes of the
# distinct storages saved and alive at any moment, and the peak over one forward + backward pass
# (the weights and the input, which exist anyway, are not counted).  Unlike the process's
# resident memory this is exact and reproducible on a CPU; `benchmarks/bench_gradients.py`
# measures the process's peak memory for large networks and finds the same picture.

# %%
class SavedTensorMemory:
    """Peak bytes of distinct tensor storages saved for backward (a context manager)."""

    def __init__(self, exclude=()):
        self.exclude = {t.untyped_storage().data_ptr() for t in exclude}
        self.users, self.size, self.current, self.peak = {}, {}, 0, 0

    def _pack(self, tensor):
        key = tensor.untyped_storage().data_ptr()
        if key in self.exclude:
            return tensor
        if self.users.get(key, 0) == 0:
            self.size[key] = tensor.untyped_storage().nbytes()
            self.current += self.size[key]
            self.peak = max(self.peak, self.current)
        self.users[key] = self.users.get(key, 0) + 1
        return _Saved(tensor, self, key)

    def _unpack(self, saved):
        return saved if isinstance(saved, torch.Tensor) else saved.tensor

    def _release(self, key):
        self.users[key] -= 1
        if self.users[key] == 0:
            self.current -= self.size.pop(key)

    def __enter__(self):
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc):
        self._hooks.__exit__(*exc)


class _Saved:
    """A saved tensor; when autograd drops it, its storage stops counting."""

    __slots__ = ("tensor", "tracker", "key")

    def __init__(self, tensor, tracker, key):
        self.tensor, self.tracker, self.key = tensor, tracker, key

    def __del__(self):
        self.tracker._release(self.key)


# %% [markdown]
# The benchmark network: a Hamiltonian block (width 16 per stream, batch 64, weights on 8
# piecewise-constant control points, so the number of weights does not change with depth),
# float32, one training step (forward, backward) at $N = 16, 64, 256$, with Verlet
# (autograd, checkpoint, reversible) and with RK4 (autograd, checkpoint, adjoint).

# %%
MODES = {"verlet": ["autograd", "checkpoint", "reversible"], "rk4": ["autograd", "checkpoint", "adjoint"]}
depths = [16, 64, 256]


def training_step_cost(method, mode, steps, repeats=2):
    torch.manual_seed(0)
    blk = sn.ODEBlock(sn.Hamiltonian(16, nt=8), T=4.0, steps=steps, method=method, gradient=mode)
    x = torch.randn(64, 16)
    seconds = []
    for _ in range(repeats):
        blk.zero_grad()
        start = time.perf_counter()
        with SavedTensorMemory(exclude=[*blk.parameters(), x]) as memory:
            blk(x).pow(2).mean().backward()
        seconds.append(time.perf_counter() - start)
    return memory.peak / 2**20, min(seconds)


costs = {(method, mode): [training_step_cost(method, mode, n) for n in depths]
         for method, modes in MODES.items() for mode in modes}

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.3))
styles = {"verlet": "-", "rk4": "--"}
for (method, mode), values in costs.items():
    label = f"{method}, {mode}"
    ax1.loglog(depths, [v[0] for v in values], "o" + styles[method], label=label)
    ax2.loglog(depths, [1e3 * v[1] for v in values], "o" + styles[method], label=label)
ax1.set_xlabel("depth N")
ax1.set_ylabel("peak memory saved for backward (MiB)")
ax1.set_title("activation memory of one training step")
ax2.set_xlabel("depth N")
ax2.set_ylabel("forward + backward time (ms)")
ax2.set_title("time of one training step (one CPU thread)")
for ax in (ax1, ax2):
    ax.set_xticks(depths, [str(n) for n in depths])
    ax.minorticks_off()
    ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
for (method, mode), values in costs.items():
    print(f"{method:6s} {mode:10s} " + "  ".join(f"N={n}: {m:7.3f} MiB {1e3 * t:6.1f} ms"
                                                    for n, (m, t) in zip(depths, values)))

# %% [markdown]
# **What to look at (left).**  autograd's memory grows in proportion to $N$ (RK4 keeps four
# stages per step, so it is several times Verlet's); checkpointing grows like $\sqrt N$; the
# reversible and adjoint modes stay flat, at the size of a few states.  **Right:** every mode's
# time grows linearly in $N$; the memory savers pay with extra work (a recomputation, a
# reconstruction, or a backward ODE solve).  Times on a small network and a shared machine are
# noisy; `docs/gradients.md` has careful measurements.

# %%
mem = {key: [v[0] for v in values] for key, values in costs.items()}
growth = depths[-1] / depths[0]                                   # 16× deeper
for method in MODES:
    assert mem[(method, "autograd")][-1] > 0.5 * growth * mem[(method, "autograd")][0]  # ~linear in N
    assert mem[(method, "checkpoint")][-1] < mem[(method, "autograd")][-1] / 4        # √N ≪ N
assert mem[("verlet", "reversible")][-1] < 1.5 * mem[("verlet", "reversible")][0]    # flat in N
assert mem[("rk4", "adjoint")][-1] < 1.5 * mem[("rk4", "adjoint")][0]                # flat in N
assert mem[("verlet", "reversible")][-1] < mem[("verlet", "autograd")][-1] / 50

# %% [markdown]
# **Which to choose.**  `autograd` while memory allows; `reversible` for deep Verlet (Hamiltonian)
# networks: the exact gradient at constant memory; `checkpoint` for any integrator when memory is
# short; `adjoint` when the continuous gradient is what you want, e.g. for a network you intend to
# refine in depth (tutorial 5), accepting its $O(h^p)$ difference from the discrete gradient.
