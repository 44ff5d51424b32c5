"""The units of the robustness experiment (``robustness.py``): one trained and attacked network each.

A unit is (problem, architecture, depth, seed[, adversarial training]).  :func:`compute_unit`
trains the network and measures it; :func:`unit` returns the stored result if its JSON exists
under ``units/`` with the same settings fingerprint, and otherwise computes it and writes it
atomically (``app.io.write_json``), so an interrupted or split run resumes where it stopped.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from pathlib import Path

import torch

from ... import Antisymmetric, Hamiltonian, ODEBlock, ODEClassifier, Parabolic, SingleLayer
from ...data import load_dataset
from ...models import softmax_cross_entropy
from ...robustness import (Attack, Domain, accuracy_curve, empirical_lipschitz, lipschitz_bound, perturb,
                           step_check)
from ..adversarial import adversarial_count, batch_seed
from ..io import write_json
from ._train import accuracy, train_model

#: the compared architectures: dynamics, integrator and the state width per problem (module
#: docstring of robustness.py: widths chosen so that the free parameters match within a few %)
ARCHITECTURES = {
    "resnet": {"dynamics": "single", "method": "euler", "label": "ResNet (single layer, Euler)"},
    "antisymmetric-rk4": {"dynamics": "antisymmetric", "method": "rk4", "label": "antisymmetric, RK4"},
    "antisymmetric-euler": {"dynamics": "antisymmetric", "method": "euler", "label": "antisymmetric, Euler"},
    "hamiltonian-verlet": {"dynamics": "hamiltonian", "method": "verlet", "label": "Hamiltonian, Verlet"},
    "parabolic-euler": {"dynamics": "parabolic", "method": "euler", "label": "parabolic, Euler"},
}
GAMMA = 0.01   # the antisymmetric damping γ (as configs/peaks-antisymmetric-rk4.toml)


def build(arch: str, widths: dict, *, in_features: int, n_classes: int, depth: int, T: float,
          seed: int) -> ODEClassifier:
    """Linear opening → one ODE block of ``depth`` steps (one control layer per step) → classifier,
    initialized from ``seed`` (the global random state is left as it was)."""
    spec, w = ARCHITECTURES[arch], widths[arch]
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        if spec["dynamics"] == "single":
            dyn = SingleLayer(w, nt=depth)
        elif spec["dynamics"] == "antisymmetric":
            dyn = Antisymmetric(w, gamma=GAMMA, nt=depth)
        elif spec["dynamics"] == "hamiltonian":
            dyn = Hamiltonian(w[0], w[1], nt=depth)
        else:
            dyn = Parabolic(w, nt=depth)
        return ODEClassifier(in_features, n_classes, ODEBlock(dyn, T=T, steps=depth, method=spec["method"]),
                             opening="linear")


def free_parameters(model: ODEClassifier) -> int:
    """Trainable numbers that the network's function depends on: all parameters, except that an
    antisymmetric K (stored n × n, used as ½(K − Kᵀ − γI)) counts its n(n − 1)/2 free entries."""
    total = 0
    for name, p in model.named_parameters():
        if "parametrizations.K" in name and isinstance(model.blocks[0].dynamics, Antisymmetric):
            n = p.shape[-1]
            total += p.numel() // (n * n) * n * (n - 1) // 2
        else:
            total += p.numel()
    return total


_DATA: dict = {}


def dataset(problem: dict, seed: int):
    key = (problem["name"], seed)
    if key not in _DATA:
        _DATA.clear()
        _DATA[key] = load_dataset(problem["dataset"], seed=seed, **problem.get("data_options", {}))
    return _DATA[key]


def eval_points(data, per_class: int):
    """The first ``per_class`` test points of every class (the attacked set)."""
    x, y = data.test.x, data.test.y
    keep = torch.cat([torch.nonzero(y == c).flatten()[:per_class] for c in range(int(y.max()) + 1)])
    return x[keep], y[keep]


def train_adversarial(model, x, y, *, epochs: int, batch_size: int, lr: float, seed: int, attack: Attack,
                      eps: float, fraction: float, domain: Domain) -> None:
    """Adam on mini-batches whose first round(fraction·B) points are replaced by adversarial
    examples against the current network: the trainer's ``[training.adversarial]`` batch
    (``app.adversarial``: ``adversarial_count``, ``batch_seed``, ``perturb``), in the loop of
    ``_train.train_model`` (same batch order, same cosine schedule)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        for b, idx in enumerate(torch.randperm(len(y), generator=generator).split(batch_size)):
            xb, yb = x[idx], y[idx]
            k = adversarial_count(fraction, len(idx))
            model.eval()
            adv = perturb(model, xb[:k], yb[:k], attack, eps, domain=domain, seed=batch_seed(seed, epoch, b),
                          batch_size=k)
            model.train()
            opt.zero_grad()
            loss = softmax_cross_entropy(model(torch.cat([adv, xb[k:]])), yb)
            loss.backward()
            opt.step()
        sched.step()
    model.eval()


