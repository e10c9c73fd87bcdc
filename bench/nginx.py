"""nginx (Debian's package) as a reverse proxy: the yardstick for the gateway.

`ensure_nginx()` installs it with apt-get when it is missing (as root) or says how to;
`start_nginx(upstream_port, cpu, folder)` runs one nginx process (no master, one worker's
work in one process, so its CPU is one PID's) on a free loopback port in front of
`127.0.0.1:upstream_port`, with keep-alive connections to the upstream — what a production
reverse proxy does — pinned to one CPU, and returns its process and port.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from bench.anchors import start_on_free_port, stop  # noqa: F401 - stop: the anchor's own

NAME = "nginx"


class NginxMissing(RuntimeError):
    """nginx is not installed and could not be installed here."""


def _binary() -> str | None:
    return shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)


def ensure_nginx(log: object = print) -> str:
    """The path of `nginx`, installing Debian's package first when it is missing. (Debian's
    package would start a system nginx on port 80 unless policy-rc.d forbids it; the bench
    never uses that one: it runs its own, on a free port, with its own configuration.)"""
    found = _binary()
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise NginxMissing("nginx is not installed: run `sudo apt-get install -y nginx` "
                           "(Debian/Ubuntu) and start the benchmark again")
    if callable(log):
        log("  installing nginx (apt-get install -y nginx)")
    done = subprocess.run(["apt-get", "install", "-y", "-q", "nginx"], capture_output=True,
                          text=True, check=False,
                          env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    found = _binary()
    if done.returncode != 0 or not found:
        raise NginxMissing("`apt-get install -y nginx` failed: "
                           f"{(done.stderr or done.stdout).strip()[-300:]}")
    return found


def config(listen_port: int, upstream_port: int, folder: Path) -> str:
    """One process, no access log, HTTP/1.1 keep-alive to the upstream: the proxy and nothing
    else. Temporary files and the pid file stay in `folder`."""
    temp = {name: folder / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
    return "\n".join([
        "daemon off;",
        "master_process off;",
        "worker_processes 1;",
        f"pid {folder / 'nginx.pid'};",
        f"error_log {folder / 'nginx-error.log'} warn;",
        "events { worker_connections 1024; }",
        "http {",
        "  access_log off;",
        *(f"  {name}_temp_path {path};" for name, path in temp.items()),
        "  upstream product {",
        f"    server 127.0.0.1:{upstream_port};",
        "    keepalive 32;",
        "  }",
        "  server {",
        f"    listen 127.0.0.1:{listen_port};",
        "    location / {",
        "      proxy_pass http://product;",
        "      proxy_http_version 1.1;",
        '      proxy_set_header Connection "";',
        "    }",
        "  }",
        "}",
        "",
    ])


def start_nginx(upstream_port: int, cpu: int | None, folder: Path,
                attempts: int = 3) -> tuple[subprocess.Popen, int]:
    """nginx proxying a free loopback port to `upstream_port`, pinned to `cpu`.

    The port is picked free and then bound by nginx; if another process takes it in between,
    nginx exits and another port is tried.
    """
    binary = ensure_nginx()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "nginx.conf"

    def command(port: int) -> list[str]:
        path.write_text(config(port, upstream_port, folder))
        return [binary, "-p", str(folder), "-c", str(path)]

    return start_on_free_port("nginx", command, folder / "nginx.log", cpu, attempts)
