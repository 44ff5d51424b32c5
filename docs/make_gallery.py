"""Run every seed experiment at its default settings and write docs/experiments.md from the results.

Figures go to docs/gallery/NAME/; the page quotes each experiment's own description (its module
docstring: the seed's figure, setting and claim), lists the claims with whether our numbers
support them, and the scalar numbers of results.json.  Nothing on the page is typed by hand.

    python docs/make_gallery.py                 # all experiments (several minutes)
    python docs/make_gallery.py phase-plane     # only some (the page keeps the others' results)
    python docs/make_gallery.py --page          # no run: rewrite the page from the stored results

An experiment's section is its module docstring (setup, claims, method), then
``gallery/NAME/measured.md`` if present (what runs measured, on which machine: numbers that would
go stale in code), the figures and the claims table.
An experiment's ``claims`` are either a dict {name: holds} (yes / **no**) or, in the form of issue 17,
a list of verdict records (stablenet.app.experiments.verdict): then the table is claim | seed's
number | ours (mean ± std over n seeds, or the deterministic values against their target) | verdict.
"""

from __future__ import annotations

import inspect
import json
import sys
import time
from pathlib import Path

import torch

from stablenet.app.experiments import EXPERIMENTS
from stablenet.app.experiments.verdict import describe
from stablenet.app.io import atomic_write_bytes

DOCS = Path(__file__).resolve().parent
GALLERY = DOCS / "gallery"


def scalars(obj, prefix=""):
    """(dotted key, value) for every number or short string in a nested results dict."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k not in ("claims", "figures", "experiment"):
                yield from scalars(v, f"{prefix}{k}.")
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield prefix[:-1], obj
    elif isinstance(obj, list) and obj and len(obj) <= 8 and all(isinstance(v, (int, float)) for v in obj):
        yield prefix[:-1], obj


def fmt(value):
    if isinstance(value, list):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def section(name: str, module, results: dict, seconds: float) -> str:
    doc = inspect.getdoc(module) or ""
    measured = GALLERY / name / "measured.md"  # what a run measured on a machine: docs, not code
    if measured.exists():
        doc += "\n\n" + measured.read_text().strip()
    lines = [f"## `{name}`", "", doc, "",
             f"`stablenet experiment {name}` — {seconds:.0f} s on one CPU thread of the development machine.", ""]
    for fig in results.get("figures", []):
        lines.append(f"![{name}: {fig}](gallery/{name}/{fig})")
    claims = results.get("claims", {})
    if isinstance(claims, list):
        lines += ["", "| claim (statistic) | seed's number | ours: mean ± std (n) | verdict |", "|---|---|---|---|"]
        for c in claims:
            lines.append(f"| {cell(c['claim'])}<br>*{cell(c['statistic'])}* | {cell(c.get('seed', ''))} | "
                         f"{cell(describe(c))} | **{c['verdict']}** |")
    else:
        lines += ["", "| claim | holds in our numbers |", "|---|---|"]
        for claim, holds in claims.items():
            lines.append(f"| {claim.replace('_', ' ')} | {'yes' if holds else '**no**'} |")
    lines += ["", "<details><summary>numbers (results.json)</summary>", "", "| quantity | value |", "|---|---|"]
    lines += [f"| `{k}` | {fmt(v)} |" for k, v in scalars(results)]
    lines += ["", "</details>", ""]
    return "\n".join(lines)


def cell(text) -> str:
    """Text for a markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def summary(results: dict[str, dict]) -> list[str]:
    """The table of every experiment's claims: experiment | claim | seed's number | ours | verdict,
    and the count of each verdict."""
    lines = ["## Summary", "",
             "| experiment | claim | seed's number | ours: mean ± std (n) | verdict |", "|---|---|---|---|---|"]
    counts: dict[str, int] = {}
    for name, res in results.items():
        claims = res.get("claims", [])
        if not isinstance(claims, list):
            lines.append(f"| [`{name}`](#{name}) | (not yet judged by the shared rule) | | | |")
            continue
        for c in claims:
            counts[c["verdict"]] = counts.get(c["verdict"], 0) + 1
            lines.append(f"| [`{name}`](#{name}) | {cell(c['claim'])} | {cell(c.get('seed', ''))} | "
                         f"{cell(describe(c))} | **{c['verdict']}** |")
    total = sum(counts.values())
    lines += ["", f"{total} claims: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in
                                                    ("supported", "refuted", "inconclusive")) + ".", ""]
    return lines


def page(timings: dict[str, float]) -> str:
    """docs/experiments.md from the stored results (docs/gallery/NAME/results.json) and run times."""
    parts = ["# Seed experiments", "",
             "Generated by `python docs/make_gallery.py` from each experiment's `results.json` (a test",
             "checks that this page is what the stored results give); every experiment reruns with",
             "`stablenet experiment NAME` (add `--quick` for a smoke run of under a minute, which the tests",
             "check; its verdicts may well be inconclusive).  Every claim is judged by one rule, fixed in",
             "`stablenet.app.experiments.verdict` before the runs.  A claim measured over seeds (each seed",
             "draws the data and the initial weights) is **supported** if the mean lies more than two",
             "standard errors on the claimed side of its reference, **refuted** if more than two on the",
             "other side, else **inconclusive**; an equivalence claim (\"within ± m\") is supported if the",
             "mean ± 2 SE lies inside the interval and refuted if it lies outside.  A deterministic claim",
             "(an analytic fact, a computation without seed noise) is compared with the value it states, to",
             "a tolerance.  Each section states the seed's setup (quoted), ours, each deviation and why,",
             "and what changed since the verdicts before issue 17.  A refuted seed claim is a finding.", ""]
    stored = {name: json.loads((GALLERY / name / "results.json").read_text())
              for name in EXPERIMENTS if (GALLERY / name / "results.json").exists()}
    parts += summary(stored)
    for name, module in EXPERIMENTS.items():
        if name in stored:
            parts.append(section(name, module, stored[name], timings.get(name, float("nan"))))
        else:
            parts.append(f"## `{name}`\n\nnot run yet (`python docs/make_gallery.py {name}`).\n")
    return "\n".join(parts)


def main() -> None:
    torch.set_num_threads(1)
    names = [] if sys.argv[1:] == ["--page"] else sys.argv[1:] or list(EXPERIMENTS)
    timings_path = GALLERY / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    for name in names:
        start = time.perf_counter()
        EXPERIMENTS[name].run(GALLERY / name, quick=False)
        timings[name] = time.perf_counter() - start
        print(f"{name}: {timings[name]:.0f} s", flush=True)
    if names:
        atomic_write_bytes(timings_path, json.dumps(timings, indent=2).encode())
    atomic_write_bytes(DOCS / "experiments.md", page(timings).encode())
    print(f"wrote {DOCS / 'experiments.md'}")


if __name__ == "__main__":
    main()
