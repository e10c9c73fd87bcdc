"""Probes a Chaos Toolkit experiment calls (a `python` provider): the proxy seen from the wire."""

from __future__ import annotations

import os
import socket
import time


def _port(value: str | int) -> int:
    """A port, or `env:NAME` for the variable chaostoolkit-toxiproxy's `create_proxy` sets
    (`<proxy>_PORT`): its configuration changes do not reach later activities' arguments."""
    if isinstance(value, str) and value.startswith("env:"):
        value = os.environ[value[4:]]
    return int(value)


def round_trip_ms(port: str | int, host: str = "127.0.0.1", payload: str = "ping") -> float:
    """Milliseconds for `payload` to go through the proxy to an echo upstream and back."""
    data = payload.encode()
    with socket.create_connection((host, _port(port)), timeout=5) as sock:
        start = time.perf_counter()
        sock.sendall(data)
        got = b""
        while len(got) < len(data):
            chunk = sock.recv(len(data) - len(got))
            if not chunk:
                raise ConnectionError(f"closed after {len(got)} of {len(data)} bytes")
            got += chunk
        if got != data:
            raise ValueError(f"echoed {got!r}, sent {data!r}")
        return (time.perf_counter() - start) * 1000.0


def refuses_connections(port: str | int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on the port (a disabled proxy)."""
    try:
        socket.create_connection((host, _port(port)), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False
