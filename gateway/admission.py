"""Admission limits per route group: at most N requests of a group in flight at the gateway.

A group past its limit is answered 503 at once, before its token is verified or its body read,
so a storm on one group (clients retrying without pause, or sending bodies slowly) cannot take
every worker thread from the others. The upstream bulkheads bound calls in flight; this bounds
whole requests, including the time the gateway spends on them before any call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gateway.routes import Route
from services.common.errors import ApiError
from services.common.resilience import Bulkhead

RETRY_AFTER_SECONDS = 1


class Admission:
    """One non-blocking limit per route group of the table."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = tuple(routes)
        self._limits = {route.group: Bulkhead(route.admission) for route in self.routes if route.upstream}

    def try_enter(self, group: str) -> bool:
        """Admit one request of `group` if the group has room; never blocks."""
        limit = self._limits.get(group)
        return limit is None or limit.try_enter()

    def leave(self, group: str) -> None:
        """One request of `group` is answered."""
        limit = self._limits.get(group)
        if limit is not None:
            limit.leave()

    def snapshot(self) -> dict[str, dict[str, int]]:
        """In flight and refused so far, per group."""
        return {group: {"in_flight": limit.in_use, "refused": limit.rejected}
                for group, limit in self._limits.items()}


def overloaded(route: Route, environ: Mapping[str, Any]) -> ApiError:
    """503 for a request refused by its group's limit (its unread body closes the connection)."""
    error = ApiError(
        f"the gateway is serving as many {route.group} requests as it allows; try again shortly",
        code="overloaded", status=503, retry_after=RETRY_AFTER_SECONDS,
        details={"group": route.group, "limit": route.admission},
    )
    has_body = environ.get("CONTENT_LENGTH") not in (None, "", "0") or "chunked" in environ.get(
        "HTTP_TRANSFER_ENCODING", "").lower()
    if has_body:
        error.headers = {"Connection": "close"}
    return error
