"""The cart API through the Flask test client, on SQLite and on MariaDB."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from tests.services.cart.fakes import FakeProduct

CART, ITEMS = "/api/v1/cart", "/api/v1/cart/items"


def test_a_new_cart_is_empty(client: FlaskClient, auth_header: Callable[..., dict]) -> None:
    response = client.get(CART, headers=auth_header(1))
    assert response.status_code == 200
    assert response.json == {"user_id": 1, "lines": [], "line_count": 0, "item_count": 0,
                             "total": "0.00", "total_cents": 0}


def test_adding_snapshots_name_and_price_and_totals_are_exact(
        client: FlaskClient, auth_header: Callable[..., dict]) -> None:
    first = client.post(ITEMS, json={"product_id": 1, "quantity": 2}, headers=auth_header(1))
    assert first.status_code == 201
    second = client.post(ITEMS, json={"product_id": 2, "quantity": 3}, headers=auth_header(1))
    assert second.status_code == 201
    cart = second.json
    assert [(line["product_id"], line["name"], line["unit_price"], line["quantity"], line["line_total"])
            for line in cart["lines"]] == [(1, "Blue Mug", "12.50", 2, "25.00"),
                                           (2, "Tea Towel", "0.10", 3, "0.30")]
    assert (cart["total"], cart["total_cents"], cart["item_count"], cart["line_count"]) == \
        ("25.30", 2530, 5, 2)


def test_adding_a_product_already_in_the_cart_adds_to_its_quantity(
        client: FlaskClient, auth_header: Callable[..., dict]) -> None:
    client.post(ITEMS, json={"product_id": 1, "quantity": 2}, headers=auth_header(1))
    response = client.post(ITEMS, json={"product_id": 1}, headers=auth_header(1))
    assert response.status_code == 200
    assert [(line["product_id"], line["quantity"]) for line in response.json["lines"]] == [(1, 3)]


def test_the_snapshot_price_stays_when_product_changes_its_price(
        client: FlaskClient, auth_header: Callable[..., dict], product: FakeProduct) -> None:
    client.post(ITEMS, json={"product_id": 1, "quantity": 1}, headers=auth_header(1))
    product.products[1]["price_cents"] = 9999
    assert client.get(CART, headers=auth_header(1)).json["total"] == "12.50"


def test_quantity_above_the_line_limit_is_refused(
        client: FlaskClient, auth_header: Callable[..., dict]) -> None:
    client.post(ITEMS, json={"product_id": 2, "quantity": 99}, headers=auth_header(1))
    response = client.post(ITEMS, json={"product_id": 2, "quantity": 1}, headers=auth_header(1))
    assert response.status_code == 422
    assert response.json["error"]["code"] == "quantity_limit"


def test_more_than_the_stock_is_refused(client: FlaskClient, auth_header: Callable[..., dict]) -> None:
    response = client.post(ITEMS, json={"product_id": 3, "quantity": 3}, headers=auth_header(1))
    assert response.status_code == 409
    assert response.json["error"]["code"] == "insufficient_stock"
    assert response.json["error"]["details"] == {"product_id": 3, "requested": 3, "available": 2}


def test_an_unknown_product_is_a_clear_404(client: FlaskClient, auth_header: Callable[..., dict]) -> None:
    response = client.post(ITEMS, json={"product_id": 404}, headers=auth_header(1))
    assert response.status_code == 404
    assert response.json["error"]["code"] == "product_not_found"
    assert client.get(CART, headers=auth_header(1)).json["lines"] == []


@pytest.mark.parametrize("method", ["put", "patch"])
def test_changing_the_quantity(client: FlaskClient, auth_header: Callable[..., dict], method: str) -> None:
    client.post(ITEMS, json={"product_id": 1, "quantity": 2}, headers=auth_header(1))
    response = getattr(client, method)(f"{ITEMS}/1", json={"quantity": 5}, headers=auth_header(1))
    assert response.status_code == 200
    assert (response.json["lines"][0]["quantity"], response.json["total"]) == (5, "62.50")


def test_changing_or_removing_a_product_not_in_the_cart_is_404(
        client: FlaskClient, auth_header: Callable[..., dict]) -> None:
    for response in (client.put(f"{ITEMS}/1", json={"quantity": 1}, headers=auth_header(1)),
                     client.delete(f"{ITEMS}/1", headers=auth_header(1)),
                     client.delete(f"{ITEMS}/{2**63}", headers=auth_header(1))):
        assert response.status_code == 404
        assert response.json["error"]["code"] == "cart_item_not_found"


def test_removing_an_item_and_clearing_the_cart(
        client: FlaskClient, auth_header: Callable[..., dict]) -> None:
    client.post(ITEMS, json={"product_id": 1}, headers=auth_header(1))
    client.post(ITEMS, json={"product_id": 2}, headers=auth_header(1))
    removed = client.delete(f"{ITEMS}/1", headers=auth_header(1))
    assert removed.status_code == 200
    assert [line["product_id"] for line in removed.json["lines"]] == [2]
    cleared = client.delete(CART, headers=auth_header(1))
    assert (cleared.status_code, cleared.data) == (204, b"")
    assert client.get(CART, headers=auth_header(1)).json["line_count"] == 0


def test_users_only_ever_see_and_change_their_own_cart(
        client: FlaskClient, auth_header: Callable[..., dict]) -> None:
    client.post(ITEMS, json={"product_id": 1, "quantity": 2}, headers=auth_header(1))
    assert client.get(CART, headers=auth_header(2)).json["lines"] == []
    assert client.put(f"{ITEMS}/1", json={"quantity": 9}, headers=auth_header(2)).status_code == 404
    assert client.delete(f"{ITEMS}/1", headers=auth_header(2)).status_code == 404
    assert client.delete(CART, headers=auth_header(2)).status_code == 204
    assert client.get(CART, headers=auth_header(1)).json["item_count"] == 2


@pytest.mark.parametrize("body", [
    {"product_id": "1"}, {"product_id": 1.5}, {"product_id": True}, {"product_id": None},
    {"product_id": 1, "quantity": 0}, {"product_id": 1, "quantity": -1},
    {"product_id": 1, "quantity": 100}, {"product_id": 1, "quantity": "2"},
    {"product_id": 0}, {"product_id": 2**31}, {"quantity": 1}, {"product_id": 1, "colour": "red"},
    [], "text", 7,
])
def test_invalid_items_are_422(client: FlaskClient, auth_header: Callable[..., dict], body: object) -> None:
    response = client.post(ITEMS, json=body, headers=auth_header(1))
    assert response.status_code == 422, response.json
    assert response.json["error"]["code"] == "invalid_field"


@pytest.mark.parametrize("body", [{}, {"quantity": 0}, {"quantity": 1.0}, {"quantity": None}])
def test_invalid_quantity_changes_are_422(
        client: FlaskClient, auth_header: Callable[..., dict], body: dict) -> None:
    client.post(ITEMS, json={"product_id": 1}, headers=auth_header(1))
    assert client.patch(f"{ITEMS}/1", json=body, headers=auth_header(1)).status_code == 422


def test_malformed_json_is_400(client: FlaskClient, auth_header: Callable[..., dict]) -> None:
    response = client.post(ITEMS, data='{"product_id": 1', content_type="application/json",
                           headers=auth_header(1))
    assert response.status_code == 400
    assert response.json["error"]["code"] == "bad_request"


def test_wrong_content_type_is_415(client: FlaskClient, auth_header: Callable[..., dict]) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        response = client.post(ITEMS, data="product_id=1", content_type=content_type,
                               headers=auth_header(1))
        assert response.status_code == 415
        assert response.json["error"]["code"] == "unsupported_media_type"


def test_a_huge_body_is_413(client: FlaskClient, auth_header: Callable[..., dict]) -> None:
    body = '{"product_id": 1, "pad": "' + "x" * 300_000 + '"}'
    response = client.post(ITEMS, data=body, content_type="application/json", headers=auth_header(1))
    assert response.status_code == 413
    assert response.json["error"]["code"] == "payload_too_large"


def test_requests_without_a_valid_token_are_401(
        client: FlaskClient, make_token: Callable[..., str]) -> None:
    expired = make_token(1, ttl=60, now=time.time() - 3600)
    cases = [({}, "missing_token"), ({"Authorization": "Bearer nonsense"}, "invalid_token"),
             ({"Authorization": "Basic dXNlcjpwdw=="}, "invalid_token"),
             ({"Authorization": f"Bearer {expired}"}, "token_expired")]
    for headers, code in cases:
        for response in (client.get(CART, headers=headers),
                         client.post(ITEMS, json={"product_id": 1}, headers=headers),
                         client.delete(CART, headers=headers)):
            assert response.status_code == 401
            assert response.json["error"]["code"] == code


def test_readiness_is_the_database_only(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert set(response.json["checks"]) == {"database"}


def test_the_openapi_document_lists_the_cart_api(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").json["paths"]
    assert set(paths) == {"/api/v1/cart", "/api/v1/cart/items", "/api/v1/cart/items/{product_id}",
                          "/api/v1/cart/removals"}
