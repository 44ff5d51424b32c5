"""The state of a training run: what a checkpoint saves after every epoch and a resume restores.

:class:`TrainState` is one dataclass whose fields are exactly the keys of a checkpoint
(:func:`stablenet.app.checkpoint.save_checkpoint`): the plain values (epoch, history, best, …) as
they are, the live training objects (model, optimizer, scheduler, batch-order generator, loss
scaler) by their state dicts.  :meth:`TrainState.to_checkpoint` gives that dictionary;
:meth:`TrainState.from_checkpoint` loads one into freshly built objects of the checkpoint's level
(:meth:`TrainState.level_of`).  Checkpoints written by earlier versions lack the newer keys; they
get the values a new run starts with:

==============  =====================================================================
``level``       1
``levels``      the first level's record with ``[multilevel]``, ``[]`` without
``scaler``      the fresh loss scaler (its state is only saved for float16 training)
``best_model``  ``None``: the best weights are then only in ``best.safetensors``
==============  =====================================================================
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from .checkpoint import CheckpointError, state_dict_copy
from .config import Config, ConfigError, config_differences, parse_saved_config

#: the best-weights record before the first epoch of a level (any accuracy beats it)
NO_BEST: dict[str, Any] = {"val_accuracy": -1.0, "epoch": 0}


def level_record(level: int, grid: list[tuple[int, int]]) -> dict[str, Any]:
    """The metrics of one multilevel level before its first epoch (``grid``: (steps, nt) per block)."""
    return {"level": level, "steps": [steps for steps, _ in grid], "nt": [nt for _, nt in grid], "epochs": 0,
            "val_accuracy": None, "val_loss": None, "train_accuracy": None, "best_epoch": None, "wall_time_s": 0.0}


def config_changes(saved: dict[str, Any], config: Config) -> list[str]:
    """How ``config`` differs from the configuration a checkpoint was written with, one line per key
    (:func:`~stablenet.app.config.config_differences`; keys added since have their defaults)."""
    try:
        raw = parse_saved_config(saved["config"]).model_dump(mode="json")
    except ConfigError:
        raw = saved["config"]
    return config_differences(raw, config.model_dump(mode="json"))


@dataclasses.dataclass
class TrainState:
    """Everything a training run carries from one epoch to the next; the fields are the checkpoint's keys.

    ``epoch`` counts the finished epochs (``len(history)``); ``best`` describes the best weights of
    the current level (``best_model``, a CPU state dict, ``None`` before the first epoch);
    ``levels`` holds one record per multilevel level reached (empty without ``[multilevel]``);
    ``wall_time_s`` is the training time so far.  ``config`` is saved so that a resume can refuse
    another configuration; the state continues under the (equal) configuration it is given.
    """

    config: Config
    epoch: int
    history: list[dict[str, Any]]
    best: dict[str, Any]
    wall_time_s: float
    model: torch.nn.Module
    optimizer: Any  # a torch.optim.Optimizer or a Newton-type optimizer of stablenet.optim
    scheduler: Any | None  # a torch.optim.lr_scheduler, or None for a constant learning rate
    generator: torch.Generator  # the batch order (and augmentation) of every epoch
    level: int
    levels: list[dict[str, Any]]
    scaler: torch.amp.GradScaler
    best_model: dict[str, torch.Tensor] | None

    @classmethod
    def start(cls, config: Config, *, model, optimizer, scheduler, generator: torch.Generator,
              scaler: torch.amp.GradScaler) -> "TrainState":
        """The state before the first epoch: level 1, no history, no best weights yet."""
        levels = [level_record(1, config.level_grids()[0])] if config.multilevel is not None else []
        return cls(config=config, epoch=0, history=[], best=dict(NO_BEST), wall_time_s=0.0, model=model,
                   optimizer=optimizer, scheduler=scheduler, generator=generator, level=1, levels=levels,
                   scaler=scaler, best_model=None)

    @staticmethod
    def level_of(saved: dict[str, Any]) -> int:
        """The level a checkpoint was written at: build the network there before :meth:`from_checkpoint`."""
        return saved.get("level", 1)

    @classmethod
    def from_checkpoint(cls, saved: dict[str, Any], config: Config, *, model, optimizer, scheduler,
                        generator: torch.Generator, scaler: torch.amp.GradScaler) -> "TrainState":
        """The state ``saved`` holds (a :func:`~stablenet.app.checkpoint.load_checkpoint` result),
        loaded into objects built for ``config`` at :meth:`level_of` ``saved``.

        Missing newer keys get the defaults of the module docstring.  :class:`CheckpointError` if the
        checkpoint was written with another configuration (the trainer refuses those earlier, with
        the run directory's name), its epoch is not its number of history rows, or it has a schedule
        state where ``scheduler`` is None (or none where it is not)."""
        changes = config_changes(saved, config)
        if changes:
            raise CheckpointError(f"the checkpoint was written with another configuration: {'; '.join(changes)}")
        if saved["epoch"] != len(saved["history"]):
            raise CheckpointError(f"the checkpoint is after epoch {saved['epoch']} but holds "
                                  f"{len(saved['history'])} history rows; expected one per epoch")
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if (saved["scheduler"] is None) != (scheduler is None):
            raise CheckpointError(f"the checkpoint {'has no' if scheduler is not None else 'has a'} learning-rate "
                                  f"schedule state; expected {'one' if scheduler is not None else 'none'}")
        if scheduler is not None:
            scheduler.load_state_dict(saved["scheduler"])
        generator.set_state(saved["generator"])
        if saved.get("scaler"):
            scaler.load_state_dict(saved["scaler"])
        new = cls.start(config, model=model, optimizer=optimizer, scheduler=scheduler, generator=generator,
                        scaler=scaler)
        return dataclasses.replace(new, epoch=saved["epoch"], history=saved["history"], best=saved["best"],
                                   wall_time_s=saved["wall_time_s"], level=cls.level_of(saved),
                                   levels=saved.get("levels", new.levels), best_model=saved.get("best_model"))

    def to_checkpoint(self) -> dict[str, Any]:
        """The checkpoint of this state: one entry per field, the objects as their state dicts."""
        return {"config": self.config.model_dump(mode="json"), "epoch": self.epoch, "history": self.history,
                "best": self.best, "wall_time_s": self.wall_time_s, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "generator": self.generator.get_state(), "level": self.level, "levels": self.levels,
                "scaler": self.scaler.state_dict(), "best_model": self.best_model}

    def begin_level(self, optimizer, scheduler) -> None:
        """Move on to the next multilevel level, whose (refined) network has ``optimizer`` and
        ``scheduler``: its record is added and the best-weights search restarts."""
        self.level += 1
        self.optimizer, self.scheduler = optimizer, scheduler
        self.best = dict(NO_BEST)
        self.levels.append(level_record(self.level, self.config.level_grids()[self.level - 1]))

    def add_epoch(self, record: dict[str, Any], seconds: float) -> bool:
        """Count a finished epoch (its history row and its training time); keep its weights if they
        are the best of the level.  Returns whether they are."""
        self.epoch = record["epoch"]
        self.history.append(record)
        self.wall_time_s += seconds
        improved = record["val_accuracy"] > self.best["val_accuracy"]
        if improved:
            self.best = {"val_accuracy": record["val_accuracy"], "val_loss": record["val_loss"],
                         "epoch": record["epoch"], "train_accuracy": record["train_accuracy"]}
            self.best_model = state_dict_copy(self.model)
        if self.config.multilevel is not None:
            best = self.best
            self.levels[-1].update(epochs=self.levels[-1]["epochs"] + 1,
                                   wall_time_s=self.levels[-1]["wall_time_s"] + seconds,
                                   val_accuracy=best["val_accuracy"], val_loss=best["val_loss"],
                                   train_accuracy=best["train_accuracy"], best_epoch=best["epoch"])
        return improved
