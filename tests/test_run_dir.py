"""Run directories cannot lose a user's data (issue 15): only marked folders are overwritten and only
stablenet's files in them, one writer at a time, resume checks everything before the first epoch,
paths stored absolute, files that respect the umask, errors that say what to do."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from stablenet.app import rundir
from stablenet.app.checkpoint import load_checkpoint, save_checkpoint
from stablenet.app.cli import main
from stablenet.app.rundir import RunDirectoryError
from stablenet.app.training import TrainingError, train

from helpers import small_config, small_raw

CONFIG = textwrap.dedent("""\
    seed = 3
    [data]
    name = "peaks"
    options = { n_train_per_class = 40, n_val_per_class = 20, n_test_per_class = 10 }
    [model]
    opening = "duplicate"
    [[model.blocks]]
    dynamics = "hamiltonian"
    width = 4
    T = 2.0
    steps = 4
    method = "verlet"
    [training]
    epochs = 2
    batch_size = 50
    lr = 0.02
    threads = 1
    """)


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative path → SHA-256), folders included as '<dir>'."""
    return {str(p.relative_to(folder)): ("<dir>" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(folder.rglob("*"))}


def foreign_folder(path: Path) -> Path:
    """A folder that merely holds a config.json (a Hugging Face model folder, a JS project)."""
    path.mkdir(parents=True)
    (path / "config.json").write_text('{"model_type": "bert"}')
    (path / "pytorch_model.bin").write_bytes(os.urandom(64))
    (path / "tokenizer").mkdir()
    (path / "tokenizer" / "vocab.txt").write_text("hello\nworld\n")
    return path


def cli(*args, cwd=None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stablenet.app.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, **(env or {})})


