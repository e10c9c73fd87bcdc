"""Fixtures of the order tests: fake product, the real cart app served on a loopback port, and
a migrated order app per backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.cart import create_app as create_cart_app
from services.order import create_app as create_order_app
from tests.services.cart.fakes import FakeProduct, UpstreamServer

READ_TIMEOUT = 2.0  # generous: concurrent tests share one process with their upstreams


@dataclass
class Shop:
    """Everything a checkout touches: product (fake), cart (real, served), order (test client)."""

    product: FakeProduct
    product_server: UpstreamServer
    cart_app: Flask
    cart_server: UpstreamServer
    order_app: Flask
    auth_header: Callable[..., dict[str, str]]

    @property
    def orders(self) -> FlaskClient:
        return self.order_app.test_client()

    def fill_cart(self, user_id: int, *items: tuple[int, int]) -> None:
        """Put (product_id, quantity) items in the user's cart through the cart API."""
        client = self.cart_app.test_client()
        for product_id, quantity in items:
            response = client.post("/api/v1/cart/items", headers=self.auth_header(user_id),
                                   json={"product_id": product_id, "quantity": quantity})
            assert response.status_code in (200, 201), response.json

    def cart_lines(self, user_id: int) -> list[tuple[int, int]]:
        body = self.cart_app.test_client().get("/api/v1/cart", headers=self.auth_header(user_id)).json
        return [(line["product_id"], line["quantity"]) for line in body["lines"]]

    def checkout(self, user_id: int = 1, key: str | None = None) -> Any:
        headers = {**self.auth_header(user_id), **({"Idempotency-Key": key} if key else {})}
        return self.orders.post("/api/v1/orders", headers=headers)

    def order_list(self, user_id: int = 1) -> list[dict[str, Any]]:
        response = self.orders.get("/api/v1/orders?per_page=100", headers=self.auth_header(user_id))
        assert response.status_code == 200, response.json
        return response.json["items"]


def _dispose(app: Flask, db: Any) -> None:
    app.extensions["breakwater.client"].close()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def read_timeout() -> float:
    """Read timeout of order's calls to cart and product (fault tests make it short)."""
    return READ_TIMEOUT


@pytest.fixture
def make_order_app(keypair: tuple[str, str], read_timeout: float) -> Iterator[Callable[..., Flask]]:
    """`make_order_app(database_url, cart_url, product_url, **settings)` → a migrated order app."""
    from services.order.models import db

    apps: list[Flask] = []

    def make(database_url: str, cart_url: str, product_url: str, **settings: Any) -> Flask:
        app = create_order_app({
            "database_url": database_url, "token_public_key": keypair[1], "auto_migrate": True,
            "cart_url": cart_url, "product_url": product_url, "cart_read_timeout": read_timeout,
            "product_read_timeout": read_timeout, "testing": True, **settings})
        apps.append(app)
        return app

    yield make
    for app in apps:
        _dispose(app, db)


@pytest.fixture
def shop(keypair: tuple[str, str], database_url_for: Callable[[str], str],
         make_order_app: Callable[..., Flask], auth_header: Callable[..., dict]) -> Iterator[Shop]:
    """A shop on the current database backend, product stocked with three products."""
    from services.cart.models import db as cart_db

    product = FakeProduct()
    product.add(1, "Blue Mug", 1250, stock=10)
    product.add(2, "Tea Towel", 10, stock=100)
    product.add(3, "Teapot", 1999, stock=2)
    with UpstreamServer(product.app) as product_server:
        cart_app = create_cart_app({
            "database_url": database_url_for("cart"), "token_public_key": keypair[1],
            "auto_migrate": True, "product_url": product_server.url, "testing": True})
        with UpstreamServer(cart_app) as cart_server:
            order_app = make_order_app(database_url_for("order"), cart_server.url, product_server.url)
            yield Shop(product, product_server, cart_app, cart_server, order_app, auth_header)
        _dispose(cart_app, cart_db)
