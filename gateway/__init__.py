"""Breakwater's API gateway: routing, discovery, balancing, resilience and edge auth.

`create_app()` gives the WSGI application (`gunicorn -c gateway/gunicorn_conf.py
'gateway:create_app()'`); `python -m gateway` runs it on a threaded development server.
"""

from gateway.app import create_app

__all__ = ["create_app"]
