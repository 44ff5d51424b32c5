"""Training: model from a config, mini-batch optimization, regularizers, validation, checkpoints.

``train(config, out_dir)`` is what ``stablenet train`` runs.  It writes into the run directory

* ``config.json`` (the validated configuration), ``config.toml`` (as given, for reading);
* ``checkpoint.json`` + ``checkpoint-EPOCH.safetensors`` after every epoch (resumable);
* ``best.safetensors``: the weights with the best validation accuracy;
* ``history.json`` / ``history.csv``: per-epoch metrics;
* ``metrics.json``: the summary (best validation accuracy, test accuracy of the best weights, …);
* ``batch_norm_statistics.safetensors`` (convolutional networks with ``normalization = "batch"``
  inside the blocks): population statistics of those normalizations over the training images,
  computed for the best weights at the end (:meth:`ConvODENet.calibrate_batch_norm`); the test
  accuracy and every later evaluation of the run use them, so predictions do not depend on the
  batch.  Validation during training uses each batch's statistics (batches of 500 images).

Determinism: the seed fixes the data, the initialization and the batch order (a dedicated
``torch.Generator`` whose state is checkpointed), so on the CPU a resumed run ends with exactly
the metrics of an uninterrupted one.

Multilevel (cascadic) training in depth, the ``[multilevel]`` table (Haber & Ruthotto, "Stable
architectures for deep neural networks", 2017; Meganet): level 1 trains the network with the
coarsest state grid; after each level every block is prolongated, nt → 2nt by
:meth:`ODEClassifier.prolongate` (θ(t) kept exactly) and steps → 2·steps (h → h/2), the optimizer
and the schedule are rebuilt, and training continues on the next level.  The network changes only
by the discretization error at a refinement, so each level starts from a good initial guess.
Such a run also records

* a ``level`` and a ``steps`` column (state steps summed over the blocks) in the history;
* ``levels`` in metrics.json: per level the steps and nt of every block, the epochs, the best
  validation accuracy and its loss and epoch, the test accuracy of that level's best weights and
  the wall time;
* ``best-level-L.safetensors``: the best weights of level L.

``best.safetensors`` is the best of the *finest level reached so far*: the best-weights search
restarts at every level (the weights of different levels have different shapes, and the point
of refining is the finer network), so the top-level numbers of metrics.json describe the final
level's best weights.  Its safetensors metadata names its level; :func:`load_run` builds the
network of that level before loading it.  The checkpoint records the current level, so
``--resume`` rebuilds the network at that level before loading the weights and, when the
checkpoint ends a level, refines exactly where the uninterrupted run would.
"""

from __future__ import annotations

import bisect
import contextlib
import csv
import io
import itertools
import json
import math
import time
from pathlib import Path
from typing import Any, Callable

import torch

from .. import __version__, _checks
from . import rundir
from .io import atomic_write_bytes, write_json
from .checkpoint import (CheckpointError, load_batch_norm_statistics, load_checkpoint, load_weights,
                         save_batch_norm_statistics, save_checkpoint, save_state_dict, state_dict_copy,
                         weights_metadata)
from .config import NEWTON_OPTIMIZERS, Config, ConfigError, config_differences, parse_saved_config
from ..conv_models import ConvODENet
from ..models import ODEClassifier, get_loss
from ..parallel.context import ParallelContext
from .networks import build_model

