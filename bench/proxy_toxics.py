"""What the fault proxy's latency toxic does on the wire: how exact it is, and that it does not
cap throughput.

- Accuracy: round trips through a proxy with a 100 ms latency toxic, taken in turn with round
  trips through one without it (same responder, same moments), median minus median.
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

from bench import loadclient
from bench.proxy_ceiling import PATH

TOXIC_MS = 100
BULK_BYTES = 4 * 1024 * 1024
BULK_LATENCY_MS = 1000


def latency_accuracy(api: str, upstream_port: int, plain_port: int, samples: int,
                     reps: int) -> list[dict[str, float]]:
    """Per repetition: what a `TOXIC_MS` latency toxic adds to a round trip, measured against
    round trips through a toxic-free proxy taken alternately with them."""
    created = requests.post(f"{api}/proxies", timeout=5, json={
        "name": "bench-toxic", "listen": "127.0.0.1:0",
        "upstream": f"127.0.0.1:{upstream_port}"})
    figures = []
    try:
        created.raise_for_status()
        toxic_port = int(created.json()["listen"].rsplit(":", 1)[1])
        requests.post(f"{api}/proxies/bench-toxic/toxics", timeout=5, json={
            "type": "latency", "attributes": {"latency": TOXIC_MS}}).raise_for_status()
        for _ in range(reps):
            plain, toxic = loadclient.run(loadclient.interleaved(
                [plain_port, toxic_port], PATH, count=samples,
                max_seconds=10 + samples * TOXIC_MS / 500))
            baseline = statistics.median(plain.samples)
            p50 = statistics.median(toxic.samples)
            figures.append({"toxic_rtt_p50_ms": p50, "toxic_baseline_p50_ms": baseline,
                            "toxic_added_p50_ms": p50 - baseline,
                            "toxic_added_max_ms": max(toxic.samples) - baseline})
    finally:
        requests.delete(f"{api}/proxies/bench-toxic", timeout=5)
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
