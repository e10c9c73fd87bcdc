"""Proxied connections: a client socket, an upstream socket, and a `Link` each way."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .addresses import split_host_port
from .link import EarlyWrites, Link, set_linger_zero

if TYPE_CHECKING:
    from .proxy import Proxy


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
        return True  # keep the socket open for writing until the other link closes it

    def pause_writing(self) -> None:
        self.incoming.set_dest_blocked(True)  # type: ignore[union-attr]

    def resume_writing(self) -> None:
        self.incoming.set_dest_blocked(False)  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.connection is not None:
            self.connection.side_lost(self)


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
        self.connection.attach_upstream(self)  # type: ignore[union-attr]


class Connection:
    """A client connection and its upstream, relayed by two links that end independently."""

    def __init__(self, proxy: Proxy, client: ClientSide) -> None:
        self.proxy = proxy
        self.loop = proxy.loop
        self.client = client
        self.upstream_side: UpstreamSide | None = None
        self.closed = False  # both links finished: the connection is forgotten
        self.upstream = Link(self, "upstream")
        self.downstream = Link(self, "downstream")
        client.outgoing = self.upstream
        client.incoming = self.downstream
        self.upstream.source = client
        self.downstream.dest = client.transport
        self.early = EarlyWrites()
        self.upstream.dest = self.early
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
            await self.loop.create_connection(lambda: UpstreamSide(self), host, port)
        except (OSError, ValueError):
            # Toxiproxy closes the client at once; it reads EOF.
            self.close()

    def attach_upstream(self, side: UpstreamSide) -> None:
        """The upstream answered: wire its socket into both links and start reading the client."""
        transport = side.transport
        if self.closed:
            transport.abort()  # type: ignore[union-attr]
            return
        self.upstream_side = side
        for data in self.early.chunks:
            transport.write(data)  # type: ignore[union-attr]
        self.downstream.source = side
        if not self.early.ended:
            self.upstream.dest = transport
        elif self.early.reset:
            set_linger_zero(transport)  # type: ignore[arg-type]
            transport.abort()  # type: ignore[union-attr]
        else:
            transport.close()  # type: ignore[union-attr]
        self.client.transport.resume_reading()  # type: ignore[union-attr]

    # -- ends ----------------------------------------------------------------------------
    def side_lost(self, side: Side) -> None:
        """A socket is gone: its reads have ended and nothing more can be written to it."""
        if self.closed:
            return
        if side is self.client and self.upstream_side is None:
            self.close()  # gone while the upstream was being dialled
            return
        side.outgoing.receive_eof()  # type: ignore[union-attr]
        side.incoming.dest_lost()  # type: ignore[union-attr]

    def link_finished(self) -> None:
        """A link closed its destination; when both have, the connection is over."""
        if self.upstream.finished and self.downstream.finished and not self.closed:
            self.closed = True
            self.dial_task.cancel()
            self.proxy.forget(self)

    def close(self) -> None:
        """End both directions now, closing both sockets once their buffers are written."""
        self._end(abort=False)

    def abort(self) -> None:
        """End both directions now, dropping unsent data (the proxy is being disabled)."""
        self._end(abort=True)

    def _end(self, abort: bool) -> None:
        if self.closed:
            return
        self.dial_task.cancel()
        for link in (self.upstream, self.downstream):
            link.finish(abort=abort)