#: the population batch-norm statistics of a convolutional run (see the module docstring)
BATCH_NORM_FILE = "batch_norm_statistics.safetensors"


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss, unusable run directory)."""


def _image_statistics(config: Config, model, x_train: torch.Tensor) -> None:
    """Set an ImageClassifier's input standardization from ``[data.augment]`` (fixed mean/std, or
    the per-channel statistics of the training images with ``normalize = true``)."""
    aug = config.data.augment
    if aug is None or not (aug.normalize or aug.mean is not None):
        return
    from ..data.augment import channel_stats

    if aug.mean is not None:
        mean, std = torch.tensor(aug.mean, dtype=torch.float64), torch.tensor(aug.std, dtype=torch.float64)
    else:
        mean, std = channel_stats(x_train.cpu().reshape(-1, *model.image_shape))
    if mean.shape != model.input_mean.shape:
        raise ValueError(f"data.augment: {mean.numel()} channel means for images with "
                         f"{model.input_mean.numel()} channels; expected one per channel")
    with torch.no_grad():
        model.input_mean.copy_(mean)
        model.input_std.copy_(std)


def _batch_augmentation(config: Config, model):
    """``augment(xb, generator)``: crop, flip and erasing of a training batch (images), or None."""
    aug = config.data.augment
    if aug is None or not (aug.padding or aug.flip or aug.erase):
        return None
    from ..data.augment import Augmentation

    transform = Augmentation(padding=aug.padding, flip=aug.flip, erase=aug.erase)

    def augment(xb: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return transform(xb.reshape(-1, *model.image_shape), generator)

    return augment


def refine(model: ODEClassifier, grid: list[tuple[int, int]]) -> ODEClassifier:
    """Prolongate ``model`` in depth until every block has the (steps, nt) of ``grid``.

    Each prolongation doubles nt keeping θ(t) exactly (:meth:`ODEClassifier.prolongate`); the
    state grid is set to the new steps (h → h/2 per level).  Rebuild the optimizer after.
    """
    while any(block.dynamics.nt < nt for block, (_, nt) in zip(model.blocks, grid)):
        model.prolongate()
    for block, (steps, nt) in zip(model.blocks, grid):
        if block.dynamics.nt != nt:
            raise ValueError(f"cannot prolongate nt = {block.dynamics.nt} to {nt}: expected nt·2^k")
        block.steps = steps
    return model


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


def _optimizer(config: Config, model: ODEClassifier):
    """The configured optimizer for ``model`` (rebuilt after every multilevel refinement).

    ``gauss_newton`` / ``newton`` give a :class:`stablenet.optim.GaussNewtonCG` / ``NewtonCG``
    (with ``varpro``: over the network weights only, on VarPro's reduced objective; with
    ``block_coordinate`` a :class:`stablenet.optim.BlockCoordinateDescent` around one), called as
    ``step(x, labels, penalty)`` instead of with a closure.
    """
    t = config.training
    if t.optimizer in NEWTON_OPTIMIZERS:
        return _newton_optimizer(config, model)
    groups = [{"params": _network_params(model), "weight_decay": t.weight_decay},
              {"params": list(model.classifier.parameters()), "weight_decay": t.classifier_weight_decay}]
    if t.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=t.lr, momentum=t.momentum, nesterov=t.nesterov)
    if t.optimizer == "adam":
        return torch.optim.Adam(groups, lr=t.lr)
    # L-BFGS takes one parameter group: weight decay is added to the loss instead.
    return torch.optim.LBFGS(model.parameters(), lr=t.lr, history_size=t.lbfgs_history,
                             line_search_fn="strong_wolfe")


def _newton_optimizer(config: Config, model: ODEClassifier):
    from ..optim import BlockCoordinateDescent, GaussNewtonCG, NewtonCG, VarPro, network_parameters

    t = config.training
    cls = GaussNewtonCG if t.optimizer == "gauss_newton" else NewtonCG
    options = dict(loss=t.loss, lr=t.lr, cg_rtol=t.cg_rtol, cg_max_iter=t.cg_max_iter, damping=t.damping,
                   hessian_samples=t.hessian_samples, seed=config.seed)
    network = [{"params": network_parameters(model), "weight_decay": t.weight_decay}]
    if not t.varpro:
        classifier = [{"params": list(model.classifier.parameters()), "weight_decay": t.classifier_weight_decay}]
        return cls(network + classifier, model, **options)
    vp = VarPro(model, t.loss, regularization=t.classifier_weight_decay)
    if t.block_coordinate:
        return BlockCoordinateDescent(vp, cls(network, model, **options))
    return cls(network, model, varpro=vp, **options)


def _scheduler(config: Config, optimizer, epochs: int | None = None, batches: int = 1):
    """The learning-rate schedule over ``epochs`` (default training.epochs; one level's epochs).

    ``onecycle`` is stepped after every one of the ``batches`` per epoch, the others once per epoch.
    """
    t = config.training
    optimizer = getattr(optimizer, "theta_optimizer", optimizer)  # BlockCoordinateDescent's θ optimizer
    if t.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=t.lr_step_epochs, gamma=t.lr_decay)
    if t.schedule == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(t.lr_milestones), gamma=t.lr_decay)
    if t.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=t.lr, total_steps=(epochs or t.epochs) * batches,
                                                   pct_start=t.onecycle_pct_start)
    if t.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs or t.epochs)
    return None


# -- evaluation -----------------------------------------------------------------------------------
def evaluation_batch_size(model) -> int:
    """4096 points, or 500 images for convolutional models: until calibrated
    (:meth:`ConvODENet.calibrate_batch_norm`) their batch normalization inside the blocks uses each
    batch's statistics, so predictions depend on the batch (the Fashion-MNIST network of
    benchmarks/RESULTS.md: 94.01% test accuracy in batches of 500, 92.84% in batches of 10; 94.13%
    for any batch size once calibrated)."""
    return 500 if isinstance(model, ConvODENet) else 4096


@torch.no_grad()
def evaluate(model: ODEClassifier, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable,
             batch_size: int | None = None) -> tuple[float, float]:
    """(mean loss, accuracy) of ``model`` on (x, y), in consecutive batches of ``batch_size``
    (default :func:`evaluation_batch_size`)."""
    batch_size = evaluation_batch_size(model) if batch_size is None else _checks.positive_int("batch_size", batch_size)
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
    """Refuse a run directory that cannot be used as asked (touches nothing; :mod:`stablenet.app.rundir`).

    A new run needs a missing or empty folder; ``overwrite`` a stablenet run directory that is
    not protected (the current folder, its parents, home); ``resume`` one holding a checkpoint.
    """
    if resume and overwrite:
        raise TrainingError("--resume and --overwrite exclude each other")
    if out_dir.exists() and not out_dir.is_dir():
        raise TrainingError(f"run directory {out_dir} exists and is not a folder; choose another --out")
    if resume:
        if not (out_dir / "checkpoint.json").exists():
            raise TrainingError(f"cannot resume: {out_dir} holds no checkpoint (checkpoint.json)")
        return
    if not rundir.holds_files(out_dir):
        return
    if not rundir.is_run_dir(out_dir):
        raise TrainingError(f"{out_dir} already exists and is not a stablenet run directory (no {rundir.MARKER}); "
                            f"nothing in it was touched: choose another --out")
    if not overwrite:
        raise TrainingError(f"run directory {out_dir} already exists; pass --resume to continue it "
                            f"or --overwrite to replace it")
    reason = rundir.protected_reason(out_dir)
    if reason is not None:
        raise TrainingError(f"refusing to overwrite {out_dir}: {reason}; nothing in it was touched: "
                            f"choose another --out")


def _with_absolute_paths(config: Config) -> Config:
    """``config`` with ``data.data_dir`` made absolute (relative to the current folder), so the run
    directory's config.json works from any folder."""
    data_dir = config.data.data_dir
    if data_dir is None or Path(data_dir).is_absolute():
        return config
    absolute = str(Path(data_dir).expanduser().resolve())
    return config.model_copy(update={"data": config.data.model_copy(update={"data_dir": absolute})})


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
          overwrite: bool = False, progress: bool = True, dataset=None,
          announce: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train the configured network into ``out_dir``; returns the summary written to metrics.json.

    With ``[multilevel]`` the network is trained level by level, coarse to fine in depth (see the
    module docstring: per-level records, best weights of the finest level, resume at a level).

    The run directory is checked before anything is written (:func:`check_run_dir`), then held
    under its exclusive lock (:func:`stablenet.app.rundir.lock`) for the whole run; ``--overwrite``
    removes only stablenet's files from it.  ``--resume`` checks the checkpoint, the configuration
    and the best weights before the first epoch.  ``announce(line)`` is called once the run has
    started (the CLI prints it).  ``training.threads`` sets torch's thread count for the run; the
    caller's count is restored on the way out.
    """
    from ..data import load_dataset

    out_dir = Path(out_dir)
    config = _with_absolute_paths(config)
    try:  # the process grid of [parallel] (one process without it); joins torchrun's group
        parallel = ParallelContext.from_config(config.parallel)
    except ValueError as error:
        raise TrainingError(str(error)) from None
    check_run_dir(out_dir, resume=resume, overwrite=overwrite)
    parallel.barrier()  # every rank has checked the run directory before rank 0 creates it
    # everything that can fail on bad input happens before the run directory is touched
    data = dataset or load_dataset(config.data.name, seed=config.seed, data_dir=config.data.data_dir,
                                   **config.data.options)
    # only rank 0 writes, so only rank 0 locks; the lock is taken before the second look at the
    # folder, so two commands that both passed the first look cannot both write
    held = rundir.lock(out_dir, create=not resume) if parallel.writer else contextlib.nullcontext()
    threads = torch.get_num_threads()  # training.threads holds for this run only
    with held:
        if parallel.writer:  # the other ranks would find the folder rank 0 has just created
            check_run_dir(out_dir, resume=resume, overwrite=overwrite)
        try:
            return _train(config, out_dir, data, parallel, config_text=config_text, resume=resume,
                          overwrite=overwrite, progress=progress, announce=announce)
        finally:
            torch.set_num_threads(threads)


def _train(config: Config, out_dir: Path, data, parallel: ParallelContext, *, config_text: str | None,
           resume: bool, overwrite: bool, progress: bool, announce: Callable[[str], None] | None) -> dict[str, Any]:
    """:func:`train` in a checked and locked run directory."""
    multilevel = config.multilevel is not None
    grids = config.level_grids()  # (steps, nt) per block, per level; one level without [multilevel]
    level_epochs = config.multilevel.epochs() if multilevel else [config.training.epochs]
    level_ends = list(itertools.accumulate(level_epochs))  # the last epoch of every level
    level = 1
    writer = parallel.writer  # only rank 0 writes the run directory
    if resume:
        saved = _resume_state(out_dir, config, level_ends)
        level = saved.get("level", 1)
        _check_best_weights(out_dir, config, data, saved, level, writer)
    model = build_model(config, data.in_features, data.n_classes, level=level if multilevel else None,
                        image_shape=data.image_shape)
    _image_statistics(config, model, data.train.x)  # conv: the input standardization ([data.augment])
    augment = _batch_augmentation(config, model)  # conv: random crop / flip of every training batch
    parallel.apply(model)  # [parallel]: every block solved by MGRIT on this rank's layer group
    if not resume and writer:
        if overwrite and rundir.holds_files(out_dir):
            rundir.clear(out_dir)
        rundir.mark(out_dir)  # the first file of a new run: this folder is stablenet's
        write_json(out_dir / "config.json", config.model_dump(mode="json"))
        if config_text is not None:
            atomic_write_bytes(out_dir / "config.toml", config_text.encode())
    if announce is not None:
        announce(f"resuming {out_dir} after epoch {len(saved['history'])}" if resume
                 else f"training {config.data.name} -> {out_dir}")

    t = config.training
    if t.threads:
        torch.set_num_threads(t.threads)
    dtype, device = getattr(torch, t.dtype), torch.device(t.device)
    x_train, y_train = data.train.x.to(device, dtype), data.train.y.to(device)
    x_val, y_val = data.val.x.to(device, dtype), data.val.y.to(device)

    loss_fn = get_loss(t.loss)
    # the training loss: label smoothing applies to it only (validation and test use loss_fn)
    train_loss_fn = get_loss(t.loss, t.label_smoothing)
    optimizer = _optimizer(config, model)
    # mixed precision: the forward pass and loss under autocast; float16 with a dynamic loss scale
    autocast_dtype = None if t.mixed_precision == "none" else getattr(torch, t.mixed_precision)
    scaler = torch.amp.GradScaler(device.type, enabled=t.mixed_precision == "float16")
    steps_per_epoch = math.ceil(len(data.train) / t.batch_size)
    scheduler = _scheduler(config, optimizer, level_epochs[level - 1], steps_per_epoch)
    generator = torch.Generator().manual_seed(config.seed)
    history: list[dict[str, float]] = []
    best: dict[str, Any] = {"val_accuracy": -1.0, "epoch": 0}
    best_state: dict[str, torch.Tensor] | None = None  # the best weights (in every checkpoint)
    wall = 0.0
    levels: list[dict[str, Any]] = [_level_record(1, grids[0])] if multilevel else []
    if resume:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(saved["scheduler"])
        generator.set_state(saved["generator"])
        if saved.get("scaler"):
            scaler.load_state_dict(saved["scaler"])
        history, best, wall = saved["history"], saved["best"], saved["wall_time_s"]
        best_state = saved.get("best_model")
        levels = saved.get("levels", levels)

    def objective(scores, yb):
        loss = train_loss_fn(scores, yb)
        if t.smoothness:
            loss = loss + t.smoothness * smoothness(model)
        if t.optimizer == "lbfgs":
            loss = loss + _lbfgs_decay(model, t)
        return loss

    newton = t.optimizer in NEWTON_OPTIMIZERS
    penalty = (lambda: t.smoothness * smoothness(model)) if t.smoothness else None
    n = len(x_train)
    batches = math.ceil(n / t.batch_size)
    bar = _progress_bar(progress and writer, total=level_ends[-1] * batches, initial=len(history) * batches)
    try:
        for epoch in range(len(history) + 1, level_ends[-1] + 1):
            start = time.perf_counter()
            if epoch > level_ends[level - 1]:
                # the level is done: refine in depth (nt → 2nt with θ(t) kept, h → h/2), then a
                # new optimizer and schedule for the next level; the best-weights search restarts
                level += 1
                refine(model, grids[level - 1])
                optimizer = _optimizer(config, model)
                scheduler = _scheduler(config, optimizer, level_epochs[level - 1], steps_per_epoch)
                best = {"val_accuracy": -1.0, "epoch": 0}
                levels.append(_level_record(level, grids[level - 1]))
            model.train()
            order = torch.randperm(n, generator=generator).to(device)
            loss_sum, correct = 0.0, 0
            for b in range(batches):
                batch_idx = order[b * t.batch_size:(b + 1) * t.batch_size]
                idx = parallel.shard(batch_idx)  # this data-parallel group's part (all of it serially)
                share = len(idx) / len(batch_idx)
                xb, yb = x_train[idx], y_train[idx]
                if augment is not None:  # drawn from the batch-order generator: resume stays exact
                    xb = augment(xb, generator)
                out: dict[str, torch.Tensor] = {}
                if newton:  # one inexact Newton step; penalty R(θ) = α·smoothness, weight decay in the groups
                    out["loss"] = optimizer.step(xb, yb, penalty)
                    out["scores"] = optimizer.last.scores

                def closure():
                    optimizer.zero_grad()
                    with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                        scores = model(xb)
                        loss = objective(scores, yb)
                    scaler.scale(loss).backward()  # (the loss itself without a scaler)
                    if parallel.data_ranks > 1:  # the whole batch's gradient and loss (DDP's all-reduce)
                        parallel.reduce_gradients(model.parameters(), share)
                        loss = loss.new_tensor(parallel.reduce_sum([float(loss.detach()) * share])[0])
                    out.setdefault("scores", scores.detach())
                    out.setdefault("loss", loss.detach())
                    return loss

                if t.optimizer == "lbfgs":  # re-evaluates the closure in its line search
                    optimizer.step(closure)
                elif not newton:  # sgd / adam: one gradient, then the (loss-scaled) step
                    closure()
                    scaler.step(optimizer)
                    scaler.update()
                if scheduler is not None and t.schedule == "onecycle":  # a per-batch schedule
                    scheduler.step()
                batch_loss = float(out["loss"])
                if not math.isfinite(batch_loss):
                    kept = (f"the last good checkpoint (epoch {len(history)}) is kept in {out_dir}" if history
                            else "no epoch completed, so no checkpoint was written")
                    raise TrainingError(f"non-finite loss ({batch_loss}) in epoch {epoch}, batch {b + 1}: "
                                        f"training stopped; {kept}. Try a smaller training.lr or a more "
                                        f"stable architecture.")
                loss_sum += batch_loss * len(batch_idx)
                correct += int((out["scores"].argmax(1) == yb).sum())
                if bar is not None:
                    bar.update(1)
            if scheduler is not None and t.schedule != "onecycle":
                scheduler.step()
            correct = int(parallel.reduce_sum([correct])[0])
            val_loss, val_acc = evaluate(model, x_val, y_val, loss_fn)
            seconds = time.perf_counter() - start
            wall += seconds
            record = {"epoch": epoch, "train_loss": loss_sum / n, "train_accuracy": correct / n,
                      "val_loss": val_loss, "val_accuracy": val_acc, "lr": optimizer.param_groups[0]["lr"]}
            if multilevel:
                record.update(level=level, steps=sum(block.steps for block in model.blocks))
            history.append(record)
            if val_acc > best["val_accuracy"]:
                best = {"val_accuracy": val_acc, "val_loss": val_loss, "epoch": epoch,
                        "train_accuracy": record["train_accuracy"]}
                best_state = state_dict_copy(model)
                if writer:
                    _save_best(out_dir, best_state, level if multilevel else None, model)
            if multilevel:
                levels[-1].update(epochs=levels[-1]["epochs"] + 1, wall_time_s=levels[-1]["wall_time_s"] + seconds,
                                  val_accuracy=best["val_accuracy"], val_loss=best["val_loss"],
                                  train_accuracy=best["train_accuracy"], best_epoch=best["epoch"])
            if writer:
                save_checkpoint(out_dir, {
                    "config": config.model_dump(mode="json"), "epoch": epoch, "history": history, "best": best,
                    "wall_time_s": wall, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "generator": generator.get_state(), "level": level, "levels": levels,
                    "scaler": scaler.state_dict(), "best_model": best_state,
                }, tag=f"{epoch:05d}")
                _write_history(out_dir, history)
            if bar is not None:
                extra = {"level": level} if multilevel else {}
                bar.set_postfix(loss=f"{record['train_loss']:.4f}", acc=f"{record['train_accuracy']:.3f}",
                                val=f"{val_acc:.3f}", best=f"{best['val_accuracy']:.3f}", **extra)
    finally:
        if bar is not None:
            bar.close()

    parallel.barrier()  # rank 0 has written the best weights
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
    images = _calibrate_batch_norm(model, x_train)  # for every later evaluation
    if images:
        if writer:
            save_batch_norm_statistics(out_dir / BATCH_NORM_FILE, model, images)
        metrics["batch_norm_statistics"] = {"file": BATCH_NORM_FILE, "images": images}
    if data.test is not None:
        test_loss, test_acc = evaluate(model, data.test.x.to(device, dtype), data.test.y.to(device), loss_fn)
        metrics.update(test_accuracy=test_acc, test_loss=test_loss)
    if multilevel:
        metrics["levels"] = [dict(record) for record in levels]
        if data.test is not None:  # the test accuracy of every level's best weights
            for record in metrics["levels"]:
                coarse = build_model(config, data.in_features, data.n_classes, level=record["level"],
                                     image_shape=data.image_shape)
                load_weights(out_dir / f"best-level-{record['level']}.safetensors", coarse)
                _calibrate_batch_norm(coarse, x_train)
                record["test_accuracy"] = evaluate(coarse, data.test.x.to(device, dtype), data.test.y.to(device),
                                                   loss_fn)[1]
    metrics.update(dataset=data.name, config=config.model_dump(mode="json"), stablenet_version=__version__)
    if writer:
        write_json(out_dir / "metrics.json", metrics)
    parallel.close()
    return metrics


def _calibrate_batch_norm(model, x_train: torch.Tensor) -> int:
    """Population statistics of a conv model's in-block batch normalization over the training
    images; the number of images, or 0 for a model without such a normalization."""
    if isinstance(model, ConvODENet) and model.has_batch_norm():
        return model.calibrate_batch_norm(x_train)
    return 0


def _level_record(level: int, grid: list[tuple[int, int]]) -> dict[str, Any]:
    """The metrics of one multilevel level before its first epoch."""
    return {"level": level, "steps": [steps for steps, _ in grid], "nt": [nt for _, nt in grid], "epochs": 0,
            "val_accuracy": None, "val_loss": None, "train_accuracy": None, "best_epoch": None, "wall_time_s": 0.0}


def _level_metadata(level: int, model: ODEClassifier) -> dict[str, str]:
    """Safetensors metadata of a multilevel run's weights: the level and its grids."""
    return {"level": str(level), "steps": json.dumps([b.steps for b in model.blocks]),
            "nt": json.dumps([b.dynamics.nt for b in model.blocks])}


