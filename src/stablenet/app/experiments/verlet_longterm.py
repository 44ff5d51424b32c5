"""Seed 003 (Gonzalez & Mang), Fig. 3: long-term behaviour of a Hamiltonian network under Verlet.

**The seed's setup.**  Seed 003 (../shared/seeds/003_823b49f8770ebaad.txt), "Verlet Method"
(Methods): "z_{j+1/2} = z_{j−1/2} − h f(K_jᵀ y_j + u_j) and y_{j+1} = y_j + h f(K_j z_{j+1/2} +
u_j)", the discretization of "d_t y(t) = f(K(t) z(t) + u(t)) and d_t z(t) = −f(Kᵀ(t) y(t) +
u(t))"; "Results", "Verlet Method": "We consider networks consisting of N = 20, 50, 100, 200, 500,
1000 identical layers, i.e., on each layer we use the activation function f = tanh, h = 0.1,
b = 0, and K_v = (k1 k2) with k1 = (2, −1, 0)ᵀ and k2 = (1, 2, 1)ᵀ."  Observations: "the forward
propagation yields a stable transformation of the features for short term (N = 20) and
non-trivial long term characteristics (N = 1000). [...] although we use identical layers with
constant kernels, the features do not explode or vanish asymptotically."  The features are those
of Fig. 2: y1 = (0.1, 0.1)ᵀ, y2 = −y1, y3 = (0, 0.5)ᵀ.

**Ours.**  The same six networks in float64 through stablenet's `ODEBlock` (`Hamiltonian`
dynamics, `method="verlet"`), K = K_vᵀ (2 × 3), so y ∈ R² (the features) and z ∈ R³ with
Z_{−1/2} = 0.  The invariant: with p = Kz ∈ R² the network is y' = tanh(p), p' = −K tanh(Kᵀy),
i.e. the canonical separable Hamiltonian system y' = ∂H/∂p, p' = −∂H/∂y with

    H(y, p) = T(p) + V(y),   T(p) = Σ_i log cosh p_i,   V(y) = Σ_j log cosh (Kᵀy)_j

(dH/dt = tanh(p)ᵀp' + tanh(Kᵀy)ᵀKᵀy' = −tanh(p)ᵀK tanh(Kᵀy) + tanh(Kᵀy)ᵀKᵀtanh(p) = 0), and
seed 003's scheme is, in (y, p), exactly Störmer–Verlet (leapfrog): p_{j+1/2} = p_{j−1/2} − h∇V(y_j),
y_{j+1} = y_j + h∇T(p_{j+1/2}); symplectic and time-reversible.  (The component of z along
ker K, n = (−1, −2, 5), does not act on y; it is recorded, not judged.)  H is evaluated with the
synchronized p_j = K(z_{j−1/2} + z_{j+1/2})/2 = p_{j−1/2} − (h/2)∇V(y_j).  Backward error analysis
(Hairer, Lubich & Wanner, *Geometric Numerical Integration*, IX.3) gives the modified energy
H̃ = H + h²H₂ + O(h⁴), H₂ = (1/12)V''(∇T, ∇T) − (1/24)T''(∇V, ∇V), conserved by the scheme to
O(h⁴) over exponentially long times, so H itself oscillates by O(h²) without drift.  Recorded:
the energy along every network, its drift at h/2 and h/4 over the same time (t ≤ 100), the ODE's
own H along RK4 with h = 0.01, every network run backwards (`ODEBlock.reverse`), the Euclidean
norms |y_N| and their envelopes (largest |y_j| over the first and the last 200 layers of N = 1000).

**Deviations and why.**  (1) The seed does not say which stream is 2-D nor whether K or Kᵀ is
applied first; we take the features as y, so K = K_vᵀ is 2 × 3 (the phase plane of Fig. 3 is 2-D).
(2) The seed's "do not explode or vanish" has no number; it is turned into the invariant H (a
feature cannot explode, H being coercive, nor vanish, y' = tanh(p) ≠ 0 where y = 0 at fixed H).
(3) The Euclidean ratio |y_1000|/|y_20| is **not** a statistic the mathematics fixes: the
features rotate in phase space (frequencies √5 and √6 of KKᵀ = diag(5, 6) in the linear regime)
and |y| oscillates between about 0 and the energy's bound, so it is recorded only; the
norm the invariant fixes is the energy norm ‖x‖_H = √(2H(y, p)) (≈ √(|p|² + |Kᵀy|²) for small
states, a norm on (y, p)), and that ratio is judged.  (4) `--quick` computes the same numbers
(the whole run takes seconds).

**Claims and the rule** (`verdict.check`: supported if every value is within the tolerance of the
target, else refuted; ε = h²λ_max(KKᵀ)/4 = 0.015, δ = ε/(1 − ε) = 0.0152).
(a) "The features do not explode or vanish, short and long": the relative energy drift
max_{j ≤ N}|H_j/H_0 − 1| for every N and feature equals 0 within δ.  δ is the exact amplitude of
the energy oscillation of leapfrog for the linearized system (ω² ≤ λ_max(KKᵀ) = 6: H oscillates
between Ĥ(1 − ε) and Ĥ, Ĥ the scheme's exact quadratic invariant) and, to leading order, the
bound from H₂ (tanh² ≤ 2 log cosh and ‖V''‖ ≤ ‖K‖² give h²(max H₂ − min H₂) ≤ εH).  Forward Euler
fails it (energy grows like (1 + h²ω²)^N).  (b) The O(h²): the observed order
log₂(D(h)/D(h/2)) of the energy drift D over t ≤ 100 equals 2 within 0.1.  (c) Symplecticity:
the modified energy H̃ = H + h²H₂ drifts at fourth order, log₂(D̃(h)/D̃(h/2)) = 4 within 0.25 (a
non-symplectic second-order scheme leaves an O(h²) secular drift).  (d) H is the ODE's
invariant: RK4 with h = 0.01 keeps it over t ≤ 100, relative drift 0 within 1e-6 (RK4's O(h⁴)).
(e) Reversibility: every network run backwards from (Y_N, Z_{N−1/2}) recovers (Y_0, Z_{−1/2} = 0),
largest error relative to max|Y_0|, 0 within 1e-12 (float64 rounding over ≤ 2000 layers).
(f) "Short (N = 20) and long (N = 1000)": the energy-norm ratio ‖x_1000‖_H/‖x_20‖_H per feature
equals 1 within √((1 + δ)/(1 − δ)) − 1 (both energies within δ of H_0).

**Before issue 17.**  The former verdicts were two **yes** (largest |y| below 1.2 × the initial
largest; the largest |y| in the last tenth above 0.05), bounds that any bounded orbit passes; there
was no **no** to revisit.  They are replaced by the analytic checks above.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from ... import Hamiltonian, ODEBlock
from ..io import pyplot, save_figure, write_json
from .phase_plane import FEATURES, H, plot_paths
from .verdict import check
from ._train import one_thread

SUMMARY = "seed 003 Fig 3: Hamiltonian network with K_v under Verlet for N = 20 ... 1000 layers"

K_V = [[2.0, 1.0], [-1.0, 2.0], [0.0, 1.0]]  # columns k1 = (2, −1, 0), k2 = (1, 2, 1)
STEPS = (20, 50, 100, 200, 500, 1000)
HORIZON = H * STEPS[-1]          # t ≤ 100 for the convergence checks
RK4_H = 0.01                     # the ODE's own flow
ENVELOPE = 200                   # layers of the first / last window for the envelope of |y|
ORDER_TOLERANCE = 0.1            # (b)
MODIFIED_ORDER_TOLERANCE = 0.25  # (c)
FLOW_TOLERANCE = 1e-6            # (d)
ROUNDING = 1e-12                 # (e)


def kernel() -> torch.Tensor:
    """K = K_vᵀ, 2 × 3 (float64)."""
    return torch.tensor(K_V, dtype=torch.float64).T


def tolerances() -> dict:
    """ε = h²λ_max(KKᵀ)/4, δ = ε/(1 − ε) and the energy-norm ratio's √((1 + δ)/(1 − δ)) − 1."""
    K = kernel()
    eps = H * H * float(torch.linalg.eigvalsh(K @ K.T).max()) / 4
    delta = eps / (1 - eps)
    return {"epsilon": eps, "energy": delta, "norm_ratio": math.sqrt((1 + delta) / (1 - delta)) - 1}


