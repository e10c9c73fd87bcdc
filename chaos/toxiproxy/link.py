"""Proxied connections: a client socket, an upstream socket, and a `Link` each way.

A link with no toxics relays each read straight into the other socket's transport (the fast
path: no task, no queue, no copy). Adding a toxic switches that direction to a chain of
stages, and removing the last one switches it back; both happen synchronously between two
reads, so no byte is lost or reordered in the switch.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from typing import TYPE_CHECKING

from .stages import Chunk, Item, Stage, stage_for
from .toxics import Toxic

if TYPE_CHECKING:
    from .proxy import Proxy

# Bytes a toxic chain may hold before the source stops being read (Toxiproxy bounds its
# chains with channel buffers to the same end).
HIGH_WATER = 1 << 20
LOW_WATER = 1 << 18


class Side(asyncio.Protocol):
    """One socket of a proxied connection; reads feed `outgoing`, writes come from `incoming`."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.connection: Connection | None = None
        self.outgoing: Link | None = None  # the link this socket's reads feed
        self.incoming: Link | None = None  # the link writing into this socket

    def data_received(self, data: bytes) -> None:
        # The fast path, inlined: this runs for every read of every connection.
        link = self.outgoing
        link.received += len(data)  # type: ignore[union-attr]
        if link.head is None:  # type: ignore[union-attr]
            link.dest.write(data)  # type: ignore[union-attr]
        else:
            link.receive_chunk(data)  # type: ignore[union-attr]

    def eof_received(self) -> bool:
        self.outgoing.receive_eof()  # type: ignore[union-attr]
        return True  # keep the socket open for writing until the link decides to close

    def pause_writing(self) -> None:
        self.incoming.set_dest_blocked(True)  # type: ignore[union-attr]

    def resume_writing(self) -> None:
        self.incoming.set_dest_blocked(False)  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.connection is not None:
            self.connection.close()


class ClientSide(Side):
    """The accepted client socket: dials the upstream for its proxy as soon as it arrives."""

    def __init__(self, proxy: Proxy) -> None:
        super().__init__()
        self.proxy = proxy

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.pause_reading()  # type: ignore[attr-defined]  # until the upstream answers
        self.connection = Connection(self.proxy, self)
        self.proxy.adopt(self.connection)


class UpstreamSide(Side):
    """The socket dialled to the proxy's upstream."""

    def __init__(self, connection: Connection) -> None:
        super().__init__()
        self.connection = connection
        self.outgoing = connection.downstream
        self.incoming = connection.upstream

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]


class Link:
    """One direction of a connection: bytes from `source` to `dest` through toxic stages."""

    def __init__(self, connection: Connection, direction: str) -> None:
        self.connection = connection
        self.direction = direction
        self.loop = connection.loop
        self.rng: random.Random = connection.proxy.rng
        self.source: Side | None = None
        self.dest: asyncio.Transport | None = None
        self.stages: list[Stage] = []
        self.head: Stage | None = None
        self.received = 0
        self.buffered = 0  # bytes inside the toxic chain
        self.dropped_total = 0  # bytes toxics discarded
        self.dest_blocked = False
        self.source_paused = False

    # -- relaying (hot path) -------------------------------------------------------------
    @property
    def sent(self) -> int:
        """Bytes written to the destination (the fast path counts only what it reads)."""
        return self.received - self.buffered - self.dropped_total

    def receive_chunk(self, data: bytes) -> None:
        """Bytes read from the source while toxics act on this direction."""
        self.buffered += len(data)
        self.head.put(Chunk(data, self.loop.time()))  # type: ignore[union-attr]
        if self.buffered > HIGH_WATER:
            self._update_reading()

    def receive_eof(self) -> None:
        """The source ended: the chain delivers what it holds, then the connection closes."""
        if self.head is None:
            self.connection.close()
        else:
            self.head.put(None)

    def deliver(self, item: Item) -> None:
        """The end of the toxic chain: write to the destination socket."""
        if item is None:
            self.connection.close()
            return
        size = len(item.data)
        if size and self.dest is not None:
            self.dest.write(item.data)
        self.buffered -= size
        if self.source_paused and self.buffered < LOW_WATER:
            self._update_reading()

    def dropped(self, nbytes: int) -> None:
        """A toxic discarded `nbytes` it had been counted for."""
        self.buffered -= nbytes
        self.dropped_total += nbytes
        if self.source_paused and self.buffered < LOW_WATER:
            self._update_reading()

    # -- flow control --------------------------------------------------------------------
    def set_dest_blocked(self, blocked: bool) -> None:
        self.dest_blocked = blocked
        self._update_reading()

    def _update_reading(self) -> None:
        pause = self.dest_blocked or self.buffered > HIGH_WATER
        if pause == self.source_paused or self.source is None or self.connection.closed:
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

    def add_stage(self, toxic: Toxic) -> None:
        """Append a toxic at the end of the chain, acting on data not yet delivered."""
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
        """Take a toxic out; what it held goes on, in order (a timeout closes instead)."""
        index = next((i for i, s in enumerate(self.stages) if s.toxic is toxic), None)
        if index is None:
            return
        stage = self.stages[index]
        closes = stage.closes_on_removal()
        pending = stage.stop()
        del self.stages[index]
        self._rewire()
        if closes:
            self.connection.close()
            return
        forward = self._target(index)
        for item in pending:
            forward(item)

    def stop_stages(self) -> None:
        for stage in self.stages:
            stage.stop()

    # -- asked for by stages -------------------------------------------------------------
    def close_connection(self) -> None:
        self.connection.close()

    def reset_connection(self) -> None:
        self.connection.reset()


