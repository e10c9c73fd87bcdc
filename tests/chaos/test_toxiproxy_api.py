"""The control API contract (TOXIPROXY.md), line by line, over raw HTTP."""

from __future__ import annotations

import json
import socket

import pytest

ALL_ATTRIBUTES = {
    "latency": {"latency": 0, "jitter": 0},
    "bandwidth": {"rate": 0},
    "slow_close": {"delay": 0},
    "timeout": {"timeout": 0},
    "reset_peer": {"timeout": 0},
    "slicer": {"average_size": 0, "size_variation": 0, "delay": 0},
    "limit_data": {"bytes": 0},
    "noop": {},
}
VALID = {"bandwidth": {"rate": 100}, "slicer": {"average_size": 10}}


def new_proxy(api, name="p", upstream="127.0.0.1:1", listen="127.0.0.1:0", **extra):
    return api.post("/proxies", json={"name": name, "listen": listen, "upstream": upstream,
                                      **extra})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- server --------------------------------------------------------------------------------
def test_version(api):
    response = api.get("/version")
    assert response.status_code == 200
    assert response.json() == {"version": "2.12.0"}


def test_every_response_carries_a_request_id(api):
    ids = {api.get(path).headers["X-Toxiproxy-Request-Id"] for path in ("/version", "/nope")}
    assert len(ids) == 2 and all(ids)


def test_browsers_are_refused(api):
    response = api.get("/proxies", headers={"User-Agent": "Mozilla/5.0 (X11; Linux)"})
    assert response.status_code == 403
    assert "X-Toxiproxy-Request-Id" in response.headers
    assert api.get("/proxies", headers={"User-Agent": "curl/8"}).status_code == 200


def test_keep_alive_serves_many_requests_on_one_connection(server):
    with socket.create_connection(("127.0.0.1", server.server.port), timeout=5) as sock:
        stream = sock.makefile("rb")
        for _ in range(3):
            sock.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
            assert stream.readline().startswith(b"HTTP/1.1 200 OK")
            length = 0
            while (line := stream.readline()) != b"\r\n":
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            assert json.loads(stream.read(length)) == {"version": "2.12.0"}


def test_empty_or_invalid_bodies_are_400(api):
    for path in ("/proxies", "/populate"):
        for body in (b"", b"{not json"):
            response = api.post(path, data=body)
            assert response.status_code == 400, (path, body)
            assert response.json()["error"].startswith("bad request body: ")
    assert new_proxy(api).status_code == 201
    assert api.post("/proxies/p", data=b"").status_code == 400
    assert api.post("/proxies/p/toxics", data=b"[").status_code == 400
    api.post("/proxies/p/toxics", json={"type": "noop"})
    assert api.patch("/proxies/p/toxics/noop_downstream", data=b"").status_code == 400


# -- proxies -------------------------------------------------------------------------------
def test_proxy_index_is_an_object_keyed_by_name(api):
    assert api.get("/proxies").json() == {}
    new_proxy(api, "a")
    new_proxy(api, "b")
    proxies = api.get("/proxies").json()
    assert set(proxies) == {"a", "b"}
    assert proxies["a"]["name"] == "a" and proxies["a"]["toxics"] == []


def test_create_binds_and_reports_the_bound_address(api):
    response = new_proxy(api, upstream="example.invalid:80")
    assert response.status_code == 201
    body = response.json()
    assert body["enabled"] is True
    assert body["upstream"] == "example.invalid:80"  # stored as given, never resolved
    host, port = body["listen"].rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0
    assert body["toxics"] == []
    socket.create_connection((host, int(port)), timeout=2).close()


def test_create_with_localhost_reports_the_resolved_address(api):
    port = free_port()
    response = new_proxy(api, listen=f"localhost:{port}")
    assert response.json()["listen"] == f"127.0.0.1:{port}"


def test_create_disabled_echoes_listen_as_given(api):
    response = new_proxy(api, listen="localhost:0", enabled=False)
    assert response.status_code == 201
    assert response.json()["listen"] == "localhost:0"
    assert response.json()["enabled"] is False


