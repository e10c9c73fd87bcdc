"""Breakwater's API gateway: routing, discovery, balancing, resilience and edge auth.

`create_app()` gives the WSGI application (`gunicorn -c gateway/gunicorn_conf.py
'gateway:create_app()'`); `python -m gateway` runs it on a threaded development server.

Layer: runtime. It uses the shared kit of the services (`services.common`: settings, errors,
tokens, the resilient client) and observability, never a service's own package.
"""

from gateway.app import create_app

__all__ = ["create_app"]
