"""The control API where Toxiproxy's Go code (api.go, proxy.go, net/http, gorilla/mux) decides."""

from __future__ import annotations

import json
import re
import socket

import pytest

from chaos.toxiproxy import run_in_thread


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RawHttp:
    """One raw keep-alive connection to the API, read through one buffer (nothing read ahead
    is lost between responses)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.stream = self.sock.makefile("rb")

    def exchange(self, request: bytes) -> tuple[bytes, dict[str, str], bytes]:
        """Send one request; read one response by its Content-Length (status, headers, body).

        A HEAD response is read without a body, as a client must: if the server wrote one
        anyway, it is taken for the next response's status line.
        """
        self.sock.sendall(request)
        status = self.stream.readline().rstrip()
        headers = {}
        while (line := self.stream.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        head = request.startswith(b"HEAD")
        body = self.stream.read(length) if length and not head else b""
        return status, headers, body

    def closed_by_server(self) -> bool:
        """The server closed the connection (EOF) before the socket's 5 s timeout."""
        return self.stream.read(1) == b""

    def close(self) -> None:
        self.stream.close()
        self.sock.close()


# -- proxies without a host (api.go ProxyCreate, proxy.go listen) ---------------------------
def test_create_without_listen_binds_a_free_port_on_every_interface(api, echo, connect, io):
    """api.go `ProxyCreate` passes an empty `listen` to proxy.go `listen`, whose
    `net.Listen("tcp", "")` binds a free port on every interface (IPv4 and IPv6) and reports
    it as `[::]:<port>`."""
    response = api.post("/proxies", json={"name": "any", "upstream": echo.address})
    assert response.status_code == 201, response.text
    match = re.fullmatch(r"\[::\]:(\d+)", response.json()["listen"])
    assert match and int(match.group(1)) > 0
    port = match.group(1)
    assert io.rtt(connect(f"127.0.0.1:{port}")) < 2
    assert io.rtt(connect(f"::1:{port}")) < 2


def test_listen_with_only_a_port_is_every_interface(api, echo, connect, io):
    """proxy.go `listen`: `net.Listen("tcp", ":P")` is every interface, IPv6 included."""
    port = free_port()
    response = api.post("/proxies", json={"name": "any", "listen": f":{port}",
                                          "upstream": echo.address})
    assert response.status_code == 201, response.text
    assert response.json()["listen"] == f"[::]:{port}"
    assert io.rtt(connect(f"127.0.0.1:{port}")) < 2
    assert io.rtt(connect(f"::1:{port}")) < 2


# -- bind failures (proxy.go listen) ---------------------------------------------------------
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_bind_failure_carries_the_os_message(api, host):
    """proxy.go `listen` returns Go's `net.OpError`: `listen tcp <address>: bind: <errno text>`,
    which api.go `apiError` answers with 500."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        response = api.post("/proxies", json={"name": "b", "listen": f"{host}:{port}",
                                              "upstream": "127.0.0.1:1"})
    assert response.status_code == 500
    assert response.json() == {
        "error": f"listen tcp 127.0.0.1:{port}: bind: address already in use", "status": 500}


# -- answers written by net/http and gorilla/mux -----------------------------------------------
def test_browsers_get_a_plain_text_403(api):
    """api.go `stopBrowsersMiddleware`: `http.Error(w, "User agent not allowed", 403)`, which
    writes text/plain with a trailing newline."""
    response = api.get("/proxies", headers={"User-Agent": "Mozilla/5.0 (X11; Linux)"})
    assert response.status_code == 403
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.text == "User agent not allowed\n"


def test_unknown_route_is_gos_plain_404(api):
    """gorilla/mux falls back to net/http `NotFoundHandler`: `404 page not found`, text/plain."""
    for path in ("/nope", "/proxies/a/b/c/d"):
        response = api.get(path)
        assert response.status_code == 404
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert response.text == "404 page not found\n"


def test_wrong_method_is_an_empty_405(api):
    """gorilla/mux `methodNotAllowedHandler` only writes the status: no body."""
    for method, path in (("delete", "/version"), ("put", "/proxies"), ("get", "/reset")):
        response = getattr(api, method)(path)
        assert response.status_code == 405
        assert response.content == b""


def test_version_is_written_as_toxiproxy_writes_it(api):
    """api.go `Version`: `application/json;charset=utf-8`, `{"version": "..."}` and a newline."""
    response = api.get("/version")
    assert response.headers["Content-Type"] == "application/json;charset=utf-8"
    assert response.text == '{"version": "2.12.0"}\n'


@pytest.mark.parametrize("body", [
    [{"name": "", "upstream": "x:1"}],
    [{"name": "a"}],
])
def test_populate_validation_errors_carry_null_proxies(api, body):
    """api.go `Populate` marshals the error together with `proxiesWithToxics(nil)`, which is
    `null`: `{"error", "status", "proxies": null}`."""
    response = api.post("/populate", json=body)
    assert response.status_code == 400
    payload = response.json()
    assert set(payload) == {"error", "status", "proxies"}
    assert payload["proxies"] is None and payload["status"] == 400


def test_populate_bad_body_and_empty_list(api):
    """api.go `Populate`: a body that is not JSON is a 400 with `"proxies": null`; an empty
    array creates nothing and `proxiesWithToxics` of nothing is `null` too."""
    bad = api.post("/populate", data=b"{not json")
    assert bad.status_code == 400 and bad.json()["proxies"] is None
    assert bad.json()["error"].startswith("bad request body: ")
    empty = api.post("/populate", json=[])
    assert empty.status_code == 201 and empty.json() == {"proxies": None}


# -- the API server's connection handling (api.go Listen, net/http) ---------------------------
def test_head_gets_no_body_and_keep_alive_goes_on(server):
    """net/http never writes a body for HEAD, and gorilla/mux routes `/version` for GET only
    (405); the next request on the same connection must read a clean response."""
    http = RawHttp(server.server.port)
    try:
        status, _, _ = http.exchange(b"HEAD /version HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == b"HTTP/1.1 405 Method Not Allowed"
        status, _, _ = http.exchange(b"HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == b"HTTP/1.1 404 Not Found"
        status, _, body = http.exchange(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == b"HTTP/1.1 200 OK"
        assert json.loads(body) == {"version": "2.12.0"}
    finally:
        http.close()


@pytest.fixture
def quick_server():
    """A server with API timeouts short enough to watch (Toxiproxy: 15 s read, 60 s idle)."""
    handle = run_in_thread("127.0.0.1", 0, read_timeout=0.5, idle_timeout=0.5)
    yield handle
    handle.stop()


def test_a_request_that_never_completes_is_dropped(quick_server):
    """api.go `Listen` sets `ReadTimeout`: a client that stops half-way through its request
    loses the connection instead of holding it forever."""
    http = RawHttp(quick_server.server.port)
    try:
        http.sock.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n")  # no blank line ever
        assert http.closed_by_server()
    finally:
        http.close()


def test_an_idle_keep_alive_connection_is_closed(quick_server):
    """api.go `Listen` sets `IdleTimeout`: a kept-alive connection with no next request is
    closed by the server."""
    http = RawHttp(quick_server.server.port)
    try:
        status, _, _ = http.exchange(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == b"HTTP/1.1 200 OK"
        assert http.closed_by_server()
    finally:
        http.close()


def test_a_connection_that_sends_nothing_is_closed(quick_server):
    """net/http applies `ReadTimeout` from the moment a connection is accepted."""
    http = RawHttp(quick_server.server.port)
    try:
        assert http.closed_by_server()
    finally:
        http.close()
