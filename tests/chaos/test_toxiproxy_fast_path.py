"""The relay's no-toxic fast path: the properties its throughput and latency rest on."""

from __future__ import annotations

import importlib.util
import socket

import pytest


def _live_sockets(server, name: str) -> list[tuple[str, socket.socket]]:
    def peek():
        proxy = server.server.registry.proxies[name]
        out = []
        for connection in proxy.connections:
            for side in (connection.client, connection.upstream_side):
                if side is not None and side.transport is not None:
                    out.append((type(side).__name__, side.transport.get_extra_info("socket")))
        return [(kind, sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                for kind, sock in out]

    return server.call(peek)


@pytest.mark.skipif(importlib.util.find_spec("uvloop") is None, reason="uvloop not installed")
def test_uvloop_is_used_when_installed(server):
    assert type(server.loop).__module__.startswith("uvloop")


def test_both_sockets_have_tcp_nodelay(server, proxy, connect, io, wait):
    client = connect(proxy["listen"])
    client.sendall(b"ping")
    assert io.recv_exactly(client, 4) == b"ping"
    wait(lambda: len(_live_sockets(server, proxy["name"])) == 2)
    options = dict(_live_sockets(server, proxy["name"]))
    assert options == {"ClientSide": 1, "UpstreamSide": 1}


def test_no_toxic_means_no_stage_on_either_link(server, proxy, connect, io):
    client = connect(proxy["listen"])
    client.sendall(b"ping")
    assert io.recv_exactly(client, 4) == b"ping"

    def heads():
        live = server.server.registry.proxies[proxy["name"]].connections
        return [(c.upstream.head, c.downstream.head) for c in live]

    assert server.call(heads) == [(None, None)]
