"""Toxics on the wire where Toxiproxy's own code decides the answer (toxics/*.go)."""

from __future__ import annotations

import os
import threading

import pytest

from chaos.toxiproxy.stages import Chunk
from tests.chaos.wire import byte_counts


def add_toxic(api, proxy, body):
    response = api.post(f"/proxies/{proxy}/toxics", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def new_proxy(api, name, upstream):
    response = api.post("/proxies", json={"name": name, "listen": "127.0.0.1:0",
                                          "upstream": upstream})
    assert response.status_code == 201, response.text
    return response.json()


# -- latency reads ahead -------------------------------------------------------------------
def test_latency_reads_a_whole_delay_of_traffic_ahead(api, proxy, connect, io, wait):
    """toxics/latency.go `LatencyToxic.GetBufferSize` (1024 chunks) and link.go
    `NewToxicLink`: Toxiproxy reads 4 MB into a latency toxic's channel while the first chunk
    is still being held, so the delay does not cap throughput."""
    add_toxic(api, "echo", {"type": "latency", "attributes": {"latency": 60_000}})
    client = connect(proxy["listen"])
    payload = os.urandom(4 * 1024 * 1024)
    threading.Thread(target=client.sendall, args=(payload,), daemon=True).start()
    # All of it read by the proxy while the toxic still holds the first chunk; not a speed
    # bound: without read-ahead the proxy stops reading at a fraction of it and waits a minute.
    counts = wait(lambda: (c := byte_counts(api, "echo"))[("received", "downstream")]
                  == len(payload) and c, timeout=20)
    assert counts["sent", "downstream"] == 0
    api.delete("/proxies/echo/toxics/latency_downstream")
    client.settimeout(10)
    assert io.recv_exactly(client, len(payload)) == payload


# -- stream names ----------------------------------------------------------------------------
@pytest.mark.parametrize("stream", ["Upstream", "UPSTREAM"])
def test_stream_is_parsed_case_insensitively(api, recorder, connect, wait, stream):
    """stream/direction.go `ParseDirection` lower-cases the name; toxic_collection.go
    `AddToxicJson` keeps the stream as sent and names the toxic `<type>_<stream as sent>`."""
    proxy = new_proxy(api, "rec", recorder.address)
    toxic = add_toxic(api, "rec", {"type": "limit_data", "stream": stream,
                                   "attributes": {"bytes": 3}})
    assert toxic["stream"] == stream and toxic["name"] == f"limit_data_{stream}"
    add_toxic(api, "rec", {"type": "noop", "name": "after"})  # downstream, listed after
    assert [t["name"] for t in api.get("/proxies/rec/toxics").json()] == [toxic["name"], "after"]
    client = connect(proxy["listen"])
    client.sendall(b"0123456789")
    wait(lambda: recorder.connections)
    assert recorder.connections[0].eof.wait(3)
    assert bytes(recorder.connections[0].data) == b"012"  # the upstream direction was cut


def test_downstream_in_capitals_acts_downstream(api, proxy, connect, io):
    """stream/direction.go `ParseDirection`: "DownStream" is downstream."""
    add_toxic(api, "echo", {"type": "limit_data", "stream": "DownStream",
                            "attributes": {"bytes": 2}})
    client = connect(proxy["listen"])
    client.sendall(b"abcd")
    client.settimeout(3)
    assert io.read_until_closed(client) == b"ab"


# -- bandwidth without a rate ------------------------------------------------------------------
@pytest.mark.parametrize("attributes", [{}, {"rate": 0}, {"rate": -5}])
def test_bandwidth_without_a_positive_rate_stalls_until_removed(api, proxy, connect, io, wait,
                                                                attributes):
    """toxics/bandwidth.go `BandwidthToxic.Pipe`: with rate 0 it keeps waiting 100 ms and
    sending empty slices, so no byte passes until the toxic is removed; then the held chunk is
    written out whole (`WriteOutput` on interrupt). A negative rate is held the same way here
    (Toxiproxy's slice bound would panic on it)."""
    toxic = add_toxic(api, "echo", {"type": "bandwidth", "attributes": attributes})
    assert toxic["attributes"] == {"rate": attributes.get("rate", 0)}
    client = connect(proxy["listen"])
    client.sendall(b"stalled")
    wait(lambda: byte_counts(api, "echo")["received", "downstream"] == 7)
    client.settimeout(0.3)
    with pytest.raises(TimeoutError):
        client.recv(10)
    assert byte_counts(api, "echo")["sent", "downstream"] == 0
    api.delete(f"/proxies/echo/toxics/{toxic['name']}")
    client.settimeout(3)
    assert io.recv_exactly(client, 7) == b"stalled"


def test_bandwidth_update_to_rate_zero_is_accepted(api, proxy):
    """toxic_collection.go `UpdateToxicJson` decodes any integer rate; nothing is refused."""
    add_toxic(api, "echo", {"type": "bandwidth", "attributes": {"rate": 10}})
    response = api.patch("/proxies/echo/toxics/bandwidth_downstream",
                         json={"attributes": {"rate": 0}})
    assert response.status_code == 200
    assert response.json()["attributes"] == {"rate": 0}


# -- toxics that must not hold the event loop ------------------------------------------------
def test_slicer_without_delay_lets_the_proxy_serve_between_pieces(server, api, proxy, connect,
                                                                  io):
    """toxics/slicer.go `SlicerToxic.Pipe`: between two pieces it waits on `time.After(delay)`,
    which lets Go schedule everything else even at delay 0. Here a probe on the server's event
    loop must find the slicer part-way through a chunk, which only happens if it yields."""
    add_toxic(api, "echo", {"type": "slicer", "stream": "upstream",
                            "attributes": {"average_size": 1, "delay": 0}})
    client = connect(proxy["listen"])
    payload = os.urandom(64_000)  # 64 000 one-byte pieces
    seen_mid_chunk = []
    stop = threading.Event()

    def probe() -> None:
        link_stages = [c.upstream.stages for c in server.server.registry.proxies["echo"]
                       .connections]
        # Part-way through a chunk the slicer holds the rest of it as a Chunk.
        if any(isinstance(stage.held, Chunk) for stages in link_stages for stage in stages):
            seen_mid_chunk.append(True)
        if not stop.is_set():
            server.loop.call_soon(probe)

    server.loop.call_soon_threadsafe(probe)
    try:
        threading.Thread(target=client.sendall, args=(payload,), daemon=True).start()
        client.settimeout(30)
        assert io.recv_exactly(client, len(payload)) == payload
    finally:
        stop.set()
    assert seen_mid_chunk, "the slicer cut whole chunks without ever yielding"


def test_bandwidth_removal_mid_chunk_delivers_the_rest_intact(api, proxy, connect, io, wait):
    """toxics/bandwidth.go `BandwidthToxic.Pipe`: on interrupt it writes out the rest of the
    chunk it is slicing (`WriteOutput(p)`), so nothing is lost or repeated."""
    add_toxic(api, "echo", {"type": "bandwidth", "attributes": {"rate": 100}})  # 10 kB / 100 ms
    client = connect(proxy["listen"])
    payload = os.urandom(200_000)
    client.sendall(payload)
    first = io.recv_exactly(client, 20_000)  # at least two slices went out
    api.delete("/proxies/echo/toxics/bandwidth_downstream")
    client.settimeout(5)
    assert first + io.recv_exactly(client, len(payload) - len(first)) == payload


def test_reset_peer_counts_the_chunk_it_drops(server, api, proxy, connect, wait):
    """toxics/reset_peer.go `ResetToxic.Pipe` consumes the first chunk and sends nothing on;
    link.go counts it as received, never as sent. The chunk is no longer held either, so the
    link's flow control does not count it as data still in the chain."""
    add_toxic(api, "echo", {"type": "reset_peer", "stream": "upstream",
                            "attributes": {"timeout": 30_000}})
    client = connect(proxy["listen"])
    client.sendall(b"boom")
    wait(lambda: byte_counts(api, "echo")["received", "upstream"] == 4)
    assert byte_counts(api, "echo")["sent", "upstream"] == 0

    def held() -> list[int]:
        return [c.upstream.buffered for c in server.server.registry.proxies["echo"].connections]

    assert wait(lambda: server.call(held) == [0])
