"""End of stream on the wire, as Toxiproxy's link.go: each direction is its own link.

When a link's source ends, its toxic chain drains and only then does that link close its own
destination; the other direction goes on until its own source ends.
"""

from __future__ import annotations

import socket
import time

from tests.chaos.wire import byte_counts


def add_toxic(api, proxy, toxic_type, stream="downstream", **attributes):
    response = api.post(f"/proxies/{proxy}/toxics", json={
        "type": toxic_type, "stream": stream, "attributes": attributes})
    assert response.status_code == 200, response.text
    return response.json()


def new_proxy(api, name, upstream):
    response = api.post("/proxies", json={"name": name, "listen": "127.0.0.1:0",
                                          "upstream": upstream})
    assert response.status_code == 201, response.text
    return response.json()


def test_client_half_close_still_delivers_what_downstream_latency_holds(api, proxy, connect,
                                                                        io, wait):
    """link.go `ToxicLink.read`/`ToxicLink.write`: the client's EOF ends only the upstream link,
    which closes only the upstream socket; the downstream link's chain (toxics/latency.go
    `LatencyToxic.Pipe`) still delivers what it holds before that link closes the client."""
    add_toxic(api, "echo", "latency", latency=300)
    client = connect(proxy["listen"])
    client.sendall(b"abc")
    wait(lambda: byte_counts(api, "echo")["received", "downstream"] == 3)  # echoed, held
    client.shutdown(socket.SHUT_WR)
    client.settimeout(3)
    assert io.read_until_closed(client) == b"abc"


def test_client_half_close_waits_for_a_downstream_slow_close(api, proxy, connect, io):
    """toxics/slow_close.go `SlowCloseToxic.Pipe` holds the end of the downstream link's stream
    for its delay; link.go `ToxicLink.write` closes the client only after it."""
    add_toxic(api, "echo", "slow_close", delay=400)
    client = connect(proxy["listen"])
    assert io.rtt(client, b"abc") < 1
    start = time.monotonic()
    client.shutdown(socket.SHUT_WR)
    client.settimeout(3)
    assert io.read_until_closed(client) == b""
    assert time.monotonic() - start >= 0.39


def test_upstream_socket_closes_after_the_upstream_chain_drains(api, recorder, connect, io):
    """link.go `ToxicLink.write`: the upstream link closes the upstream socket once its chain
    (a latency toxic holding the client's last bytes) has delivered them, and the client's
    socket closes only after that, when the downstream link ends."""
    proxy = new_proxy(api, "rec", recorder.address)
    add_toxic(api, "rec", "latency", "upstream", latency=300)
    client = connect(proxy["listen"])
    start = time.monotonic()
    client.sendall(b"abc")
    client.shutdown(socket.SHUT_WR)
    client.settimeout(3)
    assert io.read_until_closed(client) == b""
    closed_at = time.monotonic()
    assert recorder.connections[0].eof.wait(3)
    assert bytes(recorder.connections[0].data) == b"abc"
    assert recorder.connections[0].eof_at - start >= 0.29
    assert closed_at - start >= 0.29


def test_upstream_half_close_still_delivers_what_upstream_latency_holds(api, recorder, connect,
                                                                        io, wait):
    """link.go: the upstream's EOF ends the downstream link, which closes the client; the
    upstream link then reads an error from the closed client socket, drains its chain (the
    latency toxic still delivers the client's bytes) and only then closes the upstream."""
    proxy = new_proxy(api, "rec", recorder.address)
    add_toxic(api, "rec", "latency", "upstream", latency=300)
    client = connect(proxy["listen"])
    client.sendall(b"abc")
    wait(lambda: byte_counts(api, "rec")["received", "upstream"] == 3)  # held by the toxic
    wait(lambda: recorder.connections)
    upstream = recorder.connections[0]
    upstream.sock.sendall(b"bye")
    upstream.sock.shutdown(socket.SHUT_WR)
    client.settimeout(3)
    assert io.read_until_closed(client) == b"bye"
    assert upstream.eof.wait(3)
    assert bytes(upstream.data) == b"abc"


def test_client_half_close_with_no_toxics_closes_both_ends_in_turn(api, proxy, connect, echo,
                                                                   wait):
    """link.go with an empty chain: the upstream link closes the upstream socket at the client's
    EOF; the downstream link then reads an error from it and closes the client."""
    client = connect(proxy["listen"])
    client.sendall(b"abc")
    assert client.recv(3) == b"abc"
    client.shutdown(socket.SHUT_WR)
    client.settimeout(3)
    assert client.recv(10) == b""
    wait(echo.peer_closed.is_set)
    wait(lambda: api.get("/proxies/echo").ok and not _active(api, "echo"))


def _active(api, proxy: str) -> int:
    for line in api.get("/metrics").text.splitlines():
        if line.startswith("toxiproxy_proxy_active_connections") and f'proxy="{proxy}"' in line:
            return int(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no active_connections sample for {proxy}")
