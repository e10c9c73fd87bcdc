"""The order's tables: orders, their lines (priced from the cart) and their status history."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column, relationship

from services.common.db import make_db

db = make_db()

# MySQL's DATETIME drops fractions of a second unless asked to keep them.
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")

PENDING, CONFIRMED, FAILED = "pending", "confirmed", "failed"


def utcnow() -> datetime:
    """The current time in UTC, without tzinfo (stored as naive UTC on every backend)."""
    return datetime.now(UTC).replace(tzinfo=None)


class Order(db.Model):  # type: ignore[name-defined]
    """One checkout of a user's cart.

    The row is written before any stock is reserved, so it is the idempotency claim: the unique
    (user_id, idempotency_key) lets exactly one of several identical requests go on.
    A failed checkout keeps its row (status `failed`, with the reason) but gives its key back
    (NULL), so a retry with the same key after a 503 gets a fresh attempt.
    """

    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("user_id", "idempotency_key"),
                      Index("ix_orders_status_next_reconcile_at", "status", "next_reconcile_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ref: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    total_cents: Mapped[int] = mapped_column(BigInteger)
    item_count: Mapped[int] = mapped_column(Integer)
    reservation_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # none | held | confirmed | released | expired | unknown (an unanswered call: the reconciler
    # asks product by ref)
    reservation_state: Mapped[str] = mapped_column(String(16), default="none")
    failure_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    failure_message: Mapped[str | None] = mapped_column(String(500), nullable=True)
    cart_cleared: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set (guarded, while pending) just before confirm is sent: a hold found later for an order
    # that got this far is confirmed by the reconciler, one that did not is released.
    confirm_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # The reconciler's lease and backoff: no instance looks at the order again before this.
    next_reconcile_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    reconcile_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)

    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", order_by="OrderLine.id", cascade="all, delete-orphan")
    history: Mapped[list[OrderStatusChange]] = relationship(
        back_populates="order", order_by="OrderStatusChange.id", cascade="all, delete-orphan")


class OrderLine(db.Model):  # type: ignore[name-defined]
    """A product bought, at the price the cart snapshotted."""

    __tablename__ = "order_lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    unit_price_cents: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(Integer)

    order: Mapped[Order] = relationship(back_populates="lines")


class OrderStatusChange(db.Model):  # type: ignore[name-defined]
    """One step of an order's life (pending → confirmed, or → failed), with when and why."""

    __tablename__ = "order_status_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    note: Mapped[str] = mapped_column(String(500), default="")

    order: Mapped[Order] = relationship(back_populates="history")
