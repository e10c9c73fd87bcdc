"""Auth's tables: the shop's users."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from services.common.db import make_db

db = make_db()

# MySQL's default collations are case- and accent-insensitive; emails are compared exactly
# (they are lower-cased on the way in), so SQLite and MySQL agree on what a duplicate is.
EXACT_EMAIL = String(254).with_variant(mysql.VARCHAR(254, collation="utf8mb4_bin"), "mysql", "mariadb")

MEMBERSHIP_STANDARD = "standard"
MEMBERSHIP_ADMIN = "admin"


def utcnow() -> datetime:
    """Now in UTC, without tzinfo (how both databases store it)."""
    return datetime.now(UTC).replace(tzinfo=None)


class User(db.Model):
    """Someone who can log in to the shop."""

    __tablename__ = "users"
    __table_args__ = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(EXACT_EMAIL, unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    membership: Mapped[str] = mapped_column(String(20), nullable=False, default=MEMBERSHIP_STANDARD)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
