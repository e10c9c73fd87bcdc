"""`python healthcheck.py [URL]`: exit 0 when this container's process answers `/healthz`.

Without a URL (the image's HEALTHCHECK, whatever the role) it tries `/healthz` on each TCP
port the container listens on, read from /proc/net/tcp; compose passes the exact URL.
"""

from __future__ import annotations

import http.client
import sys
import urllib.request
from pathlib import Path

LISTEN = "0A"  # TCP state LISTEN in /proc/net/tcp


def listening_ports() -> list[int]:
    """The TCP ports something in this network namespace listens on."""
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == LISTEN:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return sorted(ports)


def healthy(url: str) -> bool:
    """Whether `url` answers 2xx within 3 seconds."""
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - local probe
            return 200 <= response.status < 300
    except (OSError, http.client.HTTPException, ValueError):  # refused, not HTTP, garbage
        return False


def main(argv: list[str]) -> int:
    urls = argv[1:] or [f"http://127.0.0.1:{port}/healthz" for port in listening_ports()]
    return 0 if any(healthy(url) for url in urls) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
