"""Checkout: turn the user's cart into a confirmed order, or into nothing held at all.

The steps, and what undoes each one when a later one fails:

1. read the cart (cart service)          — nothing written yet; a cart outage is a plain 503
2. claim: write the order, `pending`     — the idempotency claim; on failure → `failed`
3. reserve all lines (product, by ref)   — on failure: nothing held (all-or-nothing), or, when
                                           the answer never came, ask again by ref and release
4. confirm the reservation (product)     — on failure: release; if product says it was
                                           confirmed after all, the order is confirmed
5. mark the order `confirmed`
6. empty the cart (best effort: a confirmed order never fails because cart is down)
"""

from __future__ import annotations

import logging
from datetime import timedelta

from services.common.errors import ApiError, Conflict
from services.order import domain
from services.order.models import CONFIRMED, PENDING, Order, utcnow
from services.order.upstreams import CartItem, ShopUpstreams, is_uncertain

log = logging.getLogger(__name__)

# A pending order older than this was abandoned by a process that died mid-checkout.
STALE_PENDING = timedelta(seconds=120)


class CheckoutInProgress(Conflict):
    """Another request with the same Idempotency-Key is checking out right now."""

    code = "checkout_in_progress"

    def __init__(self, order: Order) -> None:
        super().__init__("a checkout with this Idempotency-Key is in progress; retry shortly",
                         details={"order_id": order.id}, retry_after=1)


def checkout(user_id: int, idempotency_key: str | None,
             upstreams: ShopUpstreams) -> tuple[Order, bool]:
    """The user's order for this checkout, and whether it was made now (False: a replay)."""
    if idempotency_key is not None:
        replay = _replay(user_id, idempotency_key, upstreams)
        if replay is not None:
            return replay, False
    items = upstreams.read_cart()
    if not items:
        # An identical request may have finished (and emptied the cart) since we looked.
        replay = _replay(user_id, idempotency_key, upstreams) if idempotency_key else None
        if replay is not None:
            return replay, False
        raise Conflict("your cart is empty: add items before checking out", code="cart_empty")
    order = domain.claim(user_id, idempotency_key, items)
    if order is None:  # an identical request claimed the key between our look-up and insert
        replay = _replay(user_id, idempotency_key or "", upstreams)
        if replay is None:
            raise Conflict("the checkout collided with another; retry", code="checkout_conflict",
                           retry_after=1)
        return replay, False
    _reserve_and_confirm(order, items, upstreams)
    domain.note_cart_cleared(order, upstreams.clear_cart())
    return order, True


def _replay(user_id: int, idempotency_key: str, upstreams: ShopUpstreams) -> Order | None:
    order = domain.find_by_key(user_id, idempotency_key)
    if order is None:
        return None
    if order.status == CONFIRMED:
        return order
    if order.status == PENDING and utcnow() - order.created_at > STALE_PENDING:
        items = [CartItem(li.product_id, li.name, li.unit_price_cents, li.quantity)
                 for li in order.lines]
        state = upstreams.release_by_ref(order.ref, items)
        domain.note_reservation(order, None, state)
        domain.mark_failed(order, "abandoned", "the checkout never finished; its stock was released")
        return None
    raise CheckoutInProgress(order)


def _reserve_and_confirm(order: Order, items: list[CartItem], upstreams: ShopUpstreams) -> None:
    reservation_id: str | None = None
    try:
        try:
            reservation_id = upstreams.reserve(order.ref, items)
        except Exception as exc:
            # Product may have made the hold even though we never heard back: undo it by ref.
            state = upstreams.release_by_ref(order.ref, items) if is_uncertain(exc) else "none"
            domain.note_reservation(order, None, state)
            raise
        domain.note_reservation(order, reservation_id, "held")
        try:
            upstreams.confirm(reservation_id)
        except Exception:
            state = upstreams.release(reservation_id)
            if state == "confirmed":  # the confirm went through; only its answer was lost
                domain.mark_confirmed(order, "confirmed (its first answer was lost)")
                return
            domain.note_reservation(order, reservation_id, state)
            raise
        domain.mark_confirmed(order)
    except ApiError as exc:
        _fail(order, exc.code, exc.message)
        raise
    except Exception as exc:
        _fail(order, "internal_error", f"{type(exc).__name__} during checkout")
        if reservation_id is not None:
            state = upstreams.release(reservation_id)
            try:
                domain.note_reservation(order, reservation_id, state)
            except Exception:
                log.exception("could not record the release of order %s", order.id)
        raise


def _fail(order: Order, code: str, message: str) -> None:
    try:
        domain.mark_failed(order, code, message)
    except Exception:  # the original error matters more; the row stays pending, then stale
        log.exception("could not mark order %s failed", order.id)

