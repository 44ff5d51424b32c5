"""`stablenet robustness RUN_DIR`: the report and its figures, and bad input refused in one line
with exit status 2 and the run directory left as it was."""

from __future__ import annotations

import hashlib
import json

import pytest

from stablenet.app.cli import main
from stablenet.app.training import train

from helpers import assert_cli_error, assert_png, small_config


@pytest.fixture(scope="module")
def peaks_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("robustness") / "run"
    train(small_config(epochs=4), run, progress=False)
    return run


def snapshot(folder):
    """Every file under ``folder`` with its content hash (the lock file included)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_robustness_writes_the_report_and_figures(peaks_run, capsys):
    before = snapshot(peaks_run)
    assert main(["robustness", str(peaks_run), "--eps", "0.05", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "clean accuracy" in out and "pgd-linf" in out and "wrote" in out
    report = json.loads((peaks_run / "robustness" / "robustness.json").read_text())
    names = [c["attack"] for c in report["attacks"]]
    assert names == ["gaussian", "uniform", "fgsm-linf", "pgd-linf", "fgsm-l2", "pgd-l2"]
    for curve in report["attacks"]:
        assert curve["eps"] == [0.0, 0.05, 0.2]
        assert curve["accuracy"][0] == report["clean_accuracy"]
    assert main(["evaluate", str(peaks_run), "--split", "test"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(report["clean_accuracy"], abs=1e-12)
    lip = report["lipschitz"]
    assert lip["empirical"] <= lip["certified"]
    assert report["step_checks"] and {c["attack"] for c in report["step_checks"]} == {"pgd-linf", "pgd-l2"}
    assert report["domain"]["lower"] == -3.0 and report["domain"]["upper"] == 3.0 and report["domain"]["features"] == 2
    assert_png(peaks_run / "robustness" / "accuracy.png")
    after = snapshot(peaks_run)
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert {k for k in changed if not k.startswith("robustness/")} <= {".stablenet.lock"}


@pytest.mark.parametrize("args,fragments", [
    (["--eps", "-0.1"], ["--eps", "-0.1"]),
    (["--eps", "nan"], ["--eps", "nan"]),
    (["--eps", "inf"], ["--eps", "inf"]),
    (["--attack", "autoattack-linf"], ["autoattack-linf", "image"]),
    (["--attack", "pgd-linf3"], ["--attack", "pgd-linf3"]),
    (["--samples", "0"], ["--samples"]),
])
def test_bad_input_is_one_line_and_changes_nothing(peaks_run, capsys, args, fragments):
    before = snapshot(peaks_run)
    try:
        status = main(["robustness", str(peaks_run), *args])
    except SystemExit as exc:  # argparse's errors
        status = exc.code
    assert status == 2
    err = capsys.readouterr().err
    prefix = "stablenet: error: " if args == ["--attack", "autoattack-linf"] else "stablenet robustness: error: "
    assert_cli_error(err, *fragments, prefix=prefix)
    assert snapshot(peaks_run) == before


def test_a_run_without_weights_is_refused(peaks_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(peaks_run, run)
    shutil.rmtree(run / "robustness", ignore_errors=True)
    (run / "best.safetensors").unlink()
    before = snapshot(run)
    assert main(["robustness", str(run)]) == 2
    assert_cli_error(capsys.readouterr().err, "no trained weights", "best.safetensors")
    assert snapshot(run) == before and not (run / "robustness").exists()
    assert main(["robustness", str(tmp_path / "missing")]) == 2
    assert_cli_error(capsys.readouterr().err, "does not exist")


def test_image_run_gets_autoattack_and_an_example_strip(tmp_path, capsys):
    config = small_config({"data": {"name": "digits", "options": {}},
                           "model": {"opening": "linear", "blocks": [{"dynamics": "antisymmetric", "width": 8,
                                                                      "T": 1.0, "steps": 2, "method": "rk4"}]}},
                          epochs=2, batch_size=200)
    run = tmp_path / "run"
    train(config, run, progress=False)
    assert main(["robustness", str(run), "--samples", "16", "--eps", "0.1", "--steps", "5",
                 "--attack", "pgd-linf", "--attack", "autoattack-linf"]) == 0
    report = json.loads((run / "robustness" / "robustness.json").read_text())
    assert [c["attack"] for c in report["attacks"]] == ["pgd-linf", "autoattack-linf"]
    assert report["attacks"][0]["settings"]["steps"] == 5
    assert report["domain"]["lower"] == 0.0 and report["domain"]["image_shape"] == [1, 8, 8]
    assert report["figures"] == ["accuracy.png", "examples.png"]
    assert_png(run / "robustness" / "examples.png")
    assert report["lipschitz"]["empirical"] <= report["lipschitz"]["certified"]