def _save_best(out_dir: Path, state: dict[str, torch.Tensor], level: int | None, model) -> None:
    """``best.safetensors`` (and, in a multilevel run, ``best-level-L.safetensors``) from ``state``."""
    if level is None:
        save_state_dict(out_dir / "best.safetensors", state)
        return
    meta = _level_metadata(level, model)
    save_state_dict(out_dir / f"best-level-{level}.safetensors", state, meta)
    save_state_dict(out_dir / "best.safetensors", state, meta)


def _resume_state(out_dir: Path, config: Config, level_ends: list[int]) -> dict[str, Any]:
    """The checkpoint of ``out_dir``, checked against ``config`` and the level schedule."""
    saved = load_checkpoint(out_dir)
    differences = config_differences(_normalized_config(saved["config"]), config.model_dump(mode="json"))
    if differences:
        raise TrainingError(f"cannot resume {out_dir}: the configuration differs from the run's "
                            f"({'; '.join(differences)}); resume with the run's configuration "
                            f"({out_dir / 'config.toml'}) or start a new run")
    level = saved.get("level", 1)
    done = len(saved["history"])
    expected = bisect.bisect_left(level_ends, max(done, 1)) + 1
    if level != expected:
        raise TrainingError(f"cannot resume {out_dir}: its checkpoint is at level {level!r} after epoch "
                            f"{done}, expected level {expected}")
    return saved


