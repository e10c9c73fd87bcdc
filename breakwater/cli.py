"""The `breakwater` command: parses arguments and hands off to library functions.

Each command group lives in its own module exposing `register(subparsers)`; a parser it adds
sets `func=callable(args) -> int`. Heavy imports happen inside those callables so that
`breakwater --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "breakwater.stack_cli",
    "breakwater.chaos_cli",
    "breakwater.traces_cli",
    "breakwater.load_cli",
    "breakwater.experiment_cli",
    "breakwater.report_cli",
    "breakwater.demo_cli",
    "breakwater.console_cli",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every command group registered."""
    parser = argparse.ArgumentParser(
        prog="breakwater",
        description="Resilience and observability testbed for a Flask microservice shop.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
