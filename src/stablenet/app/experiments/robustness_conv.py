"""The convolutional parts of the robustness experiment (``robustness.py``): units, settings, summary.

Two parts, both Fashion-MNIST images, both trained by the app's trainer (``app.training.train``
with a configuration built here: the same optimizer, schedule, augmentation, batch-norm
calibration and checkpoints as ``stablenet train``), then attacked like the dense units:

* ``conv`` — a small layout (:data:`SMALL_LAYOUT`: widths 8-16-32 at the ResNet, one block per
  stage, T = 2, 2 steps, in-block batch normalization, ReLU; 10,000 training images, 10 epochs
  of the shipped conv recipe: SGD + Nesterov, one-cycle to lr 0.1, label smoothing 0.1, crop +
  flip) for the five architectures of the dense parts in their convolutional form: ResNet
  ``conv_single`` (forward Euler), ``conv_antisymmetric`` (γ = 0.01) under RK4 and forward
  Euler, ``conv_hamiltonian`` (Verlet), ``conv_parabolic`` (forward Euler); stage widths scaled
  per architecture so that the free parameters match the ResNet's (:func:`matched_widths`);
  3 seeds (issue 18).
* ``conv-shipped`` — ``configs/fashion-mnist-conv-parabolic.toml`` (the 94% network: widths
  16-32-64-128, 22 epochs) against the conv ResNet of the same layout (the same file with
  ``dynamics = "conv_single"``), seed 0, once each.  Each is a long training: the unit's run
  directory (``out_dir/runs/<unit>-<fingerprint>/``) keeps the trainer's checkpoint, so an
  interrupted unit resumes at its last epoch (``--resume``), and the trained weights stay there
  for ``stablenet robustness RUN_DIR``.

Every unit attacks the first ``eval_per_class`` test images of every class (raw pixels in
[0, 1]; the network standardizes inside) with the population batch-norm statistics the trainer
computed: Gaussian and uniform noise, FGSM-L∞, PGD-L∞ and PGD-L2 (20 steps) and AutoAttack-L∞
(20 steps per member, Square 200 queries: fewer than the ensemble's default 100 for cost), the
PGD step check, and the empirical Lipschitz constant (16 images, as ``stablenet robustness``);
the certified bound is ``None`` for conv networks (``lipschitz_bound`` says why).

**Not judged.**  Issue 17's rule needs at least 5 seeds per claim; 3 (small layout) and 1
(shipped layout) cannot meet it.  These parts are *described*: per architecture mean ± std and n
of the clean accuracy, the AUCs and the Lipschitz constants, and the per-seed paired differences
to the ResNet (``results.json["descriptive"]``, each entry labelled "described, not judged").

**Cost** (extrapolated from one small-layout unit trained for one epoch and measured, one core;
details in robustness.py's docstring and docs/robustness.md): about 43 min per seed of the small
layout (``conv``, 3 seeds: about 2.1 h; the longest training, antisymmetric-RK4, about 7.5 min)
and about 2.3 h for ``conv-shipped`` (73 + 50 min of training): about 4.4 h on one core.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import statistics
import time
from pathlib import Path

import torch

from ...robustness import Attack, Domain, accuracy_curve, empirical_lipschitz, lipschitz_bound, step_check
from ..checkpoint import load_batch_norm_statistics, load_weights
from ..config import load_config, parse_config
from ..io import write_json
from ..networks import build_model
from ..runs import BATCH_NORM_FILE, TrainingError
from ..training import train
from . import robustness_study as study
from ._train import accuracy

#: the dense parts' architecture names, in convolutional form (dynamics, integrator)
CONV_ARCHITECTURES = {
    "resnet": {"dynamics": "conv_single", "method": "euler"},
    "antisymmetric-rk4": {"dynamics": "conv_antisymmetric", "method": "rk4"},
    "antisymmetric-euler": {"dynamics": "conv_antisymmetric", "method": "euler"},
    "hamiltonian-verlet": {"dynamics": "conv_hamiltonian", "method": "verlet"},
    "parabolic-euler": {"dynamics": "conv_parabolic", "method": "euler"},
}
SHIPPED_ARCHS = ("resnet", "parabolic-euler")
SHIPPED_CONFIG = "fashion-mnist-conv-parabolic.toml"
GAMMA = study.GAMMA
LIPSCHITZ_POINTS = 16
#: AutoAttack's sizes (fewer than the other attacks': it costs about 40 s per size on a small-layout
#: network and 200 images, twice all the other attacks together)
AUTOATTACK_EPS = (0.0, 0.01, 0.02, 0.05)
CONV_ATTACKS = ("gaussian", "uniform", "fgsm-linf", "pgd-linf", "pgd-l2", "autoattack-linf")

#: the small layout's [model] (widths: the ResNet's; the others scaled, :func:`matched_widths`)
SMALL_LAYOUT = {"kind": "conv", "widths": [8, 16, 32], "normalization": "batch", "activation": "relu",
                "T": 2.0, "steps": 2}
#: the shipped conv recipe (configs/fashion-mnist-conv-parabolic.toml) with one thread
RECIPE = {"batch_size": 128, "optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True,
          "weight_decay": 5e-4, "classifier_weight_decay": 5e-4, "schedule": "onecycle",
          "label_smoothing": 0.1, "onecycle_pct_start": 0.15, "threads": 1}
AUGMENT = {"padding": 2, "flip": True, "normalize": True}


def repo_configs() -> Path:
    """The repository's configs/ folder (the shipped configuration is read from there)."""
    return Path(__file__).resolve().parents[4] / "configs"


