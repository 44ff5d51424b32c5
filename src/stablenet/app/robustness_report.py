"""``stablenet robustness RUN_DIR``: accuracy of a trained network under perturbed inputs.

Writes ``RUN_DIR/robustness/robustness.json`` and the figures ``accuracy.png`` (accuracy against
perturbation size, one curve per attack) and, for image data, ``examples.png`` (clean images and
their perturbed versions at the largest size, with the predictions).  The measurements are
:mod:`stablenet.robustness`'s; this module picks the run's data, the defaults and the files.

Everything the user asked for is checked before the run directory is touched (attack names,
sizes, an attack unsuited to the data, a run without weights); the run directory is locked while
the report is written (:func:`stablenet.app.rundir.lock`), and every file is written atomically.
"""

from __future__ import annotations

import copy
import time
from dataclasses import replace
from pathlib import Path

import torch

from .. import _checks
from ..robustness import (ATTACKS, Domain, accuracy_curve, empirical_lipschitz, get_attack, lipschitz_bound,
                          step_check)
from ..robustness.attacks import check_suited
from ..robustness.curves import check_sizes
from .io import pyplot, save_figure, write_json
from .rundir import lock

#: the attacks run when none are named
POINT_ATTACKS = ("gaussian", "uniform", "fgsm-linf", "pgd-linf", "fgsm-l2", "pgd-l2")
IMAGE_ATTACKS = POINT_ATTACKS + ("autoattack-linf",)
#: default sizes, as fractions of the domain's mean side length (images: of the [0, 1] pixel range)
FRACTIONS = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1)
#: points whose Jacobian gives the empirical Lipschitz constant (convolutional networks: fewer)
LIPSCHITZ_POINTS, LIPSCHITZ_POINTS_CONV = 200, 16
EXAMPLES = 8


def check_request(attacks, eps, *, steps=None, restarts=None, samples: int = 500) -> tuple[list, list | None]:
    """The attacks (as :class:`~stablenet.robustness.Attack`, with ``steps``/``restarts`` applied to
    the iterative ones) and the sizes (0 added in front), or one-line errors."""
    attacks = [get_attack(a) for a in attacks] if attacks else None
    if attacks is not None:
        names = [a.name for a in attacks]
        if len(set(names)) != len(names):
            raise ValueError(f"--attack names an attack twice: {names}")
        changes = {}
        if steps is not None:
            changes["steps"] = _checks.positive_int("steps", steps)
        if restarts is not None:
            if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 0:
                raise ValueError(f"restarts must be an integer >= 0, got {restarts!r}")
            changes["restarts"] = restarts
        attacks = [replace(a, **changes) if a.method in ("pgd", "autoattack") and changes else a for a in attacks]
    if eps is not None:
        for e in eps:  # each a finite number >= 0 (one line naming the value otherwise)
            check_sizes([e])
        sizes = sorted(set(float(e) for e in eps))
        eps = sizes if sizes[0] == 0 else [0.0] + sizes
    _checks.positive_int("samples", samples)
    return attacks, eps


def robustness_run(run_dir: str | Path, *, attacks=None, eps=None, split: str | None = None, samples: int = 500,
                   steps: int | None = None, restarts: int | None = None, seed: int = 0,
                   data_dir: str | Path | None = None) -> dict:
    """Measure, write ``RUN_DIR/robustness/`` and return the report (see the module docstring).

    ``attacks``: names of :data:`stablenet.robustness.ATTACKS` (default: the noises, FGSM and
    PGD in L∞ and L2, and for images AutoAttack L∞); ``eps``: the sizes (0 is added; default
    :data:`FRACTIONS` of the domain's side); ``split``: ``test`` (default, if the data set has
    one), ``val`` or ``train``; ``samples``: the first points of the split used.
    """
    run_dir = Path(run_dir)
    attack_list, sizes = check_request(attacks, eps, steps=steps, restarts=restarts, samples=samples)
    if split is not None:
        _checks.choice("split", split, ("train", "val", "test"))
    if not run_dir.is_dir():
        raise ValueError(f"run directory {run_dir} does not exist")
    if not (run_dir / "config.json").exists():
        raise ValueError(f"{run_dir} is not a stablenet run directory (no config.json)")
    if not (run_dir / "best.safetensors").exists():
        raise ValueError(f"{run_dir} holds no trained weights (best.safetensors): train it first "
                         f"(stablenet train … --out {run_dir}) or resume it")
    # everything that can be refused is checked before the run directory is locked (the lock file
    # records the holder): a refused request leaves the run directory exactly as it was
    from ..conv_models import ConvODENet
    from .runs import load_run

    start = time.perf_counter()
    config, model, data = load_run(run_dir, data_dir=data_dir)
    domain = Domain.of_dataset(data)
    images = domain.image_shape is not None
    if attack_list is None:
        attack_list, _ = check_request(IMAGE_ATTACKS if images else POINT_ATTACKS, None, steps=steps,
                                       restarts=restarts)
    for attack in attack_list:
        check_suited(attack, domain, data.n_classes)
    if sizes is None:
        sizes = [f * domain.width for f in FRACTIONS]
    split_name = split or ("test" if data.test is not None else "val")
    chosen = getattr(data, split_name)
    if chosen is None or len(chosen) == 0:
        raise ValueError(f"data set {data.name!r} has no {split_name} split")
    param = next(model.parameters())
    x, y = chosen.x[:samples].to(param), chosen.y[:samples]
    conv = isinstance(model, ConvODENet)
    uncalibrated = conv and model.has_batch_norm() and model.batch_norm_statistics is None
    with lock(run_dir):
        return _run(run_dir, model, data, domain, attack_list, sizes, split_name, x, y, seed, conv, uncalibrated,
                    start)


