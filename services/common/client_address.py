"""Who is calling: the client's address and scheme, read behind trusted proxies.

`X-Forwarded-For` is a list every proxy appends to, so only its right end can be believed:
with `hops` trusted proxies in front (the gateway is one), the client is the entry `hops`
places from the right, and anything further left is whatever the client chose to send. When
`networks` are given, a hop is believed only if the address that handed the request on is in
one of them (the peer for the first hop); with none, any peer is taken as the proxy.

The gateway and auth share this (`TrustedProxies.from_settings(hops, networks)`, then
`client_address(environ, proxies)` and `forwarded_proto(environ, proxies)`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[::1]:8080" or "[::1]"
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # "10.0.0.1:8080"
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class TrustedProxies:
    """How many proxies stand in front of this process, and (optionally) where they are."""

    hops: int = 0
    networks: tuple[Network, ...] = field(default_factory=tuple)

    @classmethod
    def from_settings(cls, hops: int, networks: Iterable[str] = ()) -> TrustedProxies:
        """From a hop count and CIDR texts ("10.0.0.0/8", "127.0.0.1"); ValueError on a bad one."""
        if hops < 0:
            raise ValueError(f"the number of trusted proxy hops must be 0 or more, not {hops}")
        parsed = []
        for text in networks:
            try:
                parsed.append(ipaddress.ip_network(text.strip(), strict=False))
            except ValueError as exc:
                raise ValueError(f"not a network or address: {text!r} ({exc})") from None
        return cls(hops, tuple(parsed))

    def trusts(self, address: str) -> bool:
        """Whether a request handed on from `address` comes from one of the trusted proxies."""
        if not self.networks:
            return True
        parsed = _address(address)
        return parsed is not None and any(parsed in network for network in self.networks)


def _forwarded_for(environ: Mapping[str, Any]) -> list[str]:
    header = environ.get("HTTP_X_FORWARDED_FOR", "")
    return [part.strip() for part in header.split(",") if part.strip()]


def client_address(environ: Mapping[str, Any], proxies: TrustedProxies) -> str:
    """The caller's address: the peer, or the `X-Forwarded-For` entry the trusted hops vouch for."""
    client = environ.get("REMOTE_ADDR") or "unknown"
    if proxies.hops <= 0:
        return client
    entries = _forwarded_for(environ)
    handed_on_by = client
    for hop in range(1, proxies.hops + 1):
        if hop > len(entries) or not proxies.trusts(handed_on_by):
            break
        candidate = entries[-hop]
        if _address(candidate) is None:  # not an address: no proxy of ours wrote that
            break
        client = handed_on_by = candidate
    return str(_address(client) or client)


def forwarded_proto(environ: Mapping[str, Any], proxies: TrustedProxies) -> str:
    """"https" or "http": what the outermost trusted proxy says the client used, else the
    scheme of this connection."""
    scheme = str(environ.get("wsgi.url_scheme", "http"))
    if proxies.hops <= 0 or not proxies.trusts(environ.get("REMOTE_ADDR") or ""):
        return scheme
    values = [v.strip().lower() for v in environ.get("HTTP_X_FORWARDED_PROTO", "").split(",")
              if v.strip()]
    if not values:
        return scheme
    said = values[-min(proxies.hops, len(values))]
    return said if said in ("http", "https") else scheme
