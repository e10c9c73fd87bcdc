"""Product's tables: the catalog and the stock reservations made at checkout."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column, relationship

from services.common.db import make_db

db = make_db()

MYSQL_TABLE = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def exact_string(length: int) -> String:
    """A VARCHAR compared byte for byte on MySQL too (its default collation ignores case)."""
    return String(length).with_variant(
        mysql.VARCHAR(length, collation="utf8mb4_bin"), "mysql", "mariadb"
    )


def utcnow() -> datetime:
    """Now in UTC, without tzinfo (how both databases store it)."""
    return datetime.now(UTC).replace(tzinfo=None)


class Product(db.Model):
    """Something the shop sells; `available` is the stock not held by any reservation."""

    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("available >= 0", name="available_not_negative"),
        CheckConstraint("price_cents >= 0", name="price_not_negative"),
        MYSQL_TABLE,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    slug: Mapped[str] = mapped_column(exact_string(200), unique=True, nullable=False)
    image: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    price_cents: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    available: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)

    @property
    def price(self) -> Decimal:
        """The price in currency units, exact (cents are an integer in the database)."""
        return Decimal(self.price_cents).scaleb(-2)

    @property
    def money(self) -> dict[str, object]:
        """The price with its currency, as API v2 shows it."""
        return {"amount": self.price, "currency": self.currency}


HELD, CONFIRMED, RELEASED, EXPIRED = "held", "confirmed", "released", "expired"


class Reservation(db.Model):
    """Units held for one order (by its reference) until confirmed, released or expired."""

    __tablename__ = "reservations"
    __table_args__ = (Index("ix_reservations_status_expires_at", "status", "expires_at"), MYSQL_TABLE)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_ref: Mapped[str] = mapped_column(exact_string(64), unique=True, nullable=False)
    user_id: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=HELD)
    expires_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)

    lines: Mapped[list[ReservationLine]] = relationship(
        back_populates="reservation", order_by="ReservationLine.product_id", lazy="selectin"
    )


class ReservationLine(db.Model):
    """How many units of one product a reservation holds."""

    __tablename__ = "reservation_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"), MYSQL_TABLE)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reservation_id: Mapped[int] = mapped_column(
        ForeignKey("reservations.id", ondelete="CASCADE"), nullable=False, index=True
    )
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), nullable=False, index=True)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)

    reservation: Mapped[Reservation] = relationship(back_populates="lines")
