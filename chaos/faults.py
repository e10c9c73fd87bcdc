"""Named faults aimed at services, over a Toxiproxy server.

Proxies are named after instances (`cart`, `product-1`, `product-2`, …). A fault aimed at
`"product"` hits every proxy named `product` or `product-<n>`; `"product-2"` hits that one.

    faults = Faults()                       # TOXIPROXY_URL or http://127.0.0.1:8474
    faults.latency("cart", ms=2000, jitter=200)
    with faults.fault("product", "down"):
        ...
    faults.clear_all()

Faults are idempotent: asking for a latency that is already there updates it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

from .client import NotFoundError, ToxiproxyClient, ToxiproxyError

STREAMS = ("upstream", "downstream")


class UnknownServiceError(ToxiproxyError):
    """No proxy belongs to the service named; the message lists those that exist."""


class Faults:
    """Named faults against the Toxiproxy server at `url`."""

    def __init__(self, url: str | None = None, timeout: float = 5.0) -> None:
        self.client = ToxiproxyClient(url, timeout)

    @property
    def url(self) -> str:
        return self.client.url

    # -- targeting -----------------------------------------------------------------------
    def list_proxies(self) -> list[dict[str, Any]]:
        """Every proxy with its state and toxics, sorted by name."""
        proxies = self.client.proxies()
        return [proxies[name] for name in sorted(proxies)]

    def services(self) -> list[str]:
        """Service names known: each proxy name and the `base` of each `base-<n>`."""
        names = set()
        for name in self.client.proxies():
            names.add(name)
            match = re.fullmatch(r"(.+)-\d+", name)
            if match:
                names.add(match.group(1))
        return sorted(names)

    def proxies_for(self, service: str) -> list[str]:
        """The proxies a fault aimed at `service` hits; UnknownServiceError when none."""
        proxies = self.client.proxies()
        pattern = re.compile(re.escape(service) + r"(-\d+)?")
        matched = sorted(name for name in proxies if pattern.fullmatch(name))
        if not matched:
            known = ", ".join(self.services()) or "none (no proxies defined)"
            raise UnknownServiceError(f"unknown service {service!r}; known services: {known}")
        return matched

    # -- faults --------------------------------------------------------------------------
    def down(self, service: str) -> list[str]:
        """Take the service down: its proxies stop listening and drop their connections."""
        targets = self.proxies_for(service)
        for name in targets:
            self.client.update_proxy(name, enabled=False)
        return targets

    def up(self, service: str) -> list[str]:
        """Bring the service back up (toxics are kept)."""
        targets = self.proxies_for(service)
        for name in targets:
            self.client.update_proxy(name, enabled=True)
        return targets

    def toxic(
        self,
        service: str,
        type: str,
        attributes: dict[str, int] | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
        name: str | None = None,
    ) -> list[str]:
        """Add (or update, when present) a toxic on every proxy of the service."""
        if stream not in STREAMS:
            raise ValueError(f"stream must be upstream or downstream, not {stream!r}")
        if not 0.0 <= toxicity <= 1.0:
            raise ValueError(f"toxicity must be between 0 and 1, not {toxicity}")
        name = name or f"{type}_{stream}"
        targets = self.proxies_for(service)
        for proxy in targets:
            existing = {toxic["name"]: toxic for toxic in self.client.toxics(proxy)}
            if name in existing and existing[name]["type"] == type:
                self.client.update_toxic(proxy, name, attributes, toxicity)
            else:
                if name in existing:
                    self.client.remove_toxic(proxy, name)
                self.client.add_toxic(proxy, type, attributes, stream, toxicity, name)
        return targets

    def latency(
        self,
        service: str,
        ms: int,
        jitter: int = 0,
        stream: str = "downstream",
        toxicity: float = 1.0,
    ) -> list[str]:
        """Delay data by `ms` ± `jitter` milliseconds."""
        _non_negative(ms=ms, jitter=jitter)
        return self.toxic(service, "latency", {"latency": ms, "jitter": jitter}, stream, toxicity)

    def timeout(self, service: str, ms: int, stream: str = "downstream",
                toxicity: float = 1.0) -> list[str]:
        """Black-hole data; close after `ms` without data (0: hold until cleared)."""
        _non_negative(ms=ms)
        return self.toxic(service, "timeout", {"timeout": ms}, stream, toxicity)

    def reset_peer(self, service: str, ms: int = 0, stream: str = "downstream",
                   toxicity: float = 1.0) -> list[str]:
        """Reset connections with a TCP RST `ms` after their first data."""
        _non_negative(ms=ms)
        return self.toxic(service, "reset_peer", {"timeout": ms}, stream, toxicity)

    def bandwidth(self, service: str, kbps: int, stream: str = "downstream",
                  toxicity: float = 1.0) -> list[str]:
        """Cap throughput at `kbps` kilobytes (1000 bytes) per second, Toxiproxy's `rate`."""
        if kbps <= 0:
            raise ValueError("bandwidth must be greater than 0 KB/s")
        return self.toxic(service, "bandwidth", {"rate": kbps}, stream, toxicity)

    def slicer(self, service: str, average_size: int = 64, size_variation: int = 16,
               delay_us: int = 1000, stream: str = "downstream",
               toxicity: float = 1.0) -> list[str]:
        """Cut data into small pieces sent `delay_us` microseconds apart."""
        if average_size < 1 or not 0 <= size_variation <= average_size:
            raise ValueError("slicer needs average_size >= 1 and 0 <= size_variation <= it")
        _non_negative(delay_us=delay_us)
        attributes = {"average_size": average_size, "size_variation": size_variation,
                      "delay": delay_us}
        return self.toxic(service, "slicer", attributes, stream, toxicity)

    def slow_close(self, service: str, ms: int, stream: str = "downstream",
                   toxicity: float = 1.0) -> list[str]:
        """Delay the closing of connections by `ms`."""
        _non_negative(ms=ms)
        return self.toxic(service, "slow_close", {"delay": ms}, stream, toxicity)

    def limit_data(self, service: str, nbytes: int, stream: str = "downstream",
                   toxicity: float = 1.0) -> list[str]:
        """Close each connection once `nbytes` have passed."""
        _non_negative(nbytes=nbytes)
        return self.toxic(service, "limit_data", {"bytes": nbytes}, stream, toxicity)

    def remove(self, service: str, toxic_name: str) -> list[str]:
        """Remove one toxic by name from the service's proxies that have it."""
        targets = self.proxies_for(service)
        for proxy in targets:
            with suppress(NotFoundError):
                self.client.remove_toxic(proxy, toxic_name)
        return targets

    def clear(self, service: str) -> list[str]:
        """Remove every toxic of the service and bring it back up."""
        targets = self.proxies_for(service)
        for proxy in targets:
            for toxic in self.client.toxics(proxy):
                self.client.remove_toxic(proxy, toxic["name"])
            self.client.update_proxy(proxy, enabled=True)
        return targets

    def clear_all(self) -> None:
        """Every proxy enabled, every toxic removed (Toxiproxy's reset)."""
        self.client.reset()

    # -- scoped faults -------------------------------------------------------------------
    def apply(self, service: str, kind: str, **params: Any) -> Any:
        """Apply the fault called `kind` (`down`, `latency`, `timeout`, …) with `params`."""
        method = FAULTS.get(kind.replace("-", "_"))
        if method is None:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(sorted(FAULTS))}")
        return method(self, service, **params)

    def announce_until(self, proxies: Iterable[str], fault: str, until: float) -> bool:
        """Note in the fault proxy's event log that `fault` (see `fault_name`) on `proxies`
        will be removed at the unix time `until`, so watchers can show the time left. False
        where the server keeps no event log (the real Toxiproxy): the fault itself is the same."""
        try:
            for proxy in proxies:
                self.client.request("POST", "/events", {"event": "fault_timed", "proxy": proxy,
                                                        "fault": fault, "until": until})
        except ToxiproxyError as exc:
            # The real Toxiproxy answers 404 page not found (or 405): no event log there.
            if exc.status in (404, 405):
                return False
            raise
        return True

    def undo(self, service: str, kind: str, stream: str = "downstream") -> None:
        """Remove the fault `kind` that `apply` put on the service."""
        kind = kind.replace("-", "_")
        if kind == "down":
            self.up(service)
        else:
            self.remove(service, f"{kind}_{stream}")

    @contextmanager
    def fault(self, service: str, kind: str, **params: Any) -> Iterator[list[str]]:
        """Hold a fault for the duration of a `with` block, removed even on error."""
        targets = self.apply(service, kind, **params)
        try:
            yield targets
        finally:
            self.undo(service, kind, params.get("stream", "downstream"))


