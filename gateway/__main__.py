"""`python -m gateway [--host 127.0.0.1] [--port 8080] [--threads 64]`: the development server."""

from __future__ import annotations

import argparse
import logging

from gateway.app import create_app
from gateway.server import build_server

log = logging.getLogger("breakwater.gateway")


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    parser.add_argument("--host", help="address to listen on (GATEWAY_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (GATEWAY_PORT, default 8080)")
    parser.add_argument(
        "--threads",
        type=int,
        help="worker threads (GATEWAY_THREADS, default 64; 0: one per connection)",
    )
    parser.add_argument(
        "--resilience",
        choices=["on", "off"],
        help="protections on or naive forwarding (GATEWAY_RESILIENCE)",
    )
    args = parser.parse_args(argv)
    overrides = {
        name: value
        for name, value in (
            ("host", args.host),
            ("port", args.port),
            ("threads", args.threads),
            ("resilience", args.resilience),
        )
        if value is not None
    }
    app = create_app(overrides)
    settings = app.settings
    server = build_server(app, settings.host, settings.port, settings.threads)
    log.info(
        "gateway listening on http://%s:%s",
        settings.host,
        settings.port,
        extra={"fields": {"threads": settings.threads, "resilience": settings.resilience}},
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        app.client.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
