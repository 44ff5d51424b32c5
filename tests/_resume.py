"""Shared kill-and-resume check: a run interrupted right after a checkpoint and resumed must end
with exactly the metrics and history of an uninterrupted run (tests of several trainers use it)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stablenet.app import training
from stablenet.app.checkpoint import load_checkpoint
from stablenet.app.training import train


def without_times(metrics):
    """metrics.json without its wall times (the only entries two equal runs may differ in)."""
    out = {k: v for k, v in metrics.items() if k != "wall_time_s"}
    if "levels" in metrics:
        out["levels"] = [{k: v for k, v in r.items() if k != "wall_time_s"} for r in metrics["levels"]]
    return out


def interrupted_run_resumes_exactly(cfg, tmp_path, monkeypatch, stop_after: int, check_checkpoint=None):
    """Train ``cfg`` uninterrupted, then again dying right after the ``stop_after``-th checkpoint,
    resume it and assert that metrics (but wall times) and history equal the uninterrupted run's.
    ``check_checkpoint(saved, run_dir)`` inspects the state left at the interruption."""
    reference = train(cfg, tmp_path / "reference", progress=False)
    save = training.save_checkpoint
    calls = []

    def save_then_die(*args, **kwargs):
        path = save(*args, **kwargs)
        calls.append(1)
        if len(calls) == stop_after:
            raise KeyboardInterrupt  # the process dies right after this checkpoint
        return path

    run = tmp_path / "killed"
    monkeypatch.setattr(training, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, run, progress=False)
    monkeypatch.setattr(training, "save_checkpoint", save)
    saved = load_checkpoint(run)
    assert saved["epoch"] == stop_after
    if check_checkpoint is not None:
        check_checkpoint(saved, run)
    resumed = train(cfg, run, resume=True, progress=False)
    assert without_times(resumed) == without_times(reference)
    assert json.loads((run / "history.json").read_text()) == json.loads(
        (tmp_path / "reference" / "history.json").read_text())


# -- a real SIGKILL of the `stablenet train` process ----------------------------------------------
#: a run of 12 short epochs (peaks, Hamiltonian Verlet) for the kill -9 tests; ``extra`` lines go
#: into its [training] table
KILLED_RUN_CONFIG = (
    'seed = 3\n[data]\nname = "peaks"\noptions = { n_train_per_class = 200, n_val_per_class = 20, '
    'n_test_per_class = 10 }\n[model]\nopening = "duplicate"\n[[model.blocks]]\ndynamics = "hamiltonian"\n'
    'width = 4\nT = 2.0\nsteps = 8\nmethod = "verlet"\n[training]\nepochs = 12\nbatch_size = 20\n'
    'lr = 0.02\nthreads = 1\n')
CLI_ENV = {**os.environ, "PYTHONHASHSEED": "0"}


def cli_train(config_path: Path, out: Path, *options: str) -> subprocess.CompletedProcess:
    """``stablenet train CONFIG --out OUT --quiet [options]`` in a new process."""
    return subprocess.run([sys.executable, "-m", "stablenet.app.cli", "train", str(config_path), "--out", str(out),
                           "--quiet", *options], env=CLI_ENV, capture_output=True, text=True)


def train_and_sigkill(config_path: Path, run: Path, after_epoch: int, timeout: float = 120.0) -> None:
    """Start ``stablenet train`` into ``run`` and SIGKILL it once its history holds ``after_epoch``
    epochs (fails if it finishes first or no epoch appears within ``timeout`` seconds)."""
    proc = subprocess.Popen([sys.executable, "-m", "stablenet.app.cli", "train", str(config_path), "--out", str(run),
                             "--quiet"], env=CLI_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if len(json.loads((run / "history.json").read_text())) >= after_epoch:
                    return
            except (FileNotFoundError, json.JSONDecodeError):
                pass
            if proc.poll() is not None:
                raise AssertionError("training finished before it could be killed")
            time.sleep(0.01)
        raise AssertionError("no checkpoint appeared")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
