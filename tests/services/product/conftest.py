"""Fixtures of the product suite: an app on a fresh, migrated database, a clock, helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import flask_migrate
import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.product import create_app
from services.product.models import db


class FakeClock:
    """A naive-UTC clock that moves only when told to."""

    def __init__(self, start: datetime = datetime(2030, 1, 1, 12, 0, 0)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        """Move forward and return the new time."""
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    """The clock the product app reads."""
    return FakeClock()


@pytest.fixture
def make_app(
    database_url_for: Callable[[str], str], key_files: tuple[Path, Path], clock: FakeClock
) -> Iterator[Callable[..., Flask]]:
    """`make_app(**settings)` → a product app on a migrated database of the current backend."""
    apps: list[Flask] = []
    url = database_url_for("product")

    def make(**overrides: object) -> Flask:
        config = {"database_url": url, "token_public_key_file": str(key_files[1]), "testing": True,
                  "hold_sweep_interval_seconds": 0}
        app = create_app({**config, **overrides}, clock=clock)
        with app.app_context():
            flask_migrate.upgrade()
        apps.append(app)
        return app

    yield make
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def auth_header(service_header: Callable[..., dict[str, str]]) -> Callable[..., dict[str, str]]:
    """Reservations take only the order service's token: `auth_header(user_id)` here is order
    acting for that user (a shopper's own token is refused, see test_service_identity.py)."""
    return service_header


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """The product app with default test settings."""
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of `app`."""
    return app.test_client()


@pytest.fixture(scope="session")
def admin_header(make_token: Callable[..., str]) -> dict[str, str]:
    """An Authorization header of an admin (catalog writes need one)."""
    return {"Authorization": f"Bearer {make_token(900, membership='admin')}"}


@pytest.fixture
def admin_client(app: Flask, admin_header: dict[str, str]) -> FlaskClient:
    """A test client of `app` that sends an admin's token with every request."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = admin_header["Authorization"]
    return client


@pytest.fixture
def add_product(client: FlaskClient, admin_header: dict[str, str]) -> Callable[..., dict]:
    """`add_product(slug, stock=…, price=…)` → the created product (asserts 201)."""

    def create(slug: str = "widget", *, stock: int = 10, price: str = "12.50", name: str = "") -> dict:
        body = {"name": name or slug.title(), "slug": slug, "price": price, "stock": stock}
        response = client.post("/api/v1/products", json=body, headers=admin_header)
        assert response.status_code == 201, response.json
        return response.json

    return create


@pytest.fixture
def reserve(client: FlaskClient, auth_header: Callable[[int], dict[str, str]]) -> Callable[..., object]:
    """`reserve(order_ref, [(product_id, quantity)], user=1)` → the response."""

    def post(order_ref: str, lines: list[tuple[int, int]], *, user: int = 1):
        body = {"order_ref": order_ref,
                "lines": [{"product_id": pid, "quantity": qty} for pid, qty in lines]}
        return client.post("/api/v1/reservations", json=body, headers=auth_header(user))

    return post


def stock_of(client: FlaskClient, product: dict | int | str) -> int:
    """A product's available units, read through the API."""
    key = product["id"] if isinstance(product, dict) else product
    return client.get(f"/api/v1/products/{key}").json["stock"]