def _attack_settings(base: dict, quick: bool) -> dict:
    settings = {k: dict(v) for k, v in base.items()}
    settings["autoattack-linf"] = {"method": "autoattack", "norm": "linf", "steps": 3 if quick else 20, "restarts": 1}
    if quick:
        settings["pgd-linf"]["steps"] = 5
    return settings


def problems(quick: bool, base_attacks: dict) -> dict:
    """The settings of the two conv parts (the units' fingerprints)."""
    attacks = ("fgsm-linf", "pgd-linf", "autoattack-linf") if quick else CONV_ATTACKS
    settings = {k: v for k, v in _attack_settings(base_attacks, quick).items() if k in attacks}
    if quick:
        small = {"data_options": {"n_train": 128, "n_val": 64}, "test_images": 200,
                 "layout": {**SMALL_LAYOUT, "widths": [4, 8]}, "seeds": 2, "epochs": 1, "eps": [0.0, 0.02, 0.1],
                 "eval_per_class": 1, "step_check": None}
    else:
        small = {"data_options": {"n_train": 10000, "n_val": 2000}, "layout": dict(SMALL_LAYOUT), "seeds": 3,
                 "epochs": 10, "eps": [0.0, 0.005, 0.01, 0.02, 0.05, 0.1], "eval_per_class": 20,
                 "attack_eps": {"autoattack-linf": list(AUTOATTACK_EPS)},
                 "step_check": {"attack": "pgd-linf", "eps": 0.02, "factor": 5}}
    small.update(name="fashion-mnist-conv", kind="conv", dataset="fashion_mnist", archs=list(CONV_ARCHITECTURES),
                 attacks=list(attacks), attack_settings=settings, recipe=dict(RECIPE), augment=dict(AUGMENT),
                 gamma=GAMMA, n_classes=10)
    small["depths"] = [small["layout"]["steps"]]
    small["widths_by_depth"] = {str(small["layout"]["steps"]): matched_widths(small["layout"], gamma=GAMMA)}
    shipped = shipped_problem(quick, attacks, settings)
    return {"conv": small, "conv-shipped": shipped}


def shipped_problem(quick: bool, attacks, settings) -> dict:
    """The shipped 94% parabolic configuration (read from configs/) and its conv ResNet twin."""
    path = repo_configs() / SHIPPED_CONFIG
    raw = load_config(path)[1] if path.is_file() else None
    p = {"name": "fashion-mnist-conv-shipped", "kind": "conv-shipped", "dataset": "fashion_mnist",
         "archs": list(SHIPPED_ARCHS), "attacks": list(attacks), "attack_settings": settings, "seeds": 1,
         "n_classes": 10, "config_file": f"configs/{SHIPPED_CONFIG}", "shipped_config": raw}
    if raw is None:
        p["missing"] = f"{path} not found (the shipped configuration is read from the repository)"
        raw = {"model": {"widths": [], "steps": 0}}
    steps = raw["model"]["steps"]
    if quick:
        p.update(data_options={"n_train": 128, "n_val": 64}, test_images=200, epochs=1, eps=[0.0, 0.02, 0.1], eval_per_class=2,
                 step_check=None)
    else:
        p.update(data_options={}, epochs=None, eps=[0.0, 0.005, 0.01, 0.02, 0.05, 0.1], eval_per_class=20,
                 attack_eps={"autoattack-linf": list(AUTOATTACK_EPS)}, step_check={"attack": "pgd-linf", "eps": 0.02, "factor": 5})
    p["depths"] = [steps]
    p["widths_by_depth"] = {str(steps): {a: list(raw["model"]["widths"]) for a in SHIPPED_ARCHS}}
    return p


