"""`breakwater report list | open`: the reports of past runs; parsing and printing only."""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any


def register(subparsers: Any) -> None:
    """Add the `report` command group."""
    report = subparsers.add_parser("report", help="the reports of past runs")
    report_actions = report.add_subparsers(dest="action", metavar="ACTION", required=True)
    report_actions.add_parser("list", help="every run, newest first").set_defaults(
        func=list_reports)
    opener = report_actions.add_parser("open", help="print a run's report.html, open a browser")
    opener.add_argument("run", nargs="?", help="run folder name (part of it will do); newest")
    opener.set_defaults(func=open_report)


def list_reports(args: argparse.Namespace) -> int:
    """`breakwater report list`."""
    from chaos.reports.runs import list_runs

    runs = list_runs()
    if not runs:
        print("no reports yet (run `breakwater experiment run NAME` or `breakwater demo`)")
    for run in runs:
        print(f"{run['run']:48} {run['verdict']:5} {run['path']}")
    return 0


def open_report(args: argparse.Namespace) -> int:
    """`breakwater report open [RUN]`."""
    import webbrowser

    from chaos.reports.runs import find_run

    try:
        folder = find_run(args.run)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    page = (folder / "report.html").resolve()
    print(page)
    if page.exists():
        with contextlib.suppress(Exception):  # printing the path is the contract
            webbrowser.open(page.as_uri())
    return 0
