"""`host:port` addresses as Toxiproxy (Go's net package) resolves, binds and prints them."""

from __future__ import annotations

import asyncio
import errno
import os
import socket


class ProxyError(Exception):
    """A runtime failure (bind, resolve) the API answers with 500 and the OS error text."""


# Hosts Go's net.Listen treats as "every interface": it binds one dual-stack IPv6 socket.
WILDCARD_HOSTS = ("", "0.0.0.0", "::")

LISTEN_BACKLOG = 1024


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
    """`listen` as Go's `net.ResolveTCPAddr(...).String()` gives it.

    `localhost:P` → `127.0.0.1:P` (IPv4 preferred); `:P` stays `:P` and `""` is `:0` (every
    interface, a free port); a literal address is kept.
    """
    if not listen:
        return ":0"
    try:
        host, port = split_host_port(listen)
    except ValueError as exc:
        raise ProxyError(f"listen tcp {listen}: {exc}") from None
    if host in WILDCARD_HOSTS:
        return format_address(host, port)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )
    except socket.gaierror as exc:
        raise ProxyError(f"listen tcp {listen}: lookup {host}: {exc.strerror}") from None
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return format_address(infos[0][4][0], port)


def listening_socket(address: str) -> socket.socket:
    """A non-blocking listening socket on a resolved address, as Go's `net.Listen` makes it.

    A wildcard host is one dual-stack IPv6 socket (IPv4 clients included), reported as
    `[::]:P`; without IPv6 it falls back to IPv4. A failure raises `ProxyError` with Go's
    text: `listen tcp <address>: bind: address already in use`.
    """
    host, port = split_host_port(address)
    if host in WILDCARD_HOSTS:
        try:
            return _bound(socket.AF_INET6, "::", port, dual_stack=True)
        except OSError as exc:
            if exc.errno not in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL):
                raise _bind_error(address, exc) from None
        host = "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return _bound(family, host, port, dual_stack=False)
    except OSError as exc:
        raise _bind_error(address, exc) from None


def _bound(family: int, host: str, port: int, dual_stack: bool) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if dual_stack:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Go's listeners do
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class BindError(ProxyError):
    """The listen address could not be bound; `errno` says why (EADDRINUSE is retried)."""

    def __init__(self, message: str, errno_: int | None) -> None:
        super().__init__(message)
        self.errno = errno_


def _bind_error(address: str, exc: OSError) -> BindError:
    reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
    return BindError(f"listen tcp {address}: bind: {reason}", exc.errno)
