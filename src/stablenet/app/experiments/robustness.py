"""Issue 18: do stable architectures keep more accuracy under perturbed inputs than a ResNet?

**The seed's setup.**  Seed 004 (../shared/seeds/004_d979323a5caccc30.txt) §1 and §2.3–2.4,
after Haber & Ruthotto ("Stable architectures for deep neural networks", Inverse Problems 2017,
§1): a network whose forward ODE is unstable lets small perturbations of the input change the
output without bound — "unstable autonomous vehicles could possibly miss a stop sign" — and
stable forward propagation (max Re λ(J) ≤ 0) is the remedy; seeds 002/003 sell antisymmetric,
Hamiltonian and parabolic networks on the same grounds.  No seed measures it (no number).

**Ours.**  Five architectures, each one linear opening → one ODE block with one control layer
per step → linear classifier: the plain ResNet (single layer σ(KY + b), forward Euler),
antisymmetric σ(½(K − Kᵀ − γI)Y + b) with γ = 0.01 under RK4 and under forward Euler,
Hamiltonian (two streams, Verlet) and parabolic −Kᵀσ(KY + b) (forward Euler); tanh throughout.
Two depths (numbers of layers = steps) with the same final time T.  **Matched parameter
counts**: the ResNet's width is fixed per problem; every other architecture's width (the
Hamiltonian's second stream width) is the one whose count of *free* parameters (an antisymmetric
K counts its n(n − 1)/2 free entries) is closest to the ResNet's at that depth
(:func:`matched_widths`, closed form, tested against the built networks); the results list the
counts, which agree within a few % (peaks: ResNet 7, antisymmetric 10, Hamiltonian 7/6,
parabolic 7).  **Clean accuracy**: every network is trained the same way (Adam, cosine
schedule, the same batches within a seed), not tuned per architecture; whether the clean
accuracies agree within one point is itself judged (a claim "within ±1 point" per architecture
and depth), so a robustness verdict can be read against it.  Each seed draws the data and the
initial weights; within a seed all architectures see the same data and batches.  Each trained
network is attacked on the first 40 test points of each class (200 points): Gaussian and uniform
noise, FGSM-L∞ and PGD in L∞ and L2 (20 steps, one random start) from
:mod:`stablenet.robustness` (ART), accuracy against ε (non-increasing by construction) and its
area (AUC, the mean accuracy over [0, ε_max]); a PGD step check (5× the steps) as a guard against
gradient masking; the empirical Lipschitz constant of input → logits (max over the points of
σ_max of the Jacobian, float64) and the certified bound of :func:`stablenet.robustness.lipschitz_bound`.
Adversarial training (PGD-L∞, the trainer's ``[training.adversarial]`` batch: ``app.adversarial``)
of the best and the worst architecture by mean PGD-L∞ AUC at the shallow depth, same seeds.

**Parts, units, resuming.**  The problems are parts (``peaks``; ``fashion-mnist``, dense; ``conv``,
a small Fashion-MNIST conv layout over 3 seeds, and ``conv-shipped``, the shipped 94% parabolic
conv network against a conv ResNet of the same layout, once each: :mod:`.robustness_conv`, trained
by the app's trainer, whose run directories under ``runs/`` make an interrupted long training
resume at its last epoch).  Every unit (problem, architecture, depth, seed[,
adversarial]) writes ``units/<name>.json`` atomically with a fingerprint of its problem's
settings; a rerun reuses every unit with the same fingerprint.  ``run(out_dir, quick)`` computes
the parts named in ``STABLENET_ROBUSTNESS_PARTS`` (comma-separated; default: all implemented)
and assembles ``results.json`` from every complete unit on disk; :func:`run_part` and ``python -m
stablenet.app.experiments.robustness --part peaks --out DIR`` run one part.  A claim is judged only
when its units are complete for at least 5 seeds (2 in ``--quick``); the others are listed under
``pending`` with the reason.  The conv parts (3 seeds, 1 run) cannot meet that rule and are never
judged: ``results.json["descriptive"]`` gives per architecture mean ± std and n of the clean
accuracy, the AUCs and the Lipschitz constants and the paired differences to the ResNet, each
labelled "described, not judged".  ``run(quick=True)`` runs peaks only (under a minute); the conv
parts' quick settings (tiny: 256 images, 1 epoch, 2 seeds) run with ``run_part(out, "conv",
quick=True)``.

**Cost of the conv parts** (measured on this 2-core machine, one thread, while another
study ran on the other core; extrapolated, not run).  Small layout, 10,000 images: one training
epoch took 9.4 s for parabolic-Euler and 45 s for antisymmetric-RK4.  A forward + backward pass
of 128 images costs, relative to parabolic-Euler (0.17 s): ResNet 0.95, antisymmetric-RK4 4.2,
antisymmetric-Euler 1.24, Hamiltonian-Verlet 1.14, i.e. 8.5 parabolic-Euler units for the five
networks.  Measuring one parabolic-Euler unit (200 images) took about 200 s: noise 1.4 s, FGSM
4.7 s, PGD-L∞ 24 s, PGD-L2 17 s, AutoAttack-L∞ 195 s at 5 sizes (so about 117 s at the 3 sizes
used), step check and Lipschitz constant about 38 s.  So one seed costs about 10 · 9.4 · 8.5 ≈ 800 s
of training plus 200 · 8.5 ≈ 1,700 s of attacks, about 43 min, and the ``conv`` part (3 seeds,
15 units) about 2.1 h; the longest training (antisymmetric-RK4) about 7.5 min, within issue 18's
10 minutes.  ``conv-shipped``: a batch costs 2.6× (parabolic) and 1.8× (ResNet) the small
parabolic's, so 22 epochs of 430 batches take about 73 and 50 min and the attacks about 9 and
6 min: about 2.3 h.  Both conv parts: about 4.4 h on one core (2.2 h with the two parts on two
cores), more than issue 18's 3 hours for the whole experiment; AutoAttack is half the attack
time (fewer sizes or images, or its default being skipped, are the knobs).)

**Deviations and why.**  (1) Widths 7/10/7/7 on peaks instead of the seeds' 8: with width 7 the
free parameter counts of the four dynamics can be matched within 3%.  (2) 500 training points per
class, Adam instead of the thesis' Gauss–Newton: the comparison needs 50 + 10 trainings in the
budget, and one optimizer for all.  (3) Adversarial training at the shallow depth only (PGD-5 in
training, ε = 0.1), for cost.  (4) ``--quick``: peaks, 60 points per class, one depth (4), 2
seeds, FGSM-L∞ and PGD-L∞ (5 steps) at 3 sizes; its verdicts may be inconclusive.

**Claims and the rule.**  Fixed before the run; per seed paired differences, judged by the shared
rule (`verdict.judge`: supported if mean − 2·SE > 0, refuted if mean + 2·SE < 0, else
inconclusive): for each stable architecture, depth and attack family (Gaussian noise, FGSM-L∞,
PGD-L∞) "AUC(stable) − AUC(ResNet) > 0" (percentage points); for each stable architecture and
attack family "the gap grows with depth": (gap at the deep − gap at the shallow depth) > 0;
clean accuracy difference within ±1 point (the precondition); adversarial training raises the
PGD-L∞ AUC of the best and of the worst architecture.  Deterministic check (`verdict.check`): the
certified bound is ≥ the empirical Lipschitz constant on every unit where it exists (the
relative shortfall max(0, empirical − bound)/empirical, target 0, tolerance 1e-9).
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path


from ..io import write_json
from . import robustness_conv as conv
from . import robustness_study as study
from .robustness_plots import plot_problem
from .verdict import check, judge
from ._train import one_thread

SUMMARY = ("issue 18: accuracy under noise / FGSM / PGD and Lipschitz constants of ResNet vs antisymmetric, "
           "Hamiltonian and parabolic networks (matched size, two depths, seeds, adversarial training)")

ARCHS = tuple(study.ARCHITECTURES)
STABLE = ARCHS[1:]
JUDGED_ATTACKS = ("gaussian", "fgsm-linf", "pgd-linf")
MIN_SEEDS = 5
CLEAN_MARGIN = 1.0
SEED_QUOTE = "§1: an unstable forward ODE lets small input perturbations change the output without bound (no number)"
ENV_PARTS = "STABLENET_ROBUSTNESS_PARTS"
ATTACK_SETTINGS = {
    "gaussian": {"method": "gaussian", "norm": None},
    "uniform": {"method": "uniform", "norm": None},
    "fgsm-linf": {"method": "fgsm", "norm": "linf"},
    "pgd-linf": {"method": "pgd", "norm": "linf", "steps": 20, "restarts": 1},
    "pgd-l2": {"method": "pgd", "norm": "l2", "steps": 20, "restarts": 1},
}
#: parts listed but not implemented yet (results.json "pending")
NOT_IMPLEMENTED: dict = {}
#: the convolutional parts (robustness_conv.py): described, not judged (3 seeds / 1 run < MIN_SEEDS)
CONV_PARTS = ("conv", "conv-shipped")
#: what ``run(quick=True)`` computes without STABLENET_ROBUSTNESS_PARTS (the conv parts' quick
#: settings are run on their own: ``run_part(out, "conv", quick=True)``)
QUICK_DEFAULT_PARTS = ("peaks",)


def count(dynamics: str, w, *, in_features: int, n_classes: int, depth: int) -> int:
    """Free parameters of opening (in·w + w) + block (depth control layers) + classifier (closed form)."""
    wy = w[0] if isinstance(w, tuple) else w
    layer = {"single": wy * wy + wy, "parabolic": wy * wy + wy, "antisymmetric": wy * (wy - 1) // 2 + wy,
             "hamiltonian": (wy * w[1] + wy + w[1]) if isinstance(w, tuple) else 0}[dynamics]
    return in_features * wy + wy + depth * layer + n_classes * wy + n_classes


def matched_widths(resnet_width: int, *, in_features: int, n_classes: int, depth: int) -> dict:
    """Per architecture, the width whose free parameter count is closest to the ResNet's."""
    kw = {"in_features": in_features, "n_classes": n_classes, "depth": depth}
    target = count("single", resnet_width, **kw)
    out = {}
    for arch, spec in study.ARCHITECTURES.items():
        dyn = spec["dynamics"]
        if dyn == "hamiltonian":
            cands = [(resnet_width, wz) for wz in range(1, 4 * resnet_width)]
        else:
            cands = list(range(1, 4 * resnet_width))
        out[arch] = min(cands, key=lambda w: abs(count(dyn, w, **kw) - target))
    return out


