"""Run directories: what makes a folder stablenet's, which files in it are stablenet's, and one
writer at a time.

A *run directory* is the folder ``stablenet train --out DIR`` writes.  Three rules keep a user's
data safe in it:

* **Marked.**  The first file stablenet writes into a new run directory is the marker
  ``.stablenet-run.json`` (format tag :data:`MARKER_FORMAT`).  Only a marked folder counts as a
  run directory (one written by stablenet before the marker existed counts too if it holds a
  stablenet checkpoint, whose ``checkpoint.json`` carries its own format tag).
* **Only our files.**  ``--overwrite`` removes the files stablenet writes (:data:`OUTPUTS`) from a
  run directory and nothing else: a user's notes next to the run survive.  It refuses outright
  for an unmarked folder, the current folder, one of its parents, the home folder and ``/``.
* **One writer.**  Commands that write into a run (train and resume, plot, analyze, robustness) hold an
  exclusive :func:`fcntl.flock` on ``.stablenet.lock`` inside it while they write.  The kernel
  drops the lock when its process ends however it ends (``kill -9`` included), so a lock is
  never stale: a lock file left by a dead process is simply free to take.  The lock is re-entrant
  within one process (``stablenet train`` trains and then plots under one lock).

The lock needs POSIX ``flock`` (Linux, macOS); on file systems without it (some network mounts)
taking it fails with a clear error.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Iterator

from .. import __version__
from .io import write_json

#: the marker stablenet writes first into every run directory it creates
MARKER = ".stablenet-run.json"
MARKER_FORMAT = "stablenet-run/1"
#: the lock file (kept after the run: removing it while others may open it would be a race)
LOCK = ".stablenet.lock"

#: every file stablenet writes into a run directory (glob patterns relative to it): what
#: ``--overwrite`` removes.  Temporary files of interrupted atomic writes start with a dot.
OUTPUTS = (
    "config.json", "config.toml", "metrics.json", "history.json", "history.csv",
    "checkpoint.json", "checkpoint-*.safetensors", "best.safetensors", "best-level-*.safetensors",
    "batch_norm_statistics.safetensors",
    "curves.png", "decision_regions.png", "feature_paths.png",  # stablenet plot
    "analysis/stability.json", "analysis/eigenvalues_block*.png", "analysis/sensitivity.png",  # analyze
    "robustness/robustness.json", "robustness/*.png",  # stablenet robustness
    "tensorboard/events.out.tfevents.*",  # training.log = ["tensorboard"]
    ".*.tmp", "analysis/.*.tmp", "robustness/.*.tmp", "tensorboard/.*.tmp",
)
#: the folders of OUTPUTS, removed by clear when nothing of the user's is left in them
OUTPUT_FOLDERS = ("analysis", "robustness", "tensorboard")

_CHECKPOINT_FORMAT = "stablenet-checkpoint/1"  # checkpoint.FORMAT (not imported: keep this module light)


class RunDirectoryError(RuntimeError):
    """A run directory that cannot be used as asked (not stablenet's, protected, in use)."""


# -- what is a run directory ------------------------------------------------------------------------
def is_run_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder stablenet marked as a run directory (or, written before the
    marker existed, one holding a stablenet checkpoint)."""
    path = Path(path)
    return _format_tag(path / MARKER) == MARKER_FORMAT or _format_tag(path / "checkpoint.json") == _CHECKPOINT_FORMAT


def _format_tag(path: Path) -> str | None:
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return content.get("format") if isinstance(content, dict) else None


def holds_files(path: Path) -> bool:
    """Whether the folder ``path`` holds anything but the lock file."""
    return path.is_dir() and any(entry.name != LOCK for entry in path.iterdir())


def protected_reason(path: str | os.PathLike) -> str | None:
    """Why ``path`` may never be cleared by ``--overwrite`` (None if it may be)."""
    target = Path(path).expanduser().resolve()
    cwd = Path.cwd().resolve()
    if target == cwd:
        return "it is the current folder"
    if target in cwd.parents:
        return "it holds the current folder"
    if target == Path.home().resolve():
        return "it is the home folder"
    if target == Path(target.anchor):
        return "it is the root of the file system"
    return None


def mark(run_dir: Path) -> None:
    """Write the marker that makes ``run_dir`` a stablenet run directory."""
    write_json(run_dir / MARKER, {"format": MARKER_FORMAT, "stablenet_version": __version__,
                                  "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def overwrite_refusal(path: str | os.PathLike) -> str | None:
    """Why ``--overwrite`` may not clear ``path`` (a protected folder, or one stablenet did not
    mark), or None if it may."""
    reason = protected_reason(path)
    if reason is None and not is_run_dir(path):
        reason = f"it is not a stablenet run directory (no {MARKER})"
    return reason


def clear(run_dir: Path) -> list[Path]:
    """Remove stablenet's files (:data:`OUTPUTS`) from the run directory ``run_dir``; every other
    file stays.  Refuses (:class:`RunDirectoryError`, nothing removed) what
    :func:`overwrite_refusal` refuses.  Returns the removed paths."""
    reason = overwrite_refusal(run_dir)
    if reason is not None:
        raise RunDirectoryError(f"refusing to overwrite {run_dir}: {reason}; choose another --out")
    removed = []
    for pattern in OUTPUTS:
        for path in sorted(run_dir.glob(pattern)):
            if path.is_file() or path.is_symlink():
                path.unlink()
                removed.append(path)
    for folder in OUTPUT_FOLDERS:
        with contextlib.suppress(OSError):  # only if nothing of the user's is in it
            (run_dir / folder).rmdir()
    return removed


# -- one writer -----------------------------------------------------------------------------------
_held: dict[Path, list[int]] = {}  # resolved run directory -> [lock file descriptor, depth]


@contextlib.contextmanager
def lock(run_dir: str | os.PathLike, *, create: bool = False) -> Iterator[bool]:
    """Hold the run directory's exclusive lock for the ``with`` body.

    ``create=True`` creates a missing ``run_dir`` (with its parents) first, and removes it again on
    the way out if nothing but the lock was written into it (a refused run leaves no trace).
    Yields whether this call created the folder.  Raises :class:`RunDirectoryError` at once if
    another process holds the lock, naming it.
    """
    run_dir = Path(run_dir)
    created = create and not run_dir.exists()
    if create:
        run_dir.mkdir(parents=True, exist_ok=True)
    elif not run_dir.is_dir():
        raise RunDirectoryError(f"run directory {run_dir} does not exist")
    key = run_dir.resolve()
    if key in _held:  # re-entrant within this process
        _held[key][1] += 1
        try:
            yield created
        finally:
            _held[key][1] -= 1
        return
    fd = _acquire(run_dir)
    _held[key] = [fd, 1]
    try:
        yield created
    finally:
        del _held[key]
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        if created and not holds_files(run_dir):
            with contextlib.suppress(OSError):
                (run_dir / LOCK).unlink()
                run_dir.rmdir()


def _acquire(run_dir: Path) -> int:
    path = run_dir / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown process"
        os.close(fd)
        raise RunDirectoryError(f"run directory {run_dir} is in use by another stablenet command ({holder}); "
                                f"wait for it to end or choose another --out") from None
    except OSError as exc:
        os.close(fd)
        raise RunDirectoryError(f"cannot lock run directory {run_dir} ({exc.strerror}); "
                                f"its file system may not support flock") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
    return fd
