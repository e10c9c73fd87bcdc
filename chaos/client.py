"""A client for the Toxiproxy control API (ours or the real Toxiproxy 2.x).

Why not `toxiproxy-python` alone: it keeps the server address in class attributes shared by
the whole process (`APIConsumer.host/port`), sets no timeouts (a stuck server hangs the
caller), cannot update a toxic or use PATCH, returns nothing from `add_toxic`, treats 403,
405 and 5xx answers as success, and its `populate` compares `listen` as given with the
address the server reports. Its exception classes are reused here, so code that catches
`toxiproxy.exceptions.NotFound` and friends keeps working.
"""

from __future__ import annotations

import os
from typing import Any

import requests
from toxiproxy import exceptions as tp_exceptions

DEFAULT_URL = "http://127.0.0.1:8474"


class ToxiproxyError(Exception):
    """An error answered by the Toxiproxy server (`status` is its HTTP status)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class NotFoundError(ToxiproxyError, tp_exceptions.NotFound):
    """404: no such proxy or toxic."""


class ConflictError(ToxiproxyError, tp_exceptions.ProxyExists):
    """409: a proxy or toxic of that name already exists."""


class BadRequestError(ToxiproxyError, tp_exceptions.InvalidToxic):
    """400: the server rejected the values sent."""


class UnreachableError(ToxiproxyError):
    """The server did not answer at all."""


_ERRORS = {404: NotFoundError, 409: ConflictError, 400: BadRequestError}


def toxiproxy_url(url: str | None = None) -> str:
    """The API address: `url`, else `TOXIPROXY_URL`, else http://127.0.0.1:8474."""
    return (url or os.environ.get("TOXIPROXY_URL") or DEFAULT_URL).rstrip("/")


class ToxiproxyClient:
    """The whole control API as methods returning decoded JSON."""

    def __init__(self, url: str | None = None, timeout: float = 5.0) -> None:
        self.url = toxiproxy_url(url)
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "breakwater-chaos"

    def request(self, method: str, path: str, json: Any = None, **params: Any) -> Any:
        """Send one request; decoded JSON (None for 204), or a ToxiproxyError."""
        try:
            response = self.session.request(
                method, self.url + path, json=json, params=params or None, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise UnreachableError(
                f"cannot reach Toxiproxy at {self.url} ({type(exc).__name__}); start it with "
                f"`breakwater toxiproxy` or set TOXIPROXY_URL / --toxiproxy"
            ) from None
        if response.status_code >= 400:
            try:
                message = response.json().get("error") or response.text
            except ValueError:
                message = response.text.strip() or response.reason
            error = _ERRORS.get(response.status_code, ToxiproxyError)
            raise error(f"{method} {path}: {message}", response.status_code)
        if response.status_code == 204 or not response.content:
            return None
        if response.headers.get("Content-Type", "").startswith("text/plain"):
            return response.text
        return response.json()

    # -- server --------------------------------------------------------------------------
    def version(self) -> str:
        return self.request("GET", "/version")["version"]

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self.request("POST", "/reset")

    def populate(self, proxies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self.request("POST", "/populate", proxies)["proxies"]

    def events(self, since: float | None = None) -> list[dict[str, Any]]:
        """Changes to proxies and toxics (Breakwater's server only)."""
        return self.request("GET", "/events", **({"since": since} if since else {}))

    def metrics(self) -> str:
        return self.request("GET", "/metrics")

    # -- proxies -------------------------------------------------------------------------
    def proxies(self) -> dict[str, dict[str, Any]]:
        return self.request("GET", "/proxies")

    def proxy(self, name: str) -> dict[str, Any]:
        return self.request("GET", f"/proxies/{name}")

    def create_proxy(
        self, name: str, upstream: str, listen: str = "127.0.0.1:0", enabled: bool = True
    ) -> dict[str, Any]:
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": enabled}
        return self.request("POST", "/proxies", body)

    def update_proxy(self, name: str, **fields: Any) -> dict[str, Any]:
        """Change any of `listen`, `upstream`, `enabled`."""
        return self.request("POST", f"/proxies/{name}", fields)

    def delete_proxy(self, name: str) -> None:
        self.request("DELETE", f"/proxies/{name}")

    # -- toxics --------------------------------------------------------------------------
    def toxics(self, proxy: str) -> list[dict[str, Any]]:
        return self.request("GET", f"/proxies/{proxy}/toxics")

    def toxic(self, proxy: str, name: str) -> dict[str, Any]:
        return self.request("GET", f"/proxies/{proxy}/toxics/{name}")

    def add_toxic(
        self,
        proxy: str,
        type: str,
        attributes: dict[str, int] | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
        name: str | None = None,
    ) -> dict[str, Any]:
        body = {
            "name": name or f"{type}_{stream}",
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": attributes or {},
        }
        return self.request("POST", f"/proxies/{proxy}/toxics", body)

    def update_toxic(
        self,
        proxy: str,
        name: str,
        attributes: dict[str, int] | None = None,
        toxicity: float | None = None,
    ) -> dict[str, Any]:
        """Merge `attributes` into the toxic's; toxicity changes only when given."""
        body: dict[str, Any] = {"attributes": attributes or {}}
        if toxicity is not None:
            body["toxicity"] = toxicity
        return self.request("POST", f"/proxies/{proxy}/toxics/{name}", body)

    def remove_toxic(self, proxy: str, name: str) -> None:
        self.request("DELETE", f"/proxies/{proxy}/toxics/{name}")