_LINGER_ZERO = struct.pack("ii", 1, 0)


class EarlyWrites:
    """Stands in for the upstream transport while it is being dialled.

    The client's reads are paused meanwhile, but a loop may deliver a first read anyway;
    keeping it here spares the hot path a check for a missing transport.
    """

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.chunks.append(data)


class Connection:
    """A client connection and its upstream, relayed by two links."""

    def __init__(self, proxy: Proxy, client: ClientSide) -> None:
        self.proxy = proxy
        self.loop = proxy.loop
        self.client = client
        self.upstream_side: UpstreamSide | None = None
        self.closed = False
        self.upstream = Link(self, "upstream")
        self.downstream = Link(self, "downstream")
        client.outgoing = self.upstream
        client.incoming = self.downstream
        self.upstream.source = client
        self.downstream.dest = client.transport
        self.early = EarlyWrites()
        self.upstream.dest = self.early  # type: ignore[assignment]
        for toxic in proxy.toxics["upstream"]:
            self.upstream.add_stage(toxic)
        for toxic in proxy.toxics["downstream"]:
            self.downstream.add_stage(toxic)
        self.dial_task = self.loop.create_task(self._dial())

    def link(self, stream: str) -> Link:
        return self.upstream if stream == "upstream" else self.downstream

    async def _dial(self) -> None:
        host, port = split_host_port(self.proxy.upstream)
        try:
            _, side = await self.loop.create_connection(
                lambda: UpstreamSide(self), host, port
            )
        except (OSError, ValueError):
            # Toxiproxy closes the client at once; it reads EOF.
            self.close()
            return
        if self.closed:
            side.transport.abort()  # type: ignore[union-attr]
            return
        self.upstream_side = side  # type: ignore[assignment]
        transport = side.transport  # type: ignore[union-attr]
        for data in self.early.chunks:
            transport.write(data)
        self.upstream.dest = transport
        self.downstream.source = side  # type: ignore[assignment]
        self.client.transport.resume_reading()  # type: ignore[union-attr]

    def _transports(self) -> list[asyncio.Transport]:
        sides = (self.client, self.upstream_side)
        return [side.transport for side in sides if side is not None and side.transport]

    def _finish(self) -> bool:
        if self.closed:
            return False
        self.closed = True
        self.dial_task.cancel()
        self.upstream.stop_stages()
        self.downstream.stop_stages()
        self.proxy.forget(self)
        return True

    def close(self) -> None:
        """Close both sockets once what they were already given is written (no half-close)."""
        if self._finish():
            for transport in self._transports():
                transport.close()

    def abort(self) -> None:
        """Close both sockets now, dropping unsent data (the proxy is being disabled)."""
        if self._finish():
            for transport in self._transports():
                transport.abort()

    def reset(self) -> None:
        """Reset both sockets with a TCP RST: SO_LINGER 0, then close."""
        if self._finish():
            for transport in self._transports():
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
                transport.abort()


def split_host_port(address: str) -> tuple[str, int]:
    """`host:port` (IPv6 hosts in brackets) as a pair; ValueError when malformed."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"address {address!r}: missing port")
    return host.strip("[]"), int(port)
