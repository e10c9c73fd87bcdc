"""Cart against a product that is down, slow or failing: clear errors, fast, nothing stored."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.services.cart.fakes import FakeProduct, UpstreamServer, closed_port_url

ITEMS = "/api/v1/cart/items"
READ_TIMEOUT = 0.5


@pytest.fixture
def cart_for(make_cart_app: Callable[..., Flask], tmp_path: Path) -> Iterator[Callable[[str], FlaskClient]]:
    """`cart_for(product_url)` → a cart test client (SQLite) whose product is at that URL."""
    apps: list[Flask] = []

    def make(product_url: str) -> FlaskClient:
        app = make_cart_app(f"sqlite:///{tmp_path / f'cart{len(apps)}.db'}", product_url,
                            product_read_timeout=READ_TIMEOUT)
        apps.append(app)
        return app.test_client()

    yield make
    for app in apps:
        app.extensions["breakwater.client"].close()


def assert_dependency_error(response, status: int, code: str) -> None:  # noqa: ANN001
    assert response.status_code == status, response.json
    assert response.json["error"]["code"] == code
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["X-Breakwater-Failed-Dependency"] == "product"


def test_product_down_is_503_product_unavailable(
        cart_for: Callable[[str], FlaskClient], auth_header: Callable[..., dict]) -> None:
    client = cart_for(closed_port_url())
    response = client.post(ITEMS, json={"product_id": 1}, headers=auth_header(1))
    assert_dependency_error(response, 503, "product_unavailable")
    assert response.json["error"]["details"]["reason"] == "connection_failed"
    # The cart itself keeps working without product.
    assert client.get("/api/v1/cart", headers=auth_header(1)).status_code == 200
    assert client.get("/readyz").status_code == 200


def test_product_answering_500_is_503_product_unavailable(
        cart_for: Callable[[str], FlaskClient], auth_header: Callable[..., dict],
        product_server: UpstreamServer) -> None:
    product_server.fault(r"GET /api/v1/products/.*", "error")
    client = cart_for(product_server.url)
    response = client.post(ITEMS, json={"product_id": 1}, headers=auth_header(1))
    assert_dependency_error(response, 503, "product_unavailable")
    assert response.json["error"]["details"]["reason"] == "server_error"
    assert client.get("/api/v1/cart", headers=auth_header(1)).json["lines"] == []


def test_slow_product_is_a_504_bounded_by_the_read_timeout(
        cart_for: Callable[[str], FlaskClient], auth_header: Callable[..., dict],
        product_server: UpstreamServer) -> None:
    product_server.fault(r"GET /api/v1/products/.*", "slow", delay=30)
    client = cart_for(product_server.url)
    started = time.monotonic()
    response = client.post(ITEMS, json={"product_id": 1}, headers=auth_header(1))
    elapsed = time.monotonic() - started
    assert_dependency_error(response, 504, "product_timeout")
    assert elapsed < 10, f"took {elapsed:.1f}s although product's read timeout is {READ_TIMEOUT}s"
    assert client.get("/api/v1/cart", headers=auth_header(1)).json["lines"] == []


def test_repeated_failures_open_the_breaker_and_fail_fast(
        cart_for: Callable[[str], FlaskClient], auth_header: Callable[..., dict]) -> None:
    client = cart_for(closed_port_url())
    reasons = [client.post(ITEMS, json={"product_id": 1}, headers=auth_header(1))
               .json["error"]["details"]["reason"] for _ in range(8)]
    assert reasons[0] == "connection_failed"
    assert reasons[-1] == "breaker_open"


def test_product_recovering_is_used_again(
        cart_for: Callable[[str], FlaskClient], auth_header: Callable[..., dict],
        product_server: UpstreamServer, product: FakeProduct) -> None:
    product_server.fault(r"GET /api/v1/products/.*", "error", times=1)
    client = cart_for(product_server.url)
    assert client.post(ITEMS, json={"product_id": 1}, headers=auth_header(1)).status_code == 503
    assert client.post(ITEMS, json={"product_id": 1}, headers=auth_header(1)).status_code == 201
