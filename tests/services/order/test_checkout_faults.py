"""Checkout when cart or product is down, slow or failing: a clear, fast error; nothing held,
no order half-made (the order is absent, or `failed` with its reason); retries work after."""

from __future__ import annotations

import time

import pytest

from tests.services.cart.fakes import closed_port_url
from tests.services.order.conftest import Shop

READ_TIMEOUT = 0.5
RESERVE, CONFIRM, RELEASE = (r"POST /api/v1/reservations", r"POST /api/v1/reservations/\d+/confirm",
                             r"POST /api/v1/reservations/\d+/release")
# Generous: a checkout may wait out a read timeout a few times (call, retry, undo), never 10 s.
FAST = 10 * READ_TIMEOUT + 3


@pytest.fixture
def read_timeout() -> float:
    """Short, so waiting out a slow upstream is quick."""
    return READ_TIMEOUT


@pytest.fixture
def db_backend() -> str:
    """Fault scenarios are about the network, not the database: SQLite only."""
    return "sqlite"


def assert_error(response, status: int, code: str, dependency: str) -> None:  # noqa: ANN001
    assert response.status_code == status, response.json
    assert response.json["error"]["code"] == code
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["X-Breakwater-Failed-Dependency"] == dependency


def assert_nothing_held(shop: Shop) -> None:
    assert (shop.product.stock(1), shop.product.stock(2)) == (10, 100)
    assert shop.product.with_status("held") == [] and shop.product.with_status("confirmed") == []


def assert_no_live_order(shop: Shop) -> list[dict]:
    orders = shop.order_list(1)
    assert all(o["status"] == "failed" and o["failure"]["code"] for o in orders), orders
    return orders


def timed_checkout(shop: Shop, key: str | None = None):  # noqa: ANN201
    started = time.monotonic()
    response = shop.checkout(1, key=key)
    elapsed = time.monotonic() - started
    assert elapsed < FAST, f"checkout took {elapsed:.1f}s with {READ_TIMEOUT}s read timeouts"
    return response


# --- cart ------------------------------------------------------------------------------------

def test_cart_down_is_503_cart_unavailable_and_nothing_is_reserved(shop: Shop) -> None:
    shop.fill_cart(1, (1, 2))
    shop.cart_server.stop()
    response = timed_checkout(shop)
    assert_error(response, 503, "cart_unavailable", "cart")
    assert shop.product.reservations == {}
    assert shop.order_list(1) == []


def test_cart_answering_500_is_503_cart_unavailable(shop: Shop) -> None:
    shop.fill_cart(1, (1, 2))
    shop.cart_server.fault(r"GET /api/v1/cart", "error")
    assert_error(timed_checkout(shop), 503, "cart_unavailable", "cart")
    assert shop.product.reservations == {} and shop.order_list(1) == []


def test_slow_cart_is_504_cart_timeout_within_the_timeout(shop: Shop) -> None:
    shop.fill_cart(1, (1, 2))
    shop.cart_server.fault(r"GET /api/v1/cart", "slow", delay=30)
    assert_error(timed_checkout(shop), 504, "cart_timeout", "cart")
    assert shop.product.reservations == {} and shop.order_list(1) == []


def test_cart_failing_to_empty_after_the_sale_does_not_fail_the_order(shop: Shop) -> None:
    shop.fill_cart(1, (1, 2))
    shop.cart_server.fault(r"POST /api/v1/cart/removals", "error")
    response = timed_checkout(shop)
    assert response.status_code == 201
    assert (response.json["status"], response.json["cart_cleared"]) == ("confirmed", False)
    assert shop.product.stock(1) == 8


# --- product ---------------------------------------------------------------------------------

def test_product_down_is_503_product_unavailable_and_the_order_failed(
        shop: Shop, make_order_app) -> None:  # noqa: ANN001
    shop.fill_cart(1, (1, 2), (2, 1))
    database = shop.order_app.config["SETTINGS"].database_url
    shop.order_app = make_order_app(database, shop.cart_server.url, closed_port_url())
    response = timed_checkout(shop)
    assert_error(response, 503, "product_unavailable", "product")
    assert_nothing_held(shop)
    [order] = assert_no_live_order(shop)
    assert order["failure"]["code"] == "product_unavailable"
    assert shop.cart_lines(1) == [(1, 2), (2, 1)]


def test_product_answering_500_to_the_reservation(shop: Shop) -> None:
    shop.fill_cart(1, (1, 2))
    shop.product_server.fault(RESERVE, "error", times=1)
    assert_error(timed_checkout(shop), 503, "product_unavailable", "product")
    assert_nothing_held(shop)
    assert_no_live_order(shop)


def test_slow_product_is_504_and_nothing_is_held(shop: Shop) -> None:
    shop.fill_cart(1, (1, 2))
    shop.product_server.fault(RESERVE, "slow", delay=30)
    assert_error(timed_checkout(shop), 504, "product_timeout", "product")
    assert_nothing_held(shop)
    [order] = assert_no_live_order(shop)
    assert order["failure"]["code"] == "product_timeout"


def test_a_reservation_whose_answer_was_lost_is_released(shop: Shop) -> None:
    shop.fill_cart(1, (1, 2))
    shop.product_server.fault(RESERVE, "lost", delay=30, times=1)  # held, but the answer is late
    response = timed_checkout(shop)
    assert_error(response, 504, "product_timeout", "product")
    assert_nothing_held(shop)
    assert [r["status"] for r in shop.product.reservations.values()] == ["released"]
    order = shop.orders.get(f"/api/v1/orders/{shop.order_list(1)[0]['id']}",
                            headers=shop.auth_header(1)).json
    assert (order["status"], order["reservation_state"]) == ("failed", "released")


