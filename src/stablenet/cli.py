"""The ``stablenet`` command line.

Errors a user can fix (bad arguments, bad values) print one line and exit with status 2; no
traceback.
"""

from __future__ import annotations

import argparse
import sys
import time

from . import __version__


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
    for claim, holds in results.get("claims", {}).items():
        print(f"  {'yes' if holds else 'NO ':3s}  {claim}")
    figures = ", ".join(results.get("figures", []))
    print(f"{args.name}: done in {seconds:.1f} s; wrote {out}/results.json and {figures}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stablenet",
        description="Deep neural networks as discretized ODEs: build, train and analyse stable networks.",
    )
    parser.add_argument("--version", action="version", version=f"stablenet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

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
    except (ValueError, TypeError, OSError) as exc:
        print(f"stablenet: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
