"""What the fault proxy's latency toxic does on the wire: how exact it is, and that it does not
cap throughput.

- Accuracy: round trips through a 100 ms latency toxic, minus those without it.
- Bulk: 4 MB sent by an upstream through a 1 s downstream latency toxic; the time from the
  client's connect to its last byte. Toxiproxy reads ahead of a latency toxic (1024 chunks),
  so this is about one latency; a relay that stops reading while the toxic holds data takes
  several.
"""

from __future__ import annotations

import asyncio
import statistics
from typing import Any

import requests

from bench.proxy_ceiling import round_trips

TOXIC_MS = 100
BULK_BYTES = 4 * 1024 * 1024
BULK_LATENCY_MS = 1000


def latency_accuracy(api: str, proxy: str, port: int, samples: int,
                     baselines: list[float]) -> list[dict[str, float]]:
    """Per repetition (one per baseline p50): round trips with a `TOXIC_MS` latency toxic."""
    toxic = requests.post(f"{api}/proxies/{proxy}/toxics", timeout=5, json={
        "name": "accuracy", "type": "latency", "attributes": {"latency": TOXIC_MS}})
    toxic.raise_for_status()
    figures = []
    try:
        for baseline in baselines:
            with_toxic = round_trips(port, samples)
            p50 = statistics.median(with_toxic)
            figures.append({"toxic_rtt_p50_ms": p50, "toxic_added_p50_ms": p50 - baseline,
                            "toxic_added_max_ms": max(with_toxic) - baseline})
    finally:
        requests.delete(f"{api}/proxies/{proxy}/toxics/accuracy", timeout=5)
    return figures


class BulkSource(asyncio.Protocol):
    """An upstream that sends `payload` to each connection at once, then closes it."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self.payload)  # type: ignore[attr-defined]
        transport.close()


async def _receive(port: int, size: int) -> float:
    """Seconds from connecting through the proxy to holding `size` bytes."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    start, got = loop.time(), 0
    try:
        while got < size:
            chunk = await asyncio.wait_for(reader.read(1 << 20), 30)
            if not chunk:
                raise RuntimeError(f"connection closed after {got} of {size} bytes")
            got += len(chunk)
        return loop.time() - start
    finally:
        writer.close()


def bulk_through_latency(api: str, reps: int) -> dict[str, Any]:
    """`reps` transfers of `BULK_BYTES` through a `BULK_LATENCY_MS` downstream latency toxic."""
    from chaos.toxiproxy.server import new_event_loop

    loop = new_event_loop()
    payload = bytes(range(256)) * (BULK_BYTES // 256)
    server = loop.run_until_complete(
        loop.create_server(lambda: BulkSource(payload), "127.0.0.1", 0))
    source_port = server.sockets[0].getsockname()[1]
    created = requests.post(f"{api}/proxies", timeout=5, json={
        "name": "bench-bulk", "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{source_port}"})
    try:
        created.raise_for_status()
        port = int(created.json()["listen"].rsplit(":", 1)[1])
        requests.post(f"{api}/proxies/bench-bulk/toxics", timeout=5, json={
            "type": "latency", "attributes": {"latency": BULK_LATENCY_MS}}).raise_for_status()
        seconds = [loop.run_until_complete(_receive(port, BULK_BYTES)) for _ in range(reps)]
    finally:
        requests.delete(f"{api}/proxies/bench-bulk", timeout=5)
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()
    return {"bytes": BULK_BYTES, "latency_ms": BULK_LATENCY_MS, "seconds": seconds,
            "median_s": statistics.median(seconds)}
