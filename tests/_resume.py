"""Shared kill-and-resume check: a run interrupted right after a checkpoint and resumed must end
with exactly the metrics and history of an uninterrupted run (tests of several trainers use it)."""

import json

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
