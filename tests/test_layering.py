"""Two floors: the library (stablenet and its sub-packages but stablenet.app) imports nothing of
the application (stablenet.app), and importing it loads neither the application nor the
application's dependencies (pydantic, matplotlib, tqdm)."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import stablenet

PACKAGE = Path(stablenet.__file__).parent
APP = "stablenet.app"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside functions, relative imports resolved."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # from . import submodule
    return found


# stablenet/__main__.py is ``python -m stablenet``, the command: it belongs to the application
LIBRARY = sorted(p for p in PACKAGE.rglob("*.py")
                 if not module_name(p).startswith(APP) and module_name(p) != "stablenet.__main__")


def test_the_layout_has_both_floors():
    names = {module_name(p) for p in LIBRARY}
    assert {"stablenet.block", "stablenet.integrators.base", "stablenet.gradients.base", "stablenet.models",
            "stablenet.conv_models", "stablenet.parallel.mgrit", "stablenet.analysis.jacobian"} <= names
    assert (PACKAGE / "app" / "training.py").exists() and (PACKAGE / "app" / "config" / "__init__.py").exists()


@pytest.mark.parametrize("path", LIBRARY, ids=module_name)
def test_no_library_module_imports_the_application(path):
    above = sorted(m for m in imported_modules(path) if m == APP or m.startswith(APP + "."))
    assert above == [], f"{module_name(path)} imports {above} from the application floor"


def test_imports_are_resolved_by_the_check():
    """The check can fail: the application's own modules are seen importing each other."""
    assert "stablenet.app.config" in imported_modules(PACKAGE / "app" / "training.py")
    assert "stablenet.app.rundir" in imported_modules(PACKAGE / "app" / "training.py")


def test_importing_the_library_loads_no_application_and_none_of_its_dependencies():
    code = ("import sys, json, torch\n"
            "before = set(sys.modules)\n"
            "import stablenet, stablenet.analysis, stablenet.data, stablenet.optim, stablenet.parallel, "
            "stablenet.conv_models\n"
            "print(json.dumps(sorted(set(sys.modules) - before)))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(done.stdout)
    assert any(m.startswith("stablenet.") for m in loaded)  # the probe sees what it imports
    heavy = [m for m in loaded if m.split(".")[0] in ("pydantic", "matplotlib", "tqdm") or m.startswith(APP)]
    assert heavy == []
