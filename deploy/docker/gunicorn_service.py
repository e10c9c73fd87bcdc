"""gunicorn settings of a service in a container (`entrypoint.sh serve <service>`).

The port is the one the service's own settings resolve (`<PREFIX>_PORT`, then
`BREAKWATER_PORT`, then the service's default), so the process listens where its
configuration says. gthread with a few threads suits a replica held to a fraction of a CPU
(TOOLING.md: about 8–12 connections per 0.25 CPU); `GUNICORN_CMD_ARGS` overrides any of it.
"""

from __future__ import annotations

import importlib
import os

from services.common.config import ServiceSettings


def settings_class(service: str) -> type[ServiceSettings]:
    """The `ServiceSettings` subclass declared in `services/<service>/config.py`."""
    module = importlib.import_module(f"services.{service}.config")
    for value in vars(module).values():
        if (isinstance(value, type) and issubclass(value, ServiceSettings)
                and value is not ServiceSettings and value.service_name == service):
            return value
    raise RuntimeError(f"services/{service}/config.py declares no settings for {service!r}")


_service = os.environ["BREAKWATER_ROLE"]
_settings = settings_class(_service).from_env()

bind = f"0.0.0.0:{_settings.port}"
proc_name = f"breakwater-{_service}"
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
threads = 8
# Longer than any caller's pool idle time, or reused pooled connections meet RSTs and a
# healthy replica looks broken (TOOLING.md pitfall); the gateway uses 75 s too.
keepalive = 75
timeout = 60
graceful_timeout = 10
accesslog = None
errorlog = "-"
# gunicorn >= 25's runtime control socket: nothing here uses it (older versions ignore this).
control_socket_disable = True
