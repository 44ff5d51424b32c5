"""Checkpoints: tensors in safetensors, everything else in JSON, written atomically.

A checkpoint is a pair

* ``checkpoint-EPOCH.safetensors``: every tensor (model weights, optimizer state, RNG state);
* ``checkpoint.json``: format tag, the safetensors file name and its SHA-256, and the rest of the
  state (epoch, history, scheduler state, …) with tensors replaced by ``{"__tensor__": key}``.

The safetensors file is written first under a new name, then ``checkpoint.json`` is replaced
atomically, then older tensor files are removed; a crash at any point leaves a consistent
checkpoint.  Loading verifies the tag and the hash, so a truncated or foreign file gives a clear
:class:`CheckpointError` instead of an error deep inside torch.  Nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .io import atomic_write_bytes, write_json

FORMAT = "stablenet-checkpoint/1"
INDEX = "checkpoint.json"


class CheckpointError(ValueError):
    """A checkpoint or weights file that is missing, truncated, corrupted or not stablenet's."""


def split_tensors(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """A JSON-able copy of ``obj`` with each tensor moved into ``tensors`` under a unique key."""
    if isinstance(obj, torch.Tensor):
        key = f"{prefix}"
        tensors[key] = obj.detach().cpu().contiguous().clone()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        if not all(isinstance(k, (str, int)) for k in obj):
            raise TypeError(f"cannot store a dict with keys {list(obj)[:3]} at {prefix}")
        return {"__dict__": [[k, split_tensors(v, f"{prefix}.{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return [split_tensors(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} at {prefix} in a checkpoint")


def join_tensors(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`split_tensors`."""
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__dict__" in obj:
            return {k: join_tensors(v, tensors) for k, v in obj["__dict__"]}
        return {k: join_tensors(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [join_tensors(v, tensors) for v in obj]
    return obj


def save_checkpoint(directory: str | Path, state: dict[str, Any], tag: str) -> Path:
    """Write ``state`` (nested dicts/lists of tensors and JSON values) as checkpoint ``tag``."""
    directory = Path(directory)
    tensors: dict[str, torch.Tensor] = {}
    meta = split_tensors(state, "s", tensors)
    blob = st_save(tensors)
    name = f"checkpoint-{tag}.safetensors"
    atomic_write_bytes(directory / name, blob)
    write_json(directory / INDEX, {"format": FORMAT, "tensors": name,
                                   "sha256": hashlib.sha256(blob).hexdigest(), "state": meta})
    for old in directory.glob("checkpoint-*.safetensors"):
        if old.name != name:
            old.unlink(missing_ok=True)
    return directory / INDEX


def load_checkpoint(directory: str | Path) -> dict[str, Any]:
    """Read the checkpoint in ``directory``; :class:`CheckpointError` if it is not a valid one."""
    directory = Path(directory)
    index_path = directory / INDEX
    try:
        index = json.loads(index_path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint in {str(directory)!r} (missing {INDEX})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{index_path} is not a stablenet checkpoint index: {exc}") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise CheckpointError(f"{index_path} is not a stablenet checkpoint (format tag {FORMAT!r} missing)")
    tensor_path = directory / str(index.get("tensors"))
    try:
        blob = tensor_path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint tensors {tensor_path} are missing") from None
    if hashlib.sha256(blob).hexdigest() != index.get("sha256"):
        raise CheckpointError(f"checkpoint tensors {tensor_path} are truncated or corrupted (hash mismatch)")
    return join_tensors(index["state"], _load_safetensors(blob, tensor_path))


def _load_safetensors(blob: bytes, path: Path) -> dict[str, torch.Tensor]:
    try:
        return st_load(blob)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is not a valid safetensors file: {exc}") from None


def state_dict_copy(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of ``module``'s state dict (what a weights file holds)."""
    return {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}


def save_state_dict(path: str | Path, tensors: dict[str, torch.Tensor],
                    metadata: dict[str, str] | None = None) -> Path:
    """A state dict (of CPU tensors) as a stablenet weights file, atomically."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    return atomic_write_bytes(path, st_save(tensors, metadata={"format": "stablenet-weights/1", **(metadata or {})}))


def save_weights(path: str | Path, module: torch.nn.Module, metadata: dict[str, str] | None = None) -> Path:
    """A module's state dict as a safetensors file, atomically."""
    return save_state_dict(path, state_dict_copy(module), metadata)


def weights_metadata(path: str | Path) -> dict[str, str]:
    """The metadata (string → string) of a safetensors weights file, read from its header only."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            size = int.from_bytes(head, "little") if len(head) == 8 else -1
            header = fh.read(size) if 0 < size <= 100_000_000 else b""
    except FileNotFoundError:
        raise CheckpointError(f"weights file {path} does not exist") from None
    meta = None
    if header and len(header) == size:
        try:
            parsed = json.loads(header)
        except (json.JSONDecodeError, UnicodeDecodeError):
            parsed = None
        if isinstance(parsed, dict):
            meta = parsed.get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path} is not a valid safetensors file (unreadable header)")
    return {str(k): str(v) for k, v in meta.items()}


def load_weights(path: str | Path, module: torch.nn.Module) -> None:
    """Load a safetensors state dict into ``module``; clear errors for foreign or mismatched files."""
    path = Path(path)
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"weights file {path} does not exist") from None
    tensors = _load_safetensors(blob, path)
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{path} does not fit this model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for key, value in tensors.items():
        if value.shape != expected[key].shape:
            raise CheckpointError(f"{path}: {key} has shape {tuple(value.shape)}, the model expects "
                                  f"{tuple(expected[key].shape)}")
    module.load_state_dict(tensors)


BATCH_NORM_FORMAT = "stablenet-batch-norm-statistics/1"


def save_batch_norm_statistics(path: str | Path, model, images: int) -> Path:
    """A calibrated :class:`~stablenet.conv_models.ConvODENet`'s population batch-norm statistics
    (``mean.I``/``var.I`` in evaluation order) and the state grids they belong to, atomically."""
    stats = model.batch_norm_statistics
    if stats is None:
        raise ValueError("the model has no batch-norm population statistics (call calibrate_batch_norm)")
    tensors = {}
    for i, (mean, var) in enumerate(stats):
        tensors[f"mean.{i}"] = mean.detach().cpu().contiguous().clone()
        tensors[f"var.{i}"] = var.detach().cpu().contiguous().clone()
    meta = {"format": BATCH_NORM_FORMAT, "grid": json.dumps(model.batch_norm_grid), "images": str(images)}
    return atomic_write_bytes(path, st_save(tensors, metadata=meta))


def load_batch_norm_statistics(path: str | Path, model) -> int:
    """Install the statistics of :func:`save_batch_norm_statistics` in ``model``; returns the
    number of images they were computed from.  Clear errors for foreign or mismatched files."""
    path = Path(path)
    meta = weights_metadata(path)
    if meta.get("format") != BATCH_NORM_FORMAT:
        raise CheckpointError(f"{path} is not a stablenet batch-norm statistics file "
                              f"(format {meta.get('format')!r}, expected {BATCH_NORM_FORMAT!r})")
    tensors = _load_safetensors(path.read_bytes(), path)
    n = len(tensors) // 2
    if sorted(tensors) != sorted([f"mean.{i}" for i in range(n)] + [f"var.{i}" for i in range(n)]):
        raise CheckpointError(f"{path}: expected tensors mean.0, var.0, …, got {sorted(tensors)[:4]}")
    try:
        grid, images = json.loads(meta["grid"]), int(meta["images"])
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"{path}: unreadable metadata ({exc})") from None
    model.set_batch_norm_statistics([(tensors[f"mean.{i}"], tensors[f"var.{i}"]) for i in range(n)], grid)
    return images
