"""What each toxic does to one direction of one connection.

A `Stage` is one toxic acting on one `Link`. Stages form a chain: each takes chunks from its
inbox and emits them to its `output` (the next stage's `put`, or the link's delivery to the
socket). Emitting is a plain call, never an await, and a stage's coroutine is only ever
suspended at an await; so the chain can be rewired synchronously, between two awaits, and
cancelling a stage's task can never split a chunk. Whatever a stage has taken but not yet
emitted is its `held` chunk, which removal forwards and a restart puts back.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Callable, Iterator
from typing import Protocol

from .toxics import Toxic

log = logging.getLogger(__name__)


class Chunk:
    """Bytes read from the source at loop time `ts` (used by latency to measure its delay)."""

    __slots__ = ("data", "ts")

    def __init__(self, data: bytes, ts: float) -> None:
        self.data = data
        self.ts = ts


# A chunk, or None for end of stream.
Item = Chunk | None

NOTHING = object()  # `held` when the stage holds nothing (None would mean a held EOF)


class LinkControl(Protocol):
    """What a stage may ask of the link it acts on."""

    loop: asyncio.AbstractEventLoop
    rng: random.Random

    def dropped(self, nbytes: int) -> None: ...

    def close_connection(self) -> None: ...

    def arm_reset(self) -> None: ...


def _wake(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(None)


# Pieces a slicer with no delay writes before letting the event loop run something else.
PIECES_PER_TURN = 64

# Toxiproxy reads at most 32 KB at a time; a chain stage holds about one such chunk in hand.
CHUNK_BYTES = 32 * 1024


class Stage:
    """A toxic acting on one link; the base class passes data through unchanged."""

    # Bytes this stage may hold before the link stops reading its source.
    capacity = CHUNK_BYTES

    def __init__(self, toxic: Toxic, link: LinkControl) -> None:
        self.toxic = toxic
        self.link = link
        self.inbox: deque[Item] = deque()
        self.held: object = NOTHING
        self.output: Callable[[Item], None] = _unwired
        self.active = False
        self.task: asyncio.Task | None = None
        self._waiter: asyncio.Future | None = None

    # -- plumbing -----------------------------------------------------------------------
    def put(self, item: Item) -> None:
        """Queue a chunk (or EOF) for this stage."""
        self.inbox.append(item)
        if self._waiter is not None:
            _wake(self._waiter)

    async def take(self, timeout: float | None = None) -> object:
        """The next item, which becomes `held`; `NOTHING` if `timeout` seconds pass first."""
        while not self.inbox:
            waiter = self._waiter = self.link.loop.create_future()
            if timeout is None:
                await waiter
            else:
                timer = self.link.loop.call_later(timeout, _wake, waiter)
                try:
                    await waiter
                finally:
                    timer.cancel()
                if not self.inbox:
                    return NOTHING
        self._waiter = None
        item = self.inbox.popleft()
        self.held = item
        return item

    def emit(self, item: Item) -> None:
        """Hand the held item on."""
        self.held = NOTHING
        self.output(item)

    def start(self, redraw: bool = True) -> None:
        """Run this stage; toxicity is drawn here, once, not per chunk."""
        if redraw:
            self.active = self.link.rng.random() < self.toxic.toxicity
        self.task = self.link.loop.create_task(self._run())

    def stop(self) -> list[Item]:
        """Cancel the stage and return what it held and queued, in order."""
        if self.task is not None:
            self.task.cancel()
            self.task = None
        pending = [] if self.held is NOTHING else [self.held]
        self.held = NOTHING
        pending.extend(self.inbox)
        self.inbox.clear()
        return pending  # type: ignore[return-value]

    def restart(self, redraw: bool) -> None:
        """Pick up changed attributes: what the stage held goes back to the front of its inbox."""
        pending = self.stop()
        self.inbox.extend(pending)
        self.start(redraw)

    def ends_stream_on_removal(self) -> bool:
        """Whether removing this toxic ends the stream instead of letting data flow."""
        return False

    async def _run(self) -> None:
        try:
            await (self.act() if self.active else self.pass_through())
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug in one toxic must not wedge the connection
            log.exception("toxic %s failed; closing the connection", self.toxic.name)
            self.link.close_connection()

    async def pass_through(self) -> None:
        """Behaviour when the toxicity draw left this connection unaffected."""
        while True:
            item = await self.take()
            self.emit(item)  # type: ignore[arg-type]
            if item is None:
                return

    async def act(self) -> None:
        """The toxic's effect; `noop` is the base behaviour."""
        await self.pass_through()


