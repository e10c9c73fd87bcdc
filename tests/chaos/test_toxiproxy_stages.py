"""Toxic stages driven directly on an event loop, for properties the wire cannot show."""

from __future__ import annotations

import asyncio
import os
import random

from chaos.toxiproxy.server import new_event_loop
from chaos.toxiproxy.stages import BandwidthStage, Chunk
from chaos.toxiproxy.toxics import Toxic


class FakeLink:
    """The part of a link a stage talks to, recording what it is asked."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.rng = random.Random(7)
        self.dropped_bytes = 0

    def dropped(self, nbytes: int) -> None:
        self.dropped_bytes += nbytes

    def close_connection(self) -> None:
        raise AssertionError("not expected")

    def arm_reset(self) -> None:
        raise AssertionError("not expected")


def test_bandwidth_slices_share_the_chunk_they_cut():
    """toxics/bandwidth.go `BandwidthToxic.Pipe` sends `p.Data[:rate*100]` and keeps
    `p.Data[rate*100:]`: Go slices share the chunk's array, so a slow rate costs no copy of the
    rest of the chunk for every slice (which is quadratic in the chunk's size)."""
    loop = new_event_loop()
    try:
        stage = BandwidthStage(Toxic("bw", "bandwidth", "downstream", 1.0, {"rate": 1000}),
                               FakeLink(loop))
        out: list[Chunk] = []
        stage.output = out.append
        data = os.urandom(250_000)  # 100 kB slices at 1000 KB/s: three, 0.1 s apart

        async def run() -> None:
            stage.start()
            stage.put(Chunk(data, loop.time()))
            while sum(len(piece.data) for piece in out) < len(data):
                await asyncio.sleep(0.01)
            stage.stop()

        loop.run_until_complete(asyncio.wait_for(run(), 10))
    finally:
        loop.close()
    assert b"".join(bytes(piece.data) for piece in out) == data
    assert [len(piece.data) for piece in out] == [100_000, 100_000, 50_000]
    assert all(memoryview(piece.data).obj is data for piece in out)
