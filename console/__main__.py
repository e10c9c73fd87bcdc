"""`python -m console`: serve the console in the foreground (`breakwater console` does the same
and fills in the running local stack's addresses)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from console.settings import ConsoleSettings

# option -> (settings field, metavar, help)
OPTIONS: dict[str, tuple[str, str, str]] = {
    "--host": ("host", "HOST", "address to listen on (default 127.0.0.1; keep it on loopback)"),
    "--port": ("port", "PORT", "port (default 8090; 0 picks a free one)"),
    "--gateway-admin": ("gateway_admin_url", "URL",
                        "the gateway's admin address: /gateway/upstreams and /metrics"),
    "--toxiproxy": ("toxiproxy_url", "URL", "the fault proxy's API (Breakwater's or Toxiproxy)"),
    "--jaeger": ("jaeger_url", "URL", "Jaeger's query service; traces come from it when set"),
    "--traces-dir": ("traces_dir", "DIR",
                     "span files to read when no Jaeger is given (var/traces)"),
    "--experiment-progress": ("experiment_progress", "FILE",
                              "the running experiment's progress file "
                              "(var/experiment-progress.json)"),
    "--locust": ("locust_url", "URL", "Locust's web UI to link to (compose: http://localhost:8089)"),
    "--allowed-host": ("allowed_hosts", "NAMES",
                       "other host names the page may be opened by (comma-separated)"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The console's options (each also readable from CONSOLE_<FIELD>)."""
    for option, (field, metavar, text) in OPTIONS.items():
        parser.add_argument(option, dest=field, metavar=metavar, help=text)


def settings_from(args: argparse.Namespace, defaults: dict[str, Any] | None = None
                  ) -> ConsoleSettings:
    """Settings: the options given, then `defaults`, then CONSOLE_* variables."""
    chosen = dict(defaults or {})
    for field, _, _ in OPTIONS.values():
        value = getattr(args, field, None)
        if value not in (None, ""):
            chosen[field] = value
    return ConsoleSettings.from_env(chosen)


def main(argv: list[str] | None = None) -> int:
    """Parse the options and serve."""
    parser = argparse.ArgumentParser(prog="python -m console",
                                     description="Breakwater's live console.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    from console.server import serve

    return serve(settings_from(args))


if __name__ == "__main__":
    sys.exit(main())
