"""The order's state machine: named states, guarded transitions, every transition recorded.

    pending ──► confirmed      (product confirmed the order's reservation)
       │
       └──────► failed         (product holds nothing for it: refused, released, expired, absent)

`confirmed` and `failed` are final: a confirmed order never fails, and a failed one never
becomes confirmed (a retry with the same key makes a new order with a new reservation).
Every transition is one compare-and-set `UPDATE … WHERE id = :id AND status = 'pending'`, so
of a slow original request, a retry and any number of reconcilers, exactly one moves the
order, and the others learn that they lost (False) instead of overwriting it. The history row
is written in the same transaction as the change it records.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update

from services.order.models import CONFIRMED, FAILED, PENDING, Order, OrderStatusChange, db, utcnow

FINAL = frozenset({CONFIRMED, FAILED})
# A confirmed order's lines leave the cart right after; if that never happens (a crash), the
# reconciler takes them out from this long after the confirmation.
CART_RECHECK = timedelta(seconds=10)
TRANSITIONS = {PENDING: FINAL, CONFIRMED: frozenset(), FAILED: frozenset()}


class IllegalTransition(ValueError):
    """A transition the state machine does not have (a programming error, never a race)."""


def _guarded_update(order_id: int, expected: str, values: dict[str, Any]) -> bool:
    changed = db.session.execute(
        update(Order).where(Order.id == order_id, Order.status == expected).values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    return changed == 1


def transition(order: Order, to: str, note: str, *, failure_code: str | None = None,
               reservation_state: str | None = None, now: datetime | None = None) -> bool:
    """Move a pending order to `to`, recording why; False when it was no longer pending."""
    if to not in TRANSITIONS[PENDING]:
        raise IllegalTransition(f"an order never moves from pending to {to!r}")
    now = now or utcnow()
    order_id = order.id
    db.session.rollback()  # whatever a failure left half-written in this session
    values: dict[str, Any] = {"status": to, "updated_at": now}
    if to == CONFIRMED:
        values.update(reservation_state="confirmed", failure_code=None, failure_message=None,
                      next_reconcile_at=now + CART_RECHECK)
    else:
        # The key is given back: a retry with it after a failure gets a fresh attempt.
        values.update(failure_code=(failure_code or "failed")[:64], failure_message=note[:500],
                      idempotency_key=None, next_reconcile_at=None)
        if reservation_state is not None:
            values["reservation_state"] = reservation_state
    moved = _guarded_update(order_id, PENDING, values)
    if moved:
        text = note if to == CONFIRMED else f"{failure_code or 'failed'}: {note}"
        db.session.add(OrderStatusChange(order_id=order_id, status=to, note=text[:500], at=now))
    db.session.commit()
    return moved


def note_while_pending(order: Order, **values: Any) -> bool:
    """Record progress of a pending order (reservation id and state, confirm requested);
    False, changing nothing, when the order is no longer pending."""
    order_id = order.id
    values.setdefault("updated_at", utcnow())
    moved = _guarded_update(order_id, PENDING, values)
    db.session.commit()
    return moved
