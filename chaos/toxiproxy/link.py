"""One direction of a proxied connection: bytes from a source socket to a destination socket.

As in Toxiproxy's `link.go`, each direction is its own link. When its source ends, the link's
toxic chain drains (a latency toxic still delivers what it holds, a `slow_close` waits) and only
then does the link close its own destination. The other direction goes on until its own source
ends, which happens at the latest when this link's close takes its socket away.

A link with no toxics relays each read straight into the destination transport (the fast path:
no task, no queue, no copy). Adding a toxic switches the link to a chain of stages, and removing
the last one switches it back; both happen synchronously between two reads, so no byte is lost
or reordered in the switch.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
from typing import TYPE_CHECKING, Protocol

from .stages import Chunk, Item, Stage, stage_for
from .toxics import Toxic

if TYPE_CHECKING:
    from .connection import Connection, Side

# The least a toxic chain may hold before the source stops being read. Stages add their own
# capacity on top (a latency toxic holds as much as Toxiproxy's 1024-chunk channel), so the
# bound follows the chain as Toxiproxy's channel buffers do.
MIN_HIGH_WATER = 1 << 20

_LINGER_ZERO = struct.pack("ii", 1, 0)


def set_linger_zero(transport: Destination) -> None:
    """SO_LINGER 0: closing the socket then sends a TCP RST instead of a FIN."""
    sock = transport.get_extra_info("socket")  # type: ignore[attr-defined]
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)


class Destination(Protocol):
    """Where a link writes: an asyncio transport, or a stand-in for one."""

    def write(self, data: bytes) -> None: ...

    def is_closing(self) -> bool: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


class EarlyWrites:
    """Stands in for the upstream transport while it is being dialled.

    The client's reads are paused meanwhile, but a loop may deliver a first read anyway;
    keeping it here spares the hot path a check for a missing transport. If the link even
    finishes before the upstream answers (a `limit_data` reached on that first read), the
    upstream is closed as soon as it answers, after these writes, as Toxiproxy (which dials
    before it reads anything) would have done.
    """

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.ended = False
        self.reset = False

    def write(self, data: bytes) -> None:
        self.chunks.append(data)


class Discard:
    """The destination of a finished link: what still arrives is counted as dropped."""

    def __init__(self, link: Link) -> None:
        self.link = link

    def write(self, data: bytes) -> None:
        self.link.dropped_total += len(data)


class Link:
    """One direction of a connection: bytes from `source` to `dest` through toxic stages."""

    def __init__(self, connection: Connection, direction: str) -> None:
        self.connection = connection
        self.direction = direction
        self.loop = connection.loop
        self.rng: random.Random = connection.proxy.rng
        self.source: Side | None = None
        self.dest: Destination | None = None
        self.stages: list[Stage] = []
        self.head: Stage | None = None
        self.received = 0
        self.buffered = 0  # bytes inside the toxic chain
        self.dropped_total = 0  # bytes toxics (or a finished link) discarded
        self.high_water = MIN_HIGH_WATER
        self.dest_blocked = False
        self.source_paused = False
        self.source_ended = False
        self.finished = False
        self.reset_armed = False  # the destination is reset (RST), not closed, at the end

    # -- relaying (hot path) -------------------------------------------------------------
    @property
    def sent(self) -> int:
        """Bytes written to the destination (the fast path counts only what it reads)."""
        return self.received - self.buffered - self.dropped_total

    def receive_chunk(self, data: bytes) -> None:
        """Bytes read from the source while toxics act on this direction."""
        self.buffered += len(data)
        self.head.put(Chunk(data, self.loop.time()))  # type: ignore[union-attr]
        if self.buffered > self.high_water:
            self._update_reading()

    def receive_eof(self) -> None:
        """The source ended (EOF, error, or its socket closed): drain the chain, then finish."""
        if self.source_ended or self.finished:
            return
        self.source_ended = True
        if self.head is None:
            self.finish()
        else:
            self.head.put(None)

    def deliver(self, item: Item) -> None:
        """The end of the toxic chain: write to the destination socket."""
        if item is None:
            self.finish()
            return
        size = len(item.data)
        if size:
            self.dest.write(item.data)  # type: ignore[union-attr]
        self.buffered -= size
        if self.source_paused and self.buffered < self.high_water // 4:
            self._update_reading()

    def dropped(self, nbytes: int) -> None:
        """A toxic discarded `nbytes` it had been counted for."""
        self.buffered -= nbytes
        self.dropped_total += nbytes
        if self.source_paused and self.buffered < self.high_water // 4:
            self._update_reading()

    # -- the end of this direction -------------------------------------------------------
    def finish(self, abort: bool = False) -> None:
        """Close this link's destination; the other direction is not touched.

        Whatever the chain still holds is dropped and later reads are discarded, as in
        Toxiproxy, where a closed link stops consuming its chain.
        """
        if self.finished:
            return
        self.finished = True
        self.stop_stages()
        dest, self.dest = self.dest, Discard(self)
        if isinstance(dest, EarlyWrites):
            dest.ended, dest.reset = True, abort or self.reset_armed
        elif not isinstance(dest, Discard) and not dest.is_closing():  # type: ignore[union-attr]
            if abort or self.reset_armed:
                dest.abort()  # type: ignore[union-attr]
            else:
                dest.close()  # type: ignore[union-attr]
        self.connection.link_finished()

    def dest_lost(self) -> None:
        """The destination socket is gone (its peer closed or reset it): nothing more to write."""
        self.finish(abort=True)

    def arm_reset(self) -> None:
        """Make both sockets of the connection reset (SO_LINGER 0) rather than close."""
        for side in (self.connection.client, self.connection.upstream_side):
            if side is not None and side.transport is not None:
                set_linger_zero(side.transport)
        self.reset_armed = True

    # -- flow control --------------------------------------------------------------------
    def set_dest_blocked(self, blocked: bool) -> None:
        self.dest_blocked = blocked
        self._update_reading()

    def _update_reading(self) -> None:
        if self.finished or self.source is None:
            return
        pause = self.dest_blocked or self.buffered > self.high_water
        if pause == self.source_paused:
            return
        self.source_paused = pause
        transport = self.source.transport
        if transport is not None and not transport.is_closing():
            if pause:
                transport.pause_reading()
            else:
                transport.resume_reading()

    # -- the toxic chain -----------------------------------------------------------------
    def _target(self, index: int):
        """Where the stage at `index` - 1 (or the source, for 0) must send its output."""
        return self.stages[index].put if index < len(self.stages) else self.deliver

    def _rewire(self) -> None:
        for i, stage in enumerate(self.stages):
            stage.output = self._target(i + 1)
        self.head = self.stages[0] if self.stages else None
        self.high_water = max(MIN_HIGH_WATER, sum(stage.capacity for stage in self.stages))
        self._update_reading()

    def add_stage(self, toxic: Toxic) -> None:
        """Append a toxic at the end of the chain, acting on data not yet delivered."""
        if self.finished:
            return
        stage = stage_for(toxic, self)
        self.stages.append(stage)
        self._rewire()
        stage.start()

    def update_stage(self, toxic: Toxic, toxicity_changed: bool) -> None:
        """Restart a toxic's stage so it acts with its new attributes."""
        for stage in self.stages:
            if stage.toxic is toxic:
                stage.restart(redraw=toxicity_changed)

    def remove_stage(self, toxic: Toxic) -> None:
        """Take a toxic out; what it held goes on, in order.

        A timeout (or a reset_peer that already fired) ends the stream instead: what it held
        is dropped and the end of stream goes on down the chain, as Toxiproxy's
        `TimeoutToxic.Cleanup` closes its stub.
        """
        index = next((i for i, s in enumerate(self.stages) if s.toxic is toxic), None)
        if index is None:
            return
        stage = self.stages[index]
        ends_stream = stage.ends_stream_on_removal()
        pending = stage.stop()
        del self.stages[index]
        self._rewire()
        forward = self._target(index)
        if ends_stream:
            for item in pending:
                if item is not None:
                    self.dropped(len(item.data))
            forward(None)
            return
        for item in pending:
            forward(item)

    def stop_stages(self) -> None:
        """Cancel every stage, dropping what they hold (the link is finishing)."""
        for stage in self.stages:
            for item in stage.stop():
                if item is not None:
                    self.dropped(len(item.data))
        self.stages = []
        self.head = None

    # -- asked for by stages -------------------------------------------------------------
    def close_connection(self) -> None:
        self.connection.close()
