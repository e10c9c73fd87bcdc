"""Relaying and toxics with real sockets on loopback."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest


def add_toxic(api, toxic_type, stream="downstream", toxicity=1.0, name=None, **attributes):
    body = {"type": toxic_type, "stream": stream, "toxicity": toxicity,
            "attributes": attributes}
    if name:
        body["name"] = name
    response = api.post("/proxies/echo/toxics", json=body)
    assert response.status_code == 200, response.text
    return response.json()


# -- relaying ------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [1, 100, 64 * 1024, 1024 * 1024])
def test_bytes_pass_intact(proxy, connect, io, size):
    client = connect(proxy["listen"])
    payload = os.urandom(size)
    threading.Thread(target=client.sendall, args=(payload,), daemon=True).start()
    assert io.recv_exactly(client, size) == payload


def test_many_chunks_in_order(proxy, connect, io):
    client = connect(proxy["listen"])
    chunks = [f"chunk-{i:05d};".encode() for i in range(2000)]
    for chunk in chunks:
        client.sendall(chunk)
    assert io.recv_exactly(client, sum(map(len, chunks))) == b"".join(chunks)


def test_unreachable_upstream_closes_the_client_at_once(api, connect):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]  # bound, never listening: connections are refused
        proxy = api.post("/proxies", json={"name": "dead", "listen": "127.0.0.1:0",
                                           "upstream": f"127.0.0.1:{dead}"}).json()
        client = connect(proxy["listen"], timeout=2)
        start = time.monotonic()
        assert client.recv(10) == b""
        assert time.monotonic() - start < 1


def test_no_half_close(proxy, connect, echo, wait):
    client = connect(proxy["listen"])
    client.sendall(b"abc")
    assert client.recv(3) == b"abc"
    client.shutdown(socket.SHUT_WR)
    client.settimeout(3)
    assert client.recv(10) == b""  # the proxy closed both ways
    wait(echo.peer_closed.is_set)


def test_upstream_closing_closes_the_client_after_its_data(api, hangup, connect, io):
    proxy = api.post("/proxies", json={"name": "bye", "listen": "127.0.0.1:0",
                                       "upstream": hangup.address}).json()
    assert io.read_until_closed(connect(proxy["listen"])) == b"bye"


def test_disabling_closes_connections_and_refuses_new_ones(api, proxy, connect, io):
    client = connect(proxy["listen"])
    io.rtt(client)
    api.post("/proxies/echo", json={"enabled": False})
    client.settimeout(3)
    assert io.is_closed(client)
    with pytest.raises(ConnectionRefusedError):
        connect(proxy["listen"])
    api.post("/proxies/echo", json={"enabled": True})
    io.rtt(connect(proxy["listen"]))


def test_deleting_closes_connections(api, proxy, connect, io):
    client = connect(proxy["listen"])
    io.rtt(client)
    api.delete("/proxies/echo")
    assert io.is_closed(client)


# -- latency -------------------------------------------------------------------------------
@pytest.mark.parametrize("stream", ["upstream", "downstream"])
def test_latency_is_added_in_each_direction(api, proxy, connect, io, stream):
    client = connect(proxy["listen"])
    base = min(io.rtt(client) for _ in range(3))
    add_toxic(api, "latency", stream, latency=150)
    rtts = [io.rtt(client) for _ in range(3)]
    for rtt in rtts:
        assert 0.145 <= rtt - base < 0.3, rtts


def test_two_latency_toxics_add_up(api, proxy, connect, io):
    add_toxic(api, "latency", name="a", latency=100)
    add_toxic(api, "latency", name="b", latency=100)
    rtt = io.rtt(connect(proxy["listen"]))
    assert 0.195 <= rtt < 0.4


def test_latency_does_not_cap_throughput(api, proxy, connect, io):
    add_toxic(api, "latency", latency=100)
    client = connect(proxy["listen"])
    payload = os.urandom(2 * 1024 * 1024)
    start = time.monotonic()
    threading.Thread(target=client.sendall, args=(payload,), daemon=True).start()
    assert io.recv_exactly(client, len(payload)) == payload
    assert time.monotonic() - start < 1.5  # pipelined: about one latency, not one per chunk


def test_jitter_stays_within_bounds(api, proxy, connect, io):
    add_toxic(api, "latency", latency=100, jitter=50)
    client = connect(proxy["listen"])
    rtts = [io.rtt(client) for _ in range(6)]
    assert all(0.045 <= rtt < 0.3 for rtt in rtts), rtts


def test_toxic_added_to_an_open_connection_acts_at_once(api, proxy, connect, io):
    client = connect(proxy["listen"])
    assert io.rtt(client) < 0.1
    add_toxic(api, "latency", latency=200)
    assert io.rtt(client) >= 0.195
    api.delete("/proxies/echo/toxics/latency_downstream")
    assert io.rtt(client) < 0.1


@pytest.mark.parametrize("toxicity, slow", [(0.0, False), (1.0, True)])
def test_toxicity_zero_and_one(api, proxy, connect, io, toxicity, slow):
    add_toxic(api, "latency", toxicity=toxicity, latency=200)
    for _ in range(3):
        assert (io.rtt(connect(proxy["listen"])) >= 0.195) is slow


def test_toxicity_is_drawn_per_connection_not_per_chunk(api, proxy, connect, io):
    add_toxic(api, "latency", toxicity=0.5, latency=100)
    outcomes = set()
    for _ in range(12):
        client = connect(proxy["listen"])
        slow = [io.rtt(client) >= 0.095 for _ in range(3)]
        assert len(set(slow)) == 1, slow  # the same for every chunk of a connection
        outcomes.add(slow[0])
    assert outcomes == {True, False}  # 12 draws at 0.5 (seeded): both occur


# -- removal under traffic ----------------------------------------------------------------
def test_removal_delivers_held_data_in_order(api, server, proxy, connect, io, wait):
    client = connect(proxy["listen"])
    add_toxic(api, "latency", latency=5000)
    client.sendall(b"held-1;held-2")
    echo_proxy = server.server.registry.proxies["echo"]
    wait(lambda: server.call(lambda: echo_proxy.byte_counts()["downstream"][0]) == 13)
    api.delete("/proxies/echo/toxics/latency_downstream")
    client.settimeout(2)
    assert io.recv_exactly(client, 13) == b"held-1;held-2"


def test_add_and_remove_in_a_loop_under_traffic_loses_nothing(api, proxy, connect, io):
    client = connect(proxy["listen"])
    payload = b"".join(i.to_bytes(4, "big") for i in range(150_000))  # 600 kB, all distinct
    received = bytearray()

    def read() -> None:
        received.extend(io.recv_exactly(client, len(payload)))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def write() -> None:
        for offset in range(0, len(payload), 4096):
            client.sendall(payload[offset:offset + 4096])
            time.sleep(0.0005)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    toxics = [("latency", {"latency": 3, "jitter": 2}), ("slicer", {"average_size": 500,
              "size_variation": 100, "delay": 50}), ("bandwidth", {"rate": 50_000}),
              ("noop", {})]
    i = 0
    while writer.is_alive():
        toxic_type, attributes = toxics[i % len(toxics)]
        stream = "upstream" if i % 2 else "downstream"
        add_toxic(api, toxic_type, stream, **attributes)
        api.delete(f"/proxies/echo/toxics/{toxic_type}_{stream}")
        i += 1
    api.post("/reset")
    reader.join(10)
    assert i > 5
    assert bytes(received) == payload


# -- the other toxics ---------------------------------------------------------------------
def test_bandwidth_paces_to_the_rate(api, proxy, connect, io):
    add_toxic(api, "bandwidth", rate=200)  # 200 KB/s
    client = connect(proxy["listen"])
    payload = os.urandom(100_000)
    start = time.monotonic()
    threading.Thread(target=client.sendall, args=(payload,), daemon=True).start()
    assert io.recv_exactly(client, len(payload)) == payload
    assert 0.4 <= time.monotonic() - start < 1.2  # 0.5 s at the rate


def test_slow_close_delays_the_close(api, hangup, connect, io):
    proxy = api.post("/proxies", json={"name": "echo", "listen": "127.0.0.1:0",
                                       "upstream": hangup.address}).json()
    add_toxic(api, "slow_close", delay=300)
    start = time.monotonic()
    assert io.read_until_closed(connect(proxy["listen"])) == b"bye"
    assert time.monotonic() - start >= 0.29


def test_timeout_zero_holds_until_removed_then_closes(api, proxy, connect, io):
    add_toxic(api, "timeout", timeout=0)
    client = connect(proxy["listen"])
    client.sendall(b"lost")
    client.settimeout(0.3)
    with pytest.raises(TimeoutError):
        client.recv(10)
    api.delete("/proxies/echo/toxics/timeout_downstream")
    client.settimeout(3)
    assert io.is_closed(client)


def test_timeout_closes_after_its_time(api, proxy, connect):
    add_toxic(api, "timeout", timeout=300)
    client = connect(proxy["listen"])
    start = time.monotonic()
    client.sendall(b"lost")
    client.settimeout(3)
    assert client.recv(10) == b""
    assert 0.28 <= time.monotonic() - start < 1.5


def test_reset_clears_a_timeout_and_closes_what_it_held(api, proxy, connect, io):
    client = connect(proxy["listen"])
    io.rtt(client)  # the proxy has accepted this connection before the toxic and the reset
    add_toxic(api, "timeout", timeout=0, stream="upstream")
    client.sendall(b"x")
    api.post("/reset")
    client.settimeout(3)
    assert io.is_closed(client)


@pytest.mark.parametrize("stream", ["upstream", "downstream"])
def test_reset_peer_resets_with_rst(api, proxy, connect, stream):
    add_toxic(api, "reset_peer", stream, timeout=100)
    client = connect(proxy["listen"])
    start = time.monotonic()
    client.sendall(b"boom")
    with pytest.raises(ConnectionResetError):
        client.recv(10)
        client.recv(10)  # a FIN would give b"" here; only a reset raises
    assert time.monotonic() - start >= 0.095


def test_slicer_cuts_into_pieces(api, proxy, connect, io):
    add_toxic(api, "slicer", average_size=100, size_variation=20, delay=3000)
    client = connect(proxy["listen"])
    payload = os.urandom(4000)
    client.sendall(payload)
    pieces = []
    while sum(map(len, pieces)) < len(payload):
        pieces.append(client.recv(65536))
    assert b"".join(pieces) == payload
    assert len(pieces) >= 10  # about 40 pieces 3 ms apart; reads may merge a few
    assert max(map(len, pieces)) < 4000


def test_limit_data_truncates_then_closes(api, proxy, connect, io):
    add_toxic(api, "limit_data", bytes=100)
    client = connect(proxy["listen"])
    client.sendall(b"a" * 60)
    assert io.recv_exactly(client, 60) == b"a" * 60
    client.sendall(b"b" * 60)
    assert io.read_until_closed(client) == b"b" * 40


def test_noop_passes_data(api, proxy, connect, io):
    add_toxic(api, "noop", stream="upstream")
    client = connect(proxy["listen"])
    assert io.rtt(client, b"plain") < 0.2
