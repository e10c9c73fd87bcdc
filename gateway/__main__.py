"""`python -m gateway [--host H] [--port N] [--admin-port N] [--threads N] [--workers N]`.

Serves the gateway with Granian (HTTP parsed in native code) behind the buffering front of
`gateway/front.py`, and its admin views on the admin port (127.0.0.1:8081 by default). Every
option is also a `GATEWAY_*` variable; see docs/SERVING.md.
"""

from __future__ import annotations

import argparse
import logging
import os

from gateway.config import GatewaySettings

log = logging.getLogger("breakwater.gateway")

# Command-line options and the settings field each one sets.
OPTIONS = {
    "host": (str, "address to listen on (GATEWAY_HOST, default 127.0.0.1)"),
    "port": (int, "public port (GATEWAY_PORT, default 8080)"),
    "admin_host": (str, "admin address (GATEWAY_ADMIN_HOST, default 127.0.0.1)"),
    "admin_port": (int, "admin port: /gateway/upstreams, /metrics (GATEWAY_ADMIN_PORT, 8081)"),
    "threads": (int, "worker threads per process (GATEWAY_THREADS, default 64)"),
    "workers": (int, "processes (GATEWAY_WORKERS, default 1)"),
    "resilience": (str, "on: protections; off: naive forwarding (GATEWAY_RESILIENCE)"),
}


def granian_server(settings: GatewaySettings) -> object:
    """The Granian server for these settings (its workers build the app themselves)."""
    from granian.constants import Interfaces
    from granian.http import HTTP1Settings
    from granian.log import LogLevels
    from granian.server import Server

    header_ms = int(min(60.0, max(0.001, settings.header_timeout_seconds)) * 1000)
    return Server(
        "gateway.front:create_front",
        factory=True,
        interface=Interfaces.RSGI,
        address=settings.host,
        port=settings.port,
        workers=settings.workers,
        http1_settings=HTTP1Settings(header_read_timeout=header_ms),
        respawn_failed_workers=True,
        workers_lifetime=settings.workers_lifetime_seconds or None,
        workers_max_rss=settings.workers_max_rss_mb or None,
        workers_kill_timeout=10,
        log_access=settings.access_log,
        log_level=LogLevels(settings.log_level.lower()),
    )


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    for name, (kind, text) in OPTIONS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, help=text)
    args = parser.parse_args(argv)
    # Granian's workers read the settings from the environment: pass the options on there.
    for name in OPTIONS:
        value = getattr(args, name)
        if value is not None:
            os.environ[f"GATEWAY_{name.upper()}"] = str(value)
    settings = GatewaySettings.from_env()
    log.info("gateway on http://%s:%s, admin on http://%s:%s", settings.host, settings.port,
             settings.admin_host, settings.admin_port)
    granian_server(settings).serve()  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
