"""Resolving an order left pending by a crash or a lost reply: product decides.

Product's reservation for the order's ref is the truth. Asked by ref, it says:
- confirmed            → the sale happened: the order is confirmed;
- held                 → confirm it if the order reached the confirm step (its confirm may have
                          gone through, and its client may be waiting for it), else release it;
- released / expired / none → nothing is held or sold: the order failed.
Each step is idempotent at product and guarded in order's database (states.py), so it is
safe to run from a retried request and from any number of order instances at once.
"""

from __future__ import annotations

import logging
from datetime import datetime

from services.common.errors import Conflict
from services.order import domain
from services.order.models import CONFIRMED, PENDING, Order
from services.order.upstreams import CartItem, ShopUpstreams

log = logging.getLogger(__name__)

# What resolving one order came to (also the `outcome` label of breakwater_reconciled_total).
CONFIRMED_OUTCOME, FAILED_OUTCOME, UNRESOLVED, CART_CLEARED, ALREADY = (
    "confirmed", "failed", "unresolved", "cart_cleared", "already_resolved")


def items_of(order: Order) -> list[CartItem]:
    """The order's lines as the upstreams take them."""
    return [CartItem(li.product_id, li.name, li.unit_price_cents, li.quantity) for li in order.lines]


def resolve_pending(order: Order, upstreams: ShopUpstreams) -> str:
    """Ask product how the order's reservation stands and move the order accordingly; the
    outcome. Raises what the look-up raises when product cannot be asked."""
    if order.status != PENDING:
        return ALREADY
    reservation = upstreams.reservation_by_ref(order.ref)
    if reservation is None:
        return _failed(order, "absent", "product holds nothing for this order")
    if reservation.status == "confirmed":
        return _confirmed(order, "confirmed at product (its answer had been lost)")
    if reservation.status in ("released", "expired"):
        return _failed(order, reservation.status, f"its reservation was {reservation.status}")
    # Held: finish what the checkout was doing.
    if order.confirm_requested:
        try:
            upstreams.confirm(reservation.id)
        except Conflict as exc:  # it lapsed or was released meanwhile: nothing was sold
            state = "expired" if "expired" in exc.code else "released"
            return _failed(order, state, f"its hold ended before it could be confirmed ({exc.code})")
        return _confirmed(order, "confirmed by the reconciler (the checkout stopped after asking)")
    state = upstreams.release(reservation.id)
    if state == "confirmed":
        return _confirmed(order, "confirmed at product (its answer had been lost)")
    if state in ("released", "expired", "absent"):
        return _failed(order, state, "the checkout stopped before confirming; its hold was released")
    return UNRESOLVED


def _confirmed(order: Order, note: str) -> str:
    return CONFIRMED_OUTCOME if domain.mark_confirmed(order, note) else ALREADY


def _failed(order: Order, state: str, why: str) -> str:
    moved = domain.mark_failed(order, "checkout_abandoned",
                               f"the checkout never finished; {why}", reservation_state=state)
    return FAILED_OUTCOME if moved else ALREADY


def clear_ordered_lines(order: Order, upstreams: ShopUpstreams, retry_at: datetime) -> bool:
    """Take a confirmed order's lines out of its user's cart; on failure the reconciler tries
    again from `retry_at`. Whether it is done."""
    if order.status != CONFIRMED or order.cart_cleared:
        return bool(order.cart_cleared)
    cleared = upstreams.remove_ordered_lines(order.ref, items_of(order))
    domain.note_cart_cleared(order, cleared, retry_at=None if cleared else retry_at)
    return cleared

