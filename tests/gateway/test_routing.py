"""Routing per prefix, what is forwarded and stripped, request ids and bad input at the edge."""

from __future__ import annotations

import http.client

import pytest

from tests.gateway.fakes import FakeUpstream

ROUTED = [
    ("POST", "/api/v1/auth/login", "auth", False),
    ("POST", "/api/v1/auth/register", "auth", False),
    ("GET", "/api/v1/users/me", "auth", True),
    ("GET", "/register", "auth", False),
    ("GET", "/.well-known/jwks.json", "auth", False),
    ("GET", "/api/v1/products", "product", False),
    ("GET", "/api/v1/products/prod1", "product", False),
    ("GET", "/api/v2/products", "product", False),
    ("POST", "/api/product/create", "product", False),
    ("GET", "/api/v1/cart", "cart", True),
    ("POST", "/api/v1/cart/items", "cart", True),
    ("POST", "/api/v1/orders", "order", True),
    ("GET", "/api/v1/orders/12", "order", True),
]


@pytest.mark.parametrize(("method", "path", "service", "protected"), ROUTED)
def test_each_prefix_reaches_its_service(
    start_gateway, upstreams, bearer, method, path, service, protected
):
    gateway = start_gateway()
    response = gateway.request(method, path, headers=bearer if protected else {}, json={})
    assert response.status_code == 200
    assert response.json()["instance"] == service
    assert response.json()["path"] == path


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/nope",
        "/api/v3/products",
        "/api/v1/productsX",
        "/api/v1/cartography",
        "/nothing/here",
        "/",
    ],
)
def test_unknown_routes_are_json_404(start_gateway, upstreams, path):
    gateway = start_gateway()
    response = gateway.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert response.headers["X-Request-Id"]
    assert sum(len(fake.seen) for fake in upstreams.values()) == 0