def raw_config(problem: dict, arch: str, seed: int) -> dict:
    """The training configuration of one unit (a dict for ``parse_config``)."""
    spec = CONV_ARCHITECTURES[arch]
    widths = problem["widths_by_depth"][str(problem["depths"][0])][arch]
    if problem["kind"] == "conv-shipped":
        raw = copy.deepcopy(problem["shipped_config"])
        raw["seed"] = seed
        raw["model"].update(dynamics=spec["dynamics"], method=spec["method"], widths=list(widths))
        raw["training"]["threads"] = 1
        if problem["epochs"] is not None:
            raw["training"]["epochs"] = problem["epochs"]
        raw["data"]["options"] = {**raw["data"].get("options", {}), **problem["data_options"]}
        return raw
    model = {**problem["layout"], "widths": list(widths), "dynamics": spec["dynamics"], "method": spec["method"]}
    if spec["dynamics"] == "conv_antisymmetric":
        model["gamma"] = problem["gamma"]
    return {"seed": seed, "data": {"name": problem["dataset"], "options": dict(problem["data_options"]),
                                   "augment": dict(problem["augment"])},
            "model": model, "training": {**problem["recipe"], "epochs": problem["epochs"]}}


def free_parameters(model) -> int:
    """Trainable numbers the function depends on; a conv antisymmetric kernel (stored C × C × k × k
    per control point, used as ½(K − K*) with K* the adjoint: channels swapped, kernel flipped)
    counts (C²k² − C)/2: the entries paired by the adjoint, less the C centre taps it fixes."""
    from ...dynamics.conv import ConvAntisymmetric

    skew = {id(p) for m in model.modules() if isinstance(m, ConvAntisymmetric) for p in m.parameters()
            if p.dim() == 5}
    total = 0
    for p in model.parameters():
        if id(p) in skew:
            nt, c, _, k, _ = p.shape
            total += nt * (c * c * k * k - c) // 2
        else:
            total += p.numel()
    return total


def build(layout: dict, arch: str, widths, *, gamma: float = GAMMA, seed: int = 0):
    """The small layout's network of ``arch`` (only to count its parameters)."""
    spec = CONV_ARCHITECTURES[arch]
    raw = {"seed": seed, "data": {"name": "fashion_mnist"},
           "model": {**layout, "widths": list(widths), "dynamics": spec["dynamics"], "method": spec["method"],
                     **({"gamma": gamma} if spec["dynamics"] == "conv_antisymmetric" else {})},
           "training": {"epochs": 1}}
    with torch.random.fork_rng():
        return build_model(parse_config(raw), 784, 10, image_shape=(28, 28))


_MATCHED: dict = {}


def matched_widths(layout: dict, *, gamma: float = GAMMA) -> dict:
    """Per architecture the stage widths round(s·w) (s = 0.5, 0.525, …, 2.5 times the ResNet's
    widths w) whose free parameter count is closest to the ResNet's (counted on built networks;
    remembered per layout)."""
    memo = json.dumps([layout, gamma], sort_keys=True)
    if memo not in _MATCHED:
        _MATCHED[memo] = _matched_widths(layout, gamma)
    return copy.deepcopy(_MATCHED[memo])


def _matched_widths(layout: dict, gamma: float) -> dict:
    base = list(layout["widths"])
    target = free_parameters(build(layout, "resnet", base, gamma=gamma))
    out = {}
    for arch in CONV_ARCHITECTURES:
        cands = []
        for i in range(81):
            w = [max(1, round((0.5 + 0.025 * i) * b)) for b in base]
            if w not in cands:
                cands.append(w)
        if base in cands:
            cands.remove(base)
        cands.insert(0, base)  # ties go to the ResNet's widths
        counts = [free_parameters(build(layout, arch, w, gamma=gamma)) for w in cands]
        out[arch] = cands[min(range(len(cands)), key=lambda i: abs(counts[i] - target))]
    return out


_DATA: dict = {}