def fault_name(kind: str, stream: str = "downstream") -> str:
    """What a fault applied with `apply(kind, stream=…)` is called on its proxies: `down` for
    a disabled proxy, else its toxic's name (`latency_downstream`)."""
    kind = kind.replace("-", "_")
    return "down" if kind == "down" else f"{kind}_{stream}"


def _non_negative(**values: int) -> None:
    for key, value in values.items():
        if value < 0:
            raise ValueError(f"{key} must not be negative, got {value}")


FAULTS = {
    "down": Faults.down,
    "latency": Faults.latency,
    "timeout": Faults.timeout,
    "reset_peer": Faults.reset_peer,
    "bandwidth": Faults.bandwidth,
    "slicer": Faults.slicer,
    "slow_close": Faults.slow_close,
    "limit_data": Faults.limit_data,
}

_default: Faults | None = None


def _faults() -> Faults:
    global _default
    if _default is None:
        _default = Faults()
    return _default


# Module-level shortcuts on a default `Faults()` (TOXIPROXY_URL or the default address).
def down(service: str) -> list[str]:
    """Take a service down on the default server."""
    return _faults().down(service)


def up(service: str) -> list[str]:
    """Bring a service up on the default server."""
    return _faults().up(service)


def latency(service: str, ms: int, jitter: int = 0, stream: str = "downstream",
            toxicity: float = 1.0) -> list[str]:
    """Add latency on the default server."""
    return _faults().latency(service, ms, jitter, stream, toxicity)


def timeout(service: str, ms: int) -> list[str]:
    """Add a timeout on the default server."""
    return _faults().timeout(service, ms)


def reset_peer(service: str, ms: int = 0) -> list[str]:
    """Add a reset_peer on the default server."""
    return _faults().reset_peer(service, ms)


def bandwidth(service: str, kbps: int) -> list[str]:
    """Cap bandwidth on the default server."""
    return _faults().bandwidth(service, kbps)


def slicer(service: str, average_size: int = 64, size_variation: int = 16,
           delay_us: int = 1000) -> list[str]:
    """Slice data on the default server."""
    return _faults().slicer(service, average_size, size_variation, delay_us)


def limit_data(service: str, nbytes: int) -> list[str]:
    """Limit data on the default server."""
    return _faults().limit_data(service, nbytes)


def clear(service: str) -> list[str]:
    """Clear a service's faults on the default server."""
    return _faults().clear(service)


def clear_all() -> None:
    """Reset the default server."""
    _faults().clear_all()


def list_proxies() -> list[dict[str, Any]]:
    """Proxies of the default server."""
    return _faults().list_proxies()


def fault(service: str, kind: str, **params: Any):
    """Hold a fault during a `with` block on the default server."""
    return _faults().fault(service, kind, **params)