def problems(quick: bool) -> dict:
    """The settings of every implemented part (they are the units' fingerprints)."""
    attacks = ("fgsm-linf", "pgd-linf") if quick else ("gaussian", "uniform", "fgsm-linf", "pgd-linf", "pgd-l2")
    settings = {k: dict(v) for k, v in ATTACK_SETTINGS.items() if k in attacks}
    if quick:
        settings["pgd-linf"]["steps"] = 5
        peaks = {"data_options": {"n_train_per_class": 60, "n_val_per_class": 20, "n_test_per_class": 20},
                 "depths": [4], "seeds": 2, "resnet_width": 7, "T": 5.0,
                 "training": {"epochs": {"4": 30}, "batch_size": 100, "lr": 0.01},
                 "eps": [0.0, 0.1, 0.3], "eval_per_class": 10, "step_check": None,
                 "adversarial": {"eps": 0.1, "steps": 3, "fraction": 0.5, "epochs": 10}}
        return {"peaks": _problem("peaks", "peaks", peaks, attacks, settings, 2),
                **conv.problems(True, ATTACK_SETTINGS)}
    peaks = {"data_options": {"n_train_per_class": 500, "n_val_per_class": 100, "n_test_per_class": 40},
             "depths": [8, 64], "seeds": 5, "resnet_width": 7, "T": 5.0,
             "training": {"epochs": {"8": 100, "64": 60}, "batch_size": 100, "lr": 0.01},
             "eps": [0.0, 0.03, 0.06, 0.12, 0.3, 0.6], "eval_per_class": 40,
             "step_check": {"attack": "pgd-linf", "eps": 0.12, "factor": 5},
             "adversarial": {"eps": 0.1, "steps": 5, "fraction": 0.5}}
    fashion = {"data_options": {"n_train": 10000, "n_val": 2000}, "depths": [8, 64], "seeds": 5, "resnet_width": 32,
               "T": 1.0, "training": {"epochs": {"8": 20, "64": 10}, "batch_size": 128, "lr": 0.001},
               "eps": [0.0, 0.005, 0.01, 0.02, 0.05, 0.1], "eval_per_class": 20,
               "step_check": {"attack": "pgd-linf", "eps": 0.02, "factor": 5},
               "adversarial": {"eps": 0.02, "steps": 5, "fraction": 0.5}}
    return {"peaks": _problem("peaks", "peaks", peaks, attacks, settings, 2),
            "fashion-mnist": _problem("fashion-mnist", "fashion_mnist", fashion, attacks, settings, 784, 10),
            **conv.problems(False, ATTACK_SETTINGS)}


