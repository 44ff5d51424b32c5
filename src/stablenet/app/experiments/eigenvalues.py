"""Seed 004 §3.2, Figs. 3.4–3.6: eigenvalues of the layer Jacobians against Euler's stability disc.

Standard ResNets (single layer σ(KY + b), tanh, forward Euler, one weight set per layer) with
8, 16 and 32 time points on T = 10, width 8 (the two peaks features repeated four times), are
trained on peaks with stablenet's trainer.  For each, the Jacobians J = diag(σ'(KY + b))K of every
layer at the propagated validation points give h·λ, plotted over the disc |1 + z| ≤ 1.  The seed's
claim: with fewer time points the eigenvalues are more spread out, with real parts well above
zero, and the stability condition is violated more often; finer discretizations violate it less.

Two readings of "violated less" are recorded: the size of the violation (the largest
amplification |1 + hλ| over all layers and points) and the share of h·λ outside the disc.  Any
eigenvalue with Re λ > 0 lies outside the disc for every h, so the share need not fall with h.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..io import write_json
from ...analysis import layer_jacobians
from ...analysis.jacobian import summarize
from ..figures import as_float64, plot_eigenvalues
from ..config import parse_config
from ..training import load_run, train

SUMMARY = "seed 004 Figs 3.4-3.6: Jacobian eigenvalues of 8/16/32-layer ResNets (T = 10) vs the Euler disc"

LAYERS = (8, 16, 32)


def _config(layers: int, quick: bool) -> dict:
    per_class = 40 if quick else 400
    return {
        "seed": 0,
        "data": {"name": "peaks", "options": {"n_train_per_class": per_class, "n_val_per_class": per_class // 4,
                                              "n_test_per_class": 10}},
        "model": {"opening": "duplicate", "blocks": [
            {"dynamics": "single", "width": 8, "T": 10.0, "steps": layers, "nt": layers, "method": "euler"}]},
        "training": {"epochs": 2 if quick else 40, "batch_size": 64, "optimizer": "adam", "lr": 0.01,
                     "schedule": "cosine", "threads": 1},
    }


def run(out_dir: str | Path, quick: bool = False) -> dict:
    out_dir = Path(out_dir)
    networks = {}
    figures = []
    for layers in LAYERS:
        run_dir = out_dir / f"resnet_{layers}"
        metrics = train(parse_config(_config(layers, quick)), run_dir, overwrite=run_dir.exists(), progress=False)
        _, model, data = load_run(run_dir)
        block = as_float64(model.blocks[0])
        with torch.no_grad():
            x = model.opening(data.val.x[:100].to(torch.float64))
        lj = layer_jacobians(block, x)
        summary = summarize(lj)
        networks[str(layers)] = {
            "h": block.h,
            "val_accuracy": metrics["val_accuracy"],
            "max_real": summary["max_real"],
            "max_abs_h_lambda": summary["max_abs_z"],
            "max_real_h_lambda": summary["max_real_z"],
            "fraction_outside_euler_disc": 1.0 - summary["fraction_stable"],
            "max_amplification": summary["max_amplification"],
        }
        figures.append(plot_eigenvalues(lj, out_dir / f"eigenvalues_{layers}.png",
                                        title=f"ResNet with {layers} layers, T = 10, h = {block.h:g}: "
                                              "h·λ of each layer's Jacobian, Euler disc shaded").name)
    outside = [networks[str(n)]["fraction_outside_euler_disc"] for n in LAYERS]
    spread = [networks[str(n)]["max_abs_h_lambda"] for n in LAYERS]
    amplif = [networks[str(n)]["max_amplification"] for n in LAYERS]
    results = {
        "experiment": "eigenvalues",
        "claims": {
            "violations_shrink_with_more_time_points": amplif[0] > amplif[1] > amplif[2],
            "share_outside_the_disc_falls_with_more_time_points": outside[0] > outside[1] > outside[2],
            "eigenvalues_less_spread_with_more_time_points": spread[0] > spread[1] > spread[2],
            "coarsest_network_has_real_parts_above_zero": networks[str(LAYERS[0])]["max_real"] > 0,
        },
        "networks": networks,
        "figures": figures,
        "quick": quick,
    }
    write_json(out_dir / "results.json", results)
    return results