def _unwired(item: Item) -> None:
    raise RuntimeError("stage output not wired")


class LatencyStage(Stage):
    """Each chunk leaves `latency` ± `jitter` ms after it was read; order is kept."""

    # Toxiproxy's latency toxic reads through a 1024-chunk channel: a whole latency's worth of
    # traffic is read ahead, so the delay does not cap throughput.
    capacity = 1024 * CHUNK_BYTES

    async def act(self) -> None:
        loop = self.link.loop
        while True:
            chunk = await self.take()
            if chunk is None:
                self.emit(None)
                return
            assert isinstance(chunk, Chunk)
            delay = self.toxic.attributes["latency"]
            jitter = self.toxic.attributes["jitter"]
            if jitter > 0:
                delay += self.link.rng.uniform(-jitter, jitter)
            due = chunk.ts + delay / 1000.0
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            # Measured from the release, so two latency toxics add up.
            chunk.ts = max(due, chunk.ts)
            self.emit(chunk)


class BandwidthStage(Stage):
    """Data paced to `rate` KB/s, released in pieces of at most 100 ms worth.

    Pieces are views of the chunk read, as Go's slices are, so a slow rate costs no copy of
    the rest of the chunk per piece. A rate of 0 or less holds the chunk until the toxic is
    removed or updated: Toxiproxy's rate-0 loop keeps sending empty slices and never finishes.
    """

    def __init__(self, toxic: Toxic, link: LinkControl) -> None:
        super().__init__(toxic, link)
        self.next_free = 0.0  # when the simulated wire is free again; kept across restarts

    async def act(self) -> None:
        loop = self.link.loop
        while True:
            chunk = await self.take()
            if chunk is None:
                self.emit(None)
                return
            assert isinstance(chunk, Chunk)
            rate = self.toxic.attributes["rate"]
            if rate <= 0:
                await loop.create_future()  # held until a removal or an update cancels us
            view = memoryview(chunk.data)
            piece_size = rate * 100
            offset = 0
            while offset < len(view):
                piece = view[offset:offset + piece_size]
                offset += len(piece)
                now = loop.time()
                self.next_free = max(now, self.next_free) + len(piece) / (rate * 1000.0)
                await asyncio.sleep(self.next_free - now)
                self.held = Chunk(view[offset:], chunk.ts) if offset < len(view) else NOTHING
                self.output(Chunk(piece, chunk.ts))  # type: ignore[arg-type]


class SlowCloseStage(Stage):
    """Data passes; the end of stream is held for `delay` ms."""

    async def act(self) -> None:
        while True:
            item = await self.take()
            if item is None:
                await asyncio.sleep(self.toxic.attributes["delay"] / 1000.0)
            self.emit(item)  # type: ignore[arg-type]
            if item is None:
                return


class TimeoutStage(Stage):
    """Data is dropped; the connection closes after `timeout` ms without data (0: never)."""

    async def act(self) -> None:
        timeout_ms = self.toxic.attributes["timeout"]
        limit = timeout_ms / 1000.0 if timeout_ms > 0 else None
        while True:
            item = await self.take(limit)
            if item is NOTHING or item is None:
                self.emit(None)
                return
            assert isinstance(item, Chunk)
            self.held = NOTHING
            self.link.dropped(len(item.data))

    def ends_stream_on_removal(self) -> bool:
        return self.active


