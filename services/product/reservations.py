"""Stock reservations for checkout: reserve, confirm, release, and expiry of unconfirmed holds.

Stock can never be oversold: units are taken with one conditional UPDATE per product
(`available = available - q WHERE available >= q`), checked by its row count, inside the
transaction that records the reservation, so the database arbitrates every race. Holds end
with a conditional status change (`WHERE status = 'held'`) in the same transaction that
returns their units, so a hold is returned once even when release and expiry collide.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from services.common.errors import ApiError, Conflict, InvalidField, NotFound
from services.product.models import (
    CONFIRMED,
    EXPIRED,
    HELD,
    RELEASED,
    Product,
    Reservation,
    ReservationLine,
    db,
)
from services.product.schemas import MAX_ID

log = logging.getLogger(__name__)
T = TypeVar("T")

WRITE_ATTEMPTS = 5
# Seconds a client is asked to wait when a shortage is only units held by checkouts in flight.
HELD_RETRY_AFTER_S = 5
SWEEP_BATCH = 100
# MySQL deadlock / lock wait timeout; SQLite's "database is locked" after its busy timeout.
RETRYABLE_MYSQL_CODES = frozenset({1205, 1213})


class InsufficientStock(Conflict):
    """Some line asks for more units than are available; nothing was reserved."""

    code = "insufficient_stock"


def _retryable(exc: OperationalError) -> bool:
    code = getattr(exc.orig, "args", [None])[0]
    return code in RETRYABLE_MYSQL_CODES or "database is locked" in str(exc.orig)


def _with_retries(write: Callable[[], T]) -> T:
    """Run a write transaction, again when the database chose it as a deadlock victim."""
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            return write()
        except OperationalError as exc:
            db.session.rollback()
            if attempt == WRITE_ATTEMPTS or not _retryable(exc):
                raise
            log.warning("write transaction retried", extra={"fields": {"attempt": attempt}})
    raise AssertionError("unreachable")


def _merge_lines(lines: list[tuple[int, int]]) -> dict[int, int]:
    """Quantities per product, in product order (one lock order for every transaction)."""
    merged: dict[int, int] = {}
    for product_id, quantity in lines:
        merged[product_id] = merged.get(product_id, 0) + quantity
    return dict(sorted(merged.items()))


class HoldLimit(Conflict):
    """The user would hold more units than one user may hold at once; nothing was reserved."""

    code = "hold_limit"


def reserve_stock(
    *, user_id: int, order_ref: str, lines: list[tuple[int, int]], ttl_seconds: int, now: datetime,
    max_held_units: int = 0,
) -> tuple[Reservation, bool]:
    """Hold every line for `order_ref`, or nothing; returns the reservation and whether it is new.

    A retry with the same reference returns the existing reservation unchanged. With
    `max_held_units`, the user's unexpired holds plus this one may not exceed it (409).
    """
    release_expired_holds(now)
    wanted = _merge_lines(lines)
    existing = _by_order_ref(order_ref)
    if existing is not None:
        return _replayed(existing, user_id, wanted), False
    _check_products_exist(wanted)
    try:
        reservation = _with_retries(
            lambda: _take_units(user_id, order_ref, wanted, now + timedelta(seconds=ttl_seconds), now,
                                max_held_units)
        )
    except IntegrityError:  # a concurrent request with the same reference won the insert
        db.session.rollback()
        existing = _by_order_ref(order_ref)
        if existing is None:
            raise
        return _replayed(existing, user_id, wanted), False
    return reservation, True


def _take_units(
    user_id: int, order_ref: str, wanted: dict[int, int], expires_at: datetime, now: datetime,
    max_held_units: int,
) -> Reservation:
    reservation = Reservation(
        order_ref=order_ref, user_id=user_id, status=HELD, expires_at=expires_at,
        created_at=now, updated_at=now,
    )
    db.session.add(reservation)
    db.session.flush()  # the first statement writes, so SQLite takes its write lock at once
    if max_held_units:
        _check_hold_limit(user_id, sum(wanted.values()), max_held_units, now)
    for product_id, quantity in wanted.items():
        taken = db.session.execute(
            update(Product)
            .where(Product.id == product_id, Product.available >= quantity)
            .values(available=Product.available - quantity)
            .execution_options(synchronize_session=False)
        ).rowcount
        if taken != 1:
            db.session.rollback()
            raise _shortage(wanted, product_id)
    db.session.add_all(
        ReservationLine(reservation_id=reservation.id, product_id=product_id, quantity=quantity)
        for product_id, quantity in wanted.items()
    )
    db.session.commit()
    return reservation


def held_units_of(user_id: int, now: datetime) -> int:
    """Units the user holds now in unconfirmed, unexpired reservations."""
    return int(db.session.scalar(
        select(func.coalesce(func.sum(ReservationLine.quantity), 0))
        .join(Reservation, Reservation.id == ReservationLine.reservation_id)
        .where(Reservation.user_id == user_id, Reservation.status == HELD, Reservation.expires_at > now)
    ) or 0)


def stock_accounting(product: Product, now: datetime) -> dict[str, int]:
    """Where a product's units are: `available`, `held` by unexpired holds, `sold` (confirmed),
    and `expired_held` (lapsed holds the sweeper has not returned yet)."""
    rows = db.session.execute(
        select(Reservation.status, Reservation.expires_at > now, func.sum(ReservationLine.quantity))
        .join(Reservation, Reservation.id == ReservationLine.reservation_id)
        .where(ReservationLine.product_id == product.id,
               Reservation.status.in_((HELD, CONFIRMED)))
        .group_by(Reservation.status, Reservation.expires_at > now)).all()
    held = sum(int(units) for status, live, units in rows if status == HELD and live)
    lapsed = sum(int(units) for status, live, units in rows if status == HELD and not live)
    sold = sum(int(units) for status, _live, units in rows if status == CONFIRMED)
    return {"product_id": product.id, "available": product.available, "held": held,
            "expired_held": lapsed, "sold": sold}


def _check_hold_limit(user_id: int, wanted_units: int, max_held_units: int, now: datetime) -> None:
    held = held_units_of(user_id, now)
    if held + wanted_units > max_held_units:
        db.session.rollback()
        raise HoldLimit(
            f"one user may hold at most {max_held_units} units at once; confirm or release "
            "earlier checkouts first", details={"held": held, "requested": wanted_units,
                                                "max_held_units": max_held_units})


def _shortage(wanted: dict[int, int], failed_product: int) -> InsufficientStock:
    """Which lines cannot be served now, with the units each product has left and the units
    unconfirmed holds keep from it. When those holds could cover the shortage the refusal
    carries Retry-After: held units come back when their checkouts end (or lapse), so the
    client is told "held for now", not "sold out"."""
    available = dict(
        db.session.execute(
            select(Product.id, Product.available).where(Product.id.in_(wanted))
        ).all()
    )
    held = dict(
        db.session.execute(
            select(ReservationLine.product_id, func.sum(ReservationLine.quantity))
            .join(Reservation, Reservation.id == ReservationLine.reservation_id)
            .where(ReservationLine.product_id.in_(wanted), Reservation.status == HELD)
            .group_by(ReservationLine.product_id)
        ).all()
    )
    db.session.rollback()
    short = [
        {"product_id": pid, "requested": qty, "available": available.get(pid, 0),
         "held": int(held.get(pid) or 0)}
        for pid, qty in wanted.items()
        if pid == failed_product or available.get(pid, 0) < qty
    ]
    may_return = all(line["available"] + line["held"] >= line["requested"] for line in short)
    if may_return:
        return InsufficientStock(
            "not enough stock for this order now; units held by checkouts in progress may "
            "come back: retry shortly (nothing was reserved)",
            details={"products": short}, retry_after=HELD_RETRY_AFTER_S)
    return InsufficientStock("not enough stock for this order; nothing was reserved",
                             details={"products": short})


def _check_products_exist(wanted: dict[int, int]) -> None:
    known = set(db.session.scalars(select(Product.id).where(Product.id.in_(wanted))).all())
    db.session.rollback()  # end the read before the write transaction begins
    missing = [pid for pid in wanted if pid not in known]
    if missing:
        raise InvalidField(
            "some lines name products that do not exist", code="unknown_product",
            details={"product_ids": missing},
        )


def _by_order_ref(order_ref: str) -> Reservation | None:
    reservation = db.session.scalar(select(Reservation).where(Reservation.order_ref == order_ref))
    db.session.rollback()
    return reservation


def _replayed(existing: Reservation, user_id: int, wanted: dict[int, int]) -> Reservation:
    """The reservation a retried reserve gets back, if it is really the same request."""
    if existing.user_id != user_id:
        raise Conflict("this order reference is already used", code="order_ref_taken",
                       details={"order_ref": existing.order_ref})
    if {line.product_id: line.quantity for line in existing.lines} != wanted:
        raise Conflict(
            "this order reference was already used with different lines; use a new reference",
            code="idempotency_mismatch", details={"order_ref": existing.order_ref},
        )
    return existing


def find_reservation(reservation_id: int, user_id: int) -> Reservation:
    """The caller's reservation; `NotFound` for unknown ids and other users' reservations alike."""
    reservation = db.session.get(Reservation, reservation_id) if reservation_id <= MAX_ID else None
    if reservation is None or reservation.user_id != user_id:
        raise NotFound(f"no reservation {reservation_id}", code="reservation_not_found",
                       details={"reservation_id": reservation_id})
    return reservation


def reservation_by_ref(order_ref: str, user_id: int, now: datetime) -> Reservation:
    """The user's reservation for `order_ref`, an expired hold reported (and returned) as such;
    `NotFound` when product holds nothing under that reference for this user."""
    reservation = _by_order_ref(order_ref)
    if reservation is None or reservation.user_id != user_id:
        raise NotFound(f"no reservation for order {order_ref}", code="reservation_not_found",
                       details={"order_ref": order_ref})
    if reservation.status == HELD and reservation.expires_at <= now:
        _end_hold(reservation.id, EXPIRED, now)
        reservation = find_reservation(reservation.id, user_id)
    return reservation


def confirm_reservation(reservation_id: int, user_id: int, now: datetime) -> Reservation:
    """Turn a hold into a sale; confirming twice is harmless, confirming a lapsed hold is not."""
    reservation = find_reservation(reservation_id, user_id)
    if reservation.status == HELD and reservation.expires_at <= now:
        _end_hold(reservation_id, EXPIRED, now)
        reservation = find_reservation(reservation_id, user_id)
    if reservation.status == HELD:
        confirmed = _with_retries(lambda: _set_status_if_held(reservation_id, CONFIRMED, now))
        reservation = find_reservation(reservation_id, user_id)
        if not confirmed and reservation.status == HELD:  # pragma: no cover - defensive
            raise Conflict("the reservation changed while confirming; try again")
    if reservation.status != CONFIRMED:
        raise _not_held(reservation, "confirmed")
    return reservation


def release_reservation(reservation_id: int, user_id: int, now: datetime) -> Reservation:
    """Give held units back; releasing twice (or after expiry) is harmless, after confirm is not."""
    reservation = find_reservation(reservation_id, user_id)
    if reservation.status == HELD:
        _end_hold(reservation_id, RELEASED, now)
        reservation = find_reservation(reservation_id, user_id)
    if reservation.status == CONFIRMED:
        raise _not_held(reservation, "released")
    return reservation


def _not_held(reservation: Reservation, action: str) -> ApiError:
    return Conflict(
        f"reservation {reservation.id} is {reservation.status} and cannot be {action}",
        code=f"reservation_{reservation.status}",
        details={"reservation_id": reservation.id, "status": reservation.status},
    )


def _set_status_if_held(reservation_id: int, status: str, now: datetime) -> bool:
    changed = db.session.execute(
        update(Reservation)
        .where(Reservation.id == reservation_id, Reservation.status == HELD)
        .values(status=status, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return changed == 1


def _end_hold(reservation_id: int, status: str, now: datetime) -> bool:
    """Mark a hold released or expired and return its units, once; False if it was not held."""

    def write() -> bool:
        changed = db.session.execute(
            update(Reservation)
            .where(Reservation.id == reservation_id, Reservation.status == HELD)
            .values(status=status, updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if changed != 1:
            db.session.rollback()
            return False
        lines = db.session.execute(
            select(ReservationLine.product_id, ReservationLine.quantity)
            .where(ReservationLine.reservation_id == reservation_id)
            .order_by(ReservationLine.product_id)
        ).all()
        for product_id, quantity in lines:
            db.session.execute(
                update(Product)
                .where(Product.id == product_id)
                .values(available=Product.available + quantity)
                .execution_options(synchronize_session=False)
            )
        db.session.commit()
        return True

    return _with_retries(write)


def release_expired_holds(now: datetime, limit: int = SWEEP_BATCH) -> int:
    """Return the units of holds that expired by `now`; how many holds ended.

    Called on every reserve (lazily) and callable on its own, e.g. by a test with its own clock.
    """
    expired = db.session.scalars(
        select(Reservation.id)
        .where(Reservation.status == HELD, Reservation.expires_at <= now)
        .order_by(Reservation.id)
        .limit(limit)
    ).all()
    db.session.rollback()
    return sum(_end_hold(reservation_id, EXPIRED, now) for reservation_id in expired)
