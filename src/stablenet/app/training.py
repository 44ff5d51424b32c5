"""Training: model from a config, mini-batch optimization, regularizers, validation, checkpoints.

``train(config, out_dir)`` is what ``stablenet train`` runs.  It writes into the run directory

* ``config.json`` (the validated configuration), ``config.toml`` (as given, for reading);
* ``checkpoint.json`` + ``checkpoint-EPOCH.safetensors`` after every epoch (resumable);
* ``best.safetensors``: the weights with the best validation accuracy;
* ``history.json`` / ``history.csv``: per-epoch metrics;
* ``metrics.json``: the summary (best validation accuracy, test accuracy of the best weights, …);
* ``tensorboard/events.out.tfevents.*`` with ``training.log = ["tensorboard"]``: the per-epoch
  metrics and stability figures as TensorBoard event files (:mod:`stablenet.app.tracking`);
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

Adversarial training, the ``[training.adversarial]`` table (:mod:`stablenet.app.adversarial`): in
every batch a share of the points is replaced by FGSM / PGD adversarial examples against the
current network (inside the data's domain and the ε-ball) before the step; the history gets an
``adversarial_accuracy`` column.  The attacks' random starts are seeded from (seed, epoch, batch),
not from the batch-order generator, so the batches are those of plain training and a resumed run
repeats every attack exactly.

The trainer in parts: :func:`train` checks and locks the run directory; a :class:`Trainer` then
advances one :class:`~stablenet.app.train_state.TrainState` (exactly what a checkpoint holds) by
:meth:`~Trainer.start` (set-up or resume), :meth:`~Trainer.run_epoch`, :meth:`~Trainer.next_level`
(the refinement) and :meth:`~Trainer.finish`.  The pieces built from the configuration (optimizer,
schedule, objective terms, augmentation) are :mod:`stablenet.app.train_parts`; the run directory's
files and the resume checks :mod:`stablenet.app.runs`.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from pathlib import Path
from typing import Any, Callable

import torch

from .. import __version__, _checks
from ..conv_models import ConvODENet
from ..models import ODEClassifier, get_loss
from ..parallel.context import ParallelContext
from . import rundir, runs, tracking
from .adversarial import AdversarialBatches, batch_seed
from .checkpoint import load_weights, save_batch_norm_statistics, save_checkpoint
from .config import NEWTON_OPTIMIZERS, Config
from .io import write_json
from .networks import build_model
from .runs import BATCH_NORM_FILE, TrainingError, check_run_dir, load_run, with_absolute_paths
from .train_parts import (batch_augmentation, calibrate_batch_norm, lbfgs_decay, make_optimizer, make_scheduler,
                          refine, set_image_statistics, smoothness)
from .train_state import TrainState

__all__ = ["train", "evaluate", "evaluation_batch_size", "load_run", "refine", "smoothness", "check_run_dir",
           "TrainingError", "TrainState", "Trainer", "BATCH_NORM_FILE"]


# -- evaluation -----------------------------------------------------------------------------------
def evaluation_batch_size(model) -> int:
    """4096 points, or 500 images for convolutional models: until calibrated
    (:meth:`ConvODENet.calibrate_batch_norm`) their batch normalization inside the blocks uses each
    batch's statistics, so predictions depend on the batch (benchmarks/RESULTS.md measures how much);
    once calibrated they do not."""
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


#: inductor's options for training.compile: its C++ wrapper calls the generated kernels from C++
#: instead of from generated Python, which removes a per-kernel overhead that dominates small
#: blocks (benchmarks/RESULTS.md, "Compiled blocks": w16 N256 B32 Euler 0.17× the eager loop with
#: it, 0.40× without)
COMPILE_OPTIONS = {"cpp_wrapper": True}


def compile_settings(enabled: bool):
    """The TorchDynamo settings a compiled training step runs under (forward and backward, where
    inductor builds the backward's code): ``capture_scalar_outputs``, without which inductor of
    torch 2.13 cannot lower the scanned step loop (docs/compile.md) of a model compiled without
    ``fullgraph``, as the trainer compiles it.  A no-op context when ``enabled`` is false."""
    if not enabled:
        return contextlib.nullcontext()
    return torch._dynamo.config.patch(capture_scalar_outputs=True)


def _compiled_graphs() -> int:
    """How many graphs torch.compile has built in this process so far (to tell compiling steps)."""
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"]


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
    config = with_absolute_paths(config)
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
    """:func:`train` in a checked and locked run directory: set-up or resume, the epochs (with a
    refinement between multilevel levels), the finish."""
    trainer = Trainer(config, out_dir, data, parallel)
    state = trainer.start(resume=resume, overwrite=overwrite, config_text=config_text, announce=announce)
    last = trainer.level_ends[-1]
    bar = _progress_bar(progress and parallel.writer, total=last * trainer.batches,
                        initial=state.epoch * trainer.batches)
    try:
        while state.epoch < last:
            trainer.run_epoch(state, bar)
    except BaseException:
        trainer.close_logs()
        raise
    finally:
        if bar is not None:
            bar.close()
    return trainer.finish(state)


class Trainer:
    """One run of :func:`train` in its checked and locked run directory, in parts around a :class:`TrainState`.

    The trainer holds what the configuration fixes for the whole run and no checkpoint needs (the
    data on the device, the losses, the level schedule, the process grid); the state holds the
    rest.  The parts: :meth:`start` (set-up, or resume from the checkpoint), :meth:`run_epoch`
    (one epoch: the batches, validation, best weights, checkpoint), :meth:`next_level` (the
    multilevel refinement) and :meth:`finish` (best weights, batch-norm calibration, test
    accuracies, metrics.json).  Only the writer (rank 0) writes the run directory.
    """

    def __init__(self, config: Config, out_dir: Path, data, parallel: ParallelContext):
        t = config.training
        self.config, self.out_dir, self.data, self.parallel = config, out_dir, data, parallel
        self.writer = parallel.writer
        self.multilevel = config.multilevel is not None
        self.grids = config.level_grids()  # (steps, nt) per block, per level; one level without [multilevel]
        self.level_epochs = config.multilevel.epochs() if self.multilevel else [t.epochs]
        self.level_ends = list(itertools.accumulate(self.level_epochs))  # the last epoch of every level
        self.batches = math.ceil(len(data.train) / t.batch_size)  # per epoch
        self.dtype, self.device = getattr(torch, t.dtype), torch.device(t.device)
        self.loss_fn = get_loss(t.loss)
        # the training loss: label smoothing applies to it only (validation and test use loss_fn)
        self.train_loss_fn = get_loss(t.loss, t.label_smoothing)
        # mixed precision: the forward pass and loss under autocast; float16 with a dynamic loss scale
        self.autocast_dtype = None if t.mixed_precision == "none" else getattr(torch, t.mixed_precision)
        self.augment = None  # conv: random crop / flip of every training batch (set by start)
        # [training.adversarial]: a share of every batch replaced by adversarial examples
        try:
            self.adversarial = AdversarialBatches.from_config(config, data)
        except ValueError as error:  # ART missing: refused before the run directory is touched
            raise TrainingError(str(error)) from None
        try:  # training.log: TensorBoard missing is refused here too
            tracking.check(config)
        except ValueError as error:
            raise TrainingError(str(error)) from None
        self.logs = None  # training.log: the TensorBoard event files (opened by start, on the writer)
        # training.compile: the torch.compile wrapper of the training forward pass (made on first use)
        self.compiled, self.compiled_of = None, None
        # the data on the device, set by start once build_model has checked training.device
        self.x_train = self.y_train = self.x_val = self.y_val = None

    # -- set-up / resume ----------------------------------------------------------------------------
    def start(self, *, resume: bool, overwrite: bool, config_text: str | None,
              announce: Callable[[str], None] | None) -> TrainState:
        """The state before the first epoch of this call: fresh, or restored from the checkpoint.

        A resume is checked first (configuration, level, best weights: :func:`runs.read_resume`,
        :func:`runs.check_best_weights`), before anything is written; the network is built at the
        checkpoint's level.  A new run then creates its run directory.  The optimizer, schedule,
        loss scaler and batch-order generator are built for the network, and a resume loads the
        checkpoint into them (:meth:`TrainState.from_checkpoint`).
        """
        config, out_dir = self.config, self.out_dir
        saved = runs.read_resume(out_dir, config, self.level_ends) if resume else None
        if saved is not None:
            runs.check_best_weights(out_dir, config, self.data, saved, self.writer)
        level = TrainState.level_of(saved) if saved is not None else 1
        model = self.network(level)
        if saved is None and self.writer:
            runs.create_run_dir(out_dir, config, config_text, overwrite=overwrite)
        if announce is not None:
            announce(f"resuming {out_dir} after epoch {len(saved['history'])}" if saved is not None
                     else f"training {config.data.name} -> {out_dir}")
        if config.training.threads:
            torch.set_num_threads(config.training.threads)
        self.x_train, self.y_train = self.data.train.x.to(self.device, self.dtype), self.data.train.y.to(self.device)
        self.x_val, self.y_val = self.data.val.x.to(self.device, self.dtype), self.data.val.y.to(self.device)
        objects = self.training_objects(model, level)
        state = (TrainState.start(config, **objects) if saved is None
                 else TrainState.from_checkpoint(saved, config, **objects))
        if self.writer:  # training.log: continued after the checkpoint's epoch (tracking: resume)
            self.logs = tracking.TrainingLogs.open(config, out_dir, state.epoch, self.x_val)
        return state

    def network(self, level: int):
        """The network of ``level`` (built from ``config.seed``) with its input standardization
        (conv), the batch augmentation, and MGRIT on every block under ``[parallel]``."""
        config, data = self.config, self.data
        model = build_model(config, data.in_features, data.n_classes, level=level if self.multilevel else None,
                            image_shape=data.image_shape)
        set_image_statistics(config, model, data.train.x)  # conv: the input standardization ([data.augment])
        self.augment = batch_augmentation(config, model)  # conv: random crop / flip of every training batch
        self.parallel.apply(model)  # [parallel]: every block solved by MGRIT on this rank's layer group
        return model

    def training_objects(self, model, level: int) -> dict[str, Any]:
        """The new optimizer, schedule, loss scaler and batch-order generator of ``model`` (at
        ``level``): the objects of a :class:`TrainState`, before a resume loads its checkpoint into them."""
        t = self.config.training
        optimizer = make_optimizer(self.config, model)
        scaler = torch.amp.GradScaler(self.device.type, enabled=t.mixed_precision == "float16")
        return dict(model=model, optimizer=optimizer, scheduler=self._scheduler(optimizer, level),
                    generator=torch.Generator().manual_seed(self.config.seed), scaler=scaler)

    def _scheduler(self, optimizer, level: int):
        """The learning-rate schedule of ``level``'s epochs."""
        return make_scheduler(self.config, optimizer, self.level_epochs[level - 1], self.batches)

    # -- one level ----------------------------------------------------------------------------------
    def next_level(self, state: TrainState) -> None:
        """The refinement after a level: every block prolongated in depth (nt → 2nt with θ(t) kept,
        h → h/2), a new optimizer and schedule for the next level; the best-weights search restarts."""
        level = state.level + 1
        refine(state.model, self.grids[level - 1])
        optimizer = make_optimizer(self.config, state.model)
        state.begin_level(optimizer, self._scheduler(optimizer, level))

    # -- one epoch ----------------------------------------------------------------------------------
    def run_epoch(self, state: TrainState, bar=None) -> None:
        """Epoch ``state.epoch + 1`` (first refining when it starts a level): every batch, the epoch
        schedule step, validation, the best weights and the checkpoint; ``bar`` shows progress."""
        start = time.perf_counter()
        epoch = state.epoch + 1
        if epoch > self.level_ends[state.level - 1]:
            self.next_level(state)
        state.model.train()
        loss_sum, correct, adversarial = self._train_batches(state, epoch, bar)
        if state.scheduler is not None and self.config.training.schedule != "onecycle":
            state.scheduler.step()
        correct = int(self.parallel.reduce_sum([correct])[0])
        val_loss, val_acc = evaluate(state.model, self.x_val, self.y_val, self.loss_fn)
        seconds = time.perf_counter() - start
        n = len(self.x_train)
        record = {"epoch": epoch, "train_loss": loss_sum / n, "train_accuracy": correct / n,
                  "val_loss": val_loss, "val_accuracy": val_acc, "lr": state.optimizer.param_groups[0]["lr"]}
        if self.config.training.compile:  # the epoch's seconds spent compiling (part of its wall time)
            record["compile_s"] = self.compile_s
        if self.adversarial is not None:  # accuracy on the adversarial examples of the epoch's batches
            record["adversarial_accuracy"] = adversarial[0] / adversarial[1]
        if self.multilevel:
            record.update(level=state.level, steps=sum(block.steps for block in state.model.blocks))
        self._end_epoch(state, record, seconds, bar)

    def _train_batches(self, state: TrainState, epoch: int, bar) -> tuple[float, int, tuple[int, int]]:
        """One pass over the training set in the generator's order; (Σ loss·batch size, correct)
        over this data group's shards, and (correct, count) of the adversarial examples
        (``[training.adversarial]``; (0, 0) without).  TrainingError at a non-finite loss (nothing
        of the epoch is written)."""
        t = self.config.training
        n = len(self.x_train)
        order = torch.randperm(n, generator=state.generator).to(self.device)
        loss_sum, correct = 0.0, 0
        adv_correct = adv_count = 0
        self.compile_s, step_s, compile_steps = 0.0, [], []  # training.compile: steps that compiled
        for b in range(self.batches):
            batch_idx = order[b * t.batch_size:(b + 1) * t.batch_size]
            idx = self.parallel.shard(batch_idx)  # this data-parallel group's part (all of it serially)
            xb, yb = self.x_train[idx], self.y_train[idx]
            if self.augment is not None:  # drawn from the batch-order generator: resume stays exact
                xb = self.augment(xb, state.generator)
            k = 0
            if self.adversarial is not None:  # seeded by (seed, epoch, batch): resume stays exact
                xb, k = self.adversarial.mix(state.model, xb, yb, batch_seed(self.config.seed, epoch, b))
            graphs, started = _compiled_graphs() if t.compile else 0, time.perf_counter()
            loss, scores = self._step(state, xb, yb, share=len(idx) / len(batch_idx))
            if t.compile:
                (compile_steps if _compiled_graphs() != graphs else step_s).append(time.perf_counter() - started)
            if state.scheduler is not None and t.schedule == "onecycle":  # a per-batch schedule
                state.scheduler.step()
            batch_loss = float(loss)
            if not math.isfinite(batch_loss):
                kept = (f"the last good checkpoint (epoch {state.epoch}) is kept in {self.out_dir}" if state.history
                        else "no epoch completed, so no checkpoint was written")
                raise TrainingError(f"non-finite loss ({batch_loss}) in epoch {epoch}, batch {b + 1}: "
                                    f"training stopped; {kept}. Try a smaller training.lr or a more "
                                    f"stable architecture.")
            loss_sum += batch_loss * len(batch_idx)
            hits = scores.argmax(1) == yb
            correct += int(hits.sum())
            adv_correct, adv_count = adv_correct + int(hits[:k].sum()), adv_count + k
            if bar is not None:
                bar.update(1)
        if compile_steps:  # a compiling step's time beyond a plain step's (the median of the others)
            plain = sorted(step_s)[len(step_s) // 2] if step_s else 0.0
            self.compile_s = sum(max(0.0, s - plain) for s in compile_steps)
        return loss_sum, correct, (adv_correct, adv_count)

    def forward_model(self, model):
        """What the training step calls: ``model``, or with ``training.compile`` its
        ``torch.compile`` wrapper (made once per network; checkpoints, validation and the best
        weights use ``model`` itself, so no state_dict has the wrapper's ``_orig_mod.`` keys).
        Not ``fullgraph``: a gradient mode that cannot be compiled (adjoint, mgrit) runs eagerly
        between compiled graphs (docs/compile.md)."""
        if not self.config.training.compile:
            return model
        if self.compiled_of is not model:
            self.compiled, self.compiled_of = torch.compile(model, options=COMPILE_OPTIONS), model
        return self.compiled

    def _step(self, state: TrainState, xb: torch.Tensor, yb: torch.Tensor, share: float):
        """One optimizer step on a batch; (its loss, its scores).  ``share``: this data group's part
        of the batch (the gradients and the loss are combined over the groups)."""
        t, model, optimizer = self.config.training, state.model, state.optimizer
        if t.optimizer in NEWTON_OPTIMIZERS:  # one inexact Newton step; R(θ) = α·smoothness, weight decay in the groups
            penalty = (lambda: t.smoothness * smoothness(model)) if t.smoothness else None
            loss = optimizer.step(xb, yb, penalty)
            return loss, optimizer.last.scores
        out: dict[str, torch.Tensor] = {}

        def closure():
            optimizer.zero_grad()
            with compile_settings(t.compile):
                with torch.autocast(self.device.type, dtype=self.autocast_dtype,
                                    enabled=self.autocast_dtype is not None):
                    scores = self.forward_model(model)(xb)
                    loss = self._objective(model, scores, yb)
                state.scaler.scale(loss).backward()  # (the loss itself without a scaler)
            if self.parallel.data_ranks > 1:  # the whole batch's gradient and loss (DDP's all-reduce)
                self.parallel.reduce_gradients(model.parameters(), share)
                loss = loss.new_tensor(self.parallel.reduce_sum([float(loss.detach()) * share])[0])
            out.setdefault("scores", scores.detach())
            out.setdefault("loss", loss.detach())
            return loss

        if t.optimizer == "lbfgs":  # re-evaluates the closure in its line search
            optimizer.step(closure)
        else:  # sgd / adam: one gradient, then the (loss-scaled) step
            closure()
            state.scaler.step(optimizer)
            state.scaler.update()
        return out["loss"], out["scores"]

    def _objective(self, model, scores: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        """The training objective of a batch: the (smoothed) loss, the smoothness regularizer, and
        for L-BFGS the weight decays."""
        t = self.config.training
        loss = self.train_loss_fn(scores, yb)
        if t.smoothness:
            loss = loss + t.smoothness * smoothness(model)
        if t.optimizer == "lbfgs":
            loss = loss + lbfgs_decay(model, t)
        return loss

    def _end_epoch(self, state: TrainState, record: dict[str, Any], seconds: float, bar) -> None:
        """Count the epoch in ``state``; the writer saves improved best weights, the checkpoint
        (:meth:`TrainState.to_checkpoint`) and the history."""
        improved = state.add_epoch(record, seconds)
        if self.writer:
            if improved:
                runs.save_best(self.out_dir, state.best_model, state.level if self.multilevel else None, state.model)
            if self.logs is not None:  # before the checkpoint: no checkpointed epoch without its events
                self.logs.epoch(record, seconds, state.wall_time_s, state.model)
            save_checkpoint(self.out_dir, state.to_checkpoint(), tag=f"{state.epoch:05d}")
            runs.write_history(self.out_dir, state.history)
        if bar is not None:
            extra = {"level": state.level} if self.multilevel else {}
            bar.set_postfix(loss=f"{record['train_loss']:.4f}", acc=f"{record['train_accuracy']:.3f}",
                            val=f"{record['val_accuracy']:.3f}", best=f"{state.best['val_accuracy']:.3f}", **extra)

    # -- finish ------------------------------------------------------------------------------------
    def finish(self, state: TrainState) -> dict[str, Any]:
        """After the last epoch: the best weights loaded, the summary metrics, the population
        batch-norm statistics of a conv network (saved, used by every later evaluation), the test
        accuracy (with ``[multilevel]`` also that of every level's best weights); metrics.json."""
        model, best, data = state.model, state.best, self.data
        self.parallel.barrier()  # rank 0 has written the best weights
        load_weights(self.out_dir / "best.safetensors", model)
        metrics: dict[str, Any] = {
            "train_accuracy": best["train_accuracy"], "val_accuracy": best["val_accuracy"],
            "val_loss": best["val_loss"], "best_epoch": best["epoch"], "epochs": len(state.history),
            "wall_time_s": state.wall_time_s, "n_params": sum(p.numel() for p in model.parameters()),
        }
        images = calibrate_batch_norm(model, self.x_train)  # for every later evaluation
        if images:
            if self.writer:
                save_batch_norm_statistics(self.out_dir / BATCH_NORM_FILE, model, images)
            metrics["batch_norm_statistics"] = {"file": BATCH_NORM_FILE, "images": images}
        if data.test is not None:
            test_loss, test_acc = evaluate(model, *self._test_set(), self.loss_fn)
            metrics.update(test_accuracy=test_acc, test_loss=test_loss)
        if self.multilevel:
            metrics["levels"] = [dict(record) for record in state.levels]
            if data.test is not None:
                self._level_tests(metrics["levels"])
        metrics.update(dataset=data.name, config=self.config.model_dump(mode="json"), stablenet_version=__version__)
        if self.writer:
            write_json(self.out_dir / "metrics.json", metrics)
        self.close_logs()
        self.parallel.close()
        return metrics

    def close_logs(self) -> None:
        """Close the training logs (training.log), if open."""
        if self.logs is not None:
            self.logs.close()
            self.logs = None

    def _test_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        test = self.data.test
        return test.x.to(self.device, self.dtype), test.y.to(self.device)

    def _level_tests(self, levels: list[dict[str, Any]]) -> None:
        """The test accuracy of every level's best weights (``best-level-L.safetensors``), into its record."""
        data = self.data
        for record in levels:
            coarse = build_model(self.config, data.in_features, data.n_classes, level=record["level"],
                                 image_shape=data.image_shape)
            load_weights(self.out_dir / f"best-level-{record['level']}.safetensors", coarse)
            calibrate_batch_norm(coarse, self.x_train)
            record["test_accuracy"] = evaluate(coarse, *self._test_set(), self.loss_fn)[1]


def _progress_bar(enabled: bool, total: int, initial: int):
    """A tqdm bar over the batches of the whole run, or None."""
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="batch", dynamic_ncols=True, desc="training")
