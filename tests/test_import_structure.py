"""Imports run one way inside the library: no cycles held together by late or TYPE_CHECKING
imports (the gradient modes never import the block; the data loaders never import their
package), and ``import stablenet`` registers nothing by side effect."""

import ast
from pathlib import Path

import pytest

import stablenet

from test_layering import imported_modules, module_name

PACKAGE = Path(stablenet.__file__).parent


def files(package: str) -> list[Path]:
    return sorted((PACKAGE / package).glob("*.py"))


@pytest.mark.parametrize("path", files("gradients"), ids=module_name)
def test_gradient_modes_do_not_import_the_block(path):
    assert "stablenet.block" not in imported_modules(path)
    assert "TYPE_CHECKING" not in path.read_text()


@pytest.mark.parametrize("path", [p for p in files("data") if p.name != "__init__.py"], ids=module_name)
def test_data_loaders_do_not_import_their_package(path):
    """The package imports the loaders for its registry; the loaders take Dataset/Split and the
    helpers from data/base.py."""
    assert "stablenet.data" not in imported_modules(path)


def test_the_data_package_imports_at_the_top():
    assert "noqa: E402" not in (PACKAGE / "data" / "__init__.py").read_text()


def test_the_package_root_imports_no_subpackage_for_its_side_effects():
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    bare = [alias.name for node in tree.body if isinstance(node, ast.ImportFrom) and node.module is None
            for alias in node.names]
    assert bare == [], f"stablenet/__init__.py imports {bare} only to run them"


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("state.py")) + files("integrators"), ids=module_name)
def test_state_and_integrators_sit_below_gradients_and_parallel(path):
    above = {m for m in imported_modules(path)
             if m.startswith(("stablenet.gradients", "stablenet.parallel", "stablenet.block"))}
    assert above == set()
