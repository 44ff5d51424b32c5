"""Seed 004 §3.3, Figs. 3.7–3.8: landscapes of the VarPro objective of 8- and 20-layer ResNets, T = 5.

**The seed's setup.**  Seed 004 (../shared/seeds/004_d979323a5caccc30.txt), §3.3 "Visualizing the
Loss Function": "we first need to choose one center point θ* and two direction vectors δ and η.
Then we plot the function f(α, β) = L(θ* + αδ + βη) [...] The two direction vectors [...] are both
∈ Rⁿ. Here, n is the total number of paramatrized weights in the network. Each entry [...] is
sampled from a random Gaussian distribution [...] In our experiment, we normalized the vectors and
weights with their averages instead of applying the Frobenius norm for simplicity. [...] The total
time T was set to 5 and the width of each layer nc was set to 8. [...] Figure 3.7 is the loss
function of a standard 8-layer ResNet. Figure 3.8 [...] of a standard 20-layer ResNet".  Fig. 3.7:
"Lots of non-convexities and a lack of smoothness can be observed"; Fig. 3.8: "Much more
smoothness can be observed".  Result: "We observe more non-convexities and less smoothness from
the shallower network than from the deeper one."  Chapter 5 "Visualizing Loss Function":
`n = 2.*nc+nt.*(nc.*nc+1)` (16 opening weights, then per layer 64 weights and one bias),
`d1 = normrnd(0,1,[n,1])`, groups `Q` = the opening and each layer, `d1normed =
(d1.*thetaAverage)./d1Average` (per group: entry × mean of θ over the group / mean of d1 over the
group), and `Viewer(a,b) = eval(fctn, thetaOpt + ((.05*a-1)*d1normed) + ((.05*b-1)*d2normed))` for
a, b = 1 … 40, with `fctn = dnnVarProObjFctn(net,pRegTh,pLoss,pRegW,classSolver,Ytrain,Ctrain)`
(the classifier W eliminated and re-solved, the regularizers of θ and W included).  Training
(§3, §2.2.1, Chapter 5): peaks, 1000 points per class, variable projection + Gauss–Newton,
`th0 = 1e-1*initTheta(net)`, a learned 16-weight opening.

**Ours.**  On each of 5 seeds (the seed draws the data, the initial weights and the directions):
peaks with 1000 training, 200 validation and 40 test points per class; the thesis' network
(`_thesis.build_network`: learned opening tanh(K₀x), K₀ 8 × 2, forward Euler on the tanh single
layer σ(K_jY + b_j), one weight set per layer, nt = steps = 8 or 20, T = 5, initial weights
stablenet's initialization × 0.1); the 20-layer network starts from the same θ(t) as the 8-layer
one (its layer k takes the 8-layer weights at t_k); 60 full-batch Gauss–Newton–CG steps on the
VarPro objective with α = 1e-3 Tikhonov on the opening and the time-smoothness regularizer
(`_thesis.train_newton`).  Around each trained θ* (opening and layer weights; the classifier is
not in θ) the objective it was trained on, Φ(θ) = cross-entropy at the re-solved (W*, μ*) +
λ/2‖(W*, μ*)‖² + α/2‖K₀‖² + α Σ‖θ_{k+1} − θ_k‖²/h_c, is evaluated in float64 on the listing's
40 × 40 grid α, β ∈ {0.05a − 1 : a = 1 … 40} = [−0.95, 1] (θ* at a = 20) on the training data
(`stablenet.analysis.varpro_landscape`), along two directions drawn and normalized as in the
listing (groups: the opening, and each layer's K_j and b_j; d ← d · mean_g(θ*) / mean_g(d)).
As a check of the normalization, the same objective on the even points of that grid (20 × 20,
step 0.1) along Gaussian directions normalized by Frobenius norms per group (the thesis' Eq. 3.3,
‖d_g‖ = ‖θ*_g‖).  Convexity and smoothness of each surface are measured by
`stablenet.analysis.landscape.surface_curvature`: the share of interior grid points where the
surface's 2 × 2 Hessian (central differences) has a negative eigenvalue, Li et al.'s ratio
|λ_min/λ_max| there (mean over points), both also on the central square |α|, |β| ≤ ½, and the
excess variation (the share of the total variation along grid lines beyond one valley per line:
bumps and ridges, scale-free, 0 for a bowl even one that flattens out).

**Deviations and why.**  (1) Our single layer has a bias vector b_j (8 numbers per layer), the
listing one bias per layer: a layer's group is its 64 + 8 numbers.  (2) The listing's average
normalization divides by the mean of 72 (or 16) Gaussian numbers, which can be arbitrarily close to
0: some groups get directions many times their own size (`group_scale_max` in results.json).  We
follow the listing and add the Frobenius version as the check; the directions of the 8- and the
20-layer networks are drawn from the same generator but cannot be equal (different n).  (3) The
text says "Gaussian distribution in the range of [0, 1]", the listing `normrnd(0,1)`: we follow the
listing.  (4) The regularizer weights, λ, the number of Gauss–Newton steps, the validation split
and the number of seeds are not in the seed (`_thesis`: λ = α = 1e-3, 60 steps; 5 seeds for
issue 17).  (5) The Eq. 3.3 check uses every other grid point to keep the run near 10 minutes.
(6) `--quick`: 2 seeds, 40 / 20 / 10 points per class, 8 Gauss–Newton steps, every fifth point
of the grid (8 × 8, both normalizations); its verdicts may be inconclusive.

**Claims and the rule.**  Per seed the paired difference (20 layers − 8 layers) of each measure,
judged "smaller than 0" by the shared rule of `stablenet.app.experiments.verdict` (supported if
mean + 2 SE < 0, refuted if mean − 2 SE > 0, else inconclusive): with the listing's directions on
the full grid, (a) the share of non-convex points and (b) the mean ratio |λ_min/λ_max| ("more
non-convexities [...] from the shallower network"), (c) the excess variation ("less smoothness"),
(d) the share of non-convex points on the central square (convexity near θ*, where the loss has
not flattened out); with the Eq. 3.3 directions, (e) the share of non-convex points and (f) the
excess variation; and, as a diagnostic of where a difference comes from, with the listing's
directions, (g) the share of non-convex points and (h) the excess variation of the data term alone
(the cross-entropy at the re-solved classifier, without λ/2‖(W*, μ*)‖² and R(θ)).

**Before issue 17** this page perturbed the classifier too (plain cross-entropy, Li et al.'s
filter normalization, Adam, one seed) and said **no** to "fewer non-convex points" and "smaller
curvature ratio": about 68% of the points were non-convex at both depths, dominated by the far
corners where cross-entropy flattens.  With the corrected setup both, claims (a) and (b), are
**supported**: what changed them is the objective (VarPro's, W re-solved at each point, the
regularizers included), with the listing's grid and directions, the thesis' training and five
paired seeds.  The diagnostics (g) and (h) say where that comes from: the data term alone is about
as non-convex at 20 layers as at 8; the difference is the regularizer of θ, whose time-smoothness
term α Σ‖θ_{k+1} − θ_k‖²/h_c grows much faster along random (rough in time) directions with 20
layers (h_c = 0.25) than with 8 (h_c = 0.625) and turns the 20-layer surface into a bowl.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ... import ODEClassifier
from ...analysis.landscape import surface_curvature
from ...analysis.varpro_landscape import (average_normalized_direction, group_scales, norm_normalized_direction,
                                          reduced_objective_surface)
from ...data import load_dataset
from ..io import pyplot, save_figure, write_json
from ..train_parts import smoothness
from . import _thesis
from ._train import accuracy, one_thread
from .verdict import judge

SUMMARY = ("seed 004 Figs 3.7-3.8: VarPro-objective landscapes of 8- vs 20-layer ResNets (T = 5) on the "
           "thesis' 40 x 40 grid, 5 seeds")

LAYERS = (8, 20)
T = 5.0
WIDTH = _thesis.WIDTH
ALPHA = _thesis.ALPHA
CLASSIFIER_REG = _thesis.CLASSIFIER_REG
#: the listing's grid: α = 0.05 a − 1, a = 1 … 40
GRID = tuple(round(0.05 * a - 1, 10) for a in range(1, 41))
CENTRAL = 0.5                       # the central square |α|, |β| ≤ ½
NORMALIZATIONS = ("average", "frobenius")
MEASURES = ("fraction_nonconvex", "mean_curvature_ratio", "excess_variation", "central_fraction_nonconvex",
            "local_minima")
NETWORK_METRICS = ("final_objective", "final_train_accuracy", "final_val_accuracy", "test_accuracy",
                   "train_seconds")


def _settings(quick: bool) -> dict:
    if quick:
        return {"seeds": 2, "per_class": 40, "val_per_class": 20, "test_per_class": 10, "newton_steps": 8,
                "grid_stride": {"average": 5, "frobenius": 5}}
    return {"seeds": 5, "per_class": 1000, "val_per_class": 200, "test_per_class": 40, "newton_steps": 60,
            "grid_stride": {"average": 1, "frobenius": 2}}


def grid(stride: int) -> list[float]:
    """The listing's grid, every ``stride``-th point counted back from α = 1 (θ* stays on it)."""
    return list(GRID[len(GRID) - 1::-stride][::-1])