class ResetPeerStage(Stage):
    """On the first data, wait `timeout` ms, then reset the connection (TCP RST)."""

    def __init__(self, toxic: Toxic, link: LinkControl) -> None:
        super().__init__(toxic, link)
        self.triggered_at: float | None = None

    async def act(self) -> None:
        loop = self.link.loop
        if self.triggered_at is None:
            item = await self.take()
            if item is None:
                self.emit(None)
                return
            assert isinstance(item, Chunk)
            self.held = NOTHING  # dropped, as Toxiproxy drops it
            self.link.dropped(len(item.data))
            self.triggered_at = loop.time()
        due = self.triggered_at + self.toxic.attributes["timeout"] / 1000.0
        await asyncio.sleep(max(0.0, due - loop.time()))
        # Toxiproxy closes this stub's output with SO_LINGER 0 on both sockets: the rest of the
        # chain drains, this direction's destination is reset, and the other direction follows.
        self.link.arm_reset()
        self.emit(None)

    def ends_stream_on_removal(self) -> bool:
        # Data was already dropped: letting the stream go on would deliver a corrupt stream.
        if self.active and self.triggered_at is not None:
            self.link.arm_reset()
            return True
        return False


class SlicerStage(Stage):
    """Chunks cut into pieces of about `average_size` ± `size_variation`, `delay` µs apart."""

    def cuts(self, start: int, end: int) -> Iterator[tuple[int, int]]:
        """Toxiproxy's recursive halving, walked in the same order without recursion.

        Pieces come one at a time, so a chunk cut into thousands of bytes builds no lists.
        """
        average = self.toxic.attributes["average_size"]
        variation = self.toxic.attributes["size_variation"]
        pending = [(start, end)]
        while pending:
            start, end = pending.pop()
            if (end - start) - average <= variation:
                yield start, end
                continue
            mid = start + (end - start) // 2
            if variation > 0:
                mid += self.link.rng.randrange(variation * 2) - variation
            pending.append((mid, end))
            pending.append((start, mid))

    async def act(self) -> None:
        while True:
            chunk = await self.take()
            if chunk is None:
                self.emit(None)
                return
            assert isinstance(chunk, Chunk)
            view = memoryview(chunk.data)
            delay = self.toxic.attributes["delay"] / 1_000_000.0
            for count, (start, end) in enumerate(self.cuts(0, len(view)), 1):
                rest = view[end:]
                self.held = Chunk(rest, chunk.ts) if rest else NOTHING  # type: ignore[arg-type]
                self.output(Chunk(view[start:end], chunk.ts))  # type: ignore[arg-type]
                if not rest:
                    continue
                if delay > 0:
                    await asyncio.sleep(delay)
                elif count % PIECES_PER_TURN == 0:
                    # Toxiproxy's goroutine yields between pieces even at delay 0; without a
                    # turn here, one large chunk would hold the API and every other proxy.
                    await asyncio.sleep(0)


class LimitDataStage(Stage):
    """The connection closes once `bytes` bytes have passed in this direction."""

    def __init__(self, toxic: Toxic, link: LinkControl) -> None:
        super().__init__(toxic, link)
        self.transmitted = 0  # per connection, kept when the toxic is updated

    async def act(self) -> None:
        while True:
            chunk = await self.take()
            if chunk is None:
                self.emit(None)
                return
            assert isinstance(chunk, Chunk)
            limit = self.toxic.attributes["bytes"]
            remaining = max(0, limit - self.transmitted)
            data = chunk.data
            if len(data) > remaining:
                self.link.dropped(len(data) - remaining)
                data = data[:remaining]
            self.held = NOTHING
            if data:
                self.transmitted += len(data)
                self.output(Chunk(data, chunk.ts))
            if limit - self.transmitted <= 0:
                self.emit(None)
                return


STAGES: dict[str, type[Stage]] = {
    "latency": LatencyStage,
    "bandwidth": BandwidthStage,
    "slow_close": SlowCloseStage,
    "timeout": TimeoutStage,
    "reset_peer": ResetPeerStage,
    "slicer": SlicerStage,
    "limit_data": LimitDataStage,
    "noop": Stage,
}


def stage_for(toxic: Toxic, link: LinkControl) -> Stage:
    """A new, not yet started stage acting for `toxic` on `link`."""
    return STAGES[toxic.type](toxic, link)
