"""Helpers for fault-proxy tests on the wire: a recording upstream and the proxy's byte counters."""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class RecordedConnection:
    """One connection the recording upstream accepted: what it read, and when it read EOF."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.data = bytearray()
        self.eof = threading.Event()  # EOF or a reset was read
        self.eof_at: float | None = None
        self.reset = False  # the connection ended with a reset rather than a FIN

    def read(self) -> None:
        try:
            while chunk := self.sock.recv(65536):
                self.data.extend(chunk)
        except OSError:
            self.reset = True
        self.eof_at = time.monotonic()
        self.eof.set()


class RecordingServer:
    """A TCP upstream on 127.0.0.1 that records what each client sends and never answers.

    Tests write to `connections[i].sock` themselves when they need the upstream to speak or
    half-close at a chosen moment.
    """

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.connections: list[RecordedConnection] = []
        self._running = True
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while self._running:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            connection = RecordedConnection(sock)
            self.connections.append(connection)
            threading.Thread(target=connection.read, daemon=True).start()

    def stop(self) -> None:
        self._running = False
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for connection in self.connections:
            with contextlib.suppress(OSError):
                connection.sock.shutdown(socket.SHUT_RDWR)
            connection.sock.close()
        self._thread.join(5)


def byte_counts(api, proxy: str) -> dict[tuple[str, str], int]:
    """`/metrics` byte counters of one proxy: {("received" | "sent", direction): bytes}."""
    counts = {}
    for line in api.get("/metrics").text.splitlines():
        if line.startswith("#") or f'proxy="{proxy}"' not in line:
            continue
        name, value = line.rsplit(" ", 1)
        for kind in ("received", "sent"):
            if name.startswith(f"toxiproxy_proxy_{kind}_bytes_total"):
                direction = name.split('direction="', 1)[1].split('"', 1)[0]
                counts[kind, direction] = int(value)
    return counts
