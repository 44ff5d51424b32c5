"""MkDocs hooks of the documentation site (mkdocs.yml `hooks:`); not a page of the site.

* Images the guides show from ``benchmarks/`` (``![…](../benchmarks/NAME.png)``, which GitHub
  renders from the repository) are copied into the site and the links pointed at the copies, so a
  figure outside ``docs/`` is neither lost nor a broken link.  A link to a file that does not exist
  stays as written, and the strict build reports it.
* The docstrings cross-reference in Sphinx's style (``:class:`~stablenet.ODEBlock```,
  ``:func:`integrate```), which Markdown renders as the literal role followed by code.  Each role
  becomes an optional mkdocs-autorefs reference: a link where the object is on a page of the site
  (a bare name is looked up among the current page's anchors), plain code where it is not (a
  private helper), never a warning.  ``~`` shows the last component, as in Sphinx.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"

_IMAGE_LINK = re.compile(r"\]\(\.\./benchmarks/([\w.-]+\.png)\)")
_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|obj|exc|const):<code>(~?)([\w.]+)</code>")
_ANCHOR = re.compile(r'\bid="([\w.]+)"')


def _top_level() -> dict[str, str]:
    """``stablenet.NAME`` → where NAME is defined (and documented), for the package's exports."""
    import stablenet

    return {f"stablenet.{name}": f"{obj.__module__}.{obj.__qualname__}"
            for name in stablenet.__all__ if hasattr(obj := getattr(stablenet, name), "__qualname__")}


_TOP_LEVEL = _top_level()


def on_files(files, config):
    for path in sorted(BENCHMARKS.glob("*.png")):
        files.append(File.generated(config, f"benchmarks/{path.name}", abs_src_path=str(path)))
    return files


def on_page_markdown(markdown, page, config, files):
    if "/" in page.file.src_uri:  # only the top-level guides link ../benchmarks/
        return markdown
    return _IMAGE_LINK.sub(lambda m: f"](benchmarks/{m[1]})" if (BENCHMARKS / m[1]).is_file() else m[0],
                           markdown)


def on_page_content(content, page, config, files):
    anchors = [a for a in _ANCHOR.findall(content) if a.startswith("stablenet")]

    def identifier(name: str) -> str:
        if name.startswith("stablenet."):
            return _TOP_LEVEL.get(name, name)
        matches = [a for a in anchors if a.endswith("." + name.lstrip("."))]
        return matches[0] if len(set(matches)) == 1 else name

    def autoref(match: re.Match) -> str:
        tilde, name = match[1], match[2]
        title = name.rsplit(".", 1)[-1] if tilde else name
        return (f'<autoref identifier="{html.escape(identifier(name))}" optional>'
                f"<code>{html.escape(title)}</code></autoref>")

    return _ROLE.sub(autoref, content)
