"""The ``stablenet`` command line.

Errors a user can fix (bad arguments, bad values, bad files) print one line and exit with
status 2, without a traceback (set STABLENET_DEBUG=1 to see it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from .. import __version__


def _experiment(args) -> int:
    from .experiments import EXPERIMENTS

    if args.list or not args.name:
        for name, module in EXPERIMENTS.items():
            print(f"{name:24s} {module.SUMMARY}")
        return 0
    if args.name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {args.name!r}; choose one of {sorted(EXPERIMENTS)} "
                         f"(stablenet experiment --list)")
    out = args.out or f"runs/{args.name}"
    start = time.perf_counter()
    results = EXPERIMENTS[args.name].run(out, quick=args.quick)
    seconds = time.perf_counter() - start
    from .experiments.verdict import describe

    for record in results["claims"]:        # verdict word, claim, mean ± std (n) or values vs target
        print(f"  {record['verdict']:12s}  {record['claim']}: {describe(record)}")
    figures = ", ".join(results.get("figures", []))
    print(f"{args.name}: done in {seconds:.1f} s; wrote {out}/results.json and {figures}")
    return 0


def _train(args) -> int:
    from .config import load_config, read_config_text
    from .plots import make_plots
    from .training import train

    overrides = list(args.set) + ([f"data.data_dir={json.dumps(args.data_dir)}"] if args.data_dir else [])
    config, _ = load_config(args.config, overrides)
    out = Path(args.out or Path("runs") / Path(args.config).stem)
    text = read_config_text(args.config)
    if args.set:
        text += "\n# overridden on the command line: " + " ".join(args.set) + "\n"
    lead = os.environ.get("RANK", "0") == "0"  # under torchrun only rank 0 reports and plots
    metrics = train(config, out, config_text=text, resume=args.resume, overwrite=args.overwrite,
                    progress=not args.quiet, announce=(lambda line: print(line, flush=True)) if lead else None)
    if not lead:
        return 0
    figures = make_plots(out)
    summary = (f"best validation accuracy {100 * metrics['val_accuracy']:.2f}% (epoch {metrics['best_epoch']})")
    if "test_accuracy" in metrics:
        summary += f", test accuracy {100 * metrics['test_accuracy']:.2f}%"
    print(f"{summary}; {metrics['wall_time_s']:.1f} s")
    print(f"metrics: {out / 'metrics.json'}")
    print("plots:   " + ", ".join(str(f) for f in figures))
    return 0


def _evaluate(args) -> int:
    from ..conv_models import ConvODENet
    from ..models import get_loss
    from .training import evaluate, evaluation_batch_size, load_run

    config, model, data = load_run(args.run_dir, data_dir=args.data_dir)
    if args.steps is not None:
        for block in model.blocks:
            block.steps = args.steps
    split = getattr(data, args.split)
    if split is None:
        raise ValueError(f"data set {data.name!r} has no {args.split} split")
    param = next(model.parameters())
    result = {"split": args.split, "steps": [b.steps for b in model.blocks]}
    if isinstance(model, ConvODENet) and model.has_batch_norm():
        if model.batch_norm_statistics_stale():  # --steps: recompute them for the new state grids
            model.calibrate_batch_norm(data.train.x.to(param))
        result["batch_norm_statistics"] = "batch" if model.batch_norm_statistics is None else "population"
    result["batch_size"] = evaluation_batch_size(model) if args.batch_size is None else args.batch_size
    loss, acc = evaluate(model, split.x.to(param), split.y.to(param.device), get_loss(config.training.loss),
                         result["batch_size"])
    print(json.dumps({**result, "accuracy": acc, "loss": loss}))
    return 0


def _plot(args) -> int:
    from .plots import make_plots

    if not (Path(args.run_dir) / "history.json").exists():
        raise ValueError(f"{args.run_dir} is not a stablenet run directory with a history (history.json)")
    for figure in make_plots(args.run_dir, data_dir=args.data_dir):
        print(figure)
    return 0


def _analyze(args) -> int:
    from .report import analyze_run

    report = analyze_run(args.run_dir, args.out, samples=args.samples, crop=args.crop, data_dir=args.data_dir)
    out = Path(args.out) if args.out else Path(args.run_dir) / "analysis"
    net = report["network"]
    sign = "≤ 0 up to round-off in every layer" if net["continuous_stable"] else "> 0 in some layer"
    print(f"max Re λ = {net['max_real']:.3g} ({sign}), max amplification {net['max_amplification']:.4f}, "
          f"{100 * net['fraction_stable']:.1f}% of h·λ inside the stability region")
    print(f"wrote {out / 'stability.json'} and " + ", ".join(report["figures"]))
    return 0


def _robustness(args) -> int:
    from .robustness_report import robustness_run

    report = robustness_run(args.run_dir, attacks=args.attack, eps=args.eps, split=args.split, samples=args.samples,
                            steps=args.steps, restarts=args.restarts, seed=args.seed, data_dir=args.data_dir)
    out = Path(args.run_dir) / "robustness"
    print(f"{report['data']} {report['split']} split, {report['points']} points: clean accuracy "
          f"{100 * report['clean_accuracy']:.2f}%")
    for curve in report["attacks"]:
        print(f"  {curve['attack']:16s} AUC {100 * curve['auc']:6.2f}%, accuracy at ε = {curve['eps'][-1]:.3g}: "
              f"{100 * curve['accuracy'][-1]:.2f}%")
    for check in report["step_checks"]:
        if not check["converged"]:
            print(f"  warning: {check['attack']} with {check['more_steps']} steps finds {100 * check['gap']:.1f}% "
                  f"more adversarial points than with {check['steps']}: the attack has not converged")
    lip = report["lipschitz"]
    certified = "none" if lip["certified"] is None else f"{lip['certified']:.4g}"
    empirical = "none" if lip["empirical"] is None else f"{lip['empirical']:.4g}"
    print(f"  Lipschitz constant (L2) of input → logits: empirical {empirical}, certified bound {certified}")
    print(f"wrote {out / 'robustness.json'} and " + ", ".join(report["figures"]))
    return 0


def _size(text: str) -> float:
    """An argparse type: a finite number >= 0 (a perturbation size)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def _nonnegative(text: str) -> int:
    """An argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def _config_docs(args) -> int:
    from .config import config_reference

    print(config_reference())
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with its errors as one line (``stablenet train: error: …``), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _count(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


_DATA_DIR_HELP = ("directory with the data files (Fashion-MNIST IDX files, CIFAR-10 binary batches), "
                  "if not the run's data.data_dir")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="stablenet",
        description="Deep neural networks as discretized ODEs: build, train and analyse stable networks.",
    )
    parser.add_argument("--version", action="version", version=f"stablenet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    tr = sub.add_parser("train", help="train a network from a TOML config",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        epilog="examples:\n"
                               "  stablenet train configs/peaks.toml\n"
                               "  stablenet train configs/peaks.toml --out runs/short --set training.epochs=5\n\n"
                               "every configuration key, its default and its meaning: stablenet config-docs\n"
                               "(the same reference as docs/configuration.md)")
    tr.add_argument("config", help="TOML configuration file, e.g. configs/peaks.toml")
    tr.add_argument("--out", help="run directory (default runs/CONFIG-NAME)")
    tr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config key (all keys: stablenet config-docs), e.g. --set training.epochs=5 "
                    "--set model.blocks.0.steps=64")
    group = tr.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    group.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    tr.add_argument("--data-dir", help="directory with the data files (Fashion-MNIST IDX files, CIFAR-10 "
                    "binary batches)")
    tr.add_argument("--quiet", action="store_true", help="no progress bar")
    tr.set_defaults(func=_train)

    ev = sub.add_parser("evaluate", help="evaluate a run's best weights, optionally on another state grid")
    ev.add_argument("run_dir")
    ev.add_argument("--steps", type=_count, help="number of state steps N for every block (default: as trained)")
    ev.add_argument("--split", choices=["train", "val", "test"], default="test")
    ev.add_argument("--batch-size", type=_count, help="points per evaluation batch (default 4096; 500 images for "
                    "convolutional models, whose in-block batch normalization uses each batch's statistics)")
    ev.add_argument("--data-dir", help=_DATA_DIR_HELP)
    ev.set_defaults(func=_evaluate)

    pl = sub.add_parser("plot", help="(re)draw a run's figures")
    pl.add_argument("run_dir")
    pl.add_argument("--data-dir", help=_DATA_DIR_HELP)
    pl.set_defaults(func=_plot)

    an = sub.add_parser("analyze", help="stability analysis of a trained run: eigenvalues, sensitivity")
    an.add_argument("run_dir")
    an.add_argument("--out", help="output directory (default RUN_DIR/analysis)")
    an.add_argument("--samples", type=_count, help="validation inputs whose layer Jacobians are computed "
                    "(default 200; convolutional runs 4)")
    an.add_argument("--crop", type=_count, default=6, help="convolutional runs: Jacobians on the centre CROP×CROP "
                    "window of each block's feature maps (default 6)")
    an.add_argument("--data-dir", help=_DATA_DIR_HELP)
    an.set_defaults(func=_analyze)

    from ..robustness.attacks import ATTACKS  # light: ART is imported only when an attack runs

    ro = sub.add_parser("robustness", help="accuracy of a trained run under noise and adversarial attacks, "
                        "Lipschitz constants")
    ro.add_argument("run_dir")
    ro.add_argument("--attack", action="append", choices=list(ATTACKS), metavar="NAME",
                    help=f"an attack (repeat for several): {', '.join(ATTACKS)} (default: the noises, FGSM and PGD "
                    f"in L∞ and L2, and autoattack-linf for images)")
    ro.add_argument("--eps", type=_size, nargs="+", metavar="E", help="perturbation sizes (0 is added; default "
                    "0, 0.005, 0.01, 0.02, 0.05, 0.1 times the input domain's side: [0, 1] pixels, [-3, 3] for peaks)")
    ro.add_argument("--split", choices=["train", "val", "test"], help="the points attacked (default test, else val)")
    ro.add_argument("--samples", type=_count, default=500, help="the first SAMPLES points of the split (default 500)")
    ro.add_argument("--steps", type=_count, help="iterations of PGD and AutoAttack (default 20 and 100)")
    ro.add_argument("--restarts", type=_nonnegative, help="random starts of PGD and AutoAttack (default 1)")
    ro.add_argument("--seed", type=_nonnegative, default=0, help="seed of the noise and the random starts")
    ro.add_argument("--data-dir", help=_DATA_DIR_HELP)
    ro.set_defaults(func=_robustness)

    cd = sub.add_parser("config-docs", help="print the configuration reference (Markdown)")
    cd.set_defaults(func=_config_docs)

    exp = sub.add_parser("experiment", help="reproduce a seed experiment (figures + results.json)")
    exp.add_argument("name", nargs="?", help="experiment name (see --list)")
    exp.add_argument("--out", help="output directory (default runs/NAME)")
    exp.add_argument("--quick", action="store_true", help="smaller settings that run in seconds")
    exp.add_argument("--list", action="store_true", help="list the experiments")
    exp.set_defaults(func=_experiment)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("stablenet: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, RuntimeError) as exc:
        if os.environ.get("STABLENET_DEBUG"):
            raise
        print(f"stablenet: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
