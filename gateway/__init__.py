"""Breakwater's API gateway: routing, discovery, balancing, resilience and edge auth.

`create_app()` gives the WSGI application; `python -m gateway` serves it with Granian behind
the buffering front of `gateway/front.py`, and its admin views on their own port.

Layer: runtime. It uses the shared kit of the services (`services.common`: settings, errors,
tokens, the resilient client) and observability, never a service's own package.
"""

from gateway.app import create_app

__all__ = ["create_app"]