def network(steps: int, h: float = H, method: str = "verlet") -> ODEBlock:
    """The seed's network: ``steps`` identical layers of step ``h`` with K_v, b = 0."""
    dynamics = Hamiltonian(2, 3).double()
    with torch.no_grad():
        dynamics.K.copy_(kernel()[None])
        dynamics.b_y.zero_()
        dynamics.b_z.zero_()
    return ODEBlock(dynamics, T=h * steps, steps=steps, method=method)


def initial_state() -> tuple[torch.Tensor, torch.Tensor]:
    """(Y_0, Z_{−1/2} = 0) for the three features."""
    y0 = torch.tensor(FEATURES, dtype=torch.float64)
    return y0, y0.new_zeros(len(y0), 3)


def paths(steps: int, h: float = H, method: str = "verlet") -> tuple[torch.Tensor, torch.Tensor]:
    """States (Y_j, Z_{j−1/2}), j = 0 … N: tensors (N + 1, 3, 2) and (N + 1, 3, 3)."""
    with torch.no_grad():
        return network(steps, h, method)(initial_state(), return_states=True)


def verlet_paths(steps: int) -> torch.Tensor:
    """y-states (N + 1, 3, 2) of the Hamiltonian network with K_v, Z_{−1/2} = 0."""
    return paths(steps)[0]


