"""A small real stack for the edge attacks: auth on its development server, product under
gunicorn (as the local stack runs it), and the gateway as `python -m gateway` (Granian and its
front) in front of both, every process on a free loopback port."""

from __future__ import annotations

import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from local_stack.commands import service_command
from tests.support.processes import RunningProcess, free_port, start_service

# Nothing listens here: cart and order are not part of these attacks.
CLOSED = "http://127.0.0.1:9"


@dataclass
class EdgeStack:
    """The processes and where they answer."""

    auth: RunningProcess
    product: RunningProcess
    gateway: RunningProcess
    admin_url: str

    @property
    def targets(self) -> dict[str, str]:
        """Every server a hostile request is tried on: the gateway, and each service directly."""
        return {"gateway": self.gateway.url, "auth": self.auth.url, "product": self.product.url}

    def stop(self) -> None:
        """Stop every process this stack started."""
        for process in (self.gateway, self.product, self.auth):
            process.stop()


def start_product(env: dict[str, str], tmp_path: Path) -> RunningProcess:
    """product under gunicorn (gthread), migrating its fresh database at start."""
    port = free_port()
    process = RunningProcess(
        service_command("product", port),
        {**env, "PRODUCT_PORT": str(port), "PRODUCT_AUTO_MIGRATE": "on"},
        tmp_path / f"product-{port}.log", f"http://127.0.0.1:{port}")
    process.wait_healthy()
    return process


def start_gateway(env: dict[str, str], tmp_path: Path, auth: str, product: str,
                  **settings: str) -> tuple[RunningProcess, str]:
    """`python -m gateway` in front of `auth` and `product`; (process, admin URL)."""
    port, admin_port = free_port(), free_port()
    gateway_env = {
        **env,
        "GATEWAY_UPSTREAM_AUTH": auth, "GATEWAY_UPSTREAM_PRODUCT": product,
        "GATEWAY_UPSTREAM_CART": CLOSED, "GATEWAY_UPSTREAM_ORDER": CLOSED,
        "GATEWAY_REGISTRY_FILE": "", "GATEWAY_RESILIENCE": "on",
        **{f"GATEWAY_{name.upper()}": value for name, value in settings.items()},
    }
    process = RunningProcess(
        [sys.executable, "-m", "gateway", "--host", "127.0.0.1", "--port", str(port),
         "--admin-port", str(admin_port)],
        gateway_env, tmp_path / f"gateway-{port}.log", f"http://127.0.0.1:{port}")
    process.wait_healthy()
    return process, f"http://127.0.0.1:{admin_port}"


def start_edge_stack(env: dict[str, str], tmp_path: Path, **gateway_settings: str) -> EdgeStack:
    """auth, product and the gateway; stop() stops them."""
    auth = start_service("auth", {**env, "AUTH_PASSWORD_HASH_METHOD": "scrypt:1024:8:1"}, tmp_path)
    try:
        product = start_product(env, tmp_path)
    except Exception:
        auth.stop()
        raise
    try:
        gateway, admin = start_gateway(env, tmp_path, auth.url, product.url, **gateway_settings)
    except Exception:
        product.stop()
        auth.stop()
        raise
    return EdgeStack(auth, product, gateway, admin)


def raw_exchange(url: str, request: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes to the server at `url` and read its answer until it closes or pauses."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks):
                    sock.settimeout(0.5)  # the head is in: take what follows, then stop
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


def status_of(answer: bytes) -> int:
    """The status code of a raw HTTP answer (0 when there is none)."""
    parts = answer.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
