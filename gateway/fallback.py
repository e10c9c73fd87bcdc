"""The last good catalog responses, served (marked stale) while product is unavailable."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

STALE_HEADERS = (("X-Breakwater-Stale", "1"), ("Warning", '110 - "Response is stale"'))


@dataclass(frozen=True)
class CachedResponse:
    """A 200 response as it was forwarded, and when it was stored."""

    headers: tuple[tuple[str, str], ...]
    body: bytes
    stored_at: float
    size: int = 0  # bytes held: body and headers (set by `of`)

    @classmethod
    def of(cls, headers: list[tuple[str, str]], body: bytes, stored_at: float) -> CachedResponse:
        """An entry with its size counted once."""
        size = len(body) + sum(len(k) + len(v) for k, v in headers)
        return cls(tuple(headers), body, stored_at, size)


class StaleCache:
    """An LRU of responses bounded by entry count and total bytes, with a maximum staleness."""

    def __init__(
        self,
        *,
        max_entries: int = 2048,
        max_bytes: int = 32 * 1024 * 1024,
        max_age: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries, self.max_bytes, self.max_age, self._clock = (
            max_entries,
            max_bytes,
            max_age,
            clock,
        )
        self._entries: OrderedDict[str, CachedResponse] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def store(self, key: str, headers: list[tuple[str, str]], body: bytes) -> None:
        """Remember a good response for `key`, evicting the least recently used as needed."""
        entry = CachedResponse.of(headers, body, self._clock())
        if entry.size > self.max_bytes or self.max_entries <= 0:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            self._entries[key] = entry
            self._bytes += entry.size
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.size

    def lookup(self, key: str) -> tuple[CachedResponse, int] | None:
        """The stored response for `key` and its age in whole seconds, unless too old."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            age = self._clock() - entry.stored_at
            if age > self.max_age:
                del self._entries[key]
                self._bytes -= entry.size
                return None
            self._entries.move_to_end(key)
        return entry, int(age)

    def stats(self) -> dict[str, int]:
        """How many entries and bytes are held."""
        with self._lock:
            return {"entries": len(self._entries), "bytes": self._bytes}
