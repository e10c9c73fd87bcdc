"""Who may change the catalog: an admin token, except on the standalone development service.

`python -m services.product` bound to a loopback address keeps the seed document's tokenless
`curl … /api/product/create` working (and says so in its log); every other way of running
product (gunicorn in the local stack, compose, Kubernetes, the app factory) needs a token
whose membership is `admin`: 401 without a token, 403 with any other.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Flask, current_app

from services.common.errors import Forbidden
from services.common.tokens import current_principal

OPEN_WRITES_KEY = "product.open_catalog_writes"
ADMIN = "admin"

log = logging.getLogger("breakwater.product.catalog")


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) can only be reached from this machine."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def open_catalog_writes(app: Flask) -> None:
    """Let anyone who reaches this process write the catalog (the standalone dev service)."""
    app.extensions[OPEN_WRITES_KEY] = True
    log.warning(
        "catalog writes are OPEN on this development service: anyone who reaches it may create "
        "products without a token (the seed's curl). Everywhere else (gunicorn, the local "
        "stack, compose, Kubernetes) they need an admin token; make one with "
        "`breakwater admin create` or `flask --app services.auth admin create`."
    )


def require_catalog_writer() -> None:
    """Raise 401/403 unless the caller may change the catalog."""
    if current_app.extensions.get(OPEN_WRITES_KEY):
        return
    if current_principal().membership != ADMIN:
        raise Forbidden(
            "only an admin may change the catalog: log in with an admin account "
            "(admins are made with `breakwater admin create`)",
            code="admin_only",
        )


def catalog_writer_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Check the caller before the body is even parsed (401/403 before any 422)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        require_catalog_writer()
        return view(*args, **kwargs)

    wrapper._breakwater_auth = True  # type: ignore[attr-defined]  # read by the OpenAPI docs
    return wrapper