def dataset(problem: dict, seed: int):
    from ...data import load_dataset

    key = (problem["dataset"], seed, tuple(sorted(problem["data_options"].items())), problem.get("test_images"))
    if key not in _DATA:
        _DATA.clear()
        data = load_dataset(problem["dataset"], seed=seed, **problem["data_options"])
        if problem.get("test_images"):  # quick: the first test images only (the trainer's test accuracy)
            n = problem["test_images"]
            data = dataclasses.replace(data, test=type(data.test)(data.test.x[:n], data.test.y[:n]))
        _DATA[key] = data
    return _DATA[key]


def run_dir(units_dir: Path, problem: dict, arch: str, seed: int, key: str) -> Path:
    return units_dir.parent / "runs" / f"{study.unit_name(problem['name'], arch, problem['depths'][0], seed, False)[:-5]}-{key}"


def compute_unit(problem: dict, arch: str, seed: int, directory: Path) -> dict:
    """Train (or resume, or reuse a finished training in ``directory``) and measure one network."""
    start, cpu = time.perf_counter(), time.process_time()
    config = parse_config(raw_config(problem, arch, seed))
    data = dataset(problem, seed)
    done = (directory / "metrics.json").is_file()
    out = {"problem": problem["name"], "architecture": arch, "depth": problem["depths"][0], "seed": seed,
           "adversarial": False, "widths": problem["widths_by_depth"][str(problem["depths"][0])][arch],
           "run_dir": directory.name, "diverged": False}
    if not done:
        resume = (directory / "checkpoint.json").is_file()
        try:
            train(config, directory, resume=resume, overwrite=not resume and directory.exists(), progress=False,
                  dataset=data)
        except TrainingError as error:  # a non-finite loss: a result, not an error of the experiment
            out.update(diverged=True, error=str(error))
    train_seconds = time.perf_counter() - start
    model = build_model(config, data.in_features, data.n_classes, image_shape=data.image_shape)
    out["parameters"] = sum(p.numel() for p in model.parameters())
    out["free_parameters"] = free_parameters(model)
    if out["diverged"] and not (directory / "best.safetensors").is_file():
        out.update(clean_accuracy=None, curves={}, lipschitz_empirical=None, lipschitz_certified=None,
                   train_seconds=train_seconds, seconds=time.perf_counter() - start,
                   cpu_seconds=time.process_time() - cpu)
        return out
    load_weights(directory / "best.safetensors", model)
    if (directory / BATCH_NORM_FILE).is_file():
        load_batch_norm_statistics(directory / BATCH_NORM_FILE, model)
    elif model.has_batch_norm():  # a diverged run: calibrate its best weights here
        model.calibrate_batch_norm(data.train.x)
    model.eval()
    domain = Domain.of_dataset(data)
    out.update(train_accuracy=accuracy(model, data.train.x[:2000], data.train.y[:2000]),
               val_accuracy=accuracy(model, data.val.x, data.val.y))
    x, y = study.eval_points(data, problem["eval_per_class"])
    out["eval_points"] = int(len(y))
    out["clean_accuracy"] = accuracy(model, x, y)
    curves = {}
    for name in problem["attacks"]:
        t = time.perf_counter()
        c = accuracy_curve(model, x, y, Attack(**problem["attack_settings"][name]),
                           problem.get("attack_eps", {}).get(name, problem["eps"]), domain=domain, seed=seed)
        curves[name] = {k: c[k] for k in ("eps", "accuracy", "accuracy_per_size", "auc")}
        curves[name]["seconds"] = time.perf_counter() - t
    out["curves"] = curves
    sc = problem.get("step_check")
    if sc:
        out["step_check"] = step_check(model, x, y, Attack(**problem["attack_settings"][sc["attack"]]), sc["eps"],
                                       domain=domain, factor=sc["factor"], seed=seed)
    m64 = copy.deepcopy(model).double().eval()
    out["lipschitz_empirical"] = empirical_lipschitz(m64, x[:LIPSCHITZ_POINTS].double(), batch_size=32)["max"]
    bound = lipschitz_bound(m64)
    out["lipschitz_certified"] = bound.value if bound.value is not None and math.isfinite(bound.value) else None
    out["lipschitz_certified_reason"] = bound.reason
    metrics = directory / "metrics.json"
    if metrics.is_file():
        m = json.loads(metrics.read_text())
        out["training"] = {k: m.get(k) for k in ("test_accuracy", "val_accuracy", "best_epoch", "epochs",
                                                 "wall_time_s")}
    out["train_seconds"] = train_seconds
    out["seconds"] = time.perf_counter() - start
    out["cpu_seconds"] = time.process_time() - cpu
    return out


