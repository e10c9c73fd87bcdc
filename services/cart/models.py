"""The cart's tables: one line per (user, product); a user's cart is all of their lines."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, DateTime, Integer, String, UniqueConstraint
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from services.common.db import make_db

db = make_db()

# MySQL's DATETIME drops fractions of a second unless asked to keep them.
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")


def utcnow() -> datetime:
    """The current time in UTC, without tzinfo (stored as naive UTC on every backend)."""
    return datetime.now(UTC).replace(tzinfo=None)


class CartLine(db.Model):  # type: ignore[name-defined]
    """A product in a user's cart, with its name and price as they were when it was added."""

    __tablename__ = "cart_lines"
    __table_args__ = (UniqueConstraint("user_id", "product_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer)  # led by the unique (user_id, product_id)
    product_id: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(200), default="")
    image: Mapped[str] = mapped_column(String(500), default="")
    unit_price_cents: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(Integer)
    added_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)


class CartRemoval(db.Model):  # type: ignore[name-defined]
    """An order whose lines were taken out of its user's cart: each order's only once."""

    __tablename__ = "cart_removals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_ref: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    removed_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
