"""The command line: the phase-plane experiment (the README's main job) and clean errors."""

import json
import subprocess
import sys

import pytest

from stablenet.app import cli
from stablenet.app.cli import main
from stablenet.app.experiments import EXPERIMENTS

from helpers import assert_cli_error, assert_png


def test_phase_plane_experiment_writes_figures_and_supported_claims(tmp_path, capsys):
    assert main(["experiment", "phase-plane", "--quick", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    # Fig. 2(d) "preserved" and 2(e, f) "stable" are refuted by forward Euler's |1 + ih| growth
    verdicts = [c["verdict"] for c in results["claims"]]
    assert verdicts == ["supported"] * 4 + ["refuted", "supported", "refuted"], verdicts
    assert results["euler"]["K_plus"]["distance_ratio"][0] > 10
    assert max(results["euler"]["K_minus"]["distance_ratio"]) < 0.05
    for name in results["figures"]:
        assert_png(tmp_path / name)
    assert "phase-plane: done" in capsys.readouterr().out


def test_unknown_experiment_is_one_line_and_exit_2():
    proc = subprocess.run([sys.executable, "-m", "stablenet.app.cli", "experiment", "nope"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert assert_cli_error(proc.stderr) == ("stablenet: error: unknown experiment 'nope'; choose one of "
                                             + str(sorted(EXPERIMENTS)) + " (stablenet experiment --list)")


def test_experiment_list_names_every_experiment(capsys):
    assert main(["experiment", "--list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.strip().splitlines()]
    assert listed == list(EXPERIMENTS)


def test_config_docs_lists_every_section_and_key(capsys):
    """`stablenet config-docs` prints the reference: a heading per table of the schema, every key
    of every table, every data set."""
    from pydantic import BaseModel

    from stablenet.app.config import Config
    from stablenet.data import DATASETS

    assert main(["config-docs"]) == 0
    text = capsys.readouterr().out
    headings = [line for line in text.splitlines() if line.startswith("### ")]

    def table(annotation):
        """The schema model of a table-valued key (Optional[...] and list[...] unwrapped), else None."""
        for a in (annotation, *getattr(annotation, "__args__", ())):
            if isinstance(a, type) and issubclass(a, BaseModel):
                return a
        return None

    def tables(model, prefix):
        """(dotted path, model) of every table under ``model``."""
        for name, field in model.model_fields.items():
            if (inner := table(field.annotation)) is not None:
                path = f"{prefix}.{name}" if prefix else name
                yield path, inner
                yield from tables(inner, path)

    found = list(tables(Config, ""))
    assert {p for p, _ in found} == {"data", "data.augment", "model", "model.blocks", "training",
                                     "training.adversarial", "multilevel", "parallel"}
    for path, model in [("top level", Config)] + found:
        assert any(path in h for h in headings), (path, headings)
        for key, field in model.model_fields.items():
            if table(field.annotation) is None:
                assert f"| `{key}` |" in text, f"{path}.{key}"
    for name in DATASETS:
        assert f"| `{name}` |" in text, name


def test_version_prints_the_package_version(capsys):
    from importlib.metadata import version

    import stablenet

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"stablenet {stablenet.__version__}\n"
    assert stablenet.__version__ == version("stablenet")


@pytest.mark.parametrize("command,argv", [("_config_docs", ["config-docs"]),
                                          ("_train", ["train", "config.toml"])])
def test_ctrl_c_exits_with_130(monkeypatch, capsys, command, argv):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, command, interrupted)
    assert main(argv) == 130
    assert capsys.readouterr().err == "stablenet: interrupted\n"