def test_create_errors(api):
    assert new_proxy(api, name="").json() == {"error": "missing required field: name",
                                             "status": 400}
    assert new_proxy(api, upstream="").json()["error"] == "missing required field: upstream"
    assert new_proxy(api).status_code == 201
    duplicate = new_proxy(api)
    assert duplicate.status_code == 409
    assert duplicate.json()["error"] == "proxy already exists"


def test_bind_failure_is_500_and_the_proxy_is_not_kept(api):
    taken = api.post("/proxies", json={"name": "a", "listen": "127.0.0.1:0",
                                       "upstream": "x:1"}).json()["listen"]
    response = new_proxy(api, name="b", listen=taken)
    assert response.status_code == 500
    assert "address already in use" in response.json()["error"]
    assert api.get("/proxies/b").status_code == 404


def test_keys_match_case_insensitively_and_unknown_keys_are_ignored(api):
    response = api.post("/proxies", json={"NAME": "p", "Listen": "127.0.0.1:0",
                                          "UpStream": "x:1", "colour": "blue"})
    assert response.status_code == 201
    assert response.json()["name"] == "p" and "colour" not in response.json()


def test_show_and_404(api):
    new_proxy(api)
    assert api.get("/proxies/p").json()["name"] == "p"
    missing = api.get("/proxies/nope")
    assert missing.status_code == 404
    assert missing.json() == {"error": "proxy not found", "status": 404}


@pytest.mark.parametrize("method", ["post", "patch"])
def test_update_keeps_omitted_fields(api, method):
    listen = new_proxy(api).json()["listen"]
    response = getattr(api, method)("/proxies/p", json={"upstream": "other:2"})
    assert response.status_code == 200
    assert response.json()["upstream"] == "other:2"
    assert response.json()["listen"] == listen
    assert response.json()["enabled"] is True


def test_disable_keeps_toxics_and_enable_binds_the_same_address(api):
    listen = new_proxy(api).json()["listen"]
    api.post("/proxies/p/toxics", json={"type": "latency", "attributes": {"latency": 5}})
    disabled = api.post("/proxies/p", json={"enabled": False}).json()
    assert disabled["enabled"] is False and len(disabled["toxics"]) == 1
    host, port = listen.rsplit(":", 1)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, int(port)), timeout=2)
    enabled = api.patch("/proxies/p", json={"enabled": True}).json()
    assert enabled["enabled"] is True and enabled["listen"] == listen
    socket.create_connection((host, int(port)), timeout=2).close()


def test_localhost_versus_stored_address_is_no_change(api, echo, connect, wait):
    proxy = new_proxy(api, upstream=echo.address).json()
    client = connect(proxy["listen"])
    client.sendall(b"hi")
    assert client.recv(2) == b"hi"
    port = proxy["listen"].rsplit(":", 1)[1]
    assert api.post("/proxies/p", json={"listen": f"localhost:{port}"}).status_code == 200
    client.sendall(b"again")  # not restarted: the connection lives on
    assert client.recv(5) == b"again"


def test_changed_upstream_restarts_the_proxy_keeping_toxics(api, echo, connect):
    proxy = new_proxy(api, upstream=echo.address).json()
    api.post("/proxies/p/toxics", json={"type": "noop"})
    client = connect(proxy["listen"])
    client.sendall(b"x")
    assert client.recv(1) == b"x"
    updated = api.post("/proxies/p", json={"upstream": f"localhost:{echo.port}"}).json()
    assert len(updated["toxics"]) == 1
    assert client.recv(1) == b""  # dropped by the restart


def test_delete(api):
    new_proxy(api)
    assert api.delete("/proxies/p").status_code == 204
    assert api.delete("/proxies/p").status_code == 404
    assert api.get("/proxies").json() == {}


# -- populate ------------------------------------------------------------------------------
def test_populate_creates_in_order(api):
    body = [{"name": "b", "listen": "127.0.0.1:0", "upstream": "x:1"},
            {"name": "a", "listen": "127.0.0.1:0", "upstream": "x:2", "enabled": False}]
    response = api.post("/populate", json=body)
    assert response.status_code == 201
    proxies = response.json()["proxies"]
    assert [p["name"] for p in proxies] == ["b", "a"]
    assert proxies[0]["enabled"] is True and proxies[1]["enabled"] is False