@pytest.mark.parametrize(("path", "upstream"), [
    ("/api/v1/auth/service-token", "auth"),     # a service's client credentials
    ("/api/v1/cart/removals", "cart"),          # order takes an order's lines out of a cart
    ("/api/v1/reservations/by-ref/o-1", "product"),
])
def test_service_only_endpoints_are_not_exposed(start_gateway, upstreams, bearer, path, upstream):
    gateway = start_gateway()
    response = gateway.post(path, headers=bearer, json={"client_id": "order", "client_secret": "x"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert upstreams[upstream].seen == []


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_internal_reservation_routes_are_not_exposed(start_gateway, upstreams, bearer, method):
    gateway = start_gateway()
    response = gateway.request(method, "/api/v1/reservations/1/confirm", headers=bearer, json={})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert upstreams["product"].seen == []


def test_method_query_body_and_end_to_end_headers_are_forwarded(start_gateway, upstreams, bearer):
    gateway = start_gateway()
    headers = {
        **bearer,
        "Accept": "application/json",
        "Idempotency-Key": "checkout-42",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "tracestate": "congo=t61rcWkgMzE",
        "baggage": "userId=alice",
        "Content-Type": "application/json",
    }
    # http.client, not requests: this test process's urllib3 is traced too and would replace
    # the client's traceparent with a span of its own.
    host, port = gateway.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request("POST", "/api/v1/orders?dry_run=1&x=a%20b", body=b'{"a": 1}',
                       headers=headers)
    status = connection.getresponse().status
    connection.close()
    seen = upstreams["order"].seen[-1]
    assert status == 200
    assert (seen.method, seen.path, seen.query, seen.body) == (
        "POST",
        "/api/v1/orders",
        "dry_run=1&x=a%20b",
        b'{"a": 1}',
    )
    for name, value in headers.items():
        if name != "traceparent":
            assert seen.headers[name.title()] == value
    # The same trace continues, with the gateway's own span as the upstream call's parent.
    version, trace_id, parent, flags = seen.headers["Traceparent"].split("-")
    assert (version, trace_id) == ("00", "0af7651916cd43dd8448eb211c80319c")
    assert parent != "b7ad6b7169203331" and int(flags, 16) & 1
    assert seen.headers["X-Forwarded-For"] == "127.0.0.1"
    assert seen.headers["X-Forwarded-Proto"] == "http"


def test_hop_by_hop_headers_are_stripped_both_ways(start_gateway, upstreams):
    upstreams["product"].answer(
        headers=[
            ("Keep-Alive", "timeout=5"),
            ("X-Shop", "breakwater"),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
        ]
    )
    gateway = start_gateway()
    response = gateway.get(
        "/api/v1/products",
        headers={
            "Connection": "keep-alive, X-Private-Hop",
            "X-Private-Hop": "1",
            "Keep-Alive": "timeout=9",
            "TE": "trailers",
            "Trailer": "X-Sum",
            "Upgrade": "h2c",
            "Proxy-Authorization": "Basic eA==",
            "X-End-To-End": "kept",
        },
    )
    seen = upstreams["product"].seen[-1].headers
    assert seen["X-End-To-End"] == "kept"
    for hop in ("X-Private-Hop", "Keep-Alive", "Te", "Trailer", "Upgrade", "Proxy-Authorization"):
        assert hop not in seen
    assert seen.get("Connection", "").lower() in ("", "keep-alive", "close")
    assert "Keep-Alive" not in response.headers
    assert response.headers["X-Shop"] == "breakwater"
    assert response.raw.headers.getlist("Set-Cookie") == ["a=1", "b=2"]


def test_client_supplied_forwarded_for_is_not_trusted_by_default(start_gateway, upstreams):
    gateway = start_gateway()
    gateway.get("/api/v1/products", headers={"X-Forwarded-For": "6.6.6.6"})
    assert upstreams["product"].seen[-1].headers["X-Forwarded-For"] == "127.0.0.1"


def test_behind_a_trusted_proxy_the_client_is_counted_from_the_right(start_gateway, upstreams):
    """The proxy appends the address it saw; what the client wrote left of it is ignored."""
    gateway = start_gateway(trust_forwarded=True)
    gateway.get("/api/v1/products", headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.9"})
    assert upstreams["product"].seen[-1].headers["X-Forwarded-For"] == "203.0.113.9"


def test_two_trusted_hops_name_the_address_the_outer_proxy_saw(start_gateway, upstreams):
    gateway = start_gateway(trust_forwarded=True, trusted_hops=2)
    gateway.get("/api/v1/products",
                headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.9, 10.0.0.2"})
    assert upstreams["product"].seen[-1].headers["X-Forwarded-For"] == "203.0.113.9"


@pytest.mark.parametrize(
    ("given", "kept"),
    [("req-123.abc:9", True), ("x" * 300, False), ("bad id with spaces", False), (None, False)],
)
def test_request_id_is_kept_when_sane_and_returned(start_gateway, upstreams, given, kept):
    gateway = start_gateway()
    response = gateway.get("/api/v1/products", headers={"X-Request-Id": given} if given else {})
    returned = response.headers["X-Request-Id"]
    assert upstreams["product"].seen[-1].headers["X-Request-Id"] == returned
    assert (returned == given) is kept
    assert returned and len(returned) <= 128


def test_request_id_is_on_gateway_errors_and_admin_endpoints(start_gateway, upstreams):
    gateway = start_gateway()
    assert (
        gateway.get("/api/v1/cart", headers={"X-Request-Id": "r1"}).headers["X-Request-Id"] == "r1"
    )
    assert gateway.get("/healthz", headers={"X-Request-Id": "r2"}).headers["X-Request-Id"] == "r2"


def test_malformed_json_passes_through_to_the_upstream(
    start_gateway, upstreams: dict[str, FakeUpstream]
):
    problem = b'{"error": {"code": "bad_request", "message": "not JSON", "details": {}}}'
    upstreams["auth"].answer(400, body=problem)
    gateway = start_gateway()
    response = gateway.post(
        "/api/v1/auth/register", data=b'{"email": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.content == problem
    assert upstreams["auth"].seen[-1].body == b'{"email": '


def test_oversized_body_is_413_and_never_forwarded(start_gateway, upstreams, bearer):
    gateway = start_gateway(max_body_bytes=1000)
    response = gateway.post("/api/v1/cart/items", headers=bearer, data=b"x" * 5000)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert upstreams["cart"].seen == []


def test_chunked_body_is_forwarded_with_a_length_and_limited(start_gateway, upstreams):
    gateway = start_gateway(max_body_bytes=1000)
    small = gateway.post(
        "/api/v1/auth/register",
        data=iter([b'{"a":', b" 1}"]),
        headers={"Content-Type": "application/json"},
    )
    assert small.status_code == 200
    assert upstreams["auth"].seen[-1].body == b'{"a": 1}'
    big = gateway.post("/api/v1/auth/register", data=iter([b"y" * 600, b"y" * 600]))
    assert big.status_code == 413
    assert len(upstreams["auth"].seen) == 1


def test_oversized_headers_are_refused(start_gateway, upstreams):
    gateway = start_gateway(max_header_bytes=4096)
    response = gateway.get(
        "/api/v1/products", headers={f"X-Filler-{i}": "z" * 500 for i in range(12)}
    )
    assert response.status_code == 431
    assert response.json()["error"]["code"] == "headers_too_large"
    assert upstreams["product"].seen == []


def test_dot_segments_cannot_reach_internal_routes(start_gateway, upstreams):
    gateway = start_gateway()
    response = gateway.get("/api/v1/products/%2E%2E/reservations")
    assert response.status_code in (400, 404)
    assert upstreams["product"].seen == []


def test_encoded_path_characters_are_forwarded_encoded(start_gateway, upstreams):
    gateway = start_gateway()
    response = gateway.get("/api/v1/products/caf%C3%A9%20cr%C3%A8me")
    assert response.status_code == 200
    assert (
        upstreams["product"].seen[-1].path.encode("latin-1").decode()
        == "/api/v1/products/café crème"
    )
