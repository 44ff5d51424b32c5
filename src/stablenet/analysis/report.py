"""``stablenet analyze RUN_DIR``: the stability report of a trained network."""

from __future__ import annotations

from pathlib import Path

import torch

from .._io import write_json
from .figures import as_float64, plot_eigenvalues, plot_sensitivity
from .jacobian import layer_jacobians, summarize
from .sensitivity import forward_sensitivity


def analyze_run(run_dir: str | Path, out_dir: str | Path | None = None, *, samples: int = 200) -> dict:
    """Eigenvalue figures (one per block), a sensitivity figure and ``stability.json``.

    Uses ``samples`` validation inputs, propagated through the opening layer to each block; the
    analysis runs in float64 on a copy of the trained weights.
    """
    from ..training import load_run

    run_dir = Path(run_dir)
    config, model, data = load_run(run_dir)
    out = Path(out_dir) if out_dir is not None else run_dir / "analysis"
    model = model.to(torch.float64)
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
    blocks = report["blocks"]
    report["network"] = {
        "max_real": max(b["max_real"] for b in blocks),
        "max_amplification": max(b["max_amplification"] for b in blocks),
        "fraction_stable": sum(b["fraction_stable"] * b["steps"] for b in blocks) / sum(b["steps"] for b in blocks),
    }
    report["figures"] = [f.name for f in figures]
    write_json(out / "stability.json", report)
    return report
