"""Checkout and order history through the Flask test client, on SQLite and on MariaDB."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from tests.services.order.conftest import Shop

ORDERS = "/api/v1/orders"


def test_checkout_confirms_the_order_reserves_stock_and_empties_the_cart(shop: Shop) -> None:
    shop.fill_cart(1, (1, 2), (2, 3))
    response = shop.checkout(1)
    assert response.status_code == 201, response.json
    order = response.json
    assert (order["status"], order["total"], order["total_cents"], order["item_count"]) == \
        ("confirmed", "25.30", 2530, 5)
    assert [(li["product_id"], li["quantity"], li["unit_price"], li["line_total"])
            for li in order["lines"]] == [(1, 2, "12.50", "25.00"), (2, 3, "0.10", "0.30")]
    assert [step["status"] for step in order["status_history"]] == ["pending", "confirmed"]
    assert all(step["at"] for step in order["status_history"])
    assert (order["reservation_state"], order["cart_cleared"], order["failure"]) == \
        ("confirmed", True, None)
    assert (shop.product.stock(1), shop.product.stock(2)) == (8, 97)
    assert [r["status"] for r in shop.product.reservations.values()] == ["confirmed"]
    assert shop.cart_lines(1) == []
    shown = shop.orders.get(f"{ORDERS}/{order['id']}", headers=shop.auth_header(1))
    assert (shown.status_code, shown.json) == (200, order)


def test_an_empty_cart_cannot_be_checked_out(shop: Shop) -> None:
    response = shop.checkout(1)
    assert response.status_code == 409
    assert response.json["error"]["code"] == "cart_empty"
    assert shop.order_list(1) == []
    assert shop.product.reservations == {}


def test_insufficient_stock_fails_the_order_and_holds_nothing(shop: Shop) -> None:
    shop.fill_cart(1, (1, 1), (3, 2))
    shop.product.products[3]["stock"] = 1  # somebody bought a teapot meanwhile
    response = shop.checkout(1)
    assert response.status_code == 409
    assert response.json["error"]["code"] == "insufficient_stock"
    assert (shop.product.stock(1), shop.product.stock(3)) == (10, 1)
    [order] = shop.order_list(1)
    assert (order["status"], order["failure"]["code"]) == ("failed", "insufficient_stock")
    assert shop.cart_lines(1) == [(1, 1), (3, 2)]  # the cart is left for the user to fix


def test_the_same_idempotency_key_returns_the_first_order(shop: Shop) -> None:
    shop.fill_cart(1, (1, 2))
    first = shop.checkout(1, key="k-1")
    shop.fill_cart(1, (2, 1))  # even if the cart changed since
    second = shop.checkout(1, key="k-1")
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json == first.json
    assert len(shop.product.reservations) == 1
    assert shop.product.stock(1) == 8
    assert len(shop.order_list(1)) == 1


def test_the_same_key_from_another_user_is_another_order(shop: Shop) -> None:
    shop.fill_cart(1, (1, 1))
    shop.fill_cart(2, (1, 1))
    assert shop.checkout(1, key="shared").status_code == 201
    assert shop.checkout(2, key="shared").status_code == 201
    assert shop.product.stock(1) == 8


def test_concurrent_duplicates_make_one_order_and_reserve_once(shop: Shop) -> None:
    shop.fill_cart(1, (1, 3))
    barrier = threading.Barrier(6)
    results: list[tuple[int, dict]] = []

    def buy() -> None:
        client = shop.order_app.test_client()
        barrier.wait(timeout=10)
        response = client.post(ORDERS, headers={**shop.auth_header(1), "Idempotency-Key": "same"})
        results.append((response.status_code, response.json))

    threads = [threading.Thread(target=buy) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    statuses = sorted(status for status, _ in results)
    assert len(results) == 6 and statuses.count(201) == 1, results
    assert set(statuses) <= {200, 201, 409}, results
    in_progress = [body for status, body in results if status == 409]
    assert all(body["error"]["code"] == "checkout_in_progress" for body in in_progress), in_progress
    assert len(shop.product.reservations) == 1
    assert shop.product.stock(1) == 7
    [order] = shop.order_list(1)
    assert order["status"] == "confirmed"
    # Once it is done, every retry gets it.
    again = shop.checkout(1, key="same")
    assert (again.status_code, again.json["id"]) == (200, order["id"])


def test_orders_are_listed_newest_first_and_paged(shop: Shop) -> None:
    ids = []
    for _ in range(3):
        shop.fill_cart(1, (2, 1))
        ids.append(shop.checkout(1).json["id"])
    page = shop.orders.get(f"{ORDERS}?page=1&per_page=2", headers=shop.auth_header(1)).json
    assert [o["id"] for o in page["items"]] == ids[:0:-1]
    assert (page["total"], page["pages"], page["page"], page["per_page"]) == (3, 2, 1, 2)
    page2 = shop.orders.get(f"{ORDERS}?page=2&per_page=2", headers=shop.auth_header(1)).json
    assert [o["id"] for o in page2["items"]] == [ids[0]]


def test_users_see_only_their_own_orders(shop: Shop) -> None:
    shop.fill_cart(1, (1, 1))
    order_id = shop.checkout(1).json["id"]
    assert shop.order_list(2) == []
    response = shop.orders.get(f"{ORDERS}/{order_id}", headers=shop.auth_header(2))
    assert response.status_code == 404
    assert response.json["error"]["code"] == "order_not_found"


@pytest.mark.parametrize("path", [f"{ORDERS}/999", f"{ORDERS}/{2**64}"])
def test_unknown_orders_are_404(shop: Shop, path: str) -> None:
    assert shop.orders.get(path, headers=shop.auth_header(1)).status_code == 404


@pytest.mark.parametrize("query", ["page=0", "per_page=0", "per_page=101", "page=x"])
def test_bad_paging_is_422(shop: Shop, query: str) -> None:
    response = shop.orders.get(f"{ORDERS}?{query}", headers=shop.auth_header(1))
    assert response.status_code == 422
    assert response.json["error"]["code"] == "invalid_field"


@pytest.mark.parametrize("key", ["k" * 129, "has space", "tab\tkey"])
def test_a_bad_idempotency_key_is_422(shop: Shop, key: str) -> None:
    shop.fill_cart(1, (1, 1))
    response = shop.orders.post(ORDERS, headers={**shop.auth_header(1), "Idempotency-Key": key})
    assert response.status_code == 422
    assert shop.product.reservations == {}


def test_checkout_bodies_must_be_json_and_small(shop: Shop) -> None:
    shop.fill_cart(1, (1, 1))
    headers = shop.auth_header(1)
    plain = shop.orders.post(ORDERS, data="buy", content_type="text/plain", headers=headers)
    assert plain.status_code == 415
    huge = shop.orders.post(ORDERS, data="x" * 300_000, content_type="application/json", headers=headers)
    assert huge.status_code == 413
    assert shop.product.reservations == {}


def test_order_endpoints_need_a_valid_token(shop: Shop, make_token: Callable[..., str]) -> None:
    expired = make_token(1, ttl=60, now=time.time() - 3600)
    for headers in ({}, {"Authorization": "Bearer junk"}, {"Authorization": f"Bearer {expired}"}):
        for response in (shop.orders.post(ORDERS, headers=headers), shop.orders.get(ORDERS, headers=headers),
                         shop.orders.get(f"{ORDERS}/1", headers=headers)):
            assert response.status_code == 401


def test_history_and_readiness_do_not_need_cart_or_product(shop: Shop) -> None:
    shop.fill_cart(1, (1, 1))
    order = shop.checkout(1).json
    shop.cart_server.stop()
    shop.product_server.stop()
    assert shop.order_list(1)[0]["id"] == order["id"]
    assert shop.orders.get(f"{ORDERS}/{order['id']}", headers=shop.auth_header(1)).json == order
    ready = shop.orders.get("/readyz")
    assert ready.status_code == 200 and set(ready.json["checks"]) == {"database"}


@pytest.mark.parametrize(("body", "status"), [('{"x": 1}', 422), ("[]", 422), ('{"a":', 400)])
def test_checkout_takes_no_fields(shop: Shop, body: str, status: int) -> None:
    shop.fill_cart(1, (1, 1))
    response = shop.orders.post(ORDERS, data=body, content_type="application/json",
                                headers=shop.auth_header(1))
    assert response.status_code == status
    assert shop.product.reservations == {}


def test_checkout_with_an_empty_json_object_works(shop: Shop) -> None:
    shop.fill_cart(1, (1, 1))
    response = shop.orders.post(ORDERS, json={}, headers=shop.auth_header(1))
    assert response.status_code == 201