def _is_conv(problem: dict) -> bool:
    return problem.get("kind") in ("conv", "conv-shipped")


def _problem(name, dataset, p, attacks, settings, in_features, n_classes=5) -> dict:
    widths = {str(d): matched_widths(p["resnet_width"], in_features=in_features, n_classes=n_classes, depth=d)
              for d in p["depths"]}
    return {"name": name, "dataset": dataset, **p, "attacks": list(attacks), "attack_settings": settings,
            "widths_by_depth": widths, "in_features": in_features, "n_classes": n_classes}


def _for_depth(problem: dict, depth: int) -> dict:
    return {**problem, "widths": {a: (tuple(w) if isinstance(w, (list, tuple)) else w)
                                  for a, w in problem["widths_by_depth"][str(depth)].items()}}


def _units(units_dir: Path, problem: dict, *, compute: bool, only: str | None = None) -> dict:
    """{(arch, depth, seed, adversarial): unit} of the part: plain units first (shallow depth, deep),
    then adversarial training of the best and worst architecture once the shallow depth is complete.
    Conv parts: every architecture per seed (robustness_conv.units), no adversarial units."""
    if _is_conv(problem):
        return conv.units(units_dir, problem, compute=compute and only != "adversarial")
    found = {}
    if only != "adversarial":
        for depth in problem["depths"]:
            pd = _for_depth(problem, depth)
            for seed in range(problem["seeds"]):
                for arch in ARCHS:
                    u = study.unit(units_dir, pd, arch, depth, seed, False, compute=compute)
                    if u is not None:
                        found[(arch, depth, seed, False)] = u
    else:
        found = _units(units_dir, problem, compute=False)
    depth = problem["depths"][0]
    ranking = _ranking(found, problem)
    if ranking is not None:
        pd = _for_depth(problem, depth)
        adv = problem["adversarial"]
        pd["training"] = {**pd["training"], "epochs": {**pd["training"]["epochs"],
                                                       str(depth): adv.get("epochs", pd["training"]["epochs"][str(depth)])}}
        for seed in range(problem["seeds"]):
            for arch in (ranking[0], ranking[-1]):
                u = study.unit(units_dir, pd, arch, depth, seed, True, compute=compute)
                if u is not None:
                    found[(arch, depth, seed, True)] = u
    return found