# -- networks ----------------------------------------------------------------------------------
def build_network(layers: int, *, seed: int = 0) -> ODEClassifier:
    """The thesis' standard ResNet on T = 5: ``layers`` Euler steps, one weight set per layer."""
    return _thesis.build_network("euler", layers, T=T, controls=layers, seed=seed, width=WIDTH)


def resample(model: ODEClassifier, layers: int) -> ODEClassifier:
    """A ``layers``-layer copy of ``model`` with the same θ(t): layer k gets the weights of the
    layer of ``model`` that holds t_k = k·T/layers (and the same opening and classifier)."""
    out = build_network(layers)
    src, dst = model.blocks[0].dynamics, out.blocks[0].dynamics
    index = torch.tensor([k * src.nt // layers for k in range(layers)])
    with torch.no_grad():
        out.opening[0].weight.copy_(model.opening[0].weight)
        dst.K.copy_(src.K[index])
        dst.b.copy_(src.b[index])
        out.classifier.load_state_dict(model.classifier.state_dict())
    return out


def groups(model: ODEClassifier) -> list[list[torch.Tensor]]:
    """θ split as the listing's Q: the opening, then each layer's (K_j, b_j)."""
    dyn = model.blocks[0].dynamics
    return [[model.opening[0].weight]] + [[dyn.K[k], dyn.b[k]] for k in range(dyn.nt)]


def penalty(model: ODEClassifier) -> torch.Tensor:
    """The regularizer of θ that training minimizes: α/2‖K₀‖² + α Σ‖θ_{k+1} − θ_k‖²/h_c."""
    return 0.5 * ALPHA * model.opening[0].weight.pow(2).sum() + ALPHA * smoothness(model)


def directions(model: ODEClassifier, normalization: str, seed: int):
    """(δ, η) for ``model``, drawn from a generator seeded with ``seed``."""
    g = torch.Generator().manual_seed(seed)
    make = average_normalized_direction if normalization == "average" else norm_normalized_direction
    theta = groups(model)
    return make(theta, generator=g), make(theta, generator=g)


def surface_measures(objective: torch.Tensor, alphas: torch.Tensor) -> dict:
    """The convexity / smoothness measures of one surface, on the whole grid and the central square."""
    c = surface_curvature(objective, alphas, alphas)
    inner = (alphas.abs() <= CENTRAL + 1e-9).nonzero().reshape(-1)
    lo, hi = int(inner[0]), int(inner[-1]) + 1
    central = surface_curvature(objective[lo:hi, lo:hi], alphas[lo:hi], alphas[lo:hi])
    return {"fraction_nonconvex": c["fraction_nonconvex"], "mean_curvature_ratio": c["mean_curvature_ratio"],
            "excess_variation": c["excess_variation"], "central_fraction_nonconvex": central["fraction_nonconvex"],
            "local_minima": c["local_minima"]}


def landscape(model: ODEClassifier, train, normalization: str, seed: int, stride: int) -> dict:
    """Φ on the (strided) listing grid along the ``normalization`` directions of ``seed``."""
    d = directions(model, normalization, seed)
    surface = reduced_objective_surface(model, groups, train.x, train.y, d, grid(stride),
                                        regularization=CLASSIFIER_REG, penalty=penalty)
    alphas, phi = surface["alphas"], surface["objective"]
    centre = int((alphas.abs() < 1e-9).nonzero()[0])
    scales = [group_scales(groups(model), x) for x in d]
    data = surface_measures(surface["loss"], alphas)
    return {"surface": surface, "centre": centre, "measures": surface_measures(phi, alphas), "data_measures": data,
            "numbers": {**{f"data_term_{k}": v for k, v in data.items()},
                        "centre_objective": float(phi[centre, centre]), "min_objective": float(phi.min()),
                        "max_objective": float(phi.max()),
                        "centre_is_grid_minimum": bool(phi.min() >= phi[centre, centre] - 1e-12),
                        "group_scale_max": max(max(s) for s in scales),
                        "group_scale_median": float(np.median(scales)),
                        "inner_unconverged": surface["inner_unconverged"],
                        "inner_iterations_mean": float(surface["inner_iterations"].mean())}}


def train_seed(seed: int, s: dict) -> tuple[dict, dict]:
    """Both networks of ``seed`` trained, and their landscapes: (numbers per depth, surfaces per depth)."""
    data = load_dataset("peaks", seed=seed, n_train_per_class=s["per_class"], n_val_per_class=s["val_per_class"],
                        n_test_per_class=s["test_per_class"])
    base = build_network(LAYERS[0], seed=seed)
    numbers, surfaces = {}, {}
    for layers in LAYERS:
        model = base if layers == LAYERS[0] else resample(base, layers)
        hist = _thesis.train_newton(model, data.train, data.val, s["newton_steps"], alpha=ALPHA,
                                    classifier_reg=CLASSIFIER_REG)
        out = {"final_objective": hist[-1]["objective"], "final_train_accuracy": hist[-1]["train_accuracy"],
               "final_val_accuracy": hist[-1]["val_accuracy"],
               "test_accuracy": accuracy(model, data.test.x, data.test.y), "train_seconds": hist[-1]["seconds"]}
        surfaces[layers] = {}
        for norm in NORMALIZATIONS:
            land = landscape(model, data.train, norm, seed, s["grid_stride"][norm])
            surfaces[layers][norm] = land
            out[norm] = {**land["measures"], **land["numbers"]}
        numbers[layers] = out
    return numbers, surfaces


# -- the claims ----------------------------------------------------------------------------------
CLAIMS = (
    ("average", "fraction_nonconvex", "Figs. 3.7-3.8: 'more non-convexities' in the 8-layer landscape: the 20-layer "
     "surface has fewer non-convex points", "'Lots of non-convexities' (8 layers), none stated for 20"),
    ("average", "mean_curvature_ratio", "Figs. 3.7-3.8: the 20-layer surface has a smaller negative-curvature ratio "
     "|λ_min/λ_max| (Li et al.'s convexity map)", "'more non-convexities [...] from the shallower network'"),
    ("average", "excess_variation", "Figs. 3.7-3.8: the 20-layer surface is smoother (less variation beyond one "
     "valley per grid line)", "'Much more smoothness can be observed' (20 layers, by eye)"),
    ("average", "central_fraction_nonconvex", "near θ* (|α|, |β| ≤ ½) the 20-layer surface has fewer non-convex "
     "points", "'more non-convexities [...] from the shallower network'"),
    ("frobenius", "fraction_nonconvex", "check with the Eq. 3.3 normalization: the 20-layer surface has fewer "
     "non-convex points", "Eq. 3.3 is cited, not used ('for simplicity')"),
    ("frobenius", "excess_variation", "check with the Eq. 3.3 normalization: the 20-layer surface is smoother",
     "Eq. 3.3 is cited, not used ('for simplicity')"),
    ("average", "data_term_fraction_nonconvex", "diagnostic: the data term alone (cross-entropy at the re-solved "
     "classifier, regularizers excluded) has fewer non-convex points at 20 layers", "not separated in the thesis"),
    ("average", "data_term_excess_variation", "diagnostic: the data term alone is smoother at 20 layers",
     "not separated in the thesis"),
)
NAMES = {"average": "listing's average-normalized directions, 40 x 40 grid",
         "frobenius": "Eq. 3.3 (Frobenius) normalized directions, 20 x 20 grid"}


def statistic(norm: str, measure: str, quick: bool = False) -> str:
    where = "8 x 8 quick grid" if quick else NAMES[norm].split(", ")[1]
    surface = "VarPro objective surface"
    if measure.startswith("data_term_"):
        measure, surface = measure[len("data_term_"):], "data-term surface (no regularizers)"
    return f"20 − 8 layers, {measure} of the {surface} ({NAMES[norm].split(',')[0]}, {where})"


def claims(per_seed: dict, quick: bool = False) -> list[dict]:
    """The verdict records from the per-seed values."""
    records = []
    for norm, measure, claim, seed in CLAIMS:
        a, b = (per_seed[str(n)][norm][measure] for n in LAYERS)
        records.append(judge(claim, statistic(norm, measure, quick), [y - x for x, y in zip(a, b)], "smaller",
                             seed=seed))
    return records


# -- figures -------------------------------------------------------------------------------------
def _plot_surfaces(surfaces: dict, path: Path, seed: int) -> Path:
    plt = pyplot()
    from matplotlib.colors import LogNorm

    fig, axes = plt.subplots(3, 2, figsize=(11.5, 14.5), squeeze=False, layout="constrained")
    for row, (norm, field) in enumerate((("average", "objective"), ("frobenius", "objective"), ("average", "loss"))):
        lo = min(float(surfaces[n][norm]["surface"][field].min()) for n in LAYERS)
        hi = max(float(surfaces[n][norm]["surface"][field].max()) for n in LAYERS)
        levels = np.geomspace(lo, hi, 30)
        for col, layers in enumerate(LAYERS):
            ax = axes[row, col]
            s = surfaces[layers][norm]
            a = s["surface"]["alphas"].numpy()
            A, B = np.meshgrid(a, a, indexing="ij")
            phi = s["surface"][field].numpy()
            cs = ax.contourf(A, B, phi, levels=levels, norm=LogNorm(lo, hi), cmap="viridis")
            ax.contour(A, B, phi, levels=levels, colors="k", linewidths=0.3)
            ax.plot(0, 0, "r+", ms=10)
            ax.set_aspect("equal")
            ax.set_xlabel("α (direction δ)")
            ax.set_ylabel("β (direction η)")
            m = s["measures"] if field == "objective" else s["data_measures"]
            what = "Φ" if field == "objective" else "data term"
            ax.set_title(f"{layers} layers, {what}, {NAMES[norm].split(',')[0]}, {len(a)} x {len(a)} grid\n"
                         f"{what}(θ*) = {phi[s['centre'], s['centre']]:.3g}; "
                         f"non-convex {100 * m['fraction_nonconvex']:.0f}%, excess variation "
                         f"{m['excess_variation']:.3f}", fontsize=8.5)
        label = ("VarPro objective Φ" if field == "objective" else "data term: cross-entropy at (W*, μ*)")
        bar = fig.colorbar(cs, ax=axes[row].tolist(), label=f"{label} (log levels, shared per row)")
        ticks = np.geomspace(lo, hi, 6)
        bar.set_ticks(ticks)
        bar.set_ticklabels([f"{v:.3g}" for v in ticks])
        bar.minorticks_off()
    fig.suptitle(f"Seed 004 Figs 3.7-3.8, seed {seed}: Φ(θ* + αδ + βη), (W, μ) re-solved at every point, "
                 f"regularizers included (T = {T:g})", fontsize=10)
    return save_figure(fig, path, dpi=90)


def _plot_claims(per_seed: dict, records: list, path: Path) -> Path:
    plt = pyplot()
    fig, axes = plt.subplots(2, 4, figsize=(18, 8))
    for ax, (norm, measure, _, _), record in zip(axes.flat, CLAIMS, records):
        a, b = (per_seed[str(n)][norm][measure] for n in LAYERS)
        for k, (x, y) in enumerate(zip(a, b)):
            ax.plot([0, 1], [x, y], "o-", color="0.45", markersize=4, linewidth=0.8,
                    label="one seed (paired)" if k == 0 else None)
        ax.plot([0, 1], [np.mean(a), np.mean(b)], "s-", color="tab:red", lw=2, label="mean over seeds")
        ax.set_xticks([0, 1], [f"{n} layers" for n in LAYERS])
        ax.set_xlim(-0.3, 1.3)
        ax.set_ylabel(measure.replace("_", " "))
        ax.set_title(f"{measure.replace('_', ' ')} ({norm} directions)\n20 − 8: {record['mean']:.3g} ± "
                     f"{record['std']:.2g} (n = {record['n']}): {record['verdict']}", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle("Convexity and smoothness of the VarPro-objective surfaces, per seed (claim: 20 layers lower)",
                 fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return save_figure(fig, path, dpi=90)


# -- run -------------------------------------------------------------------------------------------
def run(out_dir: str | Path, quick: bool = False) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with one_thread():
        return _run(out_dir, quick)


def _run(out_dir: Path, quick: bool) -> dict:
    start = time.perf_counter()
    s = _settings(quick)
    seeds = list(range(s["seeds"]))
    per_seed: dict = {str(n): {**{k: [] for k in NETWORK_METRICS}, **{norm: {} for norm in NORMALIZATIONS}}
                      for n in LAYERS}
    for seed in seeds:
        numbers, surfaces = train_seed(seed, s)
        for n in LAYERS:
            for key, value in numbers[n].items():
                if key in NORMALIZATIONS:
                    for k, v in value.items():
                        per_seed[str(n)][key].setdefault(k, []).append(v)
                else:
                    per_seed[str(n)][key].append(value)
        if seed == seeds[0]:
            first = surfaces
    records = claims(per_seed, quick)
    figures = [_plot_surfaces(first, out_dir / "loss_landscape_surfaces.png", seeds[0]).name,
               _plot_claims(per_seed, records, out_dir / "loss_landscape_claims.png").name]
    summary = {str(n): {key: _thesis.mean_std(per_seed[str(n)][key]) for key in NETWORK_METRICS} for n in LAYERS}
    for n in LAYERS:
        for norm in NORMALIZATIONS:
            summary[str(n)][norm] = {k: _thesis.mean_std([float(x) for x in v])
                                     for k, v in per_seed[str(n)][norm].items()}
    surfaces_seed0 = {str(n): {norm: {"alphas": first[n][norm]["surface"]["alphas"].tolist(),
                                      "objective": first[n][norm]["surface"]["objective"].tolist(),
                                      "data_term": first[n][norm]["surface"]["loss"].tolist()}
                               for norm in NORMALIZATIONS} for n in LAYERS}
    results = {
        "experiment": "loss-landscape",
        "claims": records,
        "seeds": seeds,
        "networks": summary,
        "per_seed": per_seed,
        "surfaces_seed_0": surfaces_seed0,
        "settings": {"T": T, "width": WIDTH, "layers": list(LAYERS), "init_scale": _thesis.INIT_SCALE,
                     "alpha": ALPHA, "classifier_reg": CLASSIFIER_REG, "grid": list(GRID), "central": CENTRAL,
                     "grids": {norm: grid(s["grid_stride"][norm]) for norm in NORMALIZATIONS}, **s},
        "figures": figures,
        "quick": quick,
        "seconds": time.perf_counter() - start,
    }
    write_json(out_dir / "results.json", results)
    return results


__all__ = ["run", "build_network", "resample", "groups", "penalty", "directions", "grid", "claims"]
