"""HAProxy in TCP mode (Debian's `haproxy`), the yardstick for the fault proxy's relay.

`ensure_haproxy()` installs it with apt-get when it is missing (as root) or says how to;
`start_haproxy(upstream_port, cpu, folder)` runs one single-threaded TCP relay in the
foreground on a free loopback port, pinned to one CPU, and returns its process and port.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from bench.anchors import start_on_free_port, stop  # noqa: F401 - stop: the anchor's own


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


def start_haproxy(upstream_port: int, cpu: int | None, folder: Path,
                  attempts: int = 3) -> tuple[subprocess.Popen, int]:
    """HAProxy relaying a free loopback port to `upstream_port`, pinned to `cpu`.

    The port is picked free and then bound by HAProxy; if another process takes it in
    between, HAProxy exits and another port is tried.
    """
    binary = ensure_haproxy()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "haproxy.cfg"

    def command(port: int) -> list[str]:
        path.write_text(config(port, upstream_port))
        return [binary, "-f", str(path), "-db"]  # -db: foreground, so stopping it is this PID

    return start_on_free_port("haproxy", command, folder / "haproxy.log", cpu, attempts)