def _run(run_dir: Path, model, data, domain, attacks, sizes, split_name, x, y, seed, conv, uncalibrated,
         start) -> dict:
    images = domain.image_shape is not None
    # in-block batch normalization without population statistics: predictions depend on the batch;
    # one batch of all the points keeps them as `stablenet evaluate` computes them
    batch_size = max(500, int(x.shape[0])) if uncalibrated else 500

    curves, checks = [], []
    for attack in attacks:
        t = time.perf_counter()
        curve = accuracy_curve(model, x, y, attack, sizes, domain=domain, seed=seed, batch_size=batch_size,
                               keep=EXAMPLES if images else 0)
        curve["seconds"] = time.perf_counter() - t
        curves.append(curve)
        if attack.method == "pgd" and sizes[-1] > 0:
            checks.append(step_check(model, x, y, attack, sizes[-1], domain=domain, seed=seed,
                                     batch_size=batch_size))

    lipschitz = _lipschitz(model, x, conv, uncalibrated)
    out = run_dir / "robustness"
    figures = [plot_accuracy(curves, out / "accuracy.png", title=f"{data.name}, {split_name} split, "
                                                                 f"{int(x.shape[0])} points")]
    if images:
        figures.append(plot_examples(curves, x[:EXAMPLES].cpu(), y[:EXAMPLES], domain.image_shape,
                                     out / "examples.png"))
    report = {
        "run": str(run_dir), "data": data.name, "split": split_name, "points": int(x.shape[0]), "seed": seed,
        "domain": domain.to_dict(), "clean_accuracy": curves[0]["clean_accuracy"] if curves else None,
        "attacks": [{k: v for k, v in c.items() if k not in ("examples", "predictions")} for c in curves],
        "step_checks": checks, "lipschitz": lipschitz, "figures": [f.name for f in figures],
        "seconds": time.perf_counter() - start,
    }
    write_json(out / "robustness.json", report)
    return report


def _lipschitz(model, x: torch.Tensor, conv: bool, uncalibrated: bool) -> dict:
    """Empirical (float64 copy, max over points) and certified Lipschitz constants of input → logits."""
    model64 = copy.deepcopy(model).to(torch.float64).eval()
    bound = lipschitz_bound(model64)
    result = {"norm": "l2", "certified": bound.value, "certified_reason": bound.reason,
              "certified_parts": bound.parts}
    if uncalibrated:
        result.update(empirical=None, empirical_reason="in-block batch normalization without population "
                      "statistics couples the images of a batch: no per-image Jacobian")
        return result
    points = x[:LIPSCHITZ_POINTS_CONV if conv else LIPSCHITZ_POINTS].to(torch.float64)
    emp = empirical_lipschitz(model64, points, batch_size=32 if conv else 256)
    result.update(empirical=emp["max"], empirical_mean=emp["mean"], empirical_points=int(points.shape[0]))
    return result


def plot_accuracy(curves: list[dict], path: Path, *, title: str = "") -> Path:
    """Accuracy against perturbation size, one curve per attack (AUC in the legend)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for c in curves:
        style = "--" if c["settings"]["method"] in ("gaussian", "uniform") else "-"
        ax.plot(c["eps"], [100 * a for a in c["accuracy"]], style, marker="o", ms=3,
                label=f"{c['attack']} (AUC {100 * c['auc']:.1f}%)")
    ax.set_xlabel("perturbation size ε (L∞ / L2 radius; noise: σ or half-width)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "accuracy under perturbation", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, dpi=120)


def plot_examples(curves: list[dict], x: torch.Tensor, y: torch.Tensor, shape, path: Path) -> Path:
    """A strip: clean images (top row), then for each adversarial attack its perturbed images at the
    largest size; titles give the prediction (red when wrong) and the label."""
    plt = pyplot()
    rows = [("clean", x, curves[0]["predictions"][0] if curves else None)]
    for c in curves:
        if c["settings"]["method"] not in ("gaussian", "uniform"):
            rows.append((f"{c['attack']} ε={c['eps'][-1]:.3g}", c["examples"][-1], c["predictions"][-1]))
    cols = x.shape[0]
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.3 * cols, 1.5 * len(rows)), squeeze=False)
    for r, (label, images, preds) in enumerate(rows):
        for k in range(cols):
            ax = axes[r][k]
            img = images[k].reshape(shape).to(torch.float64)
            if shape[0] == 1:
                ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            if preds is not None:
                wrong = preds[k] != int(y[k])
                ax.set_title(f"pred {preds[k]} (y {int(y[k])})", fontsize=7, color="tab:red" if wrong else "black")
            if k == 0:
                ax.set_ylabel(label, fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


__all__ = ["robustness_run", "check_request", "plot_accuracy", "plot_examples", "ATTACKS"]
