"""Cart lines under checkout: concurrent adds never lose an update, and an order takes exactly
its own lines out of the cart, once, only when the order service asks."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.common.service_identity import ACTING_USER_HEADER

REMOVALS = "/api/v1/cart/removals"


def lines_of(client: FlaskClient, headers: dict[str, str]) -> list[tuple[int, int]]:
    body = client.get("/api/v1/cart", headers=headers).json
    return [(line["product_id"], line["quantity"]) for line in body["lines"]]


def add(client: FlaskClient, headers: dict[str, str], product_id: int, quantity: int) -> int:
    return client.post("/api/v1/cart/items", headers=headers,
                       json={"product_id": product_id, "quantity": quantity}).status_code


def test_concurrent_adds_to_one_line_all_count(cart_app: Flask, auth_header: Callable) -> None:
    """Regression: on SQLite `with_for_update` is a no-op and the quantity was written as an
    absolute value, so two adds that read the same quantity lost one of them."""
    headers = auth_header(1)
    assert add(cart_app.test_client(), headers, 2, 1) == 201
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: add(cart_app.test_client(), headers, 2, 1), range(40)))
    assert codes == [200] * 40
    assert lines_of(cart_app.test_client(), headers) == [(2, 41)]


def test_concurrent_adds_never_pass_the_line_limit(cart_app: Flask, auth_header: Callable) -> None:
    headers = auth_header(1)
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: add(cart_app.test_client(), headers, 2, 7), range(20)))
    assert codes.count(201) == 1 and codes.count(200) == 13 and codes.count(422) == 6
    assert lines_of(cart_app.test_client(), headers) == [(2, 98)]


def removal(order_ref: str, *lines: tuple[int, int]) -> dict:
    return {"order_ref": order_ref,
            "lines": [{"product_id": pid, "quantity": qty} for pid, qty in lines]}


def test_an_order_removes_exactly_its_lines_once(client: FlaskClient, auth_header: Callable,
                                                 service_header: Callable) -> None:
    """Regression: clearing after checkout deleted every line, even ones added meanwhile."""
    shopper = auth_header(1)
    add(client, shopper, 1, 2)
    add(client, shopper, 2, 5)
    # Ordered: 2 of product 1 and 3 of product 2. Meanwhile, in another tab: one more of
    # product 2 and a new product 3.
    add(client, shopper, 2, 1)
    add(client, shopper, 3, 1)
    response = client.post(REMOVALS, json=removal("ord-1", (1, 2), (2, 3)), headers=service_header(1))
    assert response.status_code == 200, response.json
    assert response.json == {"order_ref": "ord-1", "applied": True}
    assert lines_of(client, shopper) == [(2, 3), (3, 1)]
    # A retry (its first answer lost) changes nothing more.
    again = client.post(REMOVALS, json=removal("ord-1", (1, 2), (2, 3)), headers=service_header(1))
    assert again.json == {"order_ref": "ord-1", "applied": False}
    assert lines_of(client, shopper) == [(2, 3), (3, 1)]


def test_removals_touch_only_the_acting_users_cart(client: FlaskClient, auth_header: Callable,
                                                   service_header: Callable) -> None:
    add(client, auth_header(1), 1, 2)
    add(client, auth_header(2), 1, 2)
    client.post(REMOVALS, json=removal("ord-2", (1, 5)), headers=service_header(2))
    assert lines_of(client, auth_header(1)) == [(1, 2)]
    assert lines_of(client, auth_header(2)) == []


@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_removals_are_for_the_order_service_only(client: FlaskClient, make_token: Callable,
                                                 service_header: Callable) -> None:
    shopper = {"Authorization": f"Bearer {make_token(1)}", ACTING_USER_HEADER: "1"}
    add(client, shopper, 1, 2)
    refused = client.post(REMOVALS, json=removal("ord-3", (1, 2)), headers=shopper)
    assert refused.status_code == 403 and refused.json["error"]["code"] == "service_only"
    assert client.post(REMOVALS, json=removal("ord-3", (1, 2))).status_code == 401
    assert lines_of(client, shopper) == [(1, 2)]


@pytest.mark.parametrize("db_backend", ["sqlite"])
@pytest.mark.parametrize("body", [{}, {"order_ref": "x"}, {"order_ref": "x", "lines": []},
                                  removal("", (1, 1)), removal("bad ref", (1, 1)),
                                  removal("x", (0, 1)), removal("x", (1, 0))])
def test_malformed_removals_are_422(client: FlaskClient, service_header: Callable, body) -> None:
    assert client.post(REMOVALS, json=body, headers=service_header(1)).status_code == 422
