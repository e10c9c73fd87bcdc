"""`breakwater load SCENARIO`: Locust headless against the gateway; parsing and printing only.

The work is done by `loadtests.runner`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    """Add the `load` command."""
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
    load.add_argument("--web", nargs="?", type=int, const=8089, metavar="PORT",
                      help="also serve Locust's own web UI on 127.0.0.1:PORT (default 8089, a "
                      "free port when it is taken); the console links to it")
    load.set_defaults(func=run_load)


def _gateway_default() -> str:
    try:
        from chaos.experiments.stack import LocalStack

        state = LocalStack().state()
        if state is not None and state.gateway_url:
            return state.gateway_url
    except Exception:  # noqa: BLE001 - no stack: the documented default
        return "http://127.0.0.1:8080"
    return "http://127.0.0.1:8080"


def web_ui_port(wanted: int) -> int:
    """`wanted` when it is free on 127.0.0.1, else a free port (0 also picks one)."""
    import socket

    if not 0 <= wanted <= 65535:
        raise ValueError(f"--web port must be 0..65535, not {wanted}")
    for port in (wanted, 0) if wanted else (0,):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise ValueError("no free port for Locust's web UI")


def web_announce_file():
    """Where a running web UI is announced for the console: <var>/load-web.json."""
    from services.common.settings import var_dir

    return var_dir() / "load-web.json"


def run_load(args: argparse.Namespace) -> int:
    """`breakwater load SCENARIO …`."""
    from pathlib import Path

    from chaos.experiments.runs import new_run_dir
    from loadtests.profiles import parse_duration
    from loadtests.runner import LoadSpec, run_load_in_subprocess

    out = Path(args.out) if args.out else new_run_dir(f"load-{args.scenario}")
    spec = LoadSpec(scenario=args.scenario, out_dir=str(out), host=args.host or _gateway_default(),
                    shape=args.shape, users=args.users, duration=parse_duration(args.duration),
                    spawn_rate=args.spawn_rate, rate=args.rate)
    try:
        profile = spec.profile()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.web is not None:
        try:
            spec.web_port, spec.web_announce = web_ui_port(args.web), str(web_announce_file())
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"Locust web UI: http://127.0.0.1:{spec.web_port} (linked from the console)")
    mode = f"open loop, {profile.rate:g} req/s offered" if profile.open_loop else "closed loop"
    print(f"load {args.scenario}: {profile.name}, {profile.peak_users} users, "
          f"{profile.duration:.0f} s, {mode} → {spec.host}")
    result = run_load_in_subprocess(spec)
    print(f"requests {result['requests']}, failures {result['failures']}, "
          f"p95 {result['p95_ms']} ms, achieved {result['achieved_rate']:.1f} req/s"
          + (f" of {result['offered_rate']:g} offered" if result.get("offered_rate") else ""))
    print(f"report: {out} (locust.html, locust_*.csv, requests.csv, load.json)")
    return 1 if result["failures"] else 0
