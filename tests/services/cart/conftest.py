"""Fixtures of the cart tests: a fake product upstream and a migrated cart app per backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.cart import create_app
from tests.services.cart.fakes import FakeProduct, UpstreamServer


@pytest.fixture
def product() -> FakeProduct:
    """A catalog of three products."""
    fake = FakeProduct()
    fake.add(1, "Blue Mug", 1250, stock=10)
    fake.add(2, "Tea Towel", 10, stock=100)
    fake.add(3, "Teapot", 1999, stock=2)
    return fake


@pytest.fixture
def product_server(product: FakeProduct) -> Iterator[UpstreamServer]:
    """The fake product served on a loopback port."""
    with UpstreamServer(product.app) as server:
        yield server


@pytest.fixture
def make_cart_app(keypair: tuple[str, str], tmp_path: Any) -> Callable[..., Flask]:
    """`make_cart_app(database_url, product_url, **settings)` → a migrated cart app."""

    def make(database_url: str, product_url: str, **settings: Any) -> Flask:
        config = {"database_url": database_url, "token_public_key": keypair[1], "auto_migrate": True,
                  "product_url": product_url, "product_read_timeout": 1.0, "testing": True, **settings}
        return create_app(config)

    return make


@pytest.fixture
def cart_app(make_cart_app: Callable[..., Flask], database_url_for: Callable[[str], str],
             product_server: UpstreamServer) -> Iterator[Flask]:
    """The cart app on a fresh database of the current backend, product faked."""
    app = make_cart_app(database_url_for("cart"), product_server.url)
    yield app
    app.extensions["breakwater.client"].close()
    with app.app_context():
        from services.cart.models import db

        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(cart_app: Flask) -> FlaskClient:
    """A test client of the cart app."""
    return cart_app.test_client()