def unit(units_dir: Path, problem: dict, arch: str, seed: int, compute: bool = True) -> dict | None:
    """As ``robustness_study.unit``: the stored unit with this part's fingerprint, else computed."""
    path = units_dir / study.unit_name(problem["name"], arch, problem["depths"][0], seed, False)
    key = study.fingerprint({k: v for k, v in problem.items() if k != "seeds"})
    if path.is_file():
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError):
            stored = None
        if stored and stored.get("fingerprint") == key:
            stored["reused"] = True
            return stored
    if not compute:
        return None
    if problem.get("missing"):
        raise FileNotFoundError(problem["missing"])
    result = compute_unit(problem, arch, seed, run_dir(units_dir, problem, arch, seed, key))
    result["fingerprint"] = key
    write_json(path, result)
    result["reused"] = False
    return result


def units(units_dir: Path, problem: dict, *, compute: bool) -> dict:
    """{(arch, depth, seed, False): unit} of a conv part (seed by seed, every architecture)."""
    found = {}
    depth = problem["depths"][0]
    for seed in range(problem["seeds"]):
        for arch in problem["archs"]:
            u = unit(units_dir, problem, arch, seed, compute=compute)
            if u is not None:
                found[(arch, depth, seed, False)] = u
    return found


def expected_units(problem: dict) -> int:
    return problem["seeds"] * len(problem["archs"])


def _stats(values) -> dict:
    v = [float(x) for x in values if x is not None]
    return {"mean": statistics.fmean(v) if v else None, "std": statistics.stdev(v) if len(v) > 1 else None,
            "n": len(v), "values": v}


def describe(problem: dict, found: dict, minimum: int) -> tuple[list, dict]:
    """(descriptive records, per_seed) of a conv part: nothing is judged (fewer seeds than the
    rule's ``minimum``); per architecture mean ± std and n, and the paired differences to the ResNet."""
    p, depth = problem["name"], problem["depths"][0]
    note = (f"described, not judged: n = {problem['seeds']} seed(s) < the {minimum} the verdict rule needs "
            f"(issue 17)")
    per_seed, records = {str(depth): {}}, []
    for arch in problem["archs"]:
        us = [found[k] for k in sorted(found) if k[:2] == (arch, depth)]
        ok = [u for u in us if u.get("clean_accuracy") is not None]
        per_seed[str(depth)][arch] = {
            "seeds": [u["seed"] for u in ok], "width": problem["widths_by_depth"][str(depth)][arch],
            "free_parameters": us[0]["free_parameters"] if us else None,
            "clean_accuracy": [u["clean_accuracy"] for u in ok], "val_accuracy": [u["val_accuracy"] for u in ok],
            "test_accuracy_full": [u.get("training", {}).get("test_accuracy") for u in ok],
            "auc": {a: [u["curves"][a]["auc"] for u in ok] for a in problem["attacks"]},
            "curves": {a: [u["curves"][a]["accuracy"] for u in ok] for a in problem["attacks"]},
            "lipschitz_empirical": [u["lipschitz_empirical"] for u in ok],
            "lipschitz_certified": [u["lipschitz_certified"] for u in ok],
            "step_check_gap": [u["step_check"]["gap"] for u in ok if "step_check" in u],
            "diverged": [u["diverged"] for u in us],
            "seconds": [u["seconds"] for u in us], "cpu_seconds": [u["cpu_seconds"] for u in us]}
        row = per_seed[str(depth)][arch]
        rec = {"part": p, "architecture": arch, "depth": depth, "note": note,
               "free_parameters": row["free_parameters"], "diverged": sum(row["diverged"]),
               "clean_accuracy_points": _stats(100 * a for a in row["clean_accuracy"]),
               "auc_points": {a: _stats(100 * v for v in row["auc"][a]) for a in problem["attacks"]},
               "lipschitz_empirical": _stats(row["lipschitz_empirical"])}
        if arch != "resnet":
            ref = {u["seed"]: u for u in found.values() if u["architecture"] == "resnet" and
                   u.get("clean_accuracy") is not None}
            pairs = [(ref[u["seed"]], u) for u in ok if u["seed"] in ref]
            rec["minus_resnet"] = {
                "clean_accuracy_points": _stats(100 * (u["clean_accuracy"] - r["clean_accuracy"]) for r, u in pairs),
                "auc_points": {a: _stats(100 * (u["curves"][a]["auc"] - r["curves"][a]["auc"]) for r, u in pairs)
                               for a in problem["attacks"]}}
        records.append(rec)
    per_seed["adversarial"] = {}
    return records, per_seed
