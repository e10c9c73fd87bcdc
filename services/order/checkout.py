"""Checkout: turn the user's cart into a confirmed order, or into nothing held at all.

The steps, and what happens when one fails:

1. read the cart (cart service)          — nothing written yet; a cart outage is a plain 503
2. claim: write the order, `pending`     — the idempotency claim
3. reserve all lines (product, by ref)   — refused or surely not sent: `failed`, nothing held;
                                           no answer: look the ref up and release it
4. record "confirm requested", confirm   — refused: release; no answer: release, and product's
                                           answer (released / already confirmed) decides
5. `confirmed`
6. take exactly the ordered lines out of the cart (a failure never fails the order: the
   reconciler tries again)

An order is marked `failed` only when product surely holds nothing for it. When product's
answer is lost and cannot be had, the order stays `pending` (reservation `unknown`) and the
client gets the 503/504; the reconciler (reconciler.py) — or a retry with the same key after
the grace period — asks product by ref and finishes it (resolution.py). Every status change
is a guarded transition (states.py), so a slow original request never overwrites a later one.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from services.common.errors import ApiError, Conflict
from services.order import domain
from services.order.models import CONFIRMED, PENDING, Order, utcnow
from services.order.resolution import (
    CONFIRMED_OUTCOME,
    clear_ordered_lines,
    items_of,
    resolve_pending,
)
from services.order.upstreams import CartItem, ShopUpstreams, is_uncertain

log = logging.getLogger(__name__)

DEFAULT_GRACE = timedelta(seconds=10)
GONE = frozenset({"released", "expired", "absent"})  # product holds nothing for the order


class CheckoutInProgress(Conflict):
    """Another request with the same Idempotency-Key is checking out right now."""

    code = "checkout_in_progress"

    def __init__(self, order: Order) -> None:
        super().__init__("a checkout with this Idempotency-Key is in progress; retry shortly",
                         details={"order_id": order.id}, retry_after=1)


def checkout(user_id: int, idempotency_key: str | None, upstreams: ShopUpstreams, *,
             grace: timedelta = DEFAULT_GRACE) -> tuple[Order, bool]:
    """The user's order for this checkout, and whether it was made now (False: a replay)."""
    if idempotency_key is not None:
        replay = _replay(user_id, idempotency_key, upstreams, grace)
        if replay is not None:
            return replay, False
    items = upstreams.read_cart()
    if not items:
        # An identical request may have finished (and emptied the cart) since we looked.
        replay = _replay(user_id, idempotency_key, upstreams, grace) if idempotency_key else None
        if replay is not None:
            return replay, False
        raise Conflict("your cart is empty: add items before checking out", code="cart_empty")
    order = domain.claim(user_id, idempotency_key, items)
    if order is None:  # an identical request claimed the key between our look-up and insert
        replay = _replay(user_id, idempotency_key or "", upstreams, grace)
        if replay is None:
            raise Conflict("the checkout collided with another; retry", code="checkout_conflict",
                           retry_after=1)
        return replay, False
    _reserve_and_confirm(order, items, upstreams)
    clear_ordered_lines(order, upstreams, retry_at=utcnow())
    return order, True


def _replay(user_id: int, idempotency_key: str, upstreams: ShopUpstreams,
            grace: timedelta) -> Order | None:
    """The order this key already made; None if there is none (or it failed: a new attempt)."""
    order = domain.find_by_key(user_id, idempotency_key)
    if order is None:
        return None
    if order.status == CONFIRMED:
        return order
    if order.status == PENDING and _stuck(order, grace):
        # Its request died or lost an answer: resolve it now rather than make the client wait
        # for the reconciler. A failed order gave its key back: check out anew.
        try:
            outcome = resolve_pending(order, upstreams)
        except ApiError:
            log.warning("could not resolve stuck order %s yet", order.id, exc_info=True)
            raise CheckoutInProgress(order) from None
        order = domain.find_by_key(user_id, idempotency_key)
        if order is None:
            return None
        if order.status == CONFIRMED:
            if outcome == CONFIRMED_OUTCOME:
                clear_ordered_lines(order, upstreams, retry_at=utcnow())
            return order
    raise CheckoutInProgress(order)


def _stuck(order: Order, grace: timedelta, now: datetime | None = None) -> bool:
    return (now or utcnow()) - order.updated_at > grace


def _reserve_and_confirm(order: Order, items: list[CartItem], upstreams: ShopUpstreams) -> None:
    try:
        reservation_id = upstreams.reserve(order.ref, items)
    except Exception as exc:
        if not is_uncertain(exc):  # refused, or never sent: nothing is held
            _fail(order, exc, "none")
            raise
        # Product may have made the hold though we never heard back: find it by ref, undo it.
        state = upstreams.release_by_ref(order.ref)
        _settle(order, exc, state)
        raise
    if not domain.begin_confirm(order, reservation_id):
        # A reconciler (or a retry) resolved the order while we waited: give this hold back.
        state = upstreams.release(reservation_id)
        log.warning("order %s was resolved during its checkout; its late hold ended %s",
                    order.id, state)
        raise Conflict("this checkout was resolved by another request meanwhile; retry with "
                       "the same Idempotency-Key to see its order", code="checkout_superseded")
    try:
        upstreams.confirm(reservation_id)
    except Exception as exc:
        # Refused (lapsed or released), lost, or never sent: releasing tells which it was.
        state = upstreams.release(reservation_id)
        if state == "confirmed":  # the confirm went through; only its answer was lost
            domain.mark_confirmed(order, "confirmed (its first answer was lost)")
            return
        _settle(order, exc, state)
        raise
    domain.mark_confirmed(order)


def _settle(order: Order, error: Exception, state: str) -> None:
    """After a failed step: `failed` if product surely holds nothing, confirmed if it sold,
    else pending for the reconciler."""
    if state == "confirmed":
        domain.mark_confirmed(order, "confirmed (its answer was lost)")
    elif state in GONE:
        _fail(order, error, state)
    else:
        try:
            domain.leave_for_reconciler(order, "unknown")
        except Exception:  # the row stays pending either way
            log.exception("could not record order %s as unknown", order.id)


def _fail(order: Order, error: Exception, reservation_state: str) -> None:
    if isinstance(error, ApiError):
        code, message = error.code, error.message
    else:
        code, message = "internal_error", f"{type(error).__name__} during checkout"
    try:
        domain.mark_failed(order, code, message, reservation_state=reservation_state)
    except Exception:  # the original error matters more; the row stays pending for the reconciler
        log.exception("could not mark order %s failed", order.id)


__all__ = ["CheckoutInProgress", "checkout", "items_of"]
