"""Order records: claim, move through statuses, list and show — never calling another service."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from services.common.errors import NotFound
from services.order import states
from services.order.models import (
    CONFIRMED,
    FAILED,
    PENDING,
    Order,
    OrderLine,
    OrderStatusChange,
    db,
    utcnow,
)
from services.order.upstreams import CartItem

REF_NAMESPACE = uuid.UUID("6f1c2a7e-8d4b-4f5e-9a37-1b2c3d4e5f60")


def format_cents(cents: int) -> str:
    """Integer cents as an exact decimal string: 1250 → "12.50"."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole}.{part:02d}"


def as_utc(moment: datetime) -> datetime:
    """A stored naive-UTC time made explicit, so it serialises as RFC 3339 with an offset."""
    return moment.replace(tzinfo=UTC)


def order_ref_for(user_id: int, idempotency_key: str | None) -> str:
    """The reservation reference of a checkout: derived from the key, else random.

    A key that is given back after a failed attempt gets a fresh ref, because the random part
    of the derivation is the attempt's own uuid.
    """
    if idempotency_key is None:
        return f"ord-{uuid.uuid4().hex}"
    attempt = uuid.uuid4().hex[:8]
    return f"ord-{uuid.uuid5(REF_NAMESPACE, f'{user_id}:{idempotency_key}').hex[:24]}-{attempt}"


def find_by_key(user_id: int, idempotency_key: str) -> Order | None:
    """The order this user's key currently belongs to (as committed now, not as first read)."""
    # End any open read transaction first: under MySQL's REPEATABLE READ a second look within
    # one transaction would not see an order that a concurrent duplicate committed meanwhile.
    db.session.rollback()
    return db.session.scalars(select(Order).where(
        Order.user_id == user_id, Order.idempotency_key == idempotency_key)).first()


def claim(user_id: int, idempotency_key: str | None, items: list[CartItem]) -> Order | None:
    """Write the pending order; None if another request holds the same key already."""
    order = Order(
        ref=order_ref_for(user_id, idempotency_key), user_id=user_id,
        idempotency_key=idempotency_key, status=PENDING,
        total_cents=sum(i.unit_price_cents * i.quantity for i in items),
        item_count=sum(i.quantity for i in items),
        lines=[OrderLine(product_id=i.product_id, name=i.name[:200],
                         unit_price_cents=i.unit_price_cents, quantity=i.quantity) for i in items],
        history=[OrderStatusChange(status=PENDING, note="checkout started")],
    )
    db.session.add(order)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return None
    return order


def note_reservation(order: Order, reservation_id: str | None, state: str) -> bool:
    """Record what product holds for this pending order; False if it is pending no more."""
    values: dict[str, Any] = {"reservation_state": state}
    if reservation_id is not None:
        values["reservation_id"] = reservation_id
    return states.note_while_pending(order, **values)


def begin_confirm(order: Order, reservation_id: str) -> bool:
    """Record, before confirm is sent, that this order reached the confirm step; False (send
    nothing then) if it is pending no more, e.g. a reconciler failed it meanwhile."""
    return states.note_while_pending(order, reservation_id=reservation_id, reservation_state="held",
                                     confirm_requested=True)


def leave_for_reconciler(order: Order, state: str = "unknown") -> bool:
    """An unanswered call left the order's reservation unknown: it stays pending, and the
    reconciler asks product how it ended."""
    return states.note_while_pending(order, reservation_state=state)


def mark_confirmed(order: Order, note: str = "stock reserved and confirmed") -> bool:
    """pending → confirmed; False if it was not pending."""
    return states.transition(order, CONFIRMED, note)


def mark_failed(order: Order, code: str, message: str, *, reservation_state: str | None = None) -> bool:
    """pending → failed, with the reason; the idempotency key is given back for a retry.
    False if it was not pending (a confirmed order never fails)."""
    return states.transition(order, FAILED, message, failure_code=code,
                             reservation_state=reservation_state)


def note_cart_cleared(order: Order, cleared: bool, retry_at: datetime | None = None) -> None:
    """Record whether the order's lines left the cart; if not, when the reconciler retries."""
    order_id = order.id
    db.session.rollback()
    values: dict[str, Any] = ({"cart_cleared": True, "next_reconcile_at": None} if cleared
                              else {"next_reconcile_at": retry_at or utcnow()})
    db.session.execute(update(Order).where(Order.id == order_id, Order.status == CONFIRMED)
                       .values(updated_at=Order.updated_at, **values)
                       .execution_options(synchronize_session=False))
    db.session.commit()


def order_of(user_id: int, order_id: int) -> Order:
    """The user's order; `NotFound` for an unknown id or somebody else's order."""
    order = db.session.get(Order, order_id)
    if order is None or order.user_id != user_id:
        raise NotFound(f"you have no order {order_id}", code="order_not_found",
                       details={"order_id": order_id})
    return order


def orders_of(user_id: int, page: int, per_page: int) -> dict[str, Any]:
    """One page of the user's orders, newest first."""
    total = db.session.scalar(select(func.count()).select_from(Order).where(Order.user_id == user_id))
    orders = db.session.scalars(
        select(Order).where(Order.user_id == user_id).order_by(Order.id.desc())
        .limit(per_page).offset((page - 1) * per_page))
    return {"items": [order_view(o, detail=False) for o in orders], "page": page,
            "per_page": per_page, "total": total, "pages": -(-total // per_page)}


def order_view(order: Order, *, detail: bool = True) -> dict[str, Any]:
    """The order as the API shows it."""
    view: dict[str, Any] = {
        "id": order.id,
        "ref": order.ref,
        "status": order.status,
        "item_count": order.item_count,
        "total": format_cents(order.total_cents),
        "total_cents": order.total_cents,
        "created_at": as_utc(order.created_at),
        "updated_at": as_utc(order.updated_at),
        "failure": ({"code": order.failure_code, "message": order.failure_message}
                    if order.status == FAILED else None),
    }
    if detail:
        view.update(
            lines=[{
                "product_id": line.product_id, "name": line.name,
                "unit_price": format_cents(line.unit_price_cents),
                "unit_price_cents": line.unit_price_cents, "quantity": line.quantity,
                "line_total": format_cents(line.unit_price_cents * line.quantity),
                "line_total_cents": line.unit_price_cents * line.quantity,
            } for line in order.lines],
            status_history=[{"status": c.status, "at": as_utc(c.at), "note": c.note} for c in order.history],
            reservation_id=order.reservation_id,
            reservation_state=order.reservation_state,
            cart_cleared=order.cart_cleared,
        )
    return view
