"""docs/experiments.md is generated from the stored results; its summary table counts verdicts."""

import importlib.util
import json
from pathlib import Path

import pytest

from stablenet.app.experiments import EXPERIMENTS
from stablenet.app.experiments.verdict import check, judge

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def gallery():
    spec = importlib.util.spec_from_file_location("make_gallery", ROOT / "docs" / "make_gallery.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_summary_lists_every_claim_and_counts_the_verdicts(gallery):
    records = [judge("a | b", "x", [1.0, 1.1, 0.9], "greater", seed="3%"),
               judge("c", "x", [-1.0, -1.1, -0.9], "greater"),
               judge("d", "x", [-1.0, 1.0], "greater"),
               check("e", "y", [0.5], target=0.0, tolerance=1.0)]
    lines = gallery.summary({"one": {"claims": records[:3]}, "two": {"claims": records[3:]}})
    rows = [line for line in lines if line.startswith("| [`")]
    assert len(rows) == 4
    assert rows[0].startswith("| [`one`](#one) | a \\| b | 3% | 1 ± 0.1 (n = 3) | **supported** |")
    assert [row.rsplit("**", 2)[1] for row in rows] == ["supported", "refuted", "inconclusive", "supported"]
    assert "4 claims: 2 supported, 1 refuted, 1 inconclusive." in lines


def test_page_is_what_the_stored_results_give(gallery):
    timings = json.loads((gallery.GALLERY / "timings.json").read_text())
    assert (ROOT / "docs" / "experiments.md").read_text() == gallery.page(timings), \
        "docs/experiments.md is stale: run python docs/make_gallery.py --page"


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_stored_full_runs_judge_every_claim_by_the_shared_rule(gallery, name):
    results = json.loads((gallery.GALLERY / name / "results.json").read_text())
    assert results["quick"] is False
    claims = results["claims"]
    assert isinstance(claims, list) and claims
    for record in claims:
        assert record["verdict"] in ("supported", "refuted", "inconclusive")
        assert record["claim"] and record["statistic"] and record.get("seed")
        if record["kind"] == "deterministic":
            assert record["verdict"] != "inconclusive"
        else:
            assert record["n"] >= 5, f"{name}: {record['claim']!r} rests on {record['n']} seeds"
            assert len(record["values"]) == record["n"]
    for figure in results["figures"]:
        assert (gallery.GALLERY / name / figure).is_file()
