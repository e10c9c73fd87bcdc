"""`breakwater load | experiment | report | demo`: argument parsing and printing only.

The work is done by `loadtests.runner`, `chaos.experiments.runner` and `observability.report`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from typing import Any

DEMO_PLAN = (
    ("cart-outage", {"resilience": True}),
    ("cart-outage", {"resilience": False}),
    ("flash-sale-integrity", {}),
    ("product-scaling", {}),
)


def register(subparsers: Any) -> None:
    """Add the load, experiment, report and demo commands."""
    load = subparsers.add_parser("load", help="run a Locust scenario headless against the gateway")
    load.add_argument("scenario", help="browse, flash-sale, checkout, mixed, hot-reads, catalog")
    load.add_argument("--users", type=int, help="users (peak users for flash-sale and ramp)")
    load.add_argument("--spawn-rate", type=float, help="users started a second")
    load.add_argument("--duration", default="60s", help="e.g. 60s, 2m (default 60s)")
    load.add_argument("--shape", choices=("steady", "ramp", "flash-sale"),
                      help="load shape (default: the scenario's)")
    load.add_argument("--rate", type=float,
                      help="open loop: offer this many requests a second (constant arrival)")
    load.add_argument("--host", help="gateway URL (default: the running stack's, else :8080)")
    load.add_argument("--out", help="report folder (default reports/<time>-load-<scenario>)")
    load.set_defaults(func=run_load)

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

    report = subparsers.add_parser("report", help="the reports of past runs")
    report_actions = report.add_subparsers(dest="action", metavar="ACTION", required=True)
    report_actions.add_parser("list", help="every run, newest first").set_defaults(
        func=list_reports)
    opener = report_actions.add_parser("open", help="print a run's report.html, open a browser")
    opener.add_argument("run", nargs="?", help="run folder name (part of it will do); newest")
    opener.set_defaults(func=open_report)

    demo = subparsers.add_parser("demo", help="stack up, headline experiments, verdict table")
    demo.add_argument("--keep", action="store_true", help="leave the stack running afterwards")
    demo.add_argument("--duration-scale", type=float, default=0.7)
    demo.set_defaults(func=run_demo)


def _gateway_default() -> str:
    try:
        from chaos.experiments.stack import LocalStack

        state = LocalStack().state()
        if state is not None and state.gateway_url:
            return state.gateway_url
    except Exception:  # noqa: BLE001 - no stack: the documented default
        return "http://127.0.0.1:8080"
    return "http://127.0.0.1:8080"


def run_load(args: argparse.Namespace) -> int:
    """`breakwater load SCENARIO …`."""
    from pathlib import Path

    from loadtests.profiles import parse_duration
    from loadtests.runner import LoadSpec, run_load_in_subprocess
    from observability.report.runs import new_run_dir

    out = Path(args.out) if args.out else new_run_dir(f"load-{args.scenario}")
    spec = LoadSpec(scenario=args.scenario, out_dir=str(out), host=args.host or _gateway_default(),
                    shape=args.shape, users=args.users, duration=parse_duration(args.duration),
                    spawn_rate=args.spawn_rate, rate=args.rate)
    try:
        profile = spec.profile()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    mode = f"open loop, {profile.rate:g} req/s offered" if profile.open_loop else "closed loop"
    print(f"load {args.scenario}: {profile.name}, {profile.peak_users} users, "
          f"{profile.duration:.0f} s, {mode} → {spec.host}")
    result = run_load_in_subprocess(spec)
    print(f"requests {result['requests']}, failures {result['failures']}, "
          f"p95 {result['p95_ms']} ms, achieved {result['achieved_rate']:.1f} req/s"
          + (f" of {result['offered_rate']:g} offered" if result.get("offered_rate") else ""))
    print(f"report: {out} (locust.html, locust_*.csv, requests.csv, load.json)")
    return 1 if result["failures"] else 0


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
    from chaos.experiments.runner import run_experiment as run

    resilience = None if args.resilience is None else args.resilience == "on"
    try:
        result = run(args.name, resilience=resilience, product_replicas=args.product_replicas,
                     duration_scale=args.duration_scale, keep_stack=args.keep_stack)
    except DefinitionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"report: {result.run_dir / 'report.html'}")
    return 0 if result.holds else 1


def list_reports(args: argparse.Namespace) -> int:
    """`breakwater report list`."""
    from observability.report.runs import list_runs

    runs = list_runs()
    if not runs:
        print("no reports yet (run `breakwater experiment run NAME` or `breakwater demo`)")
    for run in runs:
        print(f"{run['run']:48} {run['verdict']:5} {run['path']}")
    return 0


def open_report(args: argparse.Namespace) -> int:
    """`breakwater report open [RUN]`."""
    import webbrowser

    from observability.report.runs import find_run

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


def run_demo(args: argparse.Namespace) -> int:
    """`breakwater demo`: the headline experiments and a verdict table."""
    from breakwater.supervisor.progress import ConsoleProgress
    from chaos.experiments.runner import run_experiment as run
    from chaos.experiments.stack import LocalStack

    began = time.monotonic()
    stack = LocalStack(progress=ConsoleProgress())
    rows = []
    try:
        for name, options in DEMO_PLAN:
            result = run(name, resilience=options.get("resilience"), keep_stack=True,
                         duration_scale=args.duration_scale, stack=stack)
            expected = options.get("resilience", True) is not False
            rows.append((name, "on" if expected else "off", result.holds, expected,
                         result.run_dir))
    finally:
        if not args.keep:
            LocalStack().down(log=print)
    print(f"\n{'experiment':24} {'resilience':10} {'hypothesis':12} {'as expected':12} report")
    ok = True
    for name, resilience, holds, expected, folder in rows:
        verdict = "n/a" if holds is None else ("HOLDS" if holds else "FAILS")
        matches = holds is expected
        ok = ok and matches
        print(f"{name:24} {resilience:10} {verdict:12} {'yes' if matches else 'NO':12} "
              f"{folder / 'report.html'}")
    print(f"demo took {time.monotonic() - began:.0f} s")
    return 0 if ok else 1