def _check_best_weights(out_dir: Path, config: Config, data, saved: dict[str, Any], level: int,
                        writer: bool) -> None:
    """Before the first resumed epoch: the best weights the run will end with are usable.

    The current level's best weights are rewritten from the checkpoint, which holds them, so a
    damaged or missing ``best.safetensors`` is rebuilt.  A checkpoint written before stablenet
    stored them there, and the finished levels of a multilevel run, have only their files: each
    must load into its network, or the resume is refused now rather than after the last epoch.
    """
    multilevel = config.multilevel is not None
    checks = list(range(1, level)) if multilevel else []  # finished levels: only their files hold them
    if saved.get("best_model") is not None:
        if writer:
            model = build_model(config, data.in_features, data.n_classes, level=level if multilevel else None,
                                image_shape=data.image_shape)
            _save_best(out_dir, saved["best_model"], level if multilevel else None, model)
    else:
        checks.append(level)
    for lv in checks:
        name = f"best-level-{lv}.safetensors" if multilevel and lv < level else "best.safetensors"
        probe = build_model(config, data.in_features, data.n_classes, level=lv if multilevel else None,
                            image_shape=data.image_shape)
        try:
            load_weights(out_dir / name, probe)
        except CheckpointError as exc:
            source = (f"level {lv} is finished" if lv < level
                      else "its checkpoint, written by an older stablenet, does not hold the best weights")
            raise TrainingError(f"cannot resume {out_dir}: {exc}; {source}, so they cannot be rebuilt: restore "
                                f"{out_dir / name} or start again with --overwrite") from None


