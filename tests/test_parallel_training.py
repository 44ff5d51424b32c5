"""Layer-parallel (MGRIT) and data-parallel training from a config's [parallel] section.

Serial MGRIT in one process and 2-rank torchrun runs (gloo on 127.0.0.1) must train exactly as
the plain serial trainer does (float64): converged MGRIT gives the discrete forward pass and
gradient, and data parallelism averages the shards' gradients into the whole batch's.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stablenet.app.config import ConfigError, parse_config
from stablenet.app.training import TrainingError, train
from stablenet.app.config import load_config

from _resume import interrupted_run_resumes_exactly

BASE = """
seed = 0
[data]
name = "peaks"
[data.options]
n_train_per_class = 60
n_val_per_class = 20
n_test_per_class = 10
[model]
opening = "duplicate"
[[model.blocks]]
dynamics = "antisymmetric"
width = 4
T = 5.0
steps = 16
nt = 16
method = "rk4"
[training]
epochs = 3
batch_size = 100
optimizer = "adam"
lr = 0.05
threads = 1
dtype = "float64"
"""

PARALLEL = """
[parallel]
layer_ranks = {layer_ranks}
coarsening = 4
max_levels = {max_levels}
tolerance = 1e-13
max_iterations = 30
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def history(run: Path) -> list[dict]:
    return json.loads((run / "history.json").read_text())


@pytest.fixture(scope="module")
def serial_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serial")
    config, _ = load_config(write(tmp, "serial.toml", BASE), [])
    train(config, tmp / "run", progress=False)
    return history(tmp / "run")


def assert_same_training(a, b, tol):
    assert len(a) == len(b) == 3
    for x, y in zip(a, b):
        assert abs(x["train_loss"] - y["train_loss"]) <= tol * abs(x["train_loss"])
        assert abs(x["val_loss"] - y["val_loss"]) <= tol * abs(x["val_loss"])
        assert x["val_accuracy"] == y["val_accuracy"]
    assert b[-1]["train_loss"] < 0.9 * b[0]["train_loss"]  # it trains


def test_serial_mgrit_training_equals_plain_training(tmp_path, serial_run):
    config, _ = load_config(write(tmp_path, "p.toml", BASE + PARALLEL.format(layer_ranks=1, max_levels=3)), [])
    train(config, tmp_path / "run", progress=False)
    assert_same_training(serial_run, history(tmp_path / "run"), 1e-10)


VERLET = ('dynamics = "antisymmetric"', 'dynamics = "hamiltonian"'), ('method = "rk4"', 'method = "verlet"')


def test_serial_mgrit_training_with_verlet_equals_plain_training(tmp_path):
    """MGRIT on the Hamiltonian network's Verlet steps (the two-stream state (y, z) on every time
    point): converged, it trains exactly as sequential stepping does."""
    text = BASE
    for old, new in VERLET:
        text = text.replace(old, new)
    plain, _ = load_config(write(tmp_path, "plain.toml", text), [])
    train(plain, tmp_path / "plain", progress=False)
    layered, _ = load_config(write(tmp_path, "p.toml", text + PARALLEL.format(layer_ranks=1, max_levels=3)), [])
    assert layered.model.blocks[0].method == "verlet" and layered.parallel is not None
    train(layered, tmp_path / "run", progress=False)
    assert_same_training(history(tmp_path / "plain"), history(tmp_path / "run"), 1e-10)


@pytest.mark.parametrize("stop_after", [1, 2], ids=["at-a-level-end", "inside-a-level"])
def test_interrupted_multilevel_parallel_run_resumes_exactly(tmp_path, monkeypatch, stop_after):
    """[parallel] with [multilevel]: MGRIT hierarchies are rebuilt for each level's grid, and a run
    killed after a checkpoint resumes to the uninterrupted run's metrics and history."""
    text = (BASE.replace("epochs = 3\n", "") + PARALLEL.format(layer_ranks=1, max_levels=3)
            + "\n[multilevel]\nlevels = 2\nepochs_per_level = [1, 2]\n")
    config, _ = load_config(write(tmp_path, "p.toml", text), [])

    def at_interruption(saved, run):
        assert saved["level"] == stop_after  # epoch 1 ends level 1, epoch 2 is inside level 2

    interrupted_run_resumes_exactly(config, tmp_path, monkeypatch, stop_after, at_interruption)


def torchrun(tmp_path: Path, config: Path, out: Path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    from stablenet.parallel.launch import free_port
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={free_port()}", "-m", "stablenet", "train", str(config), "--out", str(out), "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.parametrize("layer_ranks,max_levels", [(2, 3), (1, 1)], ids=["layer-parallel", "data-parallel"])
def test_two_rank_torchrun_training_equals_serial(tmp_path, serial_run, layer_ranks, max_levels):
    """2 ranks: MGRIT across the ranks (layer_ranks = 2), or 2 data-parallel groups of one rank
    that split every batch (layer_ranks = 1, sequential stepping): the same training."""
    config = write(tmp_path, "p.toml", BASE + PARALLEL.format(layer_ranks=layer_ranks, max_levels=max_levels))
    proc = torchrun(tmp_path, config, tmp_path / "run")
    assert proc.stdout.count("best validation accuracy") == 1  # only rank 0 reports
    assert_same_training(serial_run, history(tmp_path / "run"), 1e-9)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["config"]["parallel"]["layer_ranks"] == layer_ranks


@pytest.mark.parametrize("extra,message", [
    ('\n[parallel]\nlayer_ranks = 0\n', "parallel.layer_ranks"),
    ('\n[parallel]\nrelaxation = "CF"\n', "parallel.relaxation"),
    ('\n[parallel]\ncoarsening = 1\n', "parallel.coarsening"),
])
def test_parallel_config_errors(extra, message):
    import tomllib
    with pytest.raises(ConfigError, match=message):
        parse_config(tomllib.loads(BASE + extra))


@pytest.mark.parametrize("replace,message", [
    (('optimizer = "adam"', 'optimizer = "gauss_newton"'), "layer-parallel training works with optimizers"),
    (('method = "rk4"', 'method = "ab3"'), r"model.blocks.0.method: 'ab3' with \[parallel\]: MGRIT needs a one-step"),
    (('method = "rk4"', 'method = "rk4"\ngradient = "checkpoint"'), "model.blocks.0.gradient"),
])
def test_parallel_refuses_what_mgrit_cannot_do(replace, message):
    import tomllib
    text = BASE.replace(*replace) + "\n[parallel]\n"
    with pytest.raises(ConfigError, match=message):
        parse_config(tomllib.loads(text))


def test_layer_ranks_without_torchrun_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    config, _ = load_config(write(tmp_path, "p.toml", BASE + PARALLEL.format(layer_ranks=2, max_levels=2)), [])
    with pytest.raises(TrainingError, match=r"torchrun --nproc_per_node=2"):
        train(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()  # nothing written


def test_world_not_divisible_by_layer_ranks(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")
    config, _ = load_config(write(tmp_path, "p.toml", BASE + PARALLEL.format(layer_ranks=2, max_levels=2)), [])
    with pytest.raises(TrainingError, match=r"does not divide the 3 processes"):
        train(config, tmp_path / "run", progress=False)