def test_confirm_failing_releases_the_hold(shop: Shop) -> None:
    shop.fill_cart(1, (1, 2))
    shop.product_server.fault(CONFIRM, "error")
    assert_error(timed_checkout(shop), 503, "product_unavailable", "product")
    assert_nothing_held(shop)
    order = shop.orders.get(f"/api/v1/orders/{shop.order_list(1)[0]['id']}",
                            headers=shop.auth_header(1)).json
    assert [s["status"] for s in order["status_history"]] == ["pending", "failed"]
    assert order["reservation_state"] == "released"
    assert shop.cart_lines(1) == [(1, 2)]


def test_a_confirm_whose_answer_was_lost_still_makes_the_order(shop: Shop) -> None:
    shop.fill_cart(1, (1, 2))
    shop.product_server.fault(CONFIRM, "lost", delay=30, times=1)
    response = timed_checkout(shop)
    assert response.status_code == 201, response.json
    assert response.json["status"] == "confirmed"
    assert shop.product.stock(1) == 8
    assert [r["status"] for r in shop.product.reservations.values()] == ["confirmed"]


def test_confirm_and_release_both_failing_leave_the_order_to_the_reconciler(shop: Shop) -> None:
    shop.fill_cart(1, (1, 2))
    shop.product_server.fault(CONFIRM, "error")
    shop.product_server.fault(RELEASE, "error")
    assert_error(timed_checkout(shop, key="k"), 503, "product_unavailable", "product")
    order = shop.order(1)
    # Nobody knows whether the confirm happened: never `failed` with its key given back.
    assert (order["status"], order["reservation_state"]) == ("pending", "unknown")
    assert shop.checkout(1, key="k").json["error"]["code"] == "checkout_in_progress"
    shop.product_server.heal()
    assert shop.reconcile(after=11) == {"confirmed": 1}  # it had reached the confirm step
    assert (shop.order(1)["status"], shop.product.stock(1)) == ("confirmed", 8)
    assert shop.cart_lines(1) == []
    assert shop.checkout(1, key="k").status_code == 200


def test_a_retry_with_the_same_key_after_a_failure_succeeds(shop: Shop) -> None:
    shop.fill_cart(1, (1, 2))
    shop.product_server.fault(RESERVE, "error", times=1)
    assert timed_checkout(shop, key="retry-me").status_code == 503
    retry = shop.checkout(1, key="retry-me")
    assert retry.status_code == 201, retry.json
    replay = shop.checkout(1, key="retry-me")
    assert (replay.status_code, replay.json) == (200, retry.json)
    assert shop.product.stock(1) == 8
    assert [o["status"] for o in shop.order_list(1)] == ["confirmed", "failed"]


def test_naive_mode_gives_the_same_errors(shop: Shop, make_order_app) -> None:  # noqa: ANN001
    shop.fill_cart(1, (1, 1))
    database = shop.order_app.config["SETTINGS"].database_url
    shop.order_app = make_order_app(database, closed_port_url(), shop.product_server.url,
                                    resilience=False)
    assert_error(shop.checkout(1), 503, "cart_unavailable", "cart")


class ProcessDied(BaseException):
    """Stands in for the order process being killed in the middle of a checkout."""


def die(*_args: object, **_kwargs: object) -> None:
    raise ProcessDied


def test_a_checkout_that_died_before_confirming_is_released_by_the_next_retry(
        shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    from services.order import domain

    shop.fill_cart(1, (1, 2))
    with monkeypatch.context() as patch:
        patch.setattr(domain, "begin_confirm", die)  # killed between reserve and confirm
        with pytest.raises(ProcessDied):
            shop.checkout(1, key="crash")
    assert shop.product.stock(1) == 8 and len(shop.product.with_status("held")) == 1
    assert shop.checkout(1, key="crash").json["error"]["code"] == "checkout_in_progress"
    shop.age_orders(11)  # ... and the grace period passes
    retry = shop.checkout(1, key="crash")
    assert retry.status_code == 201, retry.json
    assert shop.product.stock(1) == 8  # the abandoned hold was released, the new one sold
    assert sorted(r["status"] for r in shop.product.reservations.values()) == ["confirmed", "released"]
    assert [(o["status"], (o["failure"] or {}).get("code")) for o in shop.order_list(1)] == \
        [("confirmed", None), ("failed", "checkout_abandoned")]


def test_a_checkout_that_died_while_confirming_is_confirmed_by_the_next_retry(
        shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    from services.order.upstreams import ShopUpstreams

    shop.fill_cart(1, (1, 2))
    with monkeypatch.context() as patch:
        patch.setattr(ShopUpstreams, "confirm", die)  # killed as it sent the confirm
        with pytest.raises(ProcessDied):
            shop.checkout(1, key="crash")
    shop.age_orders(11)
    retry = shop.checkout(1, key="crash")
    # The order had asked for the confirm: finishing it is what its client was waiting for.
    assert (retry.status_code, retry.json["status"]) == (200, "confirmed")
    assert [r["status"] for r in shop.product.reservations.values()] == ["confirmed"]
    assert len(shop.order_list(1)) == 1 and shop.cart_lines(1) == []
