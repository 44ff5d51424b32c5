"""A run directory written by stablenet 0.1.0 before run-directory markers and best weights in the
checkpoint (tests/data/run-0.1.0-interrupted: the tiny peaks config in its config.toml, stopped
after epoch 2 of 3 by the code of commit 4d05849) still evaluates, plots, analyses and resumes to
exactly the metrics that code gave uninterrupted (tests/data/run-0.1.0-uninterrupted.json)."""

import json
import shutil
from pathlib import Path

import pytest

from stablenet.app import rundir
from stablenet.app.checkpoint import load_checkpoint
from stablenet.app.cli import main

DATA = Path(__file__).parent / "data"


@pytest.fixture
def old_run(tmp_path) -> Path:
    run = tmp_path / "old"
    shutil.copytree(DATA / "run-0.1.0-interrupted", run)
    return run


def test_an_old_run_counts_as_a_run_directory(old_run):
    assert not (old_run / rundir.MARKER).exists()
    assert rundir.is_run_dir(old_run)


def test_an_old_run_evaluates_plots_and_analyses(old_run, capsys):
    assert main(["evaluate", str(old_run), "--split", "val"]) == 0
    result = json.loads(capsys.readouterr().out)
    # the best weights' own figure (the crash came after the checkpoint, before history.json)
    assert result["accuracy"] == load_checkpoint(old_run)["best"]["val_accuracy"]
    assert main(["plot", str(old_run)]) == 0
    assert main(["analyze", str(old_run), "--samples", "5"]) == 0
    assert (old_run / "curves.png").exists() and (old_run / "analysis" / "stability.json").exists()


def test_an_old_run_resumes_to_the_metrics_of_the_old_code(old_run, capsys):
    expected = json.loads((DATA / "run-0.1.0-uninterrupted.json").read_text())
    assert main(["train", str(old_run / "config.toml"), "--out", str(old_run), "--resume", "--quiet"]) == 0
    metrics = json.loads((old_run / "metrics.json").read_text())
    assert {k: metrics[k] for k in expected["metrics"]} == expected["metrics"]
    assert json.loads((old_run / "history.json").read_text()) == expected["history"]


def test_an_old_run_can_be_overwritten(old_run):
    (old_run / "notes.txt").write_text("mine")
    assert main(["train", str(old_run / "config.toml"), "--out", str(old_run), "--overwrite", "--quiet",
                 "--set", "training.epochs=1"]) == 0
    assert (old_run / "notes.txt").read_text() == "mine" and (old_run / rundir.MARKER).exists()
    assert json.loads((old_run / "metrics.json").read_text())["epochs"] == 1
