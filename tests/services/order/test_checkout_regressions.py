"""The checkout defects found under kills and lost replies, one test each (they failed before
the state machine and the reconciler)."""

from __future__ import annotations

import pytest

from services.common.upstream_errors import UpstreamTimedOut, UpstreamUnavailable
from services.order.upstreams import is_uncertain
from tests.services.order.conftest import Shop

CONFIRM, RELEASE = r"POST /api/v1/reservations/\d+/confirm", r"POST /api/v1/reservations/\d+/release"


@pytest.fixture
def read_timeout() -> float:
    return 0.5


class ProcessDied(BaseException):
    """Stands in for the order process being SIGKILLed at that point."""


def die(*_args: object, **_kwargs: object) -> None:
    raise ProcessDied


def test_a_crash_after_products_confirm_is_replayed_as_the_confirmed_order(
        shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: the retry released by ref, ignored product's "confirmed", failed the order and
    checked out again — two confirmed reservations for one purchase."""
    from services.order import domain

    shop.fill_cart(1, (1, 2))
    with monkeypatch.context() as patch:
        patch.setattr(domain, "mark_confirmed", die)  # product confirmed; order never recorded it
        with pytest.raises(ProcessDied):
            shop.checkout(1, key="buy-1")
    shop.age_orders(60)  # past the point where the order counts as abandoned
    retry = shop.checkout(1, key="buy-1")
    assert (retry.status_code, retry.json["status"]) == (200, "confirmed")
    assert [r["status"] for r in shop.product.reservations.values()] == ["confirmed"]
    assert shop.product.stock(1) == 8
    assert [o["status"] for o in shop.order_list(1)] == ["confirmed"]
    assert [s["status"] for s in retry.json["status_history"]] == ["pending", "confirmed"]


def test_a_slow_original_request_cannot_flip_a_failed_order_to_confirmed(shop: Shop) -> None:
    """Before: mark_confirmed/mark_failed wrote the status whatever it was."""
    from services.order import domain
    from services.order.models import Order, db

    shop.fill_cart(1, (1, 2))
    assert shop.checkout(1).status_code == 201
    shop.fill_cart(1, (2, 1))
    with shop.order_app.app_context():
        items = [domain.CartItem(2, "Tea Towel", 10, 1)]
        order = domain.claim(1, "k", items)
        assert domain.mark_failed(order, "product_timeout", "no answer") is True
        assert domain.mark_confirmed(order, "the slow original's confirm") is False
        assert domain.begin_confirm(order, "7") is False  # nor may it go on to confirm
        confirmed = db.session.scalars(db.select(Order).where(Order.status == "confirmed")).one()
        assert domain.mark_failed(confirmed, "late", "a late failure") is False
        db.session.expire_all()
        assert (db.session.get(Order, order.id).status, confirmed.status) == ("failed", "confirmed")
        assert [c.status for c in db.session.get(Order, order.id).history] == ["pending", "failed"]
        db.session.remove()


def test_a_lost_confirm_reply_and_a_failed_release_never_free_the_key(shop: Shop) -> None:
    """Before: the order was marked failed with reservation `unknown` and its key given back;
    the confirmed sale stayed with a failed order and nothing ever looked at it again."""
    shop.fill_cart(1, (1, 2))
    shop.product_server.fault(CONFIRM, "lost", delay=30, times=1)  # confirmed, answer lost
    shop.product_server.fault(RELEASE, "error")
    response = shop.checkout(1, key="buy-2")
    assert response.status_code in (503, 504), response.json
    order = shop.order(1)
    assert (order["status"], order["reservation_state"]) == ("pending", "unknown")
    assert shop.checkout(1, key="buy-2").json["error"]["code"] == "checkout_in_progress"
    assert shop.reconcile(after=11) == {"confirmed": 1}
    replay = shop.checkout(1, key="buy-2")
    assert (replay.status_code, replay.json["id"]) == (200, order["id"])
    assert [r["status"] for r in shop.product.reservations.values()] == ["confirmed"]


@pytest.mark.parametrize(("error", "uncertain"), [
    # A reserve that timed out on one replica (the hold may be made), retried on another whose
    # breaker was open: the last attempt's reason says nothing was sent, the first one was.
    (UpstreamUnavailable("product", "breaker_open", uncertain=True), True),
    (UpstreamUnavailable("product", "connect_timeout", uncertain=True), True),
    (UpstreamTimedOut("product", 1.0), True),
    # Refused everywhere: nothing reached product, there is nothing to undo.
    (UpstreamUnavailable("product", "connection_failed", uncertain=False), False),
    (UpstreamUnavailable("product", "bulkhead_full", uncertain=False), False),
])
def test_a_call_is_uncertain_if_any_attempt_may_have_reached_the_server(error, uncertain) -> None:
    assert is_uncertain(error) is uncertain


def test_an_uncertain_reserve_is_looked_up_and_released(shop: Shop, make_order_app) -> None:  # noqa: ANN001
    """Before: the reserve's last reason decided, and a hold made on the first replica leaked."""
    from tests.services.cart.fakes import closed_port_url

    shop.fill_cart(1, (1, 2))
    database = shop.order_app.config["SETTINGS"].database_url
    shop.order_app = make_order_app(database, shop.cart_server.url,
                                    f"{closed_port_url()},{shop.product_server.url}")
    shop.product_server.fault(r"POST /api/v1/reservations", "lost", delay=30, times=1)
    response = shop.checkout(1)
    assert response.status_code in (503, 504), response.json
    assert [r["status"] for r in shop.product.reservations.values()] == ["released"]
    assert shop.product.stock(1) == 10
    assert (shop.order(1)["status"], shop.order(1)["reservation_state"]) == ("failed", "released")


def test_only_the_ordered_lines_leave_the_cart_and_a_failed_clear_is_retried(shop: Shop) -> None:
    """Before: the whole cart was deleted (lines added meanwhile in another tab too), and a
    failed clear was recorded and never tried again."""
    shop.fill_cart(1, (1, 2), (2, 3))
    shop.cart_server.fault(r"POST /api/v1/cart/removals", "error")
    response = shop.checkout(1)
    assert (response.json["status"], response.json["cart_cleared"]) == ("confirmed", False)
    shop.fill_cart(1, (2, 1), (3, 1))  # meanwhile, in another tab
    assert shop.reconcile(after=11) == {"cart_not_cleared": 1}
    shop.cart_server.heal()
    assert shop.reconcile(after=30) == {"cart_cleared": 1}
    assert shop.cart_lines(1) == [(2, 1), (3, 1)]
    assert shop.order(1)["cart_cleared"] is True
    assert shop.reconcile(after=30) == {}