def _ranking(found: dict, problem: dict) -> list[str] | None:
    """Architectures from best to worst by mean PGD-L∞ (else the last attack's) AUC at the shallow
    depth, once that depth is complete for every seed; None before."""
    depth, n = problem["depths"][0], problem["seeds"]
    attack = "pgd-linf" if "pgd-linf" in problem["attacks"] else problem["attacks"][-1]
    if not all((a, depth, s, False) in found for a in ARCHS for s in range(n)):
        return None
    mean = {a: sum(found[(a, depth, s, False)]["curves"][attack]["auc"] for s in range(n)) / n for a in ARCHS}
    return sorted(ARCHS, key=lambda a: (-mean[a], ARCHS.index(a)))


def _paired(found, a, b, key):
    """Seeds where both units exist, and key(unit_a) − key(unit_b) per seed."""
    seeds = sorted(s for (arch, d, s, adv) in found if (arch, d, adv) == a and (b[0], b[1], s, b[2]) in found)
    return seeds, [key(found[(a[0], a[1], s, a[2])]) - key(found[(b[0], b[1], s, b[2])]) for s in seeds]


def _judge(claims, pending, minimum, claim, statistic, values, direction, **kw):
    if len(values) < minimum:
        pending.append(f"claim not judged, {len(values)} of {minimum} seeds complete: {claim}")
        return
    claims.append(judge(claim, statistic, values, direction, seed=kw.pop("seed", SEED_QUOTE), **kw))


