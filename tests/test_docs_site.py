"""The documentation site (mkdocs.yml) builds with warnings as errors, and documents the public API.

The build runs once per module (``mkdocs build --strict`` into a temporary folder, the tutorials
not executed: STABLENET_DOCS_EXECUTE=false, since their own tests execute them).  In strict mode a
broken link or image, a page missing from the nav, a docstring that documents a parameter the
signature lacks (griffe) or an unresolved cross-reference fails the build.  Then every public
class and function of every module the API pages render (``::: module`` in docs/api/*.md; its
``__all__``, else the public names it defines) must have a docstring and an anchor in the built
API pages, and every name of ``stablenet.__all__`` a link on the API index.
"""

import importlib
import inspect
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import stablenet

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
API = DOCS / "api"

#: top-level modules of stablenet that have no API page, and why
NOT_IN_API = {
    "app": "the command-line application: docs/configuration.md and the guides describe it",
    "state": "the (y, z) state arithmetic shared by integrators, gradient modes and MGRIT (internal)",
}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "STABLENET_DOCS_EXECUTE": "false", "NO_MKDOCS_2_WARNING": "1",
           "STABLENET_DOCS_CACHE_DIR": str(tmp_path_factory.mktemp("jupyter-cache"))}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return out


def documented_modules() -> list[tuple[str, Path]]:
    """(module, API page) for every ``::: module`` directive of the API pages whose members render."""
    found = []
    for page in sorted(API.glob("*.md")):
        text = page.read_text()
        for match in re.finditer(r"^::: ([\w.]+)\n((?:    .*\n)*)", text, re.M):
            if "members: false" not in match[2]:
                found.append((match[1], page))
    return found


def public_api(module_name: str) -> list[tuple[str, object]]:
    """The public classes and functions of a module: its ``__all__``, else the public names it defines."""
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, v in vars(module).items()
                 if not n.startswith("_") and getattr(v, "__module__", None) == module_name]
    objects = [(n, getattr(module, n)) for n in names]
    return [(n, obj) for n, obj in objects if inspect.isclass(obj) or inspect.isfunction(obj)]


def html_of(site: Path, page: Path) -> str:
    return (site / "api" / (page.stem if page.stem != "index" else "") / "index.html").read_text()


def test_key_pages_are_built(site):
    assert (site / "index.html").is_file()
    assert "ODEBlock" in (site / "index.html").read_text()
    for page in ["api", "api/block", "api/dynamics", "experiments", "architecture", "parallel"]:
        assert (site / page / "index.html").is_file(), page
    gallery = (site / "experiments" / "index.html").read_text()
    images = re.findall(r'<img[^>]* src="([^"]+)"', gallery)
    assert len(images) >= 20 and all((site / "experiments" / src).resolve().is_file() for src in images)
    # the figure parallel.md shows from benchmarks/ is copied into the site
    assert (site / "benchmarks" / "mgrit_residuals.png").is_file()


def test_every_tutorial_is_a_page_once(site):
    scripts = sorted((DOCS / "tutorials").glob("[0-9][0-9]_*.py"))
    assert scripts, "no tutorials in docs/tutorials"
    nav = (ROOT / "mkdocs.yml").read_text()
    for script in scripts:
        assert f"tutorials/{script.name}" in nav, f"{script.name} is not in mkdocs.yml's nav"
        page = site / "tutorials" / script.stem / "index.html"
        assert page.is_file(), script.name
        html = page.read_text()
        assert "jp-Notebook" in html or "jupyter-wrapper" in html, script.name
        # the table of contents links to the tutorial's own headings
        ids = set(re.findall(r'\bid="([^"]+)"', html))
        toc = re.findall(r'<a href="#([^"]*)" class="md-nav__link">', html)
        assert toc and all(anchor in ids for anchor in toc), f"{script.name}: {set(toc) - ids}"
    # the generated notebooks next to the scripts are not rendered a second time
    assert not list(site.rglob("*.ipynb"))
    assert sorted(p.name for p in (site / "tutorials").iterdir() if p.is_dir()) == [s.stem for s in scripts]


def test_every_library_module_has_an_api_page():
    documented = {name.split(".")[1] for name, _ in documented_modules() if name.count(".") >= 1}
    for info in pkgutil.iter_modules(stablenet.__path__):
        if info.name.startswith("_"):
            continue
        assert info.name in documented or info.name in NOT_IN_API, \
            f"stablenet.{info.name} has no API page (docs/api/) and no reason in NOT_IN_API"


@pytest.mark.parametrize("module_name, page", documented_modules(), ids=lambda v: str(getattr(v, "name", v)))
def test_every_public_symbol_is_documented(site, module_name, page):
    html = html_of(site, page)
    anchors = set(re.findall(r'\bid="([\w.]+)"', html))
    symbols = public_api(module_name)
    assert symbols, f"{module_name} has no public classes or functions"
    for name, obj in symbols:
        assert (inspect.getdoc(obj) or "").strip(), f"{module_name}.{name} has no docstring"
        assert f"{module_name}.{name}" in anchors, f"{module_name}.{name} is not rendered on {page.name}"
        if inspect.isclass(obj):
            for attr, value in vars(obj).items():
                if attr.startswith("_") or not (inspect.isfunction(value) or isinstance(
                        value, (property, classmethod, staticmethod))):
                    continue
                doc = value.__doc__ if isinstance(value, property) else inspect.getdoc(getattr(obj, attr))
                assert (doc or "").strip(), f"{module_name}.{name}.{attr} has no docstring"
    # the docstrings' Sphinx roles (:class:`X`) became links or code, not literal text
    assert not re.search(r":(class|func|meth|mod|attr|data):<code>", html)


def test_the_package_names_are_linked_from_the_api_index(site):
    html = (site / "api" / "index.html").read_text()
    defined = {id(obj) for module, _ in documented_modules() for _, obj in public_api(module)}
    for name in stablenet.__all__:
        if name == "__version__":
            continue
        obj = getattr(stablenet, name)
        assert id(obj) in defined, f"stablenet.{name} is documented on no API page"
        assert re.search(rf'<a [^>]*href="[^"]*#[\w.]*\.{name}"[^>]*><code>{name}</code></a>', html), \
            f"the API index does not link stablenet.{name}"


def test_home_page_example_runs():
    text = (DOCS / "index.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "docs/index.md has no Python example"
    namespace: dict = {}
    exec(compile(blocks[0], "docs/index.md", "exec"), namespace)
    assert namespace["states"].shape == (33, 100, 8)
