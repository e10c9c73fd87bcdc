"""`host:port` addresses as Toxiproxy (Go's net package) writes and resolves them."""

from __future__ import annotations

import asyncio
import socket


class ProxyError(Exception):
    """A runtime failure (bind, resolve) the API answers with 500 and the OS error text."""


def split_host_port(address: str) -> tuple[str, int]:
    """`host:port` (IPv6 hosts in brackets) as a pair; ValueError when malformed."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"address {address!r}: missing port")
    return host.strip("[]"), int(port)


def format_address(host: str, port: int) -> str:
    """`host:port`, with IPv6 hosts in brackets, as Go prints a TCP address."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def resolve_listen(listen: str) -> str:
    """The address `listen` resolves to (`localhost:P` → `127.0.0.1:P`), IPv4 preferred."""
    try:
        host, port = split_host_port(listen)
    except ValueError as exc:
        raise ProxyError(f"listen tcp {listen}: {exc}") from None
    if not host:
        return format_address("0.0.0.0", port)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )
    except socket.gaierror as exc:
        raise ProxyError(f"listen tcp {listen}: lookup {host}: {exc.strerror}") from None
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return format_address(infos[0][4][0], port)