def _log_cosh(x: torch.Tensor) -> torch.Tensor:
    a = x.abs()
    return a + torch.log1p(torch.exp(-2 * a)) - math.log(2.0)


def synchronized_p(ys: torch.Tensor, zs: torch.Tensor, h: float) -> torch.Tensor:
    """p_j = K(Z_{j−1/2} + Z_{j+1/2})/2 = K Z_{j−1/2} − (h/2) K tanh(Kᵀ Y_j)."""
    K = kernel()
    return (zs - 0.5 * h * torch.tanh(ys @ K)) @ K.T


def energy(y: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """H(y, p) = Σ log cosh p + Σ log cosh Kᵀy (over the last dimension)."""
    return _log_cosh(p).sum(-1) + _log_cosh(y @ kernel()).sum(-1)


def modified_energy(y: torch.Tensor, p: torch.Tensor, h: float) -> torch.Tensor:
    """H̃ = H + h²[(1/12) V''(∇T, ∇T) − (1/24) T''(∇V, ∇V)] (Störmer–Verlet's modified Hamiltonian)."""
    K = kernel()
    grad_T, grad_V = torch.tanh(p), torch.tanh(y @ K) @ K.T
    v_hess = ((1 - torch.tanh(y @ K) ** 2) * (grad_T @ K) ** 2).sum(-1)
    t_hess = ((1 - torch.tanh(p) ** 2) * grad_V ** 2).sum(-1)
    return energy(y, p) + h * h * (v_hess / 12 - t_hess / 24)


def energies(steps: int, h: float = H) -> tuple[torch.Tensor, torch.Tensor]:
    """H_j and H̃_j, j = 0 … N, along the Verlet network (tensors (N + 1, 3))."""
    ys, zs = paths(steps, h)
    p = synchronized_p(ys, zs, h)
    return energy(ys, p), modified_energy(ys, p, h)


def _drift(values: torch.Tensor) -> torch.Tensor:
    """max_j |v_j/v_0 − 1| per feature."""
    return (values / values[0] - 1).abs().amax(0)


def reversal_error(steps: int) -> float:
    """Run the network forward and back (``ODEBlock.reverse``); the largest error of (Y_0, Z_{−1/2})
    relative to max|Y_0|."""
    block = network(steps)
    y0, z0 = initial_state()
    with torch.no_grad():
        y, z = block.reverse(block((y0, z0)))
    return float(torch.cat([(y - y0).flatten(), (z - z0).flatten()]).abs().max() / y0.abs().max())


def numbers(quick: bool = False) -> dict:
    tol = tolerances()
    nets = {}
    for n in STEPS:
        ys, zs = paths(n)
        p = synchronized_p(ys, zs, H)
        E = energy(ys, p)
        nets[str(n)] = {
            "energy_drift": _drift(E).tolist(),
            "modified_energy_drift": _drift(modified_energy(ys, p, H)).tolist(),
            "final_energy": E[-1].tolist(),
            "reversal_error": reversal_error(n),
            "final_norms": ys[-1].norm(dim=-1).tolist(),
            "max_norm": float(ys.norm(dim=-1).max()),
        }
    E0 = energies(1)[0][0]
    ys, zs = paths(STEPS[-1])
    norms = ys.norm(dim=-1)
    null = torch.tensor([-1.0, -2.0, 5.0], dtype=torch.float64) / math.sqrt(30.0)
    long = {
        "initial_energy": E0.tolist(),
        "energy_norm_ratio": [math.sqrt(a / b) for a, b in zip(nets["1000"]["final_energy"],
                                                               nets["20"]["final_energy"])],
        "euclidean_norm_ratio": [a / b for a, b in zip(nets["1000"]["final_norms"], nets["20"]["final_norms"])],
        "envelope_first": norms[:ENVELOPE].amax(0).tolist(),
        "envelope_last": norms[-ENVELOPE:].amax(0).tolist(),
        "kernel_component_of_z": (zs[-1] @ null).tolist(),
    }
    long["envelope_ratio"] = [a / b for a, b in zip(long["envelope_last"], long["envelope_first"])]
    # the same time t ≤ 100 at h, h/2, h/4: energy and modified-energy drift
    conv = {"h": [], "energy_drift": [], "modified_energy_drift": []}
    for k in range(3):
        h = H / 2 ** k
        E, Et = energies(round(HORIZON / h), h)
        conv["h"].append(h)
        conv["energy_drift"].append(_drift(E).tolist())
        conv["modified_energy_drift"].append(_drift(Et).tolist())
    for key in ("energy_drift", "modified_energy_drift"):
        conv[f"{key}_order"] = [math.log2(a / b) for a, b in zip(conv[key][0], conv[key][1])]
    ys, zs = paths(round(HORIZON / RK4_H), RK4_H, "rk4")
    flow = {"h": RK4_H, "T": HORIZON, "energy_drift": _drift(energy(ys, zs @ kernel().T)).tolist()}
    return {"networks": nets, "long_term": long, "convergence": conv, "flow": flow, "tolerances": tol}


def claims(num: dict) -> list[dict]:
    tol, nets, conv = num["tolerances"], num["networks"], num["convergence"]
    return [
        check("Fig. 3: 'the features do not explode or vanish' for N = 20 ... 1000: the network keeps its "
              "invariant H (to Verlet's O(h²))",
              "max_j |H_j/H_0 − 1| along each network (N = 20, 50, 100, 200, 500, 1000; features y1, y2, y3)",
              [v for n in STEPS for v in nets[str(n)]["energy_drift"]], target=0.0, tolerance=tol["energy"],
              seed="'the features do not explode or vanish asymptotically' (no number)"),
        check("Verlet's energy error is second order (an O(h²) oscillation, no drift)",
              "log2(D(h)/D(h/2)), D = max |H_j/H_0 − 1| over t ≤ 100, h = 0.1 (features y1, y2, y3)",
              conv["energy_drift_order"], target=2.0, tolerance=ORDER_TOLERANCE,
              seed="Verlet, 'the network remains stable' (no number)"),
        check("Verlet is symplectic: it conserves the modified energy H + h²H₂ to fourth order",
              "log2(D̃(h)/D̃(h/2)), D̃ = max |H̃_j/H̃_0 − 1| over t ≤ 100, h = 0.1 (features y1, y2, y3)",
              conv["modified_energy_drift_order"], target=4.0, tolerance=MODIFIED_ORDER_TOLERANCE,
              seed="'recast the forward propagation as a Hamiltonian system' (no number)"),
        check("H = Σ log cosh(Kz) + Σ log cosh(Kᵀy) is the ODE's invariant",
              f"max |H/H_0 − 1| along RK4 with h = {RK4_H:g}, t ≤ {HORIZON:g} (features y1, y2, y3)",
              num["flow"]["energy_drift"], target=0.0, tolerance=FLOW_TOLERANCE, seed="not stated"),
        check("Verlet is reversible: running each network backwards recovers its input",
              "max |(Y_0, Z_-1/2) recovered − (Y_0, 0)| / max|Y_0| (N = 20 ... 1000)",
              [nets[str(n)]["reversal_error"] for n in STEPS], target=0.0, tolerance=ROUNDING,
              seed="reversible (seed 002: 'Verlet (reversible)')"),
        check("'short term (N = 20)' and 'long term (N = 1000)' features have the same size (energy norm)",
              "‖x_1000‖_H / ‖x_20‖_H = sqrt(H_1000/H_20) (features y1, y2, y3)",
              num["long_term"]["energy_norm_ratio"], target=1.0, tolerance=tol["norm_ratio"],
              seed="'stable transformation [...] for short term (N = 20) and [...] long term (N = 1000)'"),
    ]


def _plot_energy(num: dict, path: Path) -> Path:
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    colors, labels = ["tab:blue", "tab:orange", "gold"], ["y1 = (0.1, 0.1)", "y2 = −y1", "y3 = (0, 0.5)"]
    ys, zs = paths(STEPS[-1])
    p = synchronized_p(ys, zs, H)
    E, Et = energy(ys, p), modified_energy(ys, p, H)
    layers = range(len(E))
    delta = num["tolerances"]["energy"]
    ax = axes[0]
    for k in (0, 2):
        ax.plot(layers, E[:, k] / E[0, k] - 1, color=colors[k], lw=0.6, label=f"H, {labels[k]}")
        ax.plot(layers, Et[:, k] / Et[0, k] - 1, color=colors[k], lw=1.5, ls="--", label=f"H + h²H₂, {labels[k]}")
    for s in (-1, 1):
        ax.axhline(s * delta, color="k", lw=0.8, ls=":")
    ax.set_xlabel("layer j (N = 1000, h = 0.1)"); ax.set_ylabel("relative energy change H_j/H_0 − 1")
    ax.set_title(f"(a) energy: an O(h²) oscillation, no drift (dotted: ±δ = ±{delta:.4f})", fontsize=9)
    ax.legend(fontsize=7, loc="upper right", ncol=2)
    ax = axes[1]
    norms = ys.norm(dim=-1)
    for k in range(3):
        ax.plot(layers, norms[:, k], color=colors[k], lw=0.5, label=labels[k])
    ax.set_xlabel("layer j"); ax.set_ylabel("|y_j|")
    ax.set_title("(b) feature norms oscillate but neither grow nor decay", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    ax = axes[2]
    conv = num["convergence"]
    h = conv["h"]
    for key, marker, name in (("energy_drift", "o", "H"), ("modified_energy_drift", "s", "H + h²H₂")):
        for k in (0, 2):
            ax.loglog(h, [d[k] for d in conv[key]], marker + "-", color=colors[k], label=f"{name}, {labels[k]}")
    ref = conv["energy_drift"][0][0]
    ax.loglog(h, [ref * (x / h[0]) ** 2 for x in h], "k:", lw=0.8, label="slope 2")
    ref = conv["modified_energy_drift"][0][0]
    ax.loglog(h, [ref * (x / h[0]) ** 4 for x in h], "k--", lw=0.8, label="slope 4")
    ax.set_xlabel("step h (t ≤ 100)"); ax.set_ylabel("max relative energy change")
    ax.set_title("(c) convergence: H at order 2, modified H at order 4", fontsize=9)
    ax.legend(fontsize=7)
    fig.suptitle("Seed 003 Fig. 3: the invariant H = Σ log cosh(Kz) + Σ log cosh(Kᵀy) under Verlet", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    return save_figure(fig, path, dpi=90)


def run(out_dir: str | Path, quick: bool = False) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with one_thread():
        return _run(out_dir, quick)


def _run(out_dir: Path, quick: bool) -> dict:
    plt = pyplot()
    start = time.perf_counter()
    num = numbers(quick)
    fig, axes = plt.subplots(2, 3, figsize=(10, 6.5))
    for ax, n in zip(axes.flat, STEPS):
        plot_paths(ax, verlet_paths(n), f"Verlet, N = {n}: max |H/H0 − 1| = {max(num['networks'][str(n)]['energy_drift']):.3f}")
    fig.suptitle("Seed 003 Fig. 3: Hamiltonian network with K_v, h = 0.1, Z_{-1/2} = 0 (open: start, filled: layer N)")
    fig.tight_layout()
    save_figure(fig, out_dir / "verlet_longterm.png", dpi=110)
    _plot_energy(num, out_dir / "verlet_energy.png")
    results = {
        "experiment": "verlet-longterm",
        "claims": claims(num),
        **num,
        "settings": {"h": H, "steps": list(STEPS), "features": FEATURES, "K": kernel().tolist(),
                     "horizon": HORIZON, "rk4_h": RK4_H, "envelope_layers": ENVELOPE},
        "figures": ["verlet_longterm.png", "verlet_energy.png"],
        "quick": quick,
        "seconds": time.perf_counter() - start,
    }
    write_json(out_dir / "results.json", results)
    return results
