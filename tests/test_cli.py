"""The command line: the phase-plane experiment (the README's main job) and clean errors."""

import json
import subprocess
import sys

from stablenet.cli import main
from stablenet.experiments import EXPERIMENTS


def test_phase_plane_experiment_writes_figures_and_supported_claims(tmp_path, capsys):
    assert main(["experiment", "phase-plane", "--quick", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert all(results["claims"].values()), results["claims"]
    assert results["euler"]["K_plus"]["distance_ratio"][0] > 10
    assert max(results["euler"]["K_minus"]["distance_ratio"]) < 0.05
    for name in results["figures"]:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "phase-plane: done" in capsys.readouterr().out


def test_unknown_experiment_is_one_line_and_exit_2():
    proc = subprocess.run([sys.executable, "-m", "stablenet.cli", "experiment", "nope"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "stablenet: error: unknown experiment 'nope'; choose one of " + str(sorted(EXPERIMENTS)) + " (stablenet experiment --list)"]


def test_verlet_longterm_quick(tmp_path):
    from stablenet.experiments import verlet_longterm

    results = verlet_longterm.run(tmp_path, quick=True)
    assert list(results["networks"]) == ["20", "50", "100"]
    assert all(results["claims"].values())
    assert results["networks"]["100"]["max_norm"] < 0.6
    assert (tmp_path / "verlet_longterm.png").read_bytes()[:4] == b"\x89PNG"


def test_experiment_list_names_every_experiment(capsys):
    from stablenet.experiments import EXPERIMENTS

    assert main(["experiment", "--list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.strip().splitlines()]
    assert listed == list(EXPERIMENTS)
