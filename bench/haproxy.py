"""HAProxy in TCP mode (Debian's `haproxy`), the yardstick for the fault proxy's relay.

`ensure_haproxy()` installs it with apt-get when it is missing (as root) or says how to;
`start_haproxy(upstream_port, cpu, folder)` runs one single-threaded TCP relay in the
foreground on a free loopback port, pinned to one CPU, and returns its process and port.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from bench.harness import pinned


class HaproxyMissing(RuntimeError):
    """HAProxy is not installed and could not be installed here."""


def ensure_haproxy(log: object = print) -> str:
    """The path of `haproxy`, installing Debian's package first when it is missing."""
    found = shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if os.access("/usr/sbin/haproxy", os.X_OK) else None)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise HaproxyMissing("haproxy is not installed: run `sudo apt-get install -y haproxy` "
                             "(Debian/Ubuntu) and start the benchmark again")
    if callable(log):
        log("  installing haproxy (apt-get install -y haproxy)")
    done = subprocess.run(["apt-get", "install", "-y", "-q", "haproxy"], capture_output=True,
                          text=True, check=False)
    found = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if done.returncode != 0 or not os.access(found, os.X_OK):
        raise HaproxyMissing("`apt-get install -y haproxy` failed: "
                             f"{(done.stderr or done.stdout).strip()[-300:]}")
    return found


def config(listen_port: int, upstream_port: int) -> str:
    """One TCP relay, one thread, no health checks, no logging: the relay and nothing else."""
    return "\n".join([
        "global",
        "  nbthread 1",
        "  maxconn 1000",
        "defaults",
        "  mode tcp",
        "  timeout connect 5s",
        "  timeout client 60s",
        "  timeout server 60s",
        "listen relay",
        f"  bind 127.0.0.1:{listen_port}",
        f"  server upstream 127.0.0.1:{upstream_port}",
        "",
    ])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def start_haproxy(upstream_port: int, cpu: int | None, folder: Path,
                  attempts: int = 3) -> tuple[subprocess.Popen, int]:
    """HAProxy relaying a free loopback port to `upstream_port`, pinned to `cpu`.

    The port is picked free and then bound by HAProxy; if another process takes it in
    between, HAProxy exits and another port is tried.
    """
    binary = ensure_haproxy()
    folder.mkdir(parents=True, exist_ok=True)
    for _ in range(attempts):
        port = _free_port()
        path = folder / "haproxy.cfg"
        path.write_text(config(port, upstream_port))
        log = (folder / "haproxy.log").open("ab")
        # -db: stay in the foreground, so stopping it is stopping this PID.
        process = subprocess.Popen(pinned(cpu, [binary, "-f", str(path), "-db"]),
                                   stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and process.poll() is None:
            if _accepts(port):
                return process, port
            time.sleep(0.05)
        if process.poll() is None:
            process.kill()
            process.wait(5)
    raise RuntimeError(f"haproxy did not start; see {folder / 'haproxy.log'}")
