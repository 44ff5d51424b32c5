"""The run directory side of training: checking and creating the folder, the checks of a resume,
the best-weights and history files, and reading a run back (:func:`load_run`).

The file formats are those of :mod:`stablenet.app.checkpoint`; the marker, the files stablenet owns
and the one-writer lock are :mod:`stablenet.app.rundir`'s.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
from pathlib import Path
from typing import Any

import torch

from . import rundir
from .checkpoint import (CheckpointError, load_batch_norm_statistics, load_checkpoint, load_weights,
                         save_state_dict, weights_metadata)
from .config import Config, parse_saved_config
from .io import atomic_write_bytes, write_json
from .networks import build_model
from .train_state import TrainState, config_changes

#: the population batch-norm statistics of a convolutional run (see :mod:`stablenet.app.training`)
BATCH_NORM_FILE = "batch_norm_statistics.safetensors"


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss, unusable run directory)."""


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
    if not overwrite:
        if not rundir.is_run_dir(out_dir):
            raise TrainingError(f"{out_dir} already exists and is not a stablenet run directory "
                                f"(no {rundir.MARKER}); nothing in it was touched: choose another --out")
        raise TrainingError(f"run directory {out_dir} already exists; pass --resume to continue it "
                            f"or --overwrite to replace it")
    reason = rundir.overwrite_refusal(out_dir)  # the rule rundir.clear applies
    if reason is not None:
        raise TrainingError(f"refusing to overwrite {out_dir}: {reason}; nothing in it was touched: "
                            f"choose another --out")


def with_absolute_paths(config: Config) -> Config:
    """``config`` with ``data.data_dir`` made absolute (relative to the current folder), so the run
    directory's config.json works from any folder."""
    data_dir = config.data.data_dir
    if data_dir is None or Path(data_dir).is_absolute():
        return config
    absolute = str(Path(data_dir).expanduser().resolve())
    return config.model_copy(update={"data": config.data.model_copy(update={"data_dir": absolute})})


def create_run_dir(out_dir: Path, config: Config, config_text: str | None, *, overwrite: bool) -> None:
    """Make ``out_dir`` a new run's directory: with ``overwrite`` remove stablenet's files of an
    earlier run, then the marker (the first file), ``config.json`` and ``config.toml`` (as given)."""
    if overwrite and rundir.holds_files(out_dir):
        rundir.clear(out_dir)
    rundir.mark(out_dir)  # the first file of a new run: this folder is stablenet's
    write_json(out_dir / "config.json", config.model_dump(mode="json"))
    if config_text is not None:
        atomic_write_bytes(out_dir / "config.toml", config_text.encode())


