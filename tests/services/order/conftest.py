"""Fixtures of the order tests: fake product, the real cart and auth apps served on loopback
ports (auth issues order's service token), and a migrated order app per backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.auth import create_app as create_auth_app
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

    def order(self, user_id: int = 1, index: int = 0) -> dict[str, Any]:
        """The user's `index`-th newest order in full (history, reservation state …)."""
        order_id = self.order_list(user_id)[index]["id"]
        return self.orders.get(f"/api/v1/orders/{order_id}", headers=self.auth_header(user_id)).json

    def age_orders(self, seconds: float) -> None:
        """Make every order look `seconds` older (as if that much time had passed)."""
        from datetime import timedelta

        from services.order.models import Order, db

        shift = timedelta(seconds=seconds)
        with self.order_app.app_context():
            for order in db.session.scalars(db.select(Order)).all():
                db.session.execute(db.update(Order).where(Order.id == order.id).values(
                    created_at=order.created_at - shift, updated_at=order.updated_at - shift,
                    next_reconcile_at=(order.next_reconcile_at - shift
                                       if order.next_reconcile_at else None)))
            db.session.commit()
            db.session.remove()

    def reconcile(self, after: float = 0.0) -> dict[str, int]:
        """One reconciler pass, `after` seconds from now (as its clock sees it)."""
        self.age_orders(after)
        return self.order_app.extensions["order.reconciler"].run_once()

    def order_list(self, user_id: int = 1) -> list[dict[str, Any]]:
        response = self.orders.get("/api/v1/orders?per_page=100", headers=self.auth_header(user_id))
        assert response.status_code == 200, response.json
        return response.json["items"]


def _dispose(app: Flask, db: Any) -> None:
    app.extensions["breakwater.client"].close()
    task = app.extensions.get("order.reconciler_task")
    if task is not None:
        task.stop()
    _dispose_db(app, db)


def _dispose_db(app: Flask, db: Any) -> None:
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def read_timeout() -> float:
    """Read timeout of order's calls to cart and product (fault tests make it short)."""
    return READ_TIMEOUT


@pytest.fixture
def auth_server(keypair: tuple[str, str], tmp_path: Any) -> Iterator[UpstreamServer]:
    """The real auth app, served: it issues order's service token (the secret is the one local
    mode generates in the test's own var folder, which order reads too)."""
    from services.auth.models import db as auth_db

    app = create_auth_app({"database_url": f"sqlite:///{tmp_path / 'auth.db'}",
                           "token_private_key": keypair[0], "auto_migrate": True,
                           "password_hash_method": "scrypt:1024:8:1", "testing": True})
    with UpstreamServer(app) as server:
        yield server
    _dispose_db(app, auth_db)


@pytest.fixture
def make_order_app(keypair: tuple[str, str], read_timeout: float,
                   auth_server: UpstreamServer) -> Iterator[Callable[..., Flask]]:
    """`make_order_app(database_url, cart_url, product_url, **settings)` → a migrated order app
    (its reconciler thread off: tests run passes themselves, `clock=` is its clock)."""
    from services.order.models import db

    apps: list[Flask] = []

    def make(database_url: str, cart_url: str, product_url: str, *, clock: Any = None,
             **settings: Any) -> Flask:
        config = {
            "database_url": database_url, "token_public_key": keypair[1], "auto_migrate": True,
            "cart_url": cart_url, "product_url": product_url, "cart_read_timeout": read_timeout,
            "product_read_timeout": read_timeout, "auth_url": auth_server.url, "testing": True,
            "reconciler": False, **settings}
        app = create_order_app(config, clock=clock) if clock else create_order_app(config)
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
