"""A log of changes to proxies and toxics, with wall-clock times, for shading fault windows."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any


class EventLog:
    """The most recent `capacity` events, oldest first."""

    def __init__(self, clock: Callable[[], float] = time.time, capacity: int = 10_000) -> None:
        self.clock = clock
        self._events: deque[dict[str, Any]] = deque(maxlen=capacity)

    def record(self, event: str, proxy: str, **details: Any) -> dict[str, Any]:
        """Note that `event` happened to `proxy` now (e.g. `toxic_added`, with `toxic=`)."""
        entry = {"time": self.clock(), "event": event, "proxy": proxy, **details}
        self._events.append(entry)
        return entry

    def since(self, since: float | None = None) -> list[dict[str, Any]]:
        """Events strictly after the unix time `since` (all of them when None)."""
        if since is None:
            return list(self._events)
        return [event for event in self._events if event["time"] > since]
