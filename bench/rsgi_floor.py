"""The least proxy the gateway's server shape allows: Granian's RSGI interface, one event loop,
the resilient client's loop transport (`LoopPool`) to one upstream, and nothing else — no
routing, edge checks, breakers, headers, metrics or tracing.

The gateway benchmark runs it beside the gateway, in front of the same product
(`python -m granian --interface rsgi --factory bench.rsgi_floor:make`, the upstream's
`host:port` in `BENCH_FLOOR_UPSTREAM`): its p50 at one connection ÷ direct is the floor under
the gateway's own figure, what Granian and one Python exchange cost before the gateway does any
of its work. Loopback only, as every benchmark.
"""

from __future__ import annotations

import os
from typing import Any

from services.common.loop_transport import LoopPool

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class Floor:
    """Every request sent on to the upstream as it came (method and target only)."""

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.rpartition(":")
        if host.strip("[]") not in LOOPBACK:
            raise ValueError(f"the floor proxies to loopback only, not {upstream!r}")
        self.pool = LoopPool("http", host.strip("[]"), int(port), maxsize=64)

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        if scope.proto != "http":
            return
        target = f"{scope.path}?{scope.query_string}" if scope.query_string else scope.path
        reply = await self.pool.exchange(scope.method, target, {}, None, connect_timeout=1.0,
                                         read_timeout=5.0)
        kind = reply.headers.get("Content-Type", "application/octet-stream")
        protocol.response_bytes(reply.status, [("content-type", kind)], reply.data)


def make() -> Floor:
    """Granian's factory: the floor in front of `BENCH_FLOOR_UPSTREAM`."""
    return Floor(os.environ["BENCH_FLOOR_UPSTREAM"])
