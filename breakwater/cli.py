"""The `breakwater` command: parses arguments and hands off to library functions.

Each command group lives in its own module exposing `register(subparsers)`; a parser it adds
sets `func=callable(args) -> int`. Heavy imports happen inside those callables so that
`breakwater --help` stays fast. Every value is checked while parsing (`breakwater.arguments`),
before a command creates or starts anything; what the library refuses at run time becomes one
line, `breakwater <command>: error: …`, and exit status 2 (`breakwater.errors`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib import metadata

from breakwater.errors import EXIT_USAGE, format_error, user_error

COMMAND_MODULES = (
    "breakwater.stack_cli",
    "breakwater.chaos_cli",
    "breakwater.traces_cli",
    "breakwater.load_cli",
    "breakwater.experiment_cli",
    "breakwater.report_cli",
    "breakwater.demo_cli",
    "breakwater.console_cli",
    "breakwater.admin_cli",
)


def version() -> str:
    """The installed distribution's version."""
    try:
        return metadata.version("breakwater")
    except metadata.PackageNotFoundError:
        return "unknown (not installed: `make install`)"


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every command group registered."""
    parser = argparse.ArgumentParser(
        prog="breakwater",
        description="Resilience and observability testbed for a Flask microservice shop.",
        epilog="`breakwater COMMAND --help` describes each command.",
    )
    parser.add_argument("--version", action="version", version=f"breakwater {version()}")
    parser.add_argument("--debug", action="store_true",
                        help="show the Python traceback of an error instead of one line")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    _name_commands(parser)
    return parser


def _name_commands(parser: argparse.ArgumentParser) -> None:
    """Give every parser's namespace its own `prog` (`breakwater chaos latency`), which the
    error line names; the deepest parser that ran sets it last."""
    parser.set_defaults(prog=parser.prog)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in set(action.choices.values()):
                _name_commands(child)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        kind = user_error(error)
        if kind is None or args.debug:
            raise
        print(format_error(args.prog, error, kind), file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
