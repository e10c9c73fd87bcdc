"""Breakwater's API gateway: routing, discovery, balancing, resilience and edge auth.

`create_app()` gives the WSGI application; `python -m gateway` serves it with Granian behind
the buffering front of `gateway/front.py`, and its admin views on their own port.

Layer: runtime. It uses the shared kit of the services (`services.common`: settings, errors,
tokens, the resilient client) and observability, never a service's own package.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Imported on first use: Granian's main process (`python -m gateway`) only reads the
    # settings and supervises its workers, and stays ~40 MB lighter without the app's imports.
    if name == "create_app":
        from gateway.app import create_app

        return create_app
    raise AttributeError(f"module 'gateway' has no attribute {name!r}")