def fingerprint(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def unit_name(problem: str, arch: str, depth: int, seed: int, adversarial: bool) -> str:
    return f"{problem}__{arch}__depth{depth}__seed{seed}{'__adversarial' if adversarial else ''}.json"


def compute_unit(problem: dict, arch: str, depth: int, seed: int, adversarial: bool) -> dict:
    """Train one network and measure it: clean accuracies, the accuracy curve under every attack
    (AUC), the PGD step check, the empirical and certified Lipschitz constants."""
    start, cpu = time.perf_counter(), time.process_time()
    data = dataset(problem, seed)
    domain = Domain.of_dataset(data)
    model = build(arch, problem["widths"], in_features=data.train.x.shape[1], n_classes=data.n_classes,
                  depth=depth, T=problem["T"], seed=seed)
    tr = problem["training"]
    epochs = tr["epochs"][str(depth)]
    if adversarial:
        adv = problem["adversarial"]
        train_adversarial(model, data.train.x, data.train.y, epochs=epochs, batch_size=tr["batch_size"], lr=tr["lr"],
                          seed=seed, attack=Attack("pgd", "linf", steps=adv["steps"], restarts=1), eps=adv["eps"],
                          fraction=adv["fraction"], domain=domain)
        history = []
    else:
        history = train_model(model, data.train.x, data.train.y, epochs=epochs, batch_size=tr["batch_size"],
                              lr=tr["lr"], seed=seed, schedule="cosine", record=False)
    diverged = bool(history and history[-1].get("diverged"))
    train_seconds = time.perf_counter() - start
    x, y = eval_points(data, problem["eval_per_class"])
    out = {"problem": problem["name"], "architecture": arch, "depth": depth, "seed": seed, "adversarial": adversarial,
           "parameters": sum(p.numel() for p in model.parameters()), "free_parameters": free_parameters(model),
           "diverged": diverged, "train_accuracy": accuracy(model, data.train.x, data.train.y),
           "val_accuracy": accuracy(model, data.val.x, data.val.y), "eval_points": int(len(y))}
    out["clean_accuracy"] = accuracy(model, x, y)
    curves = {}
    for name in problem["attacks"]:
        attack = Attack(**problem["attack_settings"][name])
        c = accuracy_curve(model, x, y, attack, problem["eps"], domain=domain, seed=seed)
        curves[name] = {k: c[k] for k in ("eps", "accuracy", "accuracy_per_size", "auc")}
    out["curves"] = curves
    sc = problem.get("step_check")
    if sc:
        attack = Attack(**problem["attack_settings"][sc["attack"]])
        out["step_check"] = step_check(model, x, y, attack, sc["eps"], domain=domain, factor=sc["factor"], seed=seed)
    m64 = copy.deepcopy(model).double()
    out["lipschitz_empirical"] = empirical_lipschitz(m64, x.double())["max"]
    bound = lipschitz_bound(m64)
    out["lipschitz_certified"] = bound.value
    if bound.value is not None and not math.isfinite(bound.value):
        out["lipschitz_certified"] = None
    out["train_seconds"] = train_seconds
    out["seconds"] = time.perf_counter() - start
    out["cpu_seconds"] = time.process_time() - cpu
    return out


def unit(units_dir: Path, problem: dict, arch: str, depth: int, seed: int, adversarial: bool = False,
         compute: bool = True) -> dict | None:
    """The unit's stored result if ``units_dir`` holds it with this problem's settings fingerprint;
    else compute and store it (or None with ``compute=False``)."""
    path = units_dir / unit_name(problem["name"], arch, depth, seed, adversarial)
    key = fingerprint({k: v for k, v in problem.items() if k != "seeds"})
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
    result = compute_unit(problem, arch, depth, seed, adversarial)
    result["fingerprint"] = key
    write_json(path, result)
    result["reused"] = False
    return result
