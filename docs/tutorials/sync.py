"""Regenerate every tutorial notebook ``NN_name.ipynb`` from its jupytext script ``NN_name.py``.

The ``.py`` files (jupytext percent format) are the sources; the ``.ipynb`` next to them are
generated, without outputs, and committed so that the docs site and ``pytest --nbmake`` can use
them.  Never edit an ``.ipynb`` by hand: edit the ``.py`` and run, from the repository root,

    python docs/tutorials/sync.py            # rewrite the notebooks that differ
    python docs/tutorials/sync.py --check    # exit 1 if any notebook is stale (what the test does)

Cell ids are numbered (``cell-0``, ``cell-1``, …) instead of jupytext's random ones, so that
regenerating an unchanged script gives a byte-identical notebook.  ``tests/test_tutorials.py``
checks that every notebook equals :func:`notebook_text` of its script, and CI executes the
notebooks (``pytest --nbmake``, configured in pyproject.toml).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jupytext

HERE = Path(__file__).resolve().parent


def scripts(folder: Path = HERE) -> list[Path]:
    """The tutorial scripts: ``NN_*.py`` in ``folder``, in order."""
    return sorted(p for p in folder.glob("[0-9][0-9]_*.py"))


def notebook_text(script: Path) -> str:
    """The ``.ipynb`` text jupytext makes of ``script``, with numbered cell ids and no outputs."""
    notebook = jupytext.read(script, fmt="py:percent")
    for i, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{i}"
    return jupytext.writes(notebook, fmt="ipynb")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale notebooks (exit 1 if any)")
    args = parser.parse_args(argv)
    stale = []
    for script in scripts():
        target = script.with_suffix(".ipynb")
        text = notebook_text(script)
        if target.exists() and target.read_text(encoding="utf-8") == text:
            continue
        stale.append(target)
        if not args.check:
            target.write_text(text, encoding="utf-8")
            print(f"wrote {target.relative_to(HERE.parents[1])}")
    if args.check and stale:
        print("stale notebooks (run python docs/tutorials/sync.py): " + ", ".join(p.name for p in stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
