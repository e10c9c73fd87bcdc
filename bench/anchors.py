"""The anchors the bench measures beside Breakwater (nginx, HAProxy) as processes of its own:
started on a free loopback port, pinned to a CPU, stopped by PID."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from bench.harness import pinned, stop_process


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def start_on_free_port(name: str, command_for: Callable[[int], list[str]], log_path: Path,
                       cpu: int | None, attempts: int = 3) -> tuple[subprocess.Popen, int]:
    """`command_for(port)` run pinned to `cpu` until it accepts on `port`.

    The port is picked free and then bound by the anchor; if another process takes it in
    between, the anchor exits and another port is tried."""
    for _ in range(attempts):
        port = free_port()
        command = command_for(port)
        with log_path.open("ab") as log:
            process = subprocess.Popen(pinned(cpu, command), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and process.poll() is None:
            if accepts(port):
                return process, port
            time.sleep(0.05)
        if process.poll() is None:
            process.kill()
            process.wait(5)
    raise RuntimeError(f"{name} did not start; see {log_path}")


stop = stop_process  # an anchor is stopped like any process the bench started
