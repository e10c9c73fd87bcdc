"""What a cart can do: add, change, remove, clear, and total its lines exactly.

Money is integer cents inside; it leaves as a decimal string ("12.50") so no float ever
rounds a price.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from services.cart.catalog import ProductSnapshot
from services.cart.models import CartLine, CartRemoval, db, utcnow
from services.common.errors import Conflict, InvalidField, NotFound

MAX_LINE_QUANTITY = 99
MAX_LINES = 50
ADD_ATTEMPTS = 10
RETRYABLE_MYSQL_CODES = frozenset({1205, 1213})  # lock wait timeout, deadlock


def format_cents(cents: int) -> str:
    """Integer cents as an exact decimal string: 1250 → "12.50"."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole}.{part:02d}"


def as_utc(moment: datetime) -> datetime:
    """A stored naive-UTC time made explicit, so it serialises as RFC 3339 with an offset."""
    return moment.replace(tzinfo=UTC)


def _line_view(line: CartLine) -> dict[str, Any]:
    total = line.unit_price_cents * line.quantity
    return {
        "product_id": line.product_id,
        "name": line.name,
        "slug": line.slug,
        "image": line.image,
        "unit_price": format_cents(line.unit_price_cents),
        "unit_price_cents": line.unit_price_cents,
        "quantity": line.quantity,
        "line_total": format_cents(total),
        "line_total_cents": total,
        "added_at": as_utc(line.added_at),
        "updated_at": as_utc(line.updated_at),
    }


def _lines(user_id: int) -> list[CartLine]:
    return list(db.session.scalars(
        select(CartLine).where(CartLine.user_id == user_id).order_by(CartLine.added_at, CartLine.id)
    ))


def cart_of(user_id: int) -> dict[str, Any]:
    """The user's cart: its lines and exact totals."""
    lines = [_line_view(line) for line in _lines(user_id)]
    total = sum(line["line_total_cents"] for line in lines)
    return {
        "user_id": user_id,
        "lines": lines,
        "line_count": len(lines),
        "item_count": sum(line["quantity"] for line in lines),
        "total": format_cents(total),
        "total_cents": total,
    }


def _line(user_id: int, product_id: int, *, lock: bool = False) -> CartLine | None:
    query = select(CartLine).where(CartLine.user_id == user_id, CartLine.product_id == product_id)
    if lock:
        query = query.with_for_update()
    return db.session.scalars(query).first()


def _check_quantity(product_id: int, quantity: int, stock: int | None) -> None:
    if quantity > MAX_LINE_QUANTITY:
        raise InvalidField(
            f"a cart holds at most {MAX_LINE_QUANTITY} of one product",
            code="quantity_limit",
            details={"product_id": product_id, "requested": quantity, "max": MAX_LINE_QUANTITY},
        )
    if stock is not None and quantity > stock:
        raise Conflict(
            f"only {stock} of product {product_id} in stock",
            code="insufficient_stock",
            details={"product_id": product_id, "requested": quantity, "available": stock},
        )


def add_item(user_id: int, product: ProductSnapshot, quantity: int) -> bool:
    """Put `quantity` of the product in the cart (adding to a line already there).

    Returns whether a new line was created. The line's name and price are refreshed to the
    snapshot taken for this add. The addition is one conditional `quantity = quantity + n`
    UPDATE, so concurrent adds to one line all count (a read-then-write loses one on SQLite,
    where `SELECT … FOR UPDATE` locks nothing) and never pass the limits together.
    """
    limit = MAX_LINE_QUANTITY if product.stock is None else min(MAX_LINE_QUANTITY, product.stock)
    for _attempt in range(ADD_ATTEMPTS):
        try:
            added = db.session.execute(
                update(CartLine)
                .where(CartLine.user_id == user_id, CartLine.product_id == product.id,
                       CartLine.quantity + quantity <= limit)
                .values(quantity=CartLine.quantity + quantity, name=product.name,
                        slug=product.slug, image=product.image,
                        unit_price_cents=product.price_cents, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            ).rowcount
            if added == 1:
                db.session.commit()
                return False
            line = _line(user_id, product.id)
            if line is not None:  # there, but this add would pass a limit: say which
                _check_quantity(product.id, line.quantity + quantity, product.stock)
                db.session.rollback()
                continue  # (it changed meanwhile: try again)
            count = db.session.scalar(
                select(func.count()).select_from(CartLine).where(CartLine.user_id == user_id))
            if count >= MAX_LINES:
                raise Conflict(f"a cart holds at most {MAX_LINES} different products",
                               code="cart_full", details={"max_lines": MAX_LINES})
            _check_quantity(product.id, quantity, product.stock)
            db.session.add(CartLine(
                user_id=user_id, product_id=product.id, quantity=quantity, name=product.name,
                slug=product.slug, image=product.image, unit_price_cents=product.price_cents))
            db.session.commit()
            return True
        except IntegrityError:
            # A concurrent add created the line first: go round again and add to it.
            db.session.rollback()
        except OperationalError as exc:
            # MySQL picks one of two first adds to a line as a deadlock victim: go round again.
            db.session.rollback()
            if getattr(exc.orig, "args", [None])[0] not in RETRYABLE_MYSQL_CODES:
                raise
            time.sleep(random.uniform(0.002, 0.01) * (_attempt + 1))  # de-synchronise the rivals
        except Exception:
            db.session.rollback()
            raise
    raise Conflict("the cart changed while adding; try again", code="cart_busy")


def set_quantity(user_id: int, product_id: int, quantity: int) -> None:
    """Set the quantity of a product already in the cart (no stock check: checkout does that)."""
    line = _line(user_id, product_id, lock=True)
    if line is None:
        db.session.rollback()
        raise NotFound(f"product {product_id} is not in your cart", code="cart_item_not_found",
                       details={"product_id": product_id})
    try:
        _check_quantity(product_id, quantity, None)
    except Exception:
        db.session.rollback()
        raise
    line.quantity = quantity
    db.session.commit()


def remove_item(user_id: int, product_id: int) -> None:
    """Take a product out of the cart."""
    result = db.session.execute(
        delete(CartLine).where(CartLine.user_id == user_id, CartLine.product_id == product_id))
    db.session.commit()
    if not result.rowcount:
        raise NotFound(f"product {product_id} is not in your cart", code="cart_item_not_found",
                       details={"product_id": product_id})


def remove_ordered_lines(user_id: int, order_ref: str, lines: dict[int, int]) -> bool:
    """Take an order's lines out of the user's cart: each product's quantity goes down by what
    was ordered (the line goes when nothing is left), so lines added meanwhile stay.

    Done once per `order_ref` (recorded in the same transaction): a retry returns False and
    changes nothing.
    """
    try:
        db.session.add(CartRemoval(user_id=user_id, order_ref=order_ref))
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return False
    try:
        for product_id, quantity in sorted(lines.items()):
            mine = (CartLine.user_id == user_id, CartLine.product_id == product_id)
            db.session.execute(delete(CartLine).where(*mine, CartLine.quantity <= quantity)
                               .execution_options(synchronize_session=False))
            db.session.execute(update(CartLine).where(*mine, CartLine.quantity > quantity)
                               .values(quantity=CartLine.quantity - quantity, updated_at=utcnow())
                               .execution_options(synchronize_session=False))
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return True


def clear_cart(user_id: int) -> int:
    """Empty the cart; returns how many lines were removed."""
    result = db.session.execute(delete(CartLine).where(CartLine.user_id == user_id))
    db.session.commit()
    return result.rowcount or 0
