"""`breakwater console`: serve the live console in the foreground; parsing and printing only.

Without addresses it watches the local stack of this folder (`breakwater up` already starts
one console; this runs another, e.g. on another port). With them it watches compose or
Kubernetes: `breakwater console --gateway-admin URL --toxiproxy URL --jaeger URL`.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add the `console` command."""
    from console.__main__ import add_arguments

    parser = subparsers.add_parser(
        "console", help="serve the live console (breakers, traffic, faults, experiment, traces)",
        description="Serve the live console in the foreground. Without addresses it watches the "
                    "local stack started here; give --gateway-admin, --toxiproxy and --jaeger "
                    "to watch compose or Kubernetes.")
    add_arguments(parser)
    parser.add_argument("--var-dir", metavar="PATH",
                        help="the local stack's state folder (default ./var)")
    parser.set_defaults(func=run_console)


def local_defaults(var_dir: str | None) -> dict[str, str]:
    """The running local stack's addresses, when one is recorded here."""
    from local_stack import Supervisor
    from local_stack.state import StateError

    try:
        state = Supervisor(var_dir).state()
    except StateError:
        return {}
    if state is None:
        return {}
    found = {"gateway_admin_url": state.to_json().get("gateway_admin_url") or state.gateway_url,
             "toxiproxy_url": state.toxiproxy_url}
    return {key: value for key, value in found.items() if value}


def run_console(args: argparse.Namespace) -> int:
    """`breakwater console …`."""
    from console.__main__ import settings_from
    from console.server import serve

    # A bad setting (a port out of range, …) is a SettingsError: the error line of cli.main.
    settings = settings_from(args, local_defaults(args.var_dir))
    print(f"console for gateway {settings.gateway_admin_url}, fault proxy "
          f"{settings.toxiproxy_url or '$TOXIPROXY_URL or http://127.0.0.1:8474'}, traces from "
          f"{settings.jaeger_url or settings.resolved_traces_dir()}", flush=True)
    return serve(settings)