def write_history(out_dir: Path, history: list[dict[str, float]]) -> None:
    """``history.json`` and ``history.csv``: one row per epoch."""
    write_json(out_dir / "history.json", history)
    buffer = io.StringIO()
    if history:
        writer = csv.DictWriter(buffer, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    atomic_write_bytes(out_dir / "history.csv", buffer.getvalue().encode())


def level_metadata(level: int, model) -> dict[str, str]:
    """Safetensors metadata of a multilevel run's weights: the level and its grids."""
    return {"level": str(level), "steps": json.dumps([b.steps for b in model.blocks]),
            "nt": json.dumps([b.dynamics.nt for b in model.blocks])}


def save_best(out_dir: Path, state: dict[str, torch.Tensor], level: int | None, model) -> None:
    """``best.safetensors`` (and, in a multilevel run, ``best-level-L.safetensors``) from ``state``;
    ``model`` (of that level) names the grids in the metadata."""
    if level is None:
        save_state_dict(out_dir / "best.safetensors", state)
        return
    meta = level_metadata(level, model)
    save_state_dict(out_dir / f"best-level-{level}.safetensors", state, meta)
    save_state_dict(out_dir / "best.safetensors", state, meta)


def read_resume(out_dir: Path, config: Config, level_ends: list[int]) -> dict[str, Any]:
    """The checkpoint of ``out_dir``, checked against ``config`` and the level schedule
    (``level_ends``: the last epoch of every level)."""
    saved = load_checkpoint(out_dir)
    differences = config_changes(saved, config)
    if differences:
        raise TrainingError(f"cannot resume {out_dir}: the configuration differs from the run's "
                            f"({'; '.join(differences)}); resume with the run's configuration "
                            f"({out_dir / 'config.toml'}) or start a new run")
    level = TrainState.level_of(saved)
    done = len(saved["history"])
    expected = bisect.bisect_left(level_ends, max(done, 1)) + 1
    if level != expected:
        raise TrainingError(f"cannot resume {out_dir}: its checkpoint is at level {level!r} after epoch "
                            f"{done}, expected level {expected}")
    return saved


def check_best_weights(out_dir: Path, config: Config, data, saved: dict[str, Any], writer: bool) -> None:
    """Before the first resumed epoch: the best weights the run will end with are usable.

    The current level's best weights are rewritten from the checkpoint, which holds them, so a
    damaged or missing ``best.safetensors`` is rebuilt.  A checkpoint written before stablenet
    stored them there, and the finished levels of a multilevel run, have only their files: each
    must load into its network, or the resume is refused now rather than after the last epoch.
    """
    level = TrainState.level_of(saved)
    multilevel = config.multilevel is not None
    checks = list(range(1, level)) if multilevel else []  # finished levels: only their files hold them
    if saved.get("best_model") is not None:
        if writer:
            model = build_model(config, data.in_features, data.n_classes, level=level if multilevel else None,
                                image_shape=data.image_shape)
            save_best(out_dir, saved["best_model"], level if multilevel else None, model)
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


def _weights_level(path: Path, config: Config) -> int:
    """The multilevel level a weights file was saved at (from its metadata)."""
    levels = config.multilevel.levels
    text = weights_metadata(path).get("level", "")
    if not text.isdigit() or not 1 <= int(text) <= levels:
        raise CheckpointError(f"{path}: metadata 'level' is {text or 'missing'!r}; expected a level in 1..{levels} "
                              f"of this multilevel run")
    return int(text)


def _saved_config(run_dir: Path, data_dir: str | Path | None) -> Config:
    """A run directory's configuration: ``data_dir`` replaces ``data.data_dir``; a run trained on a GPU
    is read back on this machine's CPU when it has no GPU."""
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
        config = with_absolute_paths(config.model_copy(update={
            "data": config.data.model_copy(update={"data_dir": str(data_dir)})}))
    if torch.device(config.training.device).type == "cuda" and not torch.cuda.is_available():
        # a run trained on a GPU is evaluated / plotted / analysed on this machine's CPU
        config = config.model_copy(update={"training": config.training.model_copy(update={"device": "cpu"})})
    return config


def load_run(run_dir: str | Path, *, data_dir: str | Path | None = None):
    """(config, model with the best weights, dataset) of a finished or interrupted run directory.

    For a multilevel run the model is built at the level of ``best.safetensors`` (the finest level
    reached), so evaluate, plots and analysis see the network those weights belong to.
    ``data_dir`` reads the data from another folder than the run's ``data.data_dir`` (data moved,
    or a run from another machine).
    """
    from ..data import load_dataset

    run_dir = Path(run_dir)
    config = _saved_config(run_dir, data_dir)
    data = load_dataset(config.data.name, seed=config.seed, data_dir=config.data.data_dir, **config.data.options)
    # a multilevel run's best weights belong to the level named in their metadata
    level = _weights_level(run_dir / "best.safetensors", config) if config.multilevel is not None else None
    model = build_model(config, data.in_features, data.n_classes, level=level, image_shape=data.image_shape)
    load_weights(run_dir / "best.safetensors", model)
    if (run_dir / BATCH_NORM_FILE).exists():
        load_batch_norm_statistics(run_dir / BATCH_NORM_FILE, model)
    model.eval()
    return config, model, data