def test_populate_validates_everything_first(api):
    body = [{"name": "ok", "upstream": "x:1"}, {"name": "", "upstream": "x:1"}]
    response = api.post("/populate", json=body)
    assert response.status_code == 400
    assert response.json()["error"] == "missing required field: name at proxy 2"
    body = [{"name": "ok", "upstream": "x:1"}, {"name": "z"}]
    assert api.post("/populate", json=body).json()["error"] == (
        "missing required field: upstream at proxy 2")
    assert api.get("/proxies").json() == {}


def test_populate_leaves_an_unchanged_proxy_exactly_as_it_is(api, echo, connect):
    port = free_port()
    entry = {"name": "p", "listen": f"127.0.0.1:{port}", "upstream": echo.address}
    api.post("/populate", json=[entry])
    api.post("/proxies/p/toxics", json={"type": "noop"})
    api.post("/proxies/p", json={"enabled": False})
    api.post("/proxies/p", json={"enabled": True})
    client = connect(f"127.0.0.1:{port}")
    client.sendall(b"x")
    assert client.recv(1) == b"x"
    again = api.post("/populate", json=[{**entry, "listen": f"localhost:{port}"}])
    assert again.status_code == 201
    assert again.json()["proxies"][0]["toxics"][0]["type"] == "noop"
    client.sendall(b"y")  # the connection survived
    assert client.recv(1) == b"y"


def test_populate_replaces_a_changed_proxy_without_toxics_and_keeps_others(api):
    new_proxy(api, "other")
    new_proxy(api, "p", upstream="x:1")
    api.post("/proxies/p/toxics", json={"type": "noop"})
    response = api.post("/populate", json=[{"name": "p", "listen": "127.0.0.1:0",
                                            "upstream": "x:2"}])
    assert response.json()["proxies"][0]["upstream"] == "x:2"
    assert response.json()["proxies"][0]["toxics"] == []
    assert set(api.get("/proxies").json()) == {"other", "p"}


def test_populate_stops_at_the_first_runtime_error(api):
    taken = new_proxy(api, "holder").json()["listen"]
    body = [{"name": "a", "listen": "127.0.0.1:0", "upstream": "x:1"},
            {"name": "b", "listen": taken, "upstream": "x:1"},
            {"name": "c", "listen": "127.0.0.1:0", "upstream": "x:1"}]
    response = api.post("/populate", json=body)
    assert response.status_code == 500
    assert "address already in use" in response.json()["error"]
    assert [p["name"] for p in response.json()["proxies"]] == ["a"]
    assert set(api.get("/proxies").json()) == {"holder", "a"}


def test_reset_enables_everything_and_removes_toxics(api):
    new_proxy(api, "a")
    new_proxy(api, "b", enabled=False)
    api.post("/proxies/a/toxics", json={"type": "latency", "stream": "upstream"})
    api.post("/proxies/a", json={"enabled": False})
    assert api.post("/reset").status_code == 204
    proxies = api.get("/proxies").json()
    assert set(proxies) == {"a", "b"}
    assert all(p["enabled"] and p["toxics"] == [] for p in proxies.values())


# -- toxics --------------------------------------------------------------------------------
def test_toxic_create_defaults(api):
    new_proxy(api)
    response = api.post("/proxies/p/toxics", json={"type": "latency"})
    assert response.status_code == 200
    assert response.json() == {"name": "latency_downstream", "type": "latency",
                               "stream": "downstream", "toxicity": 1.0,
                               "attributes": {"latency": 0, "jitter": 0}}


@pytest.mark.parametrize("toxic_type", sorted(ALL_ATTRIBUTES))
def test_attributes_list_every_attribute_of_the_type(api, toxic_type):
    new_proxy(api)
    attributes = VALID.get(toxic_type, {})
    toxic = api.post("/proxies/p/toxics", json={"type": toxic_type, "stream": "upstream",
                                                "attributes": attributes}).json()
    assert toxic["attributes"] == {**ALL_ATTRIBUTES[toxic_type], **attributes}
    assert toxic["name"] == f"{toxic_type}_upstream"