def assess(problem: dict, found: dict, minimum: int) -> tuple[list, list, dict]:
    """(claims, pending, per_seed) of one part from its units."""
    p, claims, pending, per_seed = problem["name"], [], [], {}
    auc = lambda attack: lambda u: 100 * u["curves"][attack]["auc"]  # noqa: E731
    for depth in problem["depths"]:
        per_seed[str(depth)] = {}
        for arch in ARCHS:
            us = [found[k] for k in sorted(found) if k[:2] == (arch, depth) and not k[3]]
            per_seed[str(depth)][arch] = {
                "seeds": [u["seed"] for u in us], "width": problem["widths_by_depth"][str(depth)][arch],
                "free_parameters": us[0]["free_parameters"] if us else None,
                "clean_accuracy": [u["clean_accuracy"] for u in us], "val_accuracy": [u["val_accuracy"] for u in us],
                "auc": {a: [u["curves"][a]["auc"] for u in us] for a in problem["attacks"]},
                "curves": {a: [u["curves"][a]["accuracy"] for u in us] for a in problem["attacks"]},
                "lipschitz_empirical": [u["lipschitz_empirical"] for u in us],
                "lipschitz_certified": [u["lipschitz_certified"] for u in us],
                "step_check_gap": [u["step_check"]["gap"] for u in us if "step_check" in u],
                "diverged": [u["diverged"] for u in us],
                "seconds": [u["seconds"] for u in us], "cpu_seconds": [u["cpu_seconds"] for u in us]}
        for arch in STABLE:
            _, d = _paired(found, (arch, depth, False), ("resnet", depth, False), lambda u: 100 * u["clean_accuracy"])
            _judge(claims, pending, minimum, f"{p}, {depth} layers: {arch} and the ResNet are equally accurate on clean "
                   f"inputs (within ±{CLEAN_MARGIN:g} point)", f"{arch} − ResNet, clean accuracy (points)", d, "within",
                   margin=CLEAN_MARGIN, seed="issue 18's precondition: clean accuracies within about one point")
            for attack in JUDGED_ATTACKS:
                if attack in problem["attacks"]:
                    _, d = _paired(found, (arch, depth, False), ("resnet", depth, False), auc(attack))
                    _judge(claims, pending, minimum, f"{p}, {depth} layers: the {arch} network keeps more accuracy "
                           f"under {attack} than the ResNet", f"AUC({arch}) − AUC(ResNet), {attack} (points)", d,
                           "greater")
    if len(problem["depths"]) == 2:
        lo, hi = problem["depths"]
        for arch in STABLE:
            for attack in (a for a in JUDGED_ATTACKS if a in problem["attacks"]):
                gaps = {}
                for depth in (lo, hi):
                    seeds, d = _paired(found, (arch, depth, False), ("resnet", depth, False), auc(attack))
                    gaps[depth] = dict(zip(seeds, d))
                both = sorted(set(gaps[lo]) & set(gaps[hi]))
                _judge(claims, pending, minimum, f"{p}: the {arch} network's {attack} advantage over the ResNet grows "
                       f"with depth ({lo} → {hi} layers)", f"gap at {hi} − gap at {lo} layers, AUC points, {attack}",
                       [gaps[hi][s] - gaps[lo][s] for s in both], "greater")
    adv = sorted({k[0] for k in found if k[3]}, key=ARCHS.index)
    depth = problem["depths"][0]
    attack = "pgd-linf" if "pgd-linf" in problem["attacks"] else problem["attacks"][-1]
    per_seed["adversarial"] = {}
    for arch in adv:
        seeds, d = _paired(found, (arch, depth, True), (arch, depth, False), auc(attack))
        us = [found[(arch, depth, s, True)] for s in seeds]
        per_seed["adversarial"][arch] = {"seeds": seeds, "auc_gain_points": d,
                                         "clean_accuracy": [u["clean_accuracy"] for u in us],
                                         "auc": {a: [u["curves"][a]["auc"] for u in us] for a in problem["attacks"]},
                                         "lipschitz_empirical": [u["lipschitz_empirical"] for u in us]}
        _judge(claims, pending, minimum, f"{p}, {depth} layers: adversarial training (PGD-L∞, ε = "
               f"{problem['adversarial']['eps']:g}) raises the {arch} network's {attack} AUC",
               f"AUC(adversarially trained) − AUC(plain), {attack} (points)", d, "greater",
               seed="Goodfellow et al. 2015, Madry et al. 2018 (not in the seeds)")
    if not adv:
        pending.append(f"{p}: adversarial training waits for the {depth}-layer units of every seed")
    short = [max(0.0, u["lipschitz_empirical"] - u["lipschitz_certified"]) / u["lipschitz_empirical"]
             for u in found.values() if u["lipschitz_certified"] is not None and u["lipschitz_empirical"]]
    if short and len({k[2] for k in found}) >= minimum:
        claims.append(check(f"{p}: the certified Lipschitz bound is >= the empirical Lipschitz constant "
                            f"({len(short)} of {len(found)} networks have a bound)",
                            "max(0, empirical − certified) / empirical per network", short, target=0.0, tolerance=1e-9,
                            seed="issue 18: the bound tested against the empirical value"))
    return claims, pending, per_seed


def _expected_units(problem: dict) -> int:
    if _is_conv(problem):
        return conv.expected_units(problem)
    return len(problem["depths"]) * problem["seeds"] * len(ARCHS) + 2 * problem["seeds"]


