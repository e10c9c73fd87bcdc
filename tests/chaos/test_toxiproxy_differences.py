"""Where the embedded proxy differs from Toxiproxy on purpose (docs/FAULT_PROXY.md)."""

from __future__ import annotations

import time

import pytest

from tests.chaos.wire import byte_counts


def add_toxic(api, body):
    response = api.post("/proxies/echo/toxics", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_reset_peer_added_to_a_live_connection_resets_it(api, proxy, connect, io):
    """Toxiproxy sets SO_LINGER 0 only for links that start with the toxic (link.go
    `ToxicLink.Start`); here a reset_peer added to open traffic still ends it with a RST."""
    client = connect(proxy["listen"])
    io.rtt(client)
    add_toxic(api, {"type": "reset_peer", "attributes": {"timeout": 50}})
    client.sendall(b"boom")
    with pytest.raises(ConnectionResetError):
        client.recv(10)
        client.recv(10)  # a FIN would read b"" here; only a reset raises


def test_toxicity_is_not_drawn_again_when_only_attributes_change(api, proxy, connect, io):
    """Toxiproxy's `ToxicStub.Run` draws toxicity at every update; here an update that keeps
    the toxicity keeps which connections the toxic acts on."""
    add_toxic(api, {"type": "latency", "toxicity": 0.5, "attributes": {"latency": 300}})
    clients = [connect(proxy["listen"]) for _ in range(10)]
    before = [io.rtt(client) >= 0.295 for client in clients]
    assert set(before) == {True, False}  # seeded draws: both occur
    api.patch("/proxies/echo/toxics/latency_downstream", json={"attributes": {"latency": 350}})
    after = [io.rtt(client) >= 0.295 for client in clients]
    assert after == before


def test_an_updated_latency_applies_to_the_chunk_it_holds(api, proxy, connect, io, wait):
    """Toxiproxy's `LatencyToxic.Pipe` releases the held chunk at once when interrupted by an
    update; here the new latency applies to it, counted from when it was read."""
    add_toxic(api, {"type": "latency", "attributes": {"latency": 30_000}})
    client = connect(proxy["listen"])
    sent_at = time.monotonic()
    client.sendall(b"held")
    wait(lambda: byte_counts(api, "echo")["received", "downstream"] == 4)
    api.patch("/proxies/echo/toxics/latency_downstream", json={"attributes": {"latency": 400}})
    client.settimeout(5)
    assert io.recv_exactly(client, 4) == b"held"
    assert time.monotonic() - sent_at >= 0.39


def test_removing_a_fired_reset_peer_resets_at_once(api, proxy, connect, wait):
    """Toxiproxy's `ResetToxic.Pipe` ignores interrupts while it waits, so the DELETE blocks
    until its timeout; here the API answers at once and the connection is reset."""
    add_toxic(api, {"type": "reset_peer", "stream": "upstream", "attributes": {"timeout": 60_000}})
    client = connect(proxy["listen"])
    client.sendall(b"boom")
    wait(lambda: byte_counts(api, "echo")["received", "upstream"] == 4)
    assert api.delete("/proxies/echo/toxics/reset_peer_upstream", timeout=5).status_code == 204
    client.settimeout(5)
    with pytest.raises(ConnectionResetError):
        client.recv(10)
        client.recv(10)


def test_a_negative_bandwidth_rate_holds_data_instead_of_crashing(api, proxy, connect, io, wait):
    """Toxiproxy's `BandwidthToxic.Pipe` slices `p.Data[:t.Rate*100]`, which panics for a
    negative rate; here it holds the data like rate 0, and the server keeps serving."""
    add_toxic(api, {"type": "bandwidth", "attributes": {"rate": -1}})
    client = connect(proxy["listen"])
    client.sendall(b"kept")
    wait(lambda: byte_counts(api, "echo")["received", "downstream"] == 4)
    assert api.get("/version").status_code == 200
    api.patch("/proxies/echo/toxics/bandwidth_downstream", json={"attributes": {"rate": 100}})
    client.settimeout(5)
    assert io.recv_exactly(client, 4) == b"kept"
