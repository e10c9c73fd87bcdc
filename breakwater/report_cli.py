"""`breakwater report list | open`: the reports of past runs; parsing and printing only."""

from __future__ import annotations

import argparse
import contextlib
from typing import Any


def register(subparsers: Any) -> None:
    """Add the `report` command group."""
    report = subparsers.add_parser(
        "report", help="the reports of past runs",
        description="The runs in reports/ (BREAKWATER_REPORTS_DIR) and their pages.")
    report_actions = report.add_subparsers(dest="action", metavar="ACTION", required=True)
    report_actions.add_parser("list", help="every run, newest first").set_defaults(
        func=list_reports)
    opener = report_actions.add_parser(
        "open", help="open the page of every run, or one run's report.html",
        description="Print the page's path and open it in a browser: with no RUN the index of "
                    "every run (reports/index.html), else that run's report.")
    opener.add_argument("run", nargs="?", metavar="RUN",
                        help="run folder name, or a part of it (default: the index)")
    opener.set_defaults(func=open_report)


def list_reports(args: argparse.Namespace) -> int:
    """`breakwater report list`."""
    from chaos.experiments.runs import reports_root
    from chaos.reports.runs import list_runs

    runs = list_runs()
    if not runs:
        print(f"no reports in {reports_root().absolute()} yet (`breakwater experiment run "
              "NAME`, `breakwater load SCENARIO` or `breakwater demo` make some)")
    for run in runs:
        print(f"{run['run']:48} {run['verdict']:9} {run['date']:19}  {run['path']}")
    return 0


def open_report(args: argparse.Namespace) -> int:
    """`breakwater report open [RUN]`: the index (rewritten first), or one run's page."""
    import webbrowser

    from chaos.reports.runs import find_run, write_index

    if args.run:
        folder = find_run(args.run)
        page = next((folder / name for name in ("report.html", "locust.html")
                     if (folder / name).exists()), folder / "report.html")
    else:
        page = write_index()
    page = page.resolve()
    if not page.exists():
        raise FileNotFoundError(f"{page} is missing (the run wrote no page)")
    print(page)
    with contextlib.suppress(Exception):  # printing the path is the contract
        webbrowser.open(page.as_uri())
    return 0
