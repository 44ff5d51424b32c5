r"""Seeds 000/001, "Why you should care about stability" 1 and 2: the objective over (θ1, θ2).

**The seed's setup**, from seed 001 (../shared/seeds/001_44a1c1c7a85f7331.txt, the LaTeX source
of the slides, frames "Why you should care about stability - 1" and "- 2"; seed 000 is their
rendered text), verbatim:

    \min_\theta \hf \|\bfY_N(\theta) - \bfC\|_F^2 \quad \quad
    \bfY_{j+1}(\theta) = \bfY_j(\theta) + \frac{10}{N} \tanh \left( \bfK \bfY_j(\theta) \right)
    where $\bfC = \bfY_{200}(1,1)$, $\bfY_0 \sim \mathcal{N}(0,1)$, and
    \bfK(\theta) = \begin{pmatrix} -\theta_1-\theta_2 & \theta_1 & \theta_2 \\
    \theta_2 & -\theta_1-\theta_2 & \theta_1 \\
    \theta_1 & \theta_2 & -\theta_1-\theta_2 \end{pmatrix}

i.e. a width-3 ResNet with one weight matrix K(θ) shared by all N layers, h = T/N with T = 10,
tanh, no bias (forward Euler of dY/dt = tanh(K(θ)Y)); the "data" C are the outputs of the
N = 200 network at the reference θ = (1, 1) for the same inputs; the objective is
Φ(θ) = ½‖Y_N(θ) − C‖_F² on θ ∈ [0.2, 2]², shown for N = 5 ("unstable") and N = 100
("stable"), with training inputs, with independent test inputs (and their own C), and
|train − test| (slide 2, "compare different inputs ~ generalization").

What the slides do not state and is taken from the course's script
(IPAIopen/NumDL-MATLAB, resnet/examples/EResNet_Stability.m): 20 input samples (nex = 20) for
train and 20 for test, a 101 × 101 grid of θ (nth = 101), the red dot at the reference θ = (1, 1).
That script draws the inputs as 0.1·randn, whereas the slide says Y_0 ~ N(0, 1); the slide is
followed here and the 0.1-scaled inputs are run as a variant (``variant_input_std_0.1``).

Why N = 5 is "unstable": K(θ) is circulant with eigenvalues 0 and
−(3/2)(θ1 + θ2) ± i(√3/2)(θ1 − θ2); tanh'(0) = 1, so near Y = 0 a layer is stable iff
|1 + hλ| ≤ 1 for these λ.  With h = 2 (N = 5) that holds only near θ1 + θ2 ≲ 2/3; with h = 0.1
(N = 100) on the whole square.  Each row of K sums to zero, so the continuous flow keeps the mean
of the three features and contracts the rest: C ≈ the feature mean of Y_0 at every θ on the grid.

**Ours**: exactly that, in float64, Y_0 drawn with torch's generator seed 0, on a 101 × 101 grid
(46 × 46 in `--quick`).  **Deviations**: none in the setup; nex, nth and the reference dot come
from the course script (above), and the seed gives no numbers, so each reading of the slides is
turned into a statistic.

**Claims and the rule** (`verdict.check`: supported if every value is within the tolerance of
the target).  A one-sided claim "x > a" (or "< a") about a quantity with a priori bounds [lo, hi]
is the interval [a, hi] (or [lo, a]): target its midpoint, tolerance its half-width (a tie would
count as supported; the values show the margin).  A comparison "A larger than B" of nonnegative
numbers is the ratio B/A in [0, 1].  The records: the |train − test| gap (mean and max over the
grid, and the mean with the script's 0.1·N(0, 1) inputs) larger at N = 5 than at N = 100; the
fraction of the grid where N = 5 is linearly unstable in [1/2, 1], that for N = 100 exactly 0;
the N = 100 minimizer within 0.1 of the reference θ = (1, 1), the N = 5 one more than 0.5 from it
(near the small corner θ1 + θ2 ≲ 2/3 where h = 2 is stable); N = 5 rough (more than 10 grid-local
minima, the jagged contours of the slide), N = 100 a single minimum.  None of these has an
analytic value to compare with (the fractions are counts of the closed form |1 + hλ|, exact).
Recorded as well, with no claim in the slides: the gap *relative* to the mean objective, which
does not favour N = 100 (the N = 100 objective is tiny everywhere, so its small absolute gap is a
large fraction of it), and the train and test minimisers, which are close for both N.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from ... import integrate
from ..io import pyplot, save_figure, write_json
from .verdict import check

SUMMARY = "seeds 000/001: objective over (theta1, theta2), N = 5 vs N = 100 layers, train vs test inputs"

T = 10.0
N_DATA = 200
LAYERS = (5, 100)
THETA_REF = (1.0, 1.0)
THETA_RANGE = (0.2, 2.0)
N_SAMPLES = 20
INPUT_STD = 1.0
VARIANT_INPUT_STD = 0.1
GRID = 101
QUICK_GRID = 46  # step 0.04: θ = 1 is a grid point
NEAR = 0.1        # "near the reference": within 0.1 of θ = (1, 1) (1/18 of the θ range)
FAR = 0.5         # "far from it": more than 0.5 away
ROUGH = 10        # "rough": more than 10 grid-local minima


def kernel(theta1: torch.Tensor, theta2: torch.Tensor) -> torch.Tensor:
    """K(θ) of seed 001, shape (..., 3, 3), for θ1, θ2 tensors of equal shape."""
    d = -(theta1 + theta2)
    return torch.stack([torch.stack([d, theta1, theta2], -1),
                        torch.stack([theta2, d, theta1], -1),
                        torch.stack([theta1, theta2, d], -1)], -2)


def forward(K: torch.Tensor, Y0: torch.Tensor, layers: int) -> torch.Tensor:
    """Y_N of Y_{j+1} = Y_j + (T/N) tanh(K Y_j): forward Euler on dY/dt = tanh(KY).

    Rows of Y0 (..., samples, 3) are the examples (batch-first), so K Y is y @ Kᵀ; K (..., 3, 3)
    broadcasts over the leading dimensions (one K per θ of the grid).
    """
    Kt = K.transpose(-1, -2)
    return integrate(lambda t, y: torch.tanh(y @ Kt), Y0, T=T, steps=layers, method="euler")


def euler_amplification(theta1: torch.Tensor, theta2: torch.Tensor, h: float) -> torch.Tensor:
    """|1 + hλ| for the nonzero eigenvalue pair λ = −(3/2)(θ1 + θ2) ± i(√3/2)(θ1 − θ2) of K(θ).

    The linearisation of a layer at Y = 0 (tanh'(0) = 1); the third eigenvalue, 0 (eigenvector
    (1, 1, 1)), gives |1 + h·0| = 1 for every h and is left out.  A layer is linearly stable where
    this is ≤ 1.
    """
    lam = torch.complex(-1.5 * (theta1 + theta2), 0.5 * math.sqrt(3.0) * (theta1 - theta2))
    return (1 + h * lam).abs()


def landscapes(theta: torch.Tensor, input_std: float, seed: int = 0) -> dict:
    """Train and test objectives Φ(θ1_a, θ2_b) on the grid theta × theta for every N in LAYERS.

    Returns {N: (train, test)}, each (len(theta), len(theta)) with index [a, b] ↔ (θ1_a, θ2_b),
    and the inputs and data.
    """
    g = torch.Generator().manual_seed(seed)
    Y_train = input_std * torch.randn(N_SAMPLES, 3, generator=g, dtype=torch.float64)
    Y_test = input_std * torch.randn(N_SAMPLES, 3, generator=g, dtype=torch.float64)
    Y0 = torch.cat([Y_train, Y_test])                       # (2S, 3)
    ref = torch.tensor(THETA_REF, dtype=torch.float64)
    C = forward(kernel(ref[0], ref[1]), Y0, N_DATA)          # data: N = 200 at θ = (1, 1)

    t1, t2 = torch.meshgrid(theta, theta, indexing="ij")
    K = kernel(t1.reshape(-1), t2.reshape(-1))               # (G, 3, 3)
    out = {}
    for layers in LAYERS:
        YN = forward(K, Y0.expand(K.shape[0], -1, -1), layers)   # (G, 2S, 3)
        sq = ((YN - C) ** 2).sum(-1)                          # (G, 2S)
        train = 0.5 * sq[:, :N_SAMPLES].sum(-1).reshape(t1.shape)
        test = 0.5 * sq[:, N_SAMPLES:].sum(-1).reshape(t1.shape)
        at_ref = forward(kernel(ref[0], ref[1]), Y0, layers)
        ref_sq = ((at_ref - C) ** 2).sum(-1)
        out[layers] = {"train": train, "test": test,
                       "train_at_reference": 0.5 * float(ref_sq[:N_SAMPLES].sum()),
                       "test_at_reference": 0.5 * float(ref_sq[N_SAMPLES:].sum())}
    return out


def _argmin(phi: torch.Tensor, theta: torch.Tensor) -> list[float]:
    a, b = divmod(int(phi.argmin()), phi.shape[1])
    return [float(theta[a]), float(theta[b])]


def _local_minima(phi: torch.Tensor) -> int:
    """Strict local minima of the grid function over the 8 neighbours (interior points)."""
    c = phi[1:-1, 1:-1]
    is_min = torch.ones_like(c, dtype=torch.bool)
    n0, n1 = phi.shape
    for da in (-1, 0, 1):
        for db in (-1, 0, 1):
            if da or db:
                is_min &= c < phi[1 + da:n0 - 1 + da, 1 + db:n1 - 1 + db]
    return int(is_min.sum())


def summarize(land: dict, theta: torch.Tensor) -> dict:
    out = {}
    t1, t2 = torch.meshgrid(theta, theta, indexing="ij")
    for layers, L in land.items():
        train, test = L["train"], L["test"]
        gap = (train - test).abs()
        amp = euler_amplification(t1, t2, T / layers)
        m_train, m_test = _argmin(train, theta), _argmin(test, theta)
        out[str(layers)] = {
            "h": T / layers,
            "gap_mean": float(gap.mean()),
            "gap_max": float(gap.max()),
            "gap_median": float(gap.median()),
            "train_mean": float(train.mean()),
            "test_mean": float(test.mean()),
            "train_max": float(train.max()),
            "relative_gap": float(gap.mean() / (0.5 * (train + test)).mean()),
            "train_min": float(train.min()),
            "test_min": float(test.min()),
            "train_argmin": m_train,
            "test_argmin": m_test,
            "train_argmin_distance_to_reference": math.dist(m_train, THETA_REF),
            "train_test_argmin_distance": math.dist(m_train, m_test),
            "test_at_train_argmin": float(test.reshape(-1)[int(train.argmin())]),
            "train_at_reference": L["train_at_reference"],
            "test_at_reference": L["test_at_reference"],
            "local_minima_train": _local_minima(train),
            "local_minima_test": _local_minima(test),
            "max_euler_amplification": float(amp.max()),
            "fraction_linearly_unstable": float((amp > 1).double().mean()),
        }
    return out


def _plot(land: dict, theta: torch.Tensor, stats: dict, path: Path, title: str) -> None:
    plt = pyplot()

    th = theta.numpy()
    t1, t2 = torch.meshgrid(theta, theta, indexing="ij")
    fig, axes = plt.subplots(2, 3, figsize=(13, 8.4))
    for row, (layers, label) in enumerate(((5, "unstable"), (100, "stable"))):
        L = land[layers]
        s = stats[str(layers)]
        lo = float(torch.minimum(L["train"].min(), L["test"].min()))
        hi = float(torch.maximum(L["train"].max(), L["test"].max()))
        levels = torch.linspace(lo, hi, 80).numpy()   # linear levels, like the course's contour(..., 100)
        amp = euler_amplification(t1, t2, T / layers)
        for col, key in enumerate(("train", "test")):
            ax = axes[row, col]
            # index [a, b] <-> (theta1_a, theta2_b): theta1 on the x axis needs the transpose
            cs = ax.contour(th, th, L[key].T.numpy(), levels=levels, cmap="viridis", linewidths=0.8)
            if bool((amp > 1).any()) and bool((amp <= 1).any()):
                ax.contour(th, th, amp.T.numpy(), levels=[1.0], colors="k", linewidths=1.2, linestyles="--")
            ax.plot(*THETA_REF, "o", color="r", ms=7)
            m = s[f"{key}_argmin"]
            ax.plot(m[0], m[1], "x", color="k", ms=8, mew=2)
            ax.set_title(f"objective, Y0 {key}, N = {layers} (h = {T / layers:g}, {label})", fontsize=8)
            ax.set_aspect("equal")
            fig.colorbar(cs, ax=ax, format="%.3g", shrink=0.8)
        ax = axes[row, 2]
        gap = (L["train"] - L["test"]).abs()
        im = ax.imshow(gap.T.numpy(), origin="lower", extent=(th[0], th[-1], th[0], th[-1]), cmap="magma",
                       aspect="equal")
        ax.plot(*THETA_REF, "o", color="c", ms=6)
        ax.set_title(f"|train - test|, N = {layers}: mean {s['gap_mean']:.3g}, max {s['gap_max']:.3g}", fontsize=8)
        fig.colorbar(im, ax=ax, format="%.3g", shrink=0.8)
    for ax in axes.flat:
        ax.set_xlabel("theta1")
        ax.set_ylabel("theta2")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)


def run(out_dir: str | Path, quick: bool = False) -> dict:
    out_dir = Path(out_dir)
    n = QUICK_GRID if quick else GRID
    theta = torch.linspace(*THETA_RANGE, n, dtype=torch.float64)

    land = landscapes(theta, INPUT_STD)
    stats = summarize(land, theta)
    variant = summarize(landscapes(theta, VARIANT_INPUT_STD), theta)

    figure = "objective_landscape.png"
    _plot(land, theta, stats, out_dir / figure,
          "Seeds 000/001: objective 0.5 ||Y_N(theta) - Y_200(1,1)||^2 with Y_{j+1} = Y_j + (10/N) tanh(K(theta) Y_j),\n"
          f"{N_SAMPLES} train and {N_SAMPLES} test inputs Y0 ~ N(0,1)\n"
          "red dot: reference theta = (1,1); x: grid minimum; dashed: |1 + h lambda(K)| = 1 (forward Euler linearly stable below-left of it)")

    s5, s100 = stats["5"], stats["100"]
    v5, v100 = variant["5"], variant["100"]
    records = claims(stats, variant, n)
    results = {
        "experiment": "objective-landscape",
        "claims": records,
        "setup": {"T": T, "layers": list(LAYERS), "data_layers": N_DATA, "theta_reference": list(THETA_REF),
                  "theta_range": list(THETA_RANGE), "grid": n, "samples": N_SAMPLES, "input_std": INPUT_STD,
                  "activation": "tanh", "bias": 0.0, "method": "euler", "dtype": "float64", "seed": 0},
        "gap_ratio_N5_over_N100": s5["gap_mean"] / s100["gap_mean"],
        "relative_gap_ratio_N5_over_N100": s5["relative_gap"] / s100["relative_gap"],
        "N": stats,
        "variant_input_std_0.1": {"N": variant, "gap_ratio_N5_over_N100": v5["gap_mean"] / v100["gap_mean"]},
        "figures": [figure],
        "quick": quick,
    }
    write_json(out_dir / "results.json", results)
    return results


def _interval(lo: float, hi: float) -> dict:
    """A one-sided claim as the interval [lo, hi] of the check rule: target the midpoint, tolerance
    the half-width."""
    return {"target": (lo + hi) / 2, "tolerance": (hi - lo) / 2}


def claims(stats: dict, variant: dict, n: int) -> list[dict]:
    """The verdict records (module docstring: statistics, targets, tolerances)."""
    s5, s100 = stats["5"], stats["100"]
    v5, v100 = variant["5"], variant["100"]
    far_end = math.dist(THETA_REF, (THETA_RANGE[1], THETA_RANGE[1]))   # farthest grid point from (1, 1)
    interior = (n - 2) ** 2                                             # most local minima possible
    return [
        check("slide 2: the train/test gap |Φ_train − Φ_test| is larger for N = 5 than for N = 100 (mean over θ)",
              "mean gap N = 100 / mean gap N = 5; claimed side < 1, ≥ 0 (interval [0, 1])",
              [s100["gap_mean"] / s5["gap_mean"]], **_interval(0.0, 1.0),
              seed="'compare different inputs ~ generalization' (no number)"),
        check("the same for the largest gap over θ",
              "max gap N = 100 / max gap N = 5 (interval [0, 1])",
              [s100["gap_max"] / s5["gap_max"]], **_interval(0.0, 1.0), seed="(no number)"),
        check("the same with the course script's inputs 0.1·N(0, 1)",
              "mean gap N = 100 / mean gap N = 5, inputs 0.1·N(0, 1) (interval [0, 1])",
              [v100["gap_mean"] / v5["gap_mean"]], **_interval(0.0, 1.0), seed="(no number)"),
        check("N = 5 ('unstable') is linearly unstable on most of the θ square",
              "fraction of the grid with |1 + hλ(K(θ))| > 1, h = 2; claimed side > 1/2 (interval [1/2, 1])",
              [s5["fraction_linearly_unstable"]], **_interval(0.5, 1.0), seed="'unstable' (slide title)"),
        check("N = 100 ('stable') is linearly stable on the whole θ square",
              "fraction of the grid with |1 + hλ(K(θ))| > 1, h = 0.1; target 0, exactly (a count)",
              [s100["fraction_linearly_unstable"]], target=0.0, tolerance=0.0, seed="'stable' (slide title)"),
        check("N = 100: the minimum of Φ lies near the reference θ = (1, 1) of the data",
              f"distance of the training grid minimizer from (1, 1); target 0 within {NEAR:g} (1/18 of the range)",
              [s100["train_argmin_distance_to_reference"]], target=0.0, tolerance=NEAR,
              seed="red dot at (1, 1) (no number)"),
        check("N = 5: the minimum of Φ is far from the reference (near the small corner where h = 2 is stable)",
              f"distance of the training grid minimizer from (1, 1); claimed side > {FAR:g}, "
              f"≤ {far_end:.3g} on the square (interval [{FAR:g}, {far_end:.3g}])",
              [s5["train_argmin_distance_to_reference"]], **_interval(FAR, far_end), seed="(no number)"),
        check("N = 5: the landscape is rough (the jagged contours of the slide)",
              f"strict grid-local minima of Φ_train, Φ_test; claimed side > {ROUGH}, ≤ (n − 2)² = {interior} "
              f"(interval [{ROUGH + 1}, {interior}])",
              [s5["local_minima_train"], s5["local_minima_test"]], **_interval(ROUGH + 1, interior),
              seed="jagged contours (no number)"),
        check("N = 100: the landscape has a single minimum",
              "strict grid-local minima of Φ_train, Φ_test; target 1, exactly (a count)",
              [s100["local_minima_train"], s100["local_minima_test"]], target=1.0, tolerance=0.0,
              seed="smooth contours (no number)"),
    ]