def _normalized_config(raw: dict[str, Any]) -> dict[str, Any]:
    """A saved configuration as this version dumps it (keys added since have their defaults)."""
    try:
        return parse_saved_config(raw).model_dump(mode="json")
    except ConfigError:
        return raw


def _weights_level(path: Path, config: Config) -> int:
    """The multilevel level a weights file was saved at (from its metadata)."""
    levels = config.multilevel.levels
    text = weights_metadata(path).get("level", "")
    if not text.isdigit() or not 1 <= int(text) <= levels:
        raise CheckpointError(f"{path}: metadata 'level' is {text or 'missing'!r}; expected a level in 1..{levels} "
                              f"of this multilevel run")
    return int(text)


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


def load_run(run_dir: str | Path, *, data_dir: str | Path | None = None):
    """(config, model with the best weights, dataset) of a finished or interrupted run directory.

    For a multilevel run the model is built at the level of ``best.safetensors`` (the finest level
    reached), so evaluate, plots and analysis see the network those weights belong to.
    ``data_dir`` reads the data from another folder than the run's ``data.data_dir`` (data moved,
    or a run from another machine).
    """
    from ..data import load_dataset

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise TrainingError(f"run directory {run_dir} does not exist")
    try:
        raw = json.loads((run_dir / "config.json").read_text())
    except FileNotFoundError:
        raise TrainingError(f"{run_dir} is not a stablenet run directory (no config.json)") from None
    except json.JSONDecodeError as exc:
        raise TrainingError(f"{run_dir / 'config.json'} is not valid JSON: {exc}") from None
    config = parse_saved_config(raw)
    if data_dir is not None:
        config = _with_absolute_paths(config.model_copy(update={
            "data": config.data.model_copy(update={"data_dir": str(data_dir)})}))
    if torch.device(config.training.device).type == "cuda" and not torch.cuda.is_available():
        # a run trained on a GPU is evaluated / plotted / analysed on this machine's CPU
        config = config.model_copy(update={"training": config.training.model_copy(update={"device": "cpu"})})
    data = load_dataset(config.data.name, seed=config.seed, data_dir=config.data.data_dir, **config.data.options)
    # a multilevel run's best weights belong to the level named in their metadata
    level = _weights_level(run_dir / "best.safetensors", config) if config.multilevel is not None else None
    model = build_model(config, data.in_features, data.n_classes, level=level, image_shape=data.image_shape)
    load_weights(run_dir / "best.safetensors", model)
    if (run_dir / BATCH_NORM_FILE).exists():
        load_batch_norm_statistics(run_dir / BATCH_NORM_FILE, model)
    model.eval()
    return config, model, data
