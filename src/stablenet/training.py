"""Training: model from a config, mini-batch optimization, regularizers, validation, checkpoints.

``train(config, out_dir)`` is what ``stablenet train`` runs.  It writes into the run directory

* ``config.json`` (the validated configuration), ``config.toml`` (as given, for reading);
* ``checkpoint.json`` + ``checkpoint-EPOCH.safetensors`` after every epoch (resumable);
* ``best.safetensors``: the weights with the best validation accuracy;
* ``history.json`` / ``history.csv``: per-epoch metrics;
* ``metrics.json``: the summary (best validation accuracy, test accuracy of the best weights, …).

Determinism: the seed fixes the data, the initialization and the batch order (a dedicated
``torch.Generator`` whose state is checkpointed), so on the CPU a resumed run ends with exactly
the metrics of an uninterrupted one.
"""

from __future__ import annotations

import csv
import io
import math
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import torch

from . import __version__
from ._io import atomic_write_bytes, write_json
from .block import ODEBlock
from .checkpoint import load_checkpoint, load_weights, save_checkpoint, save_weights
from .config import BlockConfig, Config
from .dynamics import DYNAMICS
from .models import ODEClassifier, get_loss


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss, unusable run directory)."""


# -- model ----------------------------------------------------------------------------------------
def build_block(cfg: BlockConfig) -> ODEBlock:
    """One ODE block from its configuration."""
    kwargs: dict[str, Any] = dict(nt=cfg.nt or cfg.steps, activation=cfg.activation,
                                  normalization=cfg.normalization)
    if cfg.dynamics == "hamiltonian":
        kwargs["width_z"] = cfg.width_z
    if cfg.dynamics in ("double", "parabolic"):
        kwargs["hidden"] = cfg.hidden
    if cfg.dynamics == "antisymmetric":
        kwargs["gamma"] = cfg.gamma
    dynamics = DYNAMICS[cfg.dynamics](cfg.width, **kwargs)
    return ODEBlock(dynamics, T=cfg.T, steps=cfg.steps, method=cfg.method, controls=cfg.controls)


def build_model(config: Config, in_features: int, n_classes: int) -> ODEClassifier:
    """The classifier network of a configuration, initialized from ``config.seed``."""
    torch.manual_seed(config.seed)
    blocks = [build_block(b) for b in config.model.blocks]
    model = ODEClassifier(in_features, n_classes, blocks, opening=config.model.opening)
    return model.to(dtype=getattr(torch, config.training.dtype), device=config.training.device)


def smoothness(model: ODEClassifier) -> torch.Tensor:
    """Σ_blocks Σ_k ‖θ_{k+1} − θ_k‖² / h_c, h_c = T/nt the control spacing (seed 002; Meganet)."""
    total = model.classifier.weight.new_zeros(())
    for block in model.blocks:
        nt = block.dynamics.nt
        if nt > 1:
            h = block.T / nt
            for w in block.dynamics.control_weights():
                total = total + (w[1:] - w[:-1]).pow(2).sum() / h
    return total


def _optimizer(config: Config, model: ODEClassifier) -> torch.optim.Optimizer:
    t = config.training
    groups = [{"params": _network_params(model), "weight_decay": t.weight_decay},
              {"params": list(model.classifier.parameters()), "weight_decay": t.classifier_weight_decay}]
    if t.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=t.lr, momentum=t.momentum, nesterov=t.nesterov)
    if t.optimizer == "adam":
        return torch.optim.Adam(groups, lr=t.lr)
    # L-BFGS takes one parameter group: weight decay is added to the loss instead.
    return torch.optim.LBFGS(model.parameters(), lr=t.lr, history_size=t.lbfgs_history,
                             line_search_fn="strong_wolfe")


def _scheduler(config: Config, optimizer):
    t = config.training
    if t.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=t.lr_step_epochs, gamma=t.lr_decay)
    if t.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=t.epochs)
    return None


# -- evaluation -----------------------------------------------------------------------------------
@torch.no_grad()
def evaluate(model: ODEClassifier, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable,
             batch_size: int = 4096) -> tuple[float, float]:
    """(mean loss, accuracy) of ``model`` on (x, y), in batches."""
    was_training = model.training
    model.eval()
    total_loss, correct = 0.0, 0
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        scores = model(xb)
        total_loss += float(loss_fn(scores, yb)) * len(xb)
        correct += int((scores.argmax(1) == yb).sum())
    model.train(was_training)
    return total_loss / len(x), correct / len(x)


# -- run directory ----------------------------------------------------------------------------------
def check_run_dir(out_dir: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse to clobber an existing run unless asked to resume or overwrite it (touches nothing)."""
    if resume and overwrite:
        raise TrainingError("--resume and --overwrite exclude each other")
    if resume:
        if not (out_dir / "checkpoint.json").exists():
            raise TrainingError(f"cannot resume: {out_dir} holds no checkpoint (checkpoint.json)")
        return
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise TrainingError(f"run directory {out_dir} already exists; pass --resume to continue it "
                                f"or --overwrite to replace it")
        if not (out_dir / "config.json").exists():
            raise TrainingError(f"refusing to overwrite {out_dir}: it is not a stablenet run directory")


