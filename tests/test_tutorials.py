"""The tutorials in docs/tutorials: the seven scripts, each with its generated notebook, up to date.

The notebooks themselves are executed by ``pytest --nbmake`` (``docs/tutorials`` is in the
testpaths of pyproject.toml); this file checks that what is executed is what the scripts say.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parents[1] / "docs" / "tutorials"
EXPECTED = [
    "01_resnet_is_euler",
    "02_antisymmetric_hamiltonian",
    "03_training_peaks",
    "04_gradients",
    "05_multilevel_and_newton",
    "06_layer_parallel_mgrit",
    "07_your_own_network",
]


def _sync():
    spec = importlib.util.spec_from_file_location("tutorials_sync", TUTORIALS / "sync.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_seven_tutorials_and_nothing_else():
    assert [p.stem for p in sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))] == EXPECTED
    assert [p.stem for p in sorted(TUTORIALS.glob("*.ipynb"))] == EXPECTED
    assert [p.stem for p in _sync().scripts()] == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_is_generated_from_its_script(name):
    script, notebook = TUTORIALS / f"{name}.py", TUTORIALS / f"{name}.ipynb"
    assert script.exists() and notebook.exists()
    expected = _sync().notebook_text(script)
    assert notebook.read_text(encoding="utf-8") == expected, (
        f"{notebook.name} is not what jupytext makes of {script.name} (hand-edited or stale): "
        "run python docs/tutorials/sync.py")


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_is_stored_without_outputs_and_seeds_itself(name):
    cells = json.loads((TUTORIALS / f"{name}.ipynb").read_text(encoding="utf-8"))["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    source = "".join("".join(c["source"]) for c in code)
    assert "torch.manual_seed(" in source and "torch.set_num_threads(1)" in source
    assert "assert " in source                      # it checks what it claims
    assert any(c["cell_type"] == "markdown" for c in cells)
