"""Property-based API tests of order from its own OpenAPI document (schemathesis, bounded).

With cart and product answering, no response may be 5xx (`not_a_server_error` as shipped)
and every 2xx must match the documented schema. With both down, checkout's 503/504 are the
intended answer, so `not_a_server_error` is told to expect them and
`dependency_errors_are_explained` checks each names its dependency and says when to retry;
a 500 or an unexplained 503 still fails. Order history must stay 2xx/4xx either way.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from schemathesis.checks import not_a_server_error

from tests.services.cart.fakes import closed_port_url
from tests.services.cart.fuzzing import (
    EXPECT_DEPENDENCY_ERRORS,
    dependency_errors_are_explained,
    fuzz_api,
    success_bodies_match_the_schema,
)
from tests.services.order.conftest import Shop


@pytest.fixture
def db_backend() -> str:
    """Fuzzing is about the API, not the database: SQLite only."""
    return "sqlite"


def test_no_server_errors_with_cart_and_product_up(shop: Shop) -> None:
    shop.fill_cart(1, (1, 1))
    calls = fuzz_api(shop.order_app, shop.auth_header(1),
                     [not_a_server_error, success_bodies_match_the_schema])
    assert calls > 30
    assert shop.product.with_status("held") == []


def test_only_dependency_errors_with_cart_and_product_down(
        shop: Shop, make_order_app: Callable[..., Flask]) -> None:
    database = shop.order_app.config["SETTINGS"].database_url
    app = make_order_app(database, closed_port_url(), closed_port_url())
    fuzz_api(app, shop.auth_header(1), [not_a_server_error, dependency_errors_are_explained],
             config=EXPECT_DEPENDENCY_ERRORS)