def assemble(out_dir: Path, quick: bool, started: float) -> dict:
    """results.json from every complete unit on disk (nothing is trained here)."""
    units_dir = out_dir / "units"
    minimum = 2 if quick else MIN_SEEDS
    results = {"quick": quick, "settings": {}, "seeds": {}, "parts": {}, "per_seed": {}, "claims": [],
               "pending": [], "descriptive": [], "figures": []}
    for name, problem in problems(quick).items():
        found = _units(units_dir, problem, compute=False)
        results["settings"][name] = problem
        if not found:
            results["pending"].append(f"part {name}: not run (0 of {_expected_units(problem)} units)")
            continue
        if _is_conv(problem):
            descriptive, per_seed = conv.describe(problem, found, minimum)
            results["descriptive"] += descriptive
        else:
            claims, pending, per_seed = assess(problem, found, minimum)
            results["claims"] += claims
            results["pending"] += pending
        results["per_seed"][name] = per_seed
        results["seeds"][name] = sorted({k[2] for k in found})
        us = list(found.values())
        results["parts"][name] = {"units": len(us), "units_expected": _expected_units(problem),
                                  "cpu_seconds": sum(u["cpu_seconds"] for u in us),
                                  "unit_wall_seconds": sum(u["seconds"] for u in us)}
        if len(us) < _expected_units(problem):
            results["pending"].append(f"part {name}: {len(us)} of {_expected_units(problem)} units complete")
        results["figures"] += plot_problem(out_dir, problem, per_seed, problem.get("archs", ARCHS))
    results["pending"] += [f"part {k}: {v}" for k, v in NOT_IMPLEMENTED.items()]
    results["seconds"] = time.perf_counter() - started
    write_json(out_dir / "results.json", results)
    return results


def selected_parts(quick: bool) -> list[str]:
    names = list(problems(quick))
    env = os.environ.get(ENV_PARTS)
    if not env:
        return list(QUICK_DEFAULT_PARTS) if quick else names
    chosen = [p.strip() for p in env.split(",") if p.strip()]
    unknown = [p for p in chosen if p not in names]
    if unknown:
        raise ValueError(f"{ENV_PARTS}: unknown part(s) {unknown}; parts: {names}")
    return chosen


def run_part(out_dir: str | Path, problem: str = "peaks", quick: bool = False, only: str | None = None) -> dict:
    """Compute the missing units of one part (``only="adversarial"``: just its adversarial units),
    then assemble results.json from everything on disk.  One torch thread, restored after."""
    out_dir, started = Path(out_dir), time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = problems(quick)
    if problem not in parts:
        raise ValueError(f"unknown part {problem!r}; parts: {list(parts)}")
    with one_thread():
        _units(out_dir / "units", parts[problem], compute=True, only=only)
        return assemble(out_dir, quick, started)


def run(out_dir: str | Path, quick: bool = False) -> dict:
    out_dir, started = Path(out_dir), time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    with one_thread():
        parts = problems(quick)
        for name in selected_parts(quick):
            _units(out_dir / "units", parts[name], compute=True)
        return assemble(out_dir, quick, started)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stablenet.app.experiments.robustness",
                                     description="run (or resume) one part of the robustness experiment")
    parser.add_argument("--part", default="peaks")
    parser.add_argument("--out", required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["adversarial"], default=None)
    args = parser.parse_args(argv)
    results = run_part(args.out, args.part, quick=args.quick, only=args.only)
    for c in results["claims"]:
        print(f"{c['verdict']:>12}  {c['claim']}  [{c['mean']:.3g} ± {c['std']:.2g}, n = {c['n']}]")
    for d in results["descriptive"]:
        auc = d["auc_points"].get("pgd-linf") or next(iter(d["auc_points"].values()), {})
        print(f"{'described':>12}  {d['part']}, {d['architecture']}: clean {_ms(d['clean_accuracy_points'])}, "
              f"PGD-L∞ AUC {_ms(auc)} points (n = {d['clean_accuracy_points']['n']}; not judged)")
    for line in results["pending"]:
        print("pending:", line)
    return 0 if math.isfinite(results["seconds"]) else 1


def _ms(s: dict) -> str:
    if not s or s.get("mean") is None:
        return "n/a"
    return f"{s['mean']:.3g}" + (f" ± {s['std']:.2g}" if s.get("std") is not None else "")


if __name__ == "__main__":
    raise SystemExit(main())
