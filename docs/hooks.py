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
* A tutorial's table of contents keeps the inline code of its headings and links to their ids
  (mkdocs-jupyter drops the code, and links to ids that do not exist).
* The docstrings' reStructuredText simple tables (``====  ====`` borders) become Markdown tables:
  :class:`RstSimpleTables`, a griffe extension (mkdocs.yml, mkdocstrings' ``extensions``).
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import griffe
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


def _tutorial_toc_titles(content, page) -> None:
    """A tutorial's table of contents with its headings' full text and ids: mkdocs-jupyter drops
    inline code from the titles ("an `ODEBlock` with" became "an with") and so links to ids that
    do not exist.  Entries and headings are paired in document order (left alone if they differ
    in number)."""
    headings = [(m[1], re.sub(r"<[^>]+>", "", re.sub(r'<a class="anchor-link".*?</a>', "", m[2])))  # HTML text
                for m in re.finditer(r'<h[1-6] id="([^"]+)">(.*?)</h[1-6]>', content, re.S)]

    def flat(items):
        for item in items:
            yield item
            yield from flat(item.children)

    items = list(flat(page.toc))
    if len(items) == len(headings):
        for item, (anchor, title) in zip(items, headings):
            item.id, item.title = anchor, title.strip()


def on_page_content(content, page, config, files):
    if page.file.src_uri.startswith("tutorials/"):
        _tutorial_toc_titles(content, page)
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


# -- reStructuredText simple tables in docstrings ---------------------------------------------------
_BORDER = re.compile(r"^( *)=+(?: +=+)+ *$")


def _cells(line: str, starts: list[int]) -> list[str]:
    """A row cut at the columns' start positions (the last column runs to the end of the line); a
    cut that falls inside a word (a cell misaligned by a character or two, e.g. after a combining
    character) moves to the nearest start of text after two spaces."""
    texts = [m.end() for m in re.finditer(r"  +", line)]
    cuts = [starts[0]]
    for start in starts[1:]:
        if 0 < start < len(line) and line[start - 1] != " ":
            near = [t for t in texts if abs(t - start) <= 3]
            start = min(near, key=lambda t: abs(t - start)) if near else start
        cuts.append(start)
    return [line[a:b].strip() for a, b in zip(cuts, [*cuts[1:], None])]


def _markdown_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def rst_tables_to_markdown(text: str) -> str:
    """Every simple table of ``text`` as a Markdown table.  A row whose first cell is empty
    continues the row above it; a table with no header border gets an empty header row."""
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        border = _BORDER.match(lines[i])
        ends = [j for j in range(i + 1, len(lines)) if _BORDER.match(lines[j])
                and lines[j].strip() == lines[i].strip()] if border else []
        if not ends:
            out.append(lines[i])
            i += 1
            continue
        starts = [m.start() for m in re.finditer(r"=+", lines[i])]
        header_end = ends[0] if len(ends) >= 2 else None
        end = ends[1] if len(ends) >= 2 else ends[0]
        rows: list[list[str]] = []
        header: list[list[str]] = []
        for j in range(i + 1, end):
            if j == header_end or not lines[j].strip():
                continue
            cells = _cells(lines[j], starts)
            target = header if header_end is not None and j < header_end else rows
            if not cells[0] and target:
                target[-1] = [f"{a} {b}".strip() for a, b in zip(target[-1], cells)]
            else:
                target.append(cells)
        head = [" ".join(c for c in col if c) for col in zip(*header)] if header else [""] * len(starts)
        indent = border.group(1)
        out += [indent + _markdown_row(head), indent + "|" + "---|" * len(starts)]
        out += [indent + _markdown_row(r) for r in rows]
        i = end + 1
    return "\n".join(out)


class RstSimpleTables(griffe.Extension):
    """Rewrite the reStructuredText simple tables of every docstring as Markdown tables."""

    def on_instance(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None and "==" in obj.docstring.value:
            obj.docstring.value = rst_tables_to_markdown(obj.docstring.value)
