"""Where the instances of an upstream service are: a static list, the registry file, or DNS.

Every source is a zero-argument callable returning the current list of base URLs; the
resilient client calls it on every request, so each source caches and refreshes cheaply.
The gateway and the services that call other services share these sources.

An instance spec is either `http://127.0.0.1:5002,http://127.0.0.1:5012` (a static list) or
`dns://product:5002` (every A record of `product`, re-resolved periodically: in compose a
scaled service resolves to all its replicas).

Registry file format (written by the local supervisor; re-read whenever it changes, so scaling
needs no restart of any caller)::

    {
      "version": 1,
      "updated_at": "2026-01-01T12:00:00Z",          # informational
      "services": {
        "product": ["http://127.0.0.1:21002", "http://127.0.0.1:21012"],
        "cart": [{"url": "http://127.0.0.1:21003", "id": "cart-1"}],
        ...
      }
    }

An instance is a base URL string, or an object with a `"url"` (other keys are ignored; an
object with `"enabled": false` is skipped). Writers must replace the file atomically (write a
temporary file in the same folder, then `os.replace`) so a reader never sees half a file;
a file that does not parse is ignored and the last good content kept.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger("breakwater.discovery")

Clock = Callable[[], float]
InstanceSource = Callable[[], Sequence[str]]


class StaticSource:
    """A fixed list of base URLs."""

    def __init__(self, urls: Sequence[str]) -> None:
        self.urls = tuple(url.rstrip("/") for url in urls)

    def __call__(self) -> tuple[str, ...]:
        return self.urls

    def describe(self) -> str:
        return "static"


class DnsSource:
    """Every IPv4 address a host name resolves to, re-resolved at most every `refresh` seconds.

    The first lookup happens in the calling thread (there is nothing to answer before it).
    After that, the first request that finds the answer stale starts a lookup on a thread of
    its own and every request keeps the last answer meanwhile, so a slow resolver never holds
    a caller (the gateway answers reads on its event loop); a failed lookup keeps it too.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        scheme: str = "http",
        refresh: float = 5.0,
        resolve: Callable[..., list[Any]] = socket.getaddrinfo,
        clock: Clock = time.monotonic,
    ) -> None:
        self.host, self.port, self.scheme, self.refresh = host, port, scheme, refresh
        self._resolve, self._clock = resolve, clock
        self._urls: tuple[str, ...] = ()
        self._expires = float("-inf")
        self._lock = threading.Lock()

    def __call__(self) -> tuple[str, ...]:
        if self._clock() >= self._expires:
            if not self._urls:
                with self._lock:
                    self._refresh()
            elif self._lock.acquire(blocking=False):
                threading.Thread(target=self._refresh_and_release, name="dns-refresh",
                                 daemon=True).start()
        return self._urls

    def _refresh(self) -> None:
        """Look the name up again (the lock held) unless another lookup just did."""
        if self._clock() >= self._expires:
            self._urls = self._lookup() or self._urls
            self._expires = self._clock() + self.refresh

    def _refresh_and_release(self) -> None:
        try:
            self._refresh()
        finally:
            self._lock.release()

    def _lookup(self) -> tuple[str, ...]:
        try:
            answers = self._resolve(self.host, self.port, socket.AF_INET, socket.SOCK_STREAM)
        except OSError as exc:
            log.warning("cannot resolve %s: %s", self.host, exc)
            return ()
        addresses = sorted({answer[4][0] for answer in answers})
        return tuple(f"{self.scheme}://{address}:{self.port}" for address in addresses)

    def describe(self) -> str:
        return f"dns://{self.host}:{self.port}"


