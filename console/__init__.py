"""The live console: breakers, traffic, faults, experiment progress and traces on one page.

A web process of the runtime: it reads the other processes over HTTP only (the gateway's admin
views, the fault proxy's API, Jaeger) and span files through `observability.spans`, and is
configured by those addresses, so it watches a local stack, compose or Kubernetes alike.

    app = create_app(ConsoleSettings(gateway_admin_url=…, toxiproxy_url=…))
"""

from __future__ import annotations

from typing import Any

from console.settings import ConsoleSettings

__all__ = ["ConsoleSettings", "create_app"]


def __getattr__(name: str) -> Any:
    # Imported on first use: gunicorn's master (`python -m console`) never serves a page.
    if name == "create_app":
        from console.app import create_app

        return create_app
    raise AttributeError(f"module 'console' has no attribute {name!r}")
