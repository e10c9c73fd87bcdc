"""`breakwater load SCENARIO`: Locust headless against the gateway; parsing and printing only.

The work is done by `loadtests.runner`.
"""

from __future__ import annotations

import argparse
from typing import Any

from breakwater.arguments import (
    bounded_int,
    duration,
    port,
    positive_float,
    positive_int,
    url,
)


def register(subparsers: Any) -> None:
    """Add the `load` command."""
    from loadtests.distributed import MAX_WORKERS
    from loadtests.scenarios import SCENARIOS

    load = subparsers.add_parser(
        "load", help="run a Locust scenario headless against the gateway",
        description="Run a Locust scenario headless against the gateway and keep its files in "
                    "a report folder (reports/<time>-load-<scenario>/).",
        epilog="scenarios: " + "; ".join(f"{s.name}: {s.description}"
                                          for s in SCENARIOS.values()))
    load.add_argument("scenario", choices=list(SCENARIOS), metavar="SCENARIO",
                      help=", ".join(SCENARIOS))
    load.add_argument("--users", type=positive_int, metavar="N",
                      help="users (peak users for flash-sale and ramp; default: the shape's)")
    load.add_argument("--spawn-rate", type=positive_float, metavar="N",
                      help="users started a second (default: the shape's)")
    load.add_argument("--duration", type=duration, default=60.0,
                      help="e.g. 60s, 2m, 1m30s (default 60s)")
    load.add_argument("--shape", choices=("steady", "ramp", "flash-sale"),
                      help="load shape (default: the scenario's)")
    load.add_argument("--rate", type=positive_float, metavar="RPS",
                      help="open loop: offer this many requests a second (constant arrival; "
                           "catalog scenario)")
    load.add_argument("--workers", type=bounded_int(1, MAX_WORKERS), metavar="N",
                      help="run Locust distributed on this host: a master and N worker "
                           "processes, for load beyond one core (default: one process)")
    load.add_argument("--host", metavar="URL", type=url,
                      help="gateway URL (default: the running stack's, else :8080)")
    load.add_argument("--out", metavar="DIR",
                      help="report folder (default reports/<time>-load-<scenario>)")
    load.add_argument("--web", nargs="?", type=port, const=8089, metavar="PORT",
                      help="also serve Locust's own web UI on 127.0.0.1:PORT (default 8089, a "
                      "free port when it is taken); the console links to it")
    load.set_defaults(func=run_load)


def _gateway_default() -> str:
    from chaos.experiments.stack import LocalStack

    state = LocalStack().state()
    return state.gateway_url if state is not None and state.gateway_url else \
        "http://127.0.0.1:8080"


def web_ui_port(wanted: int) -> int:
    """`wanted` when it is free on 127.0.0.1, else a free port (0 also picks one)."""
    import socket

    if not 0 <= wanted <= 65535:
        raise ValueError(f"--web port must be 0..65535, not {wanted}")
    for candidate in (wanted, 0) if wanted else (0,):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise ValueError("no free port for Locust's web UI")


def web_announce_file():
    """Where a running web UI is announced for the console: <var>/load-web.json."""
    from services.common.settings import var_dir

    return var_dir() / "load-web.json"


def run_load(args: argparse.Namespace) -> int:
    """`breakwater load SCENARIO …`: the spec is checked in full before its folder is made."""
    from pathlib import Path

    from chaos.experiments.runs import new_run_dir
    from loadtests.runner import LoadSpec, run_load_in_subprocess

    spec = LoadSpec(scenario=args.scenario, out_dir="", host=args.host or _gateway_default(),
                    shape=args.shape, users=args.users, duration=args.duration,
                    spawn_rate=args.spawn_rate, rate=args.rate, workers=args.workers or 0)
    profile = spec.profile()  # ValueError: the error line, and no folder made
    if args.web is not None:
        spec.web_port, spec.web_announce = web_ui_port(args.web), str(web_announce_file())
    out = Path(args.out) if args.out else new_run_dir(f"load-{args.scenario}")
    spec.out_dir = str(out)
    if spec.web_port is not None:
        print(f"Locust web UI: http://127.0.0.1:{spec.web_port} (linked from the console)")
    mode = f"open loop, {profile.rate:g} req/s offered" if profile.open_loop else "closed loop"
    workers = f", {spec.workers} Locust workers" if spec.workers else ""
    print(f"load {args.scenario}: {profile.name}, {profile.peak_users} users, "
          f"{profile.duration:.0f} s, {mode}{workers} → {spec.host}")
    result = run_load_in_subprocess(spec)
    print(f"requests {result['requests']}, failures {result['failures']}, "
          f"p95 {result['p95_ms']} ms, achieved {result['achieved_rate']:.1f} req/s"
          + (f" of {result['offered_rate']:g} offered" if result.get("offered_rate") else ""))
    print(f"report: {out} (locust.html, locust_*.csv, requests.csv, load.json)")
    if not args.out:
        from chaos.reports.runs import write_index

        print(f"every run: {write_index(out.parent)}")
    return 1 if result["failures"] else 0