class Registry:
    """The supervisor's registry file, re-read when its mtime, size or inode changes."""

    def __init__(self, path: str, *, poll: float = 0.25, clock: Clock = time.monotonic) -> None:
        self.path, self.poll, self._clock = path, poll, clock
        self._signature: tuple[int, int, int] | None = None
        self._services: dict[str, tuple[str, ...]] = {}
        self._next_check = float("-inf")
        self._lock = threading.Lock()

    def instances(self, service: str) -> tuple[str, ...]:
        """The instances the file lists for `service` (empty when none)."""
        if self._clock() >= self._next_check:
            self._refresh()
        return self._services.get(service, ())

    def source(self, service: str) -> InstanceSource:
        """A zero-argument source for one service."""
        source = lambda: self.instances(service)  # noqa: E731 - a tiny closure
        source.describe = lambda: f"registry:{self.path}"  # type: ignore[attr-defined]
        return source

    def _refresh(self) -> None:
        with self._lock:
            self._next_check = self._clock() + self.poll
            try:
                stat = os.stat(self.path)
            except OSError:
                return  # not written yet (or gone for a moment): keep what we had
            signature = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            if signature == self._signature:
                return
            try:
                with open(self.path, encoding="utf-8") as handle:
                    services = parse_registry(json.load(handle))
            except (OSError, ValueError) as exc:
                log.warning("registry file %s ignored: %s", self.path, exc)
                return
            self._signature, self._services = signature, services
            log.info(
                "registry file %s loaded",
                self.path,
                extra={"fields": {"instances": {k: len(v) for k, v in services.items()}}},
            )


def parse_registry(document: Any) -> dict[str, tuple[str, ...]]:
    """The `{service: (url, ...)}` a registry document describes; ValueError if malformed."""
    if not isinstance(document, dict) or not isinstance(document.get("services"), dict):
        raise ValueError('a registry file is {"services": {"<name>": ["http://host:port", ...]}}')
    services: dict[str, tuple[str, ...]] = {}
    for name, entries in document["services"].items():
        if not isinstance(entries, list):
            raise ValueError(f"services.{name} must be a list")
        urls = []
        for entry in entries:
            if isinstance(entry, dict):
                if entry.get("enabled", True) is False:
                    continue
                entry = entry.get("url")
            if not isinstance(entry, str) or "://" not in entry:
                raise ValueError(f"services.{name}: {entry!r} is not a base URL")
            urls.append(entry.rstrip("/"))
        services[str(name)] = tuple(urls)
    return services


def source_from_spec(spec: str, *, dns_refresh: float = 5.0) -> InstanceSource:
    """A source for an explicit spec: a static URL list or `dns://host:port`."""
    spec = spec.strip()
    if spec.startswith("dns://"):
        host, _, port = spec[len("dns://") :].rstrip("/").rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"{spec!r}: a DNS upstream is dns://<host>:<port>")
        return DnsSource(host, int(port), refresh=dns_refresh)
    urls = [part.strip() for part in spec.split(",") if part.strip()]
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{url!r}: an upstream instance is an http:// or https:// base URL")
    return StaticSource(urls)


def describe(source: InstanceSource) -> str:
    """A short label of where a source's instances come from."""
    describe_source = getattr(source, "describe", None)
    return describe_source() if callable(describe_source) else "custom"


_registries: dict[str, Registry] = {}
_registries_lock = threading.Lock()


def shared_registry(path: str, poll: float = 0.25) -> Registry:
    """One `Registry` per file in this process, so every source of it shares one reader."""
    with _registries_lock:
        if path not in _registries:
            _registries[path] = Registry(path, poll=poll)
        return _registries[path]


def instance_source(service: str, spec: str, registry_file: str = "",
                    dns_refresh: float = 5.0) -> InstanceSource:
    """Where a caller finds `service`: the registry file when one is given and lists the
    service, else the explicit spec (a static list or `dns://host:port`)."""
    fallback = source_from_spec(spec, dns_refresh=dns_refresh)
    if not registry_file:
        return fallback
    registry = shared_registry(registry_file)

    def source() -> Sequence[str]:
        return registry.instances(service) or fallback()

    source.describe = lambda: f"registry:{registry_file}"  # type: ignore[attr-defined]
    return source