@pytest.fixture
def config_file(tmp_path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(CONFIG)
    return path


# -- 1. data loss --------------------------------------------------------------------------------------
def test_overwrite_refuses_a_folder_that_only_holds_a_config_json(tmp_path, config_file, capsys):
    folder = foreign_folder(tmp_path / "hf-model")
    before = snapshot(folder)
    assert main(["train", str(config_file), "--out", str(folder), "--overwrite", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a stablenet run directory" in err and "touched" in err
    assert snapshot(folder) == before


@pytest.mark.parametrize("where", ["current", "parent", "home"])
def test_overwrite_never_clears_the_current_folder_its_parents_or_home(tmp_path, config_file, monkeypatch, where):
    run = tmp_path / "outer" / "run"
    train(small_config(epochs=1), run, progress=False)  # a genuine, marked run directory
    (run / "notes.txt").write_text("mine")
    inner = run / "sub"
    inner.mkdir()
    if where == "current":
        monkeypatch.chdir(run)
        out = "."
    elif where == "parent":
        monkeypatch.chdir(inner)
        out = ".."
    else:
        monkeypatch.setenv("HOME", str(run))
        out = str(run)
    before = snapshot(run)
    code = main(["train", str(config_file), "--out", out, "--overwrite", "--quiet"])
    assert code == 2
    assert snapshot(run) == before


def test_overwrite_of_a_run_removes_only_stablenets_files(tmp_path):
    run = tmp_path / "run"
    train(small_config(epochs=3), run, progress=False)
    (run / "notes.txt").write_text("observations")
    (run / "mine").mkdir()
    (run / "mine" / "data.csv").write_text("1,2\n")
    (run / "analysis").mkdir()
    (run / "analysis" / "stability.json").write_text("{}")  # stablenet's
    (run / "analysis" / "my-figure.svg").write_text("<svg/>")  # the user's, in stablenet's folder
    (run / "robustness").mkdir()
    for name in ("robustness.json", "accuracy.png", "examples.png"):   # stablenet robustness's only
        (run / "robustness" / name).write_text("stale")
    train(small_config(epochs=1), run, overwrite=True, progress=False)
    assert not (run / "robustness").exists()                             # a stale study is not kept
    assert (run / "notes.txt").read_text() == "observations"
    assert (run / "mine" / "data.csv").read_text() == "1,2\n"
    assert (run / "analysis" / "my-figure.svg").exists() and not (run / "analysis" / "stability.json").exists()
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-00001.safetensors"]
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 1
    assert rundir.is_run_dir(run)


def test_clear_refuses_unmarked_and_protected_folders(tmp_path, monkeypatch):
    folder = foreign_folder(tmp_path / "f")
    before = snapshot(folder)
    with pytest.raises(RunDirectoryError, match="not a stablenet run directory"):
        rundir.clear(folder)
    rundir.mark(folder)
    monkeypatch.chdir(folder)
    with pytest.raises(RunDirectoryError, match="it is the current folder"):
        rundir.clear(Path("."))
    assert {k: v for k, v in snapshot(folder).items() if k != rundir.MARKER} == before


def test_a_foreign_folder_is_refused_without_overwrite_too_and_nothing_is_printed_as_started(tmp_path, config_file):
    folder = foreign_folder(tmp_path / "project")
    before = snapshot(folder)
    done = cli("train", config_file, "--out", folder, "--quiet")
    assert done.returncode == 2
    assert done.stdout == ""  # no "training peaks -> DIR" before a refusal
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert snapshot(folder) == before


def test_a_refused_new_run_leaves_no_folder_behind(tmp_path, config_file):
    out = tmp_path / "new"
    done = cli("train", config_file, "--out", out, "--set", "data.name=nosuchdata", "--quiet")
    assert done.returncode == 2
    assert not out.exists()
    with pytest.raises(TrainingError, match="non-finite loss .* no epoch completed, so no checkpoint was written"):
        train(small_config(optimizer="sgd", lr=1e30, momentum=0.0), tmp_path / "diverge", progress=False)


# -- 2. one writer ---------------------------------------------------------------------------------------
LOCK_AND_WAIT = ("import sys, time; from stablenet.app.rundir import lock\n"
                 "with lock(sys.argv[1], create=True):\n"
                 "    print('locked', flush=True); time.sleep(float(sys.argv[2]))\n")


def test_the_lock_excludes_another_process_and_a_killed_holder_frees_it(tmp_path):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", LOCK_AND_WAIT, str(run), "60"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirectoryError, match=rf"in use by another stablenet command \(pid {holder.pid} "):
            with rundir.lock(run):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (run / rundir.LOCK).exists()  # the dead holder's lock file is still there …
    with rundir.lock(run):  # … and free to take: the kernel released the flock with the process
        with rundir.lock(run):  # re-entrant within one process
            pass


def test_two_trainings_on_one_folder_exactly_one_writes(tmp_path, config_file):
    run = tmp_path / "run"
    other = tmp_path / "other.toml"
    other.write_text(CONFIG.replace("epochs = 2", "epochs = 400").replace("seed = 3", "seed = 5"))
    slow = subprocess.Popen([sys.executable, "-m", "stablenet.app.cli", "train", str(other), "--out", str(run),
                             "--overwrite", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (run / "checkpoint.json").exists():  # the first run is under way
            assert slow.poll() is None and time.monotonic() < deadline, slow.stderr.read() if slow.poll() else "slow"
            time.sleep(0.05)
        second = cli("train", config_file, "--out", run, "--overwrite", "--quiet")
        resumed = cli("train", other, "--out", run, "--resume", "--quiet")
    finally:
        slow.wait(timeout=300)
    assert slow.returncode == 0, slow.stderr
    for refused in (second, resumed):
        assert refused.returncode == 2
        assert "in use by another stablenet command" in refused.stderr and refused.stderr.count("\n") == 1
    # the folder is the first run's, consistently
    config = json.loads((run / "config.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    history = json.loads((run / "history.json").read_text())
    assert config["seed"] == 5 and config["training"]["epochs"] == 400
    assert metrics["config"] == config and metrics["epochs"] == len(history) == 400


# -- 4. resume checks everything first ------------------------------------------------------------------
def _interrupted(tmp_path, monkeypatch, epochs_done=2, total=4):
    """A run of ``total`` epochs stopped after ``epochs_done`` (a crash right after the checkpoint)."""
    from stablenet.app import training

    run = tmp_path / "run"
    save = training.save_checkpoint
    count = []

    def save_then_die(*args, **kwargs):
        path = save(*args, **kwargs)
        count.append(1)
        if len(count) == epochs_done:
            raise KeyboardInterrupt
        return path

    monkeypatch.setattr(training, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(small_config(epochs=total), run, progress=False)
    monkeypatch.setattr(training, "save_checkpoint", save)
    return run


@pytest.mark.parametrize("damage", ["truncated", "missing", "garbage"])
def test_resume_rebuilds_damaged_best_weights_from_the_checkpoint(tmp_path, monkeypatch, damage):
    reference = train(small_config(epochs=4), tmp_path / "reference", progress=False)
    run = _interrupted(tmp_path, monkeypatch)
    best = run / "best.safetensors"
    if damage == "truncated":
        best.write_bytes(best.read_bytes()[:100])
    elif damage == "missing":
        best.unlink()
    else:
        best.write_bytes(b"\x00" * 10)
    metrics = train(small_config(epochs=4), run, resume=True, progress=False)
    drop = {"wall_time_s"}
    assert {k: v for k, v in metrics.items() if k not in drop} == {k: v for k, v in reference.items() if k not in drop}
    assert best.read_bytes() == (tmp_path / "reference" / "best.safetensors").read_bytes()


def test_resume_refuses_at_once_when_best_weights_cannot_be_rebuilt(tmp_path, monkeypatch):
    from stablenet.app import training

    run = _interrupted(tmp_path, monkeypatch)
    saved = load_checkpoint(run)
    del saved["best_model"]  # a checkpoint written before stablenet kept the best weights in it
    save_checkpoint(run, saved, tag="00002")
    (run / "best.safetensors").write_bytes(b"\x00" * 10)
    epochs = []
    monkeypatch.setattr(training, "evaluate", lambda *a, **k: epochs.append(1) or (0.0, 0.0))
    with pytest.raises(TrainingError, match=r"cannot resume .* start again with --overwrite"):
        train(small_config(epochs=4), run, resume=True, progress=False)
    assert epochs == []  # refused before the first epoch
    assert len(load_checkpoint(run)["history"]) == 2  # and nothing changed


def test_resume_names_every_differing_key(tmp_path, monkeypatch):
    run = _interrupted(tmp_path, monkeypatch)
    with pytest.raises(TrainingError) as info:
        train(small_config(epochs=4, lr=0.5, batch_size=20), run, resume=True, progress=False)
    message = str(info.value)
    assert "training.lr: 0.02 in the run, 0.5 now" in message
    assert "training.batch_size: 50 in the run, 20 now" in message


# -- 5. paths ----------------------------------------------------------------------------------------------
def test_relative_data_dir_is_stored_absolute_and_ignored_by_the_resume_check(tmp_path, monkeypatch):
    from stablenet.app.config import parse_config

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    raw = small_raw()
    raw["data"]["data_dir"] = "data"  # peaks ignores it; the path handling is what is tested
    raw["training"]["epochs"] = 1
    run = tmp_path / "run"
    first = train(parse_config(raw), run, progress=False)
    stored = json.loads((run / "config.json").read_text())["data"]["data_dir"]
    assert stored == str((tmp_path / "data").resolve())
    raw["data"]["data_dir"] = str(tmp_path / "data")  # the same folder, written absolutely
    again = train(parse_config(raw), run, resume=True, progress=False)
    assert again["val_accuracy"] == first["val_accuracy"]
    raw["data"]["data_dir"] = str(tmp_path / "moved")  # data moved: not a change of the run
    train(parse_config(raw), run, resume=True, progress=False)


def test_evaluate_plot_analyze_take_data_dir(tmp_path, capsys):
    run = tmp_path / "run"
    train(small_config(epochs=1), run, progress=False)
    capsys.readouterr()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.chdir(elsewhere)
    try:
        assert main(["evaluate", str(run), "--data-dir", str(elsewhere)]) == 0
        assert json.loads(capsys.readouterr().out)["split"] == "test"
        assert main(["plot", str(run), "--data-dir", str(elsewhere)]) == 0
        assert main(["analyze", str(run), "--samples", "5", "--data-dir", str(elsewhere)]) == 0
    finally:
        os.chdir(Path(__file__).parent)
    assert (run / "analysis" / "stability.json").exists()


# -- 6. clear errors ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, expected", [
    (["analyze", "RUN", "--samples", "-3"], "argument --samples: expected an integer >= 1, got -3"),
    (["analyze", "RUN", "--samples", "0"], "argument --samples: expected an integer >= 1, got 0"),
    (["analyze", "RUN", "--crop", "x"], "argument --crop: expected an integer >= 1, got 'x'"),
    (["evaluate", "RUN", "--steps", "0"], "argument --steps: expected an integer >= 1, got 0"),
])
def test_bad_counts_are_one_line_errors(tmp_path, args, expected):
    done = cli(*[str(tmp_path) if a == "RUN" else a for a in args])
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and expected in done.stderr


@pytest.mark.parametrize("override, key", [("training.lr=inf", "training.lr"),
                                            ("seed=99999999999999999999", "seed")])
def test_out_of_range_values_are_refused_before_anything_is_written(tmp_path, config_file, override, key):
    out = tmp_path / "run"
    done = cli("train", config_file, "--out", out, "--set", override, "--quiet")
    assert done.returncode == 2 and key in done.stderr and done.stderr.count("\n") == 1
    assert done.stdout == "" and not out.exists()


# -- 7. permissions -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_run_files_respect_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        train(small_config(epochs=1), tmp_path / "run", progress=False)
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "run").iterdir() if p.is_file()]
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in files} == {p.name: oct(mode) for p in files}


def test_training_threads_hold_for_the_run_only(tmp_path):
    import torch

    before = torch.get_num_threads()
    train(small_config(epochs=1, threads=before + 1), tmp_path / "run", progress=False)
    assert torch.get_num_threads() == before
