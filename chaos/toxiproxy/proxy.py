"""A proxy: a listener that relays each client to its upstream through the proxy's toxics."""

from __future__ import annotations

import asyncio
import errno
import random
import socket
from typing import Any

from .addresses import (
    LISTEN_BACKLOG,
    BindError,
    format_address,
    listening_socket,
    resolve_listen,
    split_host_port,
)
from .connection import ClientSide, Connection
from .toxics import Toxic


class Proxy:
    """A named listener relaying to `upstream`, with toxics per stream and live connections."""

    def __init__(
        self, name: str, listen: str, upstream: str, rng: random.Random | None = None
    ) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.toxics: dict[str, list[Toxic]] = {"upstream": [], "downstream": []}
        self.connections: set[Connection] = set()
        self.rng = rng or random.Random()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._stopped_at = float("-inf")
        # Totals of closed connections; live ones are added when metrics are read.
        self.closed_bytes = {"upstream": [0, 0], "downstream": [0, 0]}  # [received, sent]
        self.connections_total = 0

    def to_json(self) -> dict[str, Any]:
        """The proxy as the API shows it, toxics included."""
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [toxic.to_json() for toxic in self.all_toxics()],
        }

    def all_toxics(self) -> list[Toxic]:
        """Upstream toxics first, then downstream, each in the order added."""
        return self.toxics["upstream"] + self.toxics["downstream"]

    def find_toxic(self, name: str) -> Toxic | None:
        return next((t for t in self.all_toxics() if t.name == name), None)

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Bind the listen address; `listen` then reports the address actually bound."""
        if self.enabled:
            return
        self.loop = asyncio.get_running_loop()
        address = await resolve_listen(self.listen)
        self._server = await self.loop.create_server(  # type: ignore[union-attr]
            lambda: ClientSide(self), sock=await self._listening_socket(address),
            backlog=LISTEN_BACKLOG,
        )
        bound = self._server.sockets[0].getsockname()
        self.listen = format_address(bound[0], bound[1])
        self.enabled = True

    async def _listening_socket(self, address: str) -> socket.socket:
        # A listener this proxy closed a moment ago may not be released by the loop yet:
        # retry briefly so that disable-then-enable on the same port works.
        just_released = self.loop.time() - self._stopped_at < 1.0  # type: ignore[union-attr]
        attempts = 50 if just_released and split_host_port(address)[1] else 1
        for attempt in range(attempts):
            try:
                return listening_socket(address)
            except BindError as exc:
                if exc.errno != errno.EADDRINUSE or attempt == attempts - 1:
                    raise
                await asyncio.sleep(0.01)
        raise AssertionError("unreachable")

    async def stop(self) -> None:
        """Close the listener and every open connection on both sides; toxics stay."""
        if not self.enabled:
            return
        self.enabled = False
        self._stopped_at = self.loop.time()  # type: ignore[union-attr]
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for connection in list(self.connections):
            connection.abort()
        await asyncio.sleep(0)  # let the loop release the listening socket

    def adopt(self, connection: Connection) -> None:
        self.connections.add(connection)
        self.connections_total += 1

    def forget(self, connection: Connection) -> None:
        if connection in self.connections:
            self.connections.discard(connection)
            for link in (connection.upstream, connection.downstream):
                totals = self.closed_bytes[link.direction]
                totals[0] += link.received
                totals[1] += link.sent

    def byte_counts(self) -> dict[str, tuple[int, int]]:
        """(received, sent) bytes per direction, closed and live connections together."""
        counts = {}
        for direction, (received, sent) in self.closed_bytes.items():
            for connection in self.connections:
                link = connection.link(direction)
                received += link.received
                sent += link.sent
            counts[direction] = (received, sent)
        return counts

    # -- toxics --------------------------------------------------------------------------
    def add_toxic(self, toxic: Toxic) -> None:
        """Add a toxic; it acts on open connections too, not only new ones."""
        self.toxics[toxic.direction].append(toxic)
        for connection in self.connections:
            connection.link(toxic.direction).add_stage(toxic)

    def update_toxic(self, toxic: Toxic, attributes: dict[str, int], toxicity: float) -> None:
        """Apply merged attributes and toxicity to the toxic and every connection it acts on."""
        toxicity_changed = toxicity != toxic.toxicity
        toxic.attributes = attributes
        toxic.toxicity = toxicity
        for connection in self.connections:
            connection.link(toxic.direction).update_stage(toxic, toxicity_changed)

    def remove_toxic(self, toxic: Toxic) -> None:
        """Remove a toxic; what it held is delivered in order (a timeout closes instead)."""
        self.toxics[toxic.direction].remove(toxic)
        for connection in list(self.connections):
            connection.link(toxic.direction).remove_stage(toxic)

    def remove_all_toxics(self) -> list[Toxic]:
        """Remove every toxic, in the order listed; returns those removed."""
        removed = self.all_toxics()
        for toxic in removed:
            self.remove_toxic(toxic)
        return removed
