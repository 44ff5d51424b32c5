"""``stablenet analyze RUN_DIR``: the stability report of a trained network."""

from __future__ import annotations

from pathlib import Path

import torch

from .. import _checks
from .io import write_json
from .rundir import lock
from .figures import as_float64, plot_eigenvalues, plot_sensitivity
from ..analysis.jacobian import layer_jacobians, summarize
from ..analysis.sensitivity import forward_sensitivity


def analyze_run(run_dir: str | Path, out_dir: str | Path | None = None, *, samples: int | None = None,
                crop: int = 6, batch: int = 200, data_dir: str | Path | None = None) -> dict:
    """Eigenvalue figures (one per block), a sensitivity figure and ``stability.json``.

    Uses ``samples`` validation inputs (default 200), propagated through the opening layer to each
    block; the analysis runs in float64 on a copy of the trained weights.

    Convolutional runs (``model.kind = "conv"``): ``batch`` validation images (default 200) are
    propagated through the network (the batch normalization inside the blocks sees their
    statistics), and the layer Jacobians are those of the first ``samples`` (default 4) on the
    centre ``crop`` × ``crop`` window of each block's states, with the batch statistics held fixed
    (:func:`stablenet.analysis.jacobian.conv_layer_jacobians`); no sensitivity curves.

    ``data_dir`` reads the run's data from another folder (:func:`stablenet.app.training.load_run`).
    The run directory is locked while the report is written (:func:`stablenet.app.rundir.lock`).
    """
    run_dir = Path(run_dir)
    if samples is not None:
        _checks.positive_int("samples", samples)
    _checks.positive_int("crop", crop)
    _checks.positive_int("batch", batch)
    with lock(run_dir):
        return _analyze(run_dir, out_dir, samples=samples, crop=crop, batch=batch, data_dir=data_dir)


def _analyze(run_dir: Path, out_dir, *, samples: int | None, crop: int, batch: int, data_dir) -> dict:
    from ..conv_models import ImageClassifier
    from .training import load_run

    config, model, data = load_run(run_dir, data_dir=data_dir)
    out = Path(out_dir) if out_dir is not None else run_dir / "analysis"
    model = model.to(torch.float64)
    if isinstance(model, ImageClassifier):
        return _analyze_conv(run_dir, out, model, data, samples=4 if samples is None else samples, crop=crop,
                             batch=batch)
    samples = 200 if samples is None else samples
    x = data.val.x[:samples].to(torch.float64)
    report: dict = {"run": str(run_dir), "samples": int(x.shape[0]), "blocks": []}
    curves, figures = [], []
    with torch.no_grad():
        y = model.opening(x)
    for k, block in enumerate(model.blocks):
        if k:
            with torch.no_grad():
                y = model.connectors[k - 1](y)
        block = as_float64(block)
        lj = layer_jacobians(block, y)
        summary = summarize(lj)
        summary["sensitivity"] = {d: forward_sensitivity(block, y, direction=d,
                                                         generator=torch.Generator().manual_seed(k))
                                  for d in ("random", "worst")}
        report["blocks"].append({"block": k, "dynamics": block.dynamics.kind, **summary})
        figures.append(plot_eigenvalues(lj, out / f"eigenvalues_block{k}.png",
                                        title=f"block {k}: {block.dynamics.kind}, "
                                              f"{block.integrator.name}, h = {block.h:g}"))
        curves += [(f"block {k} {d}", summary["sensitivity"][d]) for d in ("random", "worst")]
        with torch.no_grad():
            y = block(y)
    figures.append(plot_sensitivity(curves, out / "sensitivity.png"))
    return _write_report(report, figures, out)


def _analyze_conv(run_dir: Path, out: Path, model, data, *, samples: int, crop: int, batch: int) -> dict:
    x = data.val.x[:max(batch, samples)].to(torch.float64)
    report: dict = {"run": str(run_dir), "samples": min(samples, int(x.shape[0])), "batch": int(x.shape[0]),
                    "crop": crop, "linearization": "per image, on the centre crop×crop window of each block's "
                    "states (zero outside), batch-normalization statistics of the batch held fixed",
                    "blocks": []}
    figures = []
    k = 0
    model.eval()
    with torch.no_grad():
        y = model.opening(model.prepare(x))
    for i, stage in enumerate(model.stages):
        if i:
            with torch.no_grad():
                y = model.connectors[i - 1](y)
        for block in stage:
            block = as_float64(block)
            lj = layer_jacobians(block, y, crop=crop, samples=samples)
            summary = summarize(lj)
            report["blocks"].append({"block": k, "stage": i, "dynamics": block.dynamics.kind,
                                     "state_shape": list(y.shape[1:]), "jacobian_size": int(lj.jacobians.shape[-1]),
                                     **summary})
            figures.append(plot_eigenvalues(lj, out / f"eigenvalues_block{k}.png",
                                            title=f"block {k}: {block.dynamics.kind}, "
                                                  f"{block.integrator.name}, h = {block.h:g}"))
            with torch.no_grad():
                y = block(y)
            k += 1
    return _write_report(report, figures, out)


def _write_report(report: dict, figures: list, out: Path) -> dict:
    """Add the network-wide summary (worst block; step-weighted stable fraction) and the figure
    names to ``report`` and write it to ``out/stability.json``."""
    blocks = report["blocks"]
    report["network"] = {
        "max_real": max(b["max_real"] for b in blocks),
        "continuous_stable": all(b["continuous_stable"] for b in blocks),
        "max_amplification": max(b["max_amplification"] for b in blocks),
        "fraction_stable": sum(b["fraction_stable"] * b["steps"] for b in blocks) / sum(b["steps"] for b in blocks),
    }
    report["figures"] = [f.name for f in figures]
    write_json(out / "stability.json", report)
    return report
