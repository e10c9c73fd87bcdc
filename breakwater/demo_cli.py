"""`breakwater demo`: the stack up, the headline experiments, a verdict table."""

from __future__ import annotations

import argparse
import time
from typing import Any

from breakwater.arguments import positive_float


def register(subparsers: Any) -> None:
    """Add the `demo` command."""
    demo = subparsers.add_parser(
        "demo", help="stack up, headline experiments, verdict table",
        description="Start the local stack, run the headline experiments (cart outage with "
                    "resilience on and off, flash-sale integrity, product scaling, a short "
                    "checkout nemesis), each with its report, print a verdict table and stop "
                    "the stack.")
    demo.add_argument("--keep", action="store_true", help="leave the stack running afterwards")
    demo.add_argument("--duration-scale", type=positive_float, default=0.7, metavar="FACTOR",
                      help="multiply every experiment's times (default 0.7; 0.3 is quicker "
                      "and noisier)")
    demo.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    """`breakwater demo`: the headline experiments and a verdict table; 0 when all as expected."""
    from chaos.experiments.stack import LocalStack
    from chaos.reports.demo import run_demo as demo
    from local_stack.progress import ConsoleProgress

    began = time.monotonic()
    rows = demo(duration_scale=args.duration_scale, keep=args.keep,
                stack=LocalStack(progress=ConsoleProgress()))
    print(f"\n{'experiment':24} {'resilience':10} {'hypothesis':12} {'as expected':12} report")
    for row in rows:
        print(f"{row.experiment:24} {'on' if row.resilience else 'off':10} {row.verdict:12} "
              f"{'yes' if row.as_expected else 'NO':12} {row.run_dir / 'report.html'}")
    print(f"demo took {time.monotonic() - began:.0f} s")
    return 0 if all(row.as_expected for row in rows) else 1
