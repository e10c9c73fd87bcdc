"""`breakwater experiment list | run`: parsing and printing only.

The work is done by `chaos.experiments` and, for the report of a run, `chaos.reports`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    """Add the `experiment` command group."""
    experiment = subparsers.add_parser("experiment", help="fault experiments with verdicts")
    actions = experiment.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="the experiments and their variants")
    listing.set_defaults(func=list_experiments)
    run = actions.add_parser("run", help="run one experiment (NAME or NAME.VARIANT)")
    run.add_argument("name")
    run.add_argument("--resilience", choices=("on", "off"), help="override the definition")
    run.add_argument("--product-replicas", type=int)
    run.add_argument("--duration-scale", type=float, default=1.0,
                     help="multiply every time in the definition (e.g. 0.5)")
    run.add_argument("--keep-stack", action="store_true",
                     help="leave a stack this run started running")
    run.set_defaults(func=run_experiment)


def list_experiments(args: argparse.Namespace) -> int:
    """`breakwater experiment list`."""
    from chaos.experiments.model import definitions

    for name, experiment in definitions().items():
        variants = ", ".join(f"{name}.{v}" for v in experiment.variants)
        print(f"{name:24} v{experiment.version}  {experiment.kind:9} "
              f"{experiment.duration:.0f} s" + (f"  (variants: {variants})" if variants else ""))
        print(f"    {experiment.description.splitlines()[0][:100] if experiment.description else ''}")
    return 0


def run_experiment(args: argparse.Namespace) -> int:
    """`breakwater experiment run NAME …`: exit 0 when the hypothesis holds, 1 otherwise."""
    from chaos.experiments.model import DefinitionError
    from chaos.reports import run_and_report as run

    resilience = None if args.resilience is None else args.resilience == "on"
    try:
        result = run(args.name, resilience=resilience, product_replicas=args.product_replicas,
                     duration_scale=args.duration_scale, keep_stack=args.keep_stack)
    except DefinitionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"report: {result.run_dir / 'report.html'}")
    return 0 if result.holds else 1
