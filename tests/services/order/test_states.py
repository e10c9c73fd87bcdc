"""The order state machine: only pending moves, only to a final state, every move recorded."""

from __future__ import annotations

import pytest

from services.order import domain, states
from services.order.models import Order, db
from services.order.upstreams import CartItem
from tests.services.order.conftest import Shop


def test_transitions_are_guarded_and_recorded(shop: Shop) -> None:
    with shop.order_app.app_context():
        order = domain.claim(1, "k1", [CartItem(1, "Blue Mug", 1250, 1)])
        with pytest.raises(states.IllegalTransition):
            states.transition(order, "pending", "back to the start")
        assert states.transition(order, "confirmed", "stock reserved and confirmed") is True
        assert states.transition(order, "confirmed", "twice") is False
        assert states.transition(order, "failed", "too late", failure_code="late") is False
        db.session.expire_all()
        stored = db.session.get(Order, order.id)
        assert (stored.status, stored.idempotency_key, stored.failure_code) == ("confirmed", "k1", None)
        assert [(c.status, c.note) for c in stored.history] == [
            ("pending", "checkout started"), ("confirmed", "stock reserved and confirmed")]
        db.session.remove()


def test_a_failure_records_its_reason_and_frees_the_key(shop: Shop) -> None:
    with shop.order_app.app_context():
        order = domain.claim(1, "k2", [CartItem(1, "Blue Mug", 1250, 1)])
        assert domain.mark_failed(order, "insufficient_stock", "only 1 left",
                                  reservation_state="none") is True
        assert domain.note_reservation(order, "9", "held") is False  # not pending: untouched
        db.session.expire_all()
        stored = db.session.get(Order, order.id)
        assert (stored.status, stored.idempotency_key, stored.reservation_state) == \
            ("failed", None, "none")
        assert stored.history[-1].note == "insufficient_stock: only 1 left"
        db.session.remove()