def test_toxic_create_errors(api):
    new_proxy(api)
    for stream in ("", "sideways"):
        response = api.post("/proxies/p/toxics", json={"type": "latency", "stream": stream})
        assert response.status_code == 400
        assert response.json()["error"] == (
            "stream was invalid, can be either upstream or downstream")
    bad_type = api.post("/proxies/p/toxics", json={"type": "gremlin"})
    assert bad_type.json() == {"error": "invalid toxic type", "status": 400}
    api.post("/proxies/p/toxics", json={"type": "latency", "name": "slow"})
    clash = api.post("/proxies/p/toxics", json={"type": "noop", "name": "slow",
                                                "stream": "upstream"})
    assert clash.status_code == 409 and clash.json()["error"] == "toxic already exists"
    assert api.post("/proxies/nope/toxics", json={"type": "noop"}).status_code == 404


@pytest.mark.parametrize("toxic_type, attributes, message", [
    ("slicer", {"average_size": 0}, "average_size"),
    ("slicer", {"average_size": 5, "size_variation": 6}, "size_variation"),
])
def test_values_that_crash_toxiproxy_are_400(api, toxic_type, attributes, message):
    new_proxy(api)
    response = api.post("/proxies/p/toxics", json={"type": toxic_type, "attributes": attributes})
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert api.get("/proxies/p/toxics").json() == []


def test_toxic_list_upstream_first_then_in_order_added(api):
    new_proxy(api)
    for name, stream in (("d1", "downstream"), ("u1", "upstream"), ("d2", "downstream"),
                         ("u2", "upstream")):
        api.post("/proxies/p/toxics", json={"type": "noop", "name": name, "stream": stream})
    names = [t["name"] for t in api.get("/proxies/p/toxics").json()]
    assert names == ["u1", "u2", "d1", "d2"]
    assert [t["name"] for t in api.get("/proxies/p").json()["toxics"]] == names


def test_toxic_show_and_404s(api):
    new_proxy(api)
    api.post("/proxies/p/toxics", json={"type": "noop"})
    assert api.get("/proxies/p/toxics/noop_downstream").json()["type"] == "noop"
    assert api.get("/proxies/p/toxics/nope").json() == {"error": "toxic not found",
                                                       "status": 404}
    assert api.get("/proxies/nope/toxics/x").json()["error"] == "proxy not found"
    assert api.get("/proxies/nope/toxics").status_code == 404


@pytest.mark.parametrize("method", ["post", "patch"])
def test_toxic_update_merges_attributes_and_keeps_toxicity(api, method):
    new_proxy(api)
    api.post("/proxies/p/toxics", json={"type": "latency", "toxicity": 0.5,
                                        "attributes": {"latency": 100, "jitter": 10}})
    update = getattr(api, method)
    response = update("/proxies/p/toxics/latency_downstream",
                      json={"attributes": {"latency": 300}})
    assert response.status_code == 200
    assert response.json()["attributes"] == {"latency": 300, "jitter": 10}
    assert response.json()["toxicity"] == 0.5
    response = update("/proxies/p/toxics/latency_downstream", json={"toxicity": 0.25})
    assert response.json()["toxicity"] == 0.25
    assert response.json()["attributes"] == {"latency": 300, "jitter": 10}
    assert update("/proxies/p/toxics/nope", json={}).status_code == 404
    bad = update("/proxies/p/toxics/latency_downstream", json={"attributes": {"latency": "x"}})
    assert bad.status_code == 400


def test_toxic_update_rejects_crashing_values(api):
    new_proxy(api)
    api.post("/proxies/p/toxics", json={"type": "slicer", "attributes": {"average_size": 10}})
    response = api.post("/proxies/p/toxics/slicer_downstream",
                        json={"attributes": {"average_size": 0}})
    assert response.status_code == 400
    assert api.get("/proxies/p/toxics/slicer_downstream").json()["attributes"][
        "average_size"] == 10


