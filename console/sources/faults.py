"""Every fault-proxy listener with its active faults, fed by the proxy's `/events`.

Breakwater's fault proxy logs each change (`toxic_added`, `proxy_disabled`, …) and the notes of
whoever time-boxed a fault (`fault_timed`, with the unix time it ends). The watch reads that
log incrementally and re-reads `/proxies` only when something changed (and every few seconds
besides, in case the proxy restarted). The real Toxiproxy has no event log: there `/proxies`
is read on every poll and time left is known only for faults the console time-boxed itself.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from chaos.client import ToxiproxyClient, ToxiproxyError

REFRESH_SECONDS = 5.0
RECENT_EVENTS = 30


class FaultWatch:
    """The fault proxy as the page shows it: proxies, faults, time left, recent changes."""

    def __init__(self, client: ToxiproxyClient, clock: Callable[[], float] = time.time,
                 own_deadlines: Callable[[], Mapping[tuple[str, str], float]] = dict) -> None:
        self.client = client
        self.clock = clock
        self.own_deadlines = own_deadlines
        self.has_event_log: bool | None = None
        self.cursor: float | None = None
        self.deadlines: dict[tuple[str, str], float] = {}
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT_EVENTS)
        self._proxies: dict[str, Any] | None = None
        self._read_at = 0.0

    def poll(self) -> dict[str, Any]:
        """Read what changed; the page's view of every proxy (raises ToxiproxyError)."""
        changed = self._read_events()
        now = self.clock()
        if changed or self._proxies is None or now - self._read_at >= REFRESH_SECONDS \
                or not self.has_event_log:
            self._proxies = self.client.proxies()
            self._read_at = now
        return {"proxies": self.view(self._proxies, now), "recent": list(self.recent)[::-1],
                "event_log": bool(self.has_event_log)}

    def _read_events(self) -> bool:
        if self.has_event_log is False:
            return False
        try:
            events = self.client.events(since=self.cursor)
        except ToxiproxyError as exc:
            if exc.status in (404, 405):  # the real Toxiproxy
                self.has_event_log = False
                return False
            raise
        self.has_event_log = True
        for event in events:
            self._take(event)
        return bool(events)

    def _take(self, event: Mapping[str, Any]) -> None:
        moment = float(event.get("time") or 0)
        self.cursor = max(self.cursor or 0.0, moment)
        name, proxy = str(event.get("event", "")), str(event.get("proxy", ""))
        toxic = event.get("toxic") if isinstance(event.get("toxic"), dict) else {}
        if name == "fault_timed":
            self.deadlines[(proxy, str(event.get("fault")))] = float(event.get("until") or 0)
        elif name == "toxic_removed":
            self.deadlines.pop((proxy, str(toxic.get("name"))), None)
        elif name == "proxy_enabled":
            self.deadlines.pop((proxy, "down"), None)
        elif name in ("proxy_reset", "proxy_deleted"):
            for key in [k for k in self.deadlines if k[0] == proxy]:
                del self.deadlines[key]
        if name != "proxy_reset":  # a reset logs one line per proxy: shown once, below
            self.recent.append(describe_event(event))
        elif not self.recent or self.recent[-1].get("what") != "reset":
            self.recent.append({"time": moment, "proxy": "all", "what": "reset",
                                "text": "every proxy enabled, every toxic removed"})

    def time_left(self, proxy: str, fault: str, now: float) -> float | None:
        """Seconds until `fault` on `proxy` is removed, when someone time-boxed it."""
        until = self.own_deadlines().get((proxy, fault)) or self.deadlines.get((proxy, fault))
        if until is None:
            return None
        return round(max(0.0, until - now), 1)

    def view(self, proxies: Mapping[str, Any], now: float) -> list[dict[str, Any]]:
        """Proxies sorted by name, each with its faults and their time left."""
        rows = []
        for name in sorted(proxies):
            proxy = proxies[name]
            toxics = [{
                "name": t.get("name"), "type": t.get("type"), "stream": t.get("stream"),
                "toxicity": t.get("toxicity", 1.0), "attributes": t.get("attributes") or {},
                "left": self.time_left(name, str(t.get("name")), now),
            } for t in proxy.get("toxics") or []]
            enabled = bool(proxy.get("enabled", True))
            rows.append({
                "name": name, "listen": proxy.get("listen", ""),
                "upstream": proxy.get("upstream", ""), "enabled": enabled,
                "down_left": None if enabled else self.time_left(name, "down", now),
                "toxics": toxics,
            })
        return rows


def describe_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """One change of the fault proxy in a few words."""
    name, proxy = str(event.get("event", "")), str(event.get("proxy", ""))
    toxic = event.get("toxic") if isinstance(event.get("toxic"), dict) else {}
    texts = {
        "proxy_created": "proxy created", "proxy_deleted": "proxy deleted",
        "proxy_updated": "proxy moved", "proxy_enabled": "up again",
        "proxy_disabled": "down (listener disabled)",
        "toxic_added": f"{toxic.get('type')} added ({toxic.get('name')})",
        "toxic_updated": f"{toxic.get('type')} changed ({toxic.get('name')})",
        "toxic_removed": f"{toxic.get('type')} removed ({toxic.get('name')})",
    }
    if name == "fault_timed":
        text = f"{event.get('fault')} time-boxed until {time.strftime('%H:%M:%S', time.localtime(float(event.get('until') or 0)))}"
    else:
        text = texts.get(name, name)
    return {"time": float(event.get("time") or 0), "proxy": proxy, "what": name, "text": text}