def create_run_dir(out_dir: Path, *, overwrite: bool) -> None:
    """An empty run directory (an existing run is removed only with ``overwrite``, after checks)."""
    if overwrite and out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)


def _write_history(out_dir: Path, history: list[dict[str, float]]) -> None:
    write_json(out_dir / "history.json", history)
    buffer = io.StringIO()
    if history:
        writer = csv.DictWriter(buffer, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    atomic_write_bytes(out_dir / "history.csv", buffer.getvalue().encode())


# -- training -------------------------------------------------------------------------------------
def train(config: Config, out_dir: str | Path, *, config_text: str | None = None, resume: bool = False,
          overwrite: bool = False, progress: bool = True, dataset=None) -> dict[str, Any]:
    """Train the configured network into ``out_dir``; returns the summary written to metrics.json."""
    from .data import load_dataset

    out_dir = Path(out_dir)
    check_run_dir(out_dir, resume=resume, overwrite=overwrite)
    # everything that can fail on bad input happens before the run directory is touched
    data = dataset or load_dataset(config.data.name, seed=config.seed, data_dir=config.data.data_dir,
                                   **config.data.options)
    model = build_model(config, data.in_features, data.n_classes)
    if resume:
        saved = load_checkpoint(out_dir)
        if saved["config"] != config.model_dump(mode="json"):
            raise TrainingError(f"cannot resume {out_dir}: the configuration differs from the run's "
                                f"(see {out_dir / 'config.json'})")
    else:
        create_run_dir(out_dir, overwrite=overwrite)
        write_json(out_dir / "config.json", config.model_dump(mode="json"))
        if config_text is not None:
            atomic_write_bytes(out_dir / "config.toml", config_text.encode())

    t = config.training
    if t.threads:
        torch.set_num_threads(t.threads)
    dtype, device = getattr(torch, t.dtype), torch.device(t.device)
    x_train, y_train = data.train.x.to(device, dtype), data.train.y.to(device)
    x_val, y_val = data.val.x.to(device, dtype), data.val.y.to(device)

    loss_fn = get_loss(t.loss)
    optimizer = _optimizer(config, model)
    scheduler = _scheduler(config, optimizer)
    generator = torch.Generator().manual_seed(config.seed)
    history: list[dict[str, float]] = []
    best: dict[str, Any] = {"val_accuracy": -1.0, "epoch": 0}
    wall = 0.0
    if resume:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(saved["scheduler"])
        generator.set_state(saved["generator"])
        history, best, wall = saved["history"], saved["best"], saved["wall_time_s"]

    def objective(scores, yb):
        loss = loss_fn(scores, yb)
        if t.smoothness:
            loss = loss + t.smoothness * smoothness(model)
        if t.optimizer == "lbfgs":
            loss = loss + _lbfgs_decay(model, t)
        return loss

    n = len(x_train)
    batches = math.ceil(n / t.batch_size)
    bar = _progress_bar(progress, total=t.epochs * batches, initial=len(history) * batches)
    try:
        for epoch in range(len(history) + 1, t.epochs + 1):
            start = time.perf_counter()
            model.train()
            order = torch.randperm(n, generator=generator).to(device)
            loss_sum, correct = 0.0, 0
            for b in range(batches):
                idx = order[b * t.batch_size:(b + 1) * t.batch_size]
                xb, yb = x_train[idx], y_train[idx]
                out: dict[str, torch.Tensor] = {}

                def closure():
                    optimizer.zero_grad()
                    scores = model(xb)
                    loss = objective(scores, yb)
                    loss.backward()
                    out.setdefault("scores", scores.detach())
                    out.setdefault("loss", loss.detach())
                    return loss

                optimizer.step(closure)
                batch_loss = float(out["loss"])
                if not math.isfinite(batch_loss):
                    raise TrainingError(
                        f"non-finite loss ({batch_loss}) in epoch {epoch}, batch {b + 1}: training stopped; "
                        f"the last good checkpoint (epoch {len(history)}) is kept in {out_dir}. "
                        f"Try a smaller training.lr or a more stable architecture.")
                loss_sum += batch_loss * len(idx)
                correct += int((out["scores"].argmax(1) == yb).sum())
                if bar is not None:
                    bar.update(1)
            if scheduler is not None:
                scheduler.step()
            val_loss, val_acc = evaluate(model, x_val, y_val, loss_fn)
            wall += time.perf_counter() - start
            record = {"epoch": epoch, "train_loss": loss_sum / n, "train_accuracy": correct / n,
                      "val_loss": val_loss, "val_accuracy": val_acc, "lr": optimizer.param_groups[0]["lr"]}
            history.append(record)
            if val_acc > best["val_accuracy"]:
                best = {"val_accuracy": val_acc, "val_loss": val_loss, "epoch": epoch,
                        "train_accuracy": record["train_accuracy"]}
                save_weights(out_dir / "best.safetensors", model)
            save_checkpoint(out_dir, {
                "config": config.model_dump(mode="json"), "epoch": epoch, "history": history, "best": best,
                "wall_time_s": wall, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "generator": generator.get_state(),
            }, tag=f"{epoch:05d}")
            _write_history(out_dir, history)
            if bar is not None:
                bar.set_postfix(loss=f"{record['train_loss']:.4f}", acc=f"{record['train_accuracy']:.3f}",
                                val=f"{val_acc:.3f}", best=f"{best['val_accuracy']:.3f}")
    finally:
        if bar is not None:
            bar.close()

    load_weights(out_dir / "best.safetensors", model)
    metrics: dict[str, Any] = {
        "train_accuracy": best["train_accuracy"],
        "val_accuracy": best["val_accuracy"],
        "val_loss": best["val_loss"],
        "best_epoch": best["epoch"],
        "epochs": len(history),
        "wall_time_s": wall,
        "n_params": sum(p.numel() for p in model.parameters()),
    }
    if data.test is not None:
        test_loss, test_acc = evaluate(model, data.test.x.to(device, dtype), data.test.y.to(device), loss_fn)
        metrics.update(test_accuracy=test_acc, test_loss=test_loss)
    metrics.update(dataset=data.name, config=config.model_dump(mode="json"), stablenet_version=__version__)
    write_json(out_dir / "metrics.json", metrics)
    return metrics


def _network_params(model: ODEClassifier):
    ids = {id(p) for p in model.classifier.parameters()}
    return [p for p in model.parameters() if id(p) not in ids]


def _lbfgs_decay(model: ODEClassifier, t) -> torch.Tensor | float:
    """L-BFGS has a single parameter group: the two weight decays enter the loss as ½λ‖·‖²."""
    penalty: torch.Tensor | float = 0.0
    if t.weight_decay:
        penalty = penalty + 0.5 * t.weight_decay * sum(p.pow(2).sum() for p in _network_params(model))
    if t.classifier_weight_decay:
        penalty = penalty + 0.5 * t.classifier_weight_decay * sum(
            p.pow(2).sum() for p in model.classifier.parameters())
    return penalty


def _progress_bar(enabled: bool, total: int, initial: int):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="batch", dynamic_ncols=True, desc="training")


def load_run(run_dir: str | Path):
    """(config, model with the best weights, dataset) of a finished or interrupted run directory."""
    import json

    from .config import parse_config
    from .data import load_dataset

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise TrainingError(f"run directory {run_dir} does not exist")
    try:
        raw = json.loads((run_dir / "config.json").read_text())
    except FileNotFoundError:
        raise TrainingError(f"{run_dir} is not a stablenet run directory (no config.json)") from None
    except json.JSONDecodeError as exc:
        raise TrainingError(f"{run_dir / 'config.json'} is not valid JSON: {exc}") from None
    config = parse_config(raw)
    data = load_dataset(config.data.name, seed=config.seed, data_dir=config.data.data_dir, **config.data.options)
    model = build_model(config, data.in_features, data.n_classes)
    load_weights(run_dir / "best.safetensors", model)
    model.eval()
    return config, model, data