def test_toxic_delete(api):
    new_proxy(api)
    api.post("/proxies/p/toxics", json={"type": "noop"})
    assert api.delete("/proxies/p/toxics/noop_downstream").status_code == 204
    assert api.delete("/proxies/p/toxics/noop_downstream").status_code == 404
    assert api.get("/proxies/p/toxics").json() == []


def test_toxic_keys_are_case_insensitive(api):
    new_proxy(api)
    toxic = api.post("/proxies/p/toxics", json={"Type": "latency", "STREAM": "upstream",
                                                "Attributes": {"Latency": 7}, "x": 1}).json()
    assert toxic["stream"] == "upstream" and toxic["attributes"]["latency"] == 7


# -- beyond Toxiproxy ----------------------------------------------------------------------
def test_events_record_changes_with_timestamps(api):
    new_proxy(api)
    api.post("/proxies/p/toxics", json={"type": "noop"})
    api.post("/proxies/p/toxics/noop_downstream", json={"toxicity": 0.5})
    api.delete("/proxies/p/toxics/noop_downstream")
    api.post("/proxies/p", json={"enabled": False})
    api.post("/reset")
    api.delete("/proxies/p")
    events = api.get("/events").json()
    kinds = [e["event"] for e in events]
    assert kinds == ["proxy_created", "toxic_added", "toxic_updated", "toxic_removed",
                     "proxy_disabled", "proxy_enabled", "proxy_reset", "proxy_deleted"]
    times = [e["time"] for e in events]
    assert times == sorted(times)
    assert events[1]["toxic"]["name"] == "noop_downstream"
    later = api.get("/events", params={"since": times[3]}).json()
    assert [e["event"] for e in later][0] == "proxy_disabled"
    assert api.get("/events", params={"since": "yesterday"}).status_code == 400


def test_a_time_boxed_fault_is_noted_in_the_events(api):
    new_proxy(api)
    noted = api.post("/events", json={"event": "fault_timed", "proxy": "p", "fault": "down",
                                      "until": 1_900_000_000.5})
    assert noted.status_code == 201
    assert noted.json()["until"] == 1_900_000_000.5 and noted.json()["fault"] == "down"
    assert api.get("/events").json()[-1]["event"] == "fault_timed"


@pytest.mark.parametrize(("body", "status"), [
    ({"event": "proxy_disabled", "proxy": "p"}, 400),          # only notes, never changes
    ({"event": "fault_timed", "proxy": "nope", "fault": "down", "until": 1.0}, 404),
    ({"event": "fault_timed", "proxy": "p", "fault": "", "until": 1.0}, 400),
    ({"event": "fault_timed", "proxy": "p", "fault": "down", "until": "soon"}, 400),
    ({"event": "fault_timed", "proxy": "p", "fault": "down", "until": True}, 400),
    (["fault_timed"], 400),
])
def test_only_well_formed_fault_notes_are_taken(api, body, status):
    new_proxy(api)
    before = len(api.get("/events").json())
    assert api.post("/events", json=body).status_code == status
    assert len(api.get("/events").json()) == before


def test_metrics_count_bytes_and_connections(api, proxy, connect, wait):
    client = connect(proxy["listen"])
    client.sendall(b"12345")
    assert client.recv(5) == b"12345"
    response = api.get("/metrics")
    assert response.headers["Content-Type"].startswith("text/plain")
    text = response.text
    assert "# TYPE toxiproxy_proxy_received_bytes_total counter" in text
    assert 'toxiproxy_proxy_received_bytes_total{direction="upstream",proxy="echo"' in text
    lines = {line.rsplit(" ", 1)[0]: line.rsplit(" ", 1)[1] for line in text.splitlines()
             if line and not line.startswith("#")}
    sent = [v for k, v in lines.items()
            if k.startswith('toxiproxy_proxy_sent_bytes_total{direction="downstream"')]
    assert sent == ["5"]
    active = [v for k, v in lines.items() if k.startswith("toxiproxy_proxy_active_connections")]
    assert active == ["1"]


def test_metrics_follow_prometheus_naming(api, proxy, connect):
    from tests.support.metrics import naming_problems

    client = connect(proxy["listen"])
    client.sendall(b"12345")
    assert client.recv(5) == b"12345"
    assert naming_problems(api.get("/metrics").text) == []
