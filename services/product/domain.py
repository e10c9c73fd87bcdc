"""The catalog: creating, finding and listing products, free of Flask's request object."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from services.common.errors import Conflict, NotFound
from services.product.models import Product, db
from services.product.schemas import MAX_ID, SLUG_PATTERN

_SLUG = re.compile(SLUG_PATTERN)


def cents(amount: Decimal) -> int:
    """Currency units as integer cents, exactly (amounts have at most two decimals)."""
    return int((amount * 100).to_integral_exact())


def create_product(
    *, name: str, slug: str, price: Decimal, image: str = "", stock: int | None,
    default_stock: int, currency: str,
) -> Product:
    """Add a product to the catalog; `Conflict` when the slug is taken."""
    if db.session.scalar(select(Product.id).where(Product.slug == slug)) is not None:
        raise slug_taken(slug)
    product = Product(
        name=name, slug=slug, image=image, price_cents=cents(price), currency=currency,
        available=default_stock if stock is None else stock,
    )
    db.session.add(product)
    try:
        db.session.commit()
    except IntegrityError as exc:  # the same slug created at the same moment
        db.session.rollback()
        raise slug_taken(slug) from exc
    return product


def slug_taken(slug: str) -> Conflict:
    """The error for a second product with the same slug."""
    return Conflict(f"a product with slug {slug!r} already exists", code="slug_taken",
                    details={"slug": slug})


def find_product(id_or_slug: str) -> Product:
    """The product with this id (all digits) or slug; `NotFound` otherwise."""
    product = None
    if id_or_slug.isdecimal() and id_or_slug.isascii():
        if int(id_or_slug) <= MAX_ID:
            product = db.session.get(Product, int(id_or_slug))
    elif _SLUG.match(id_or_slug.lower()):
        product = db.session.scalar(select(Product).where(Product.slug == id_or_slug.lower()))
    if product is None:
        raise NotFound(f"no product {id_or_slug!r}", code="product_not_found",
                       details={"product": id_or_slug})
    return product


@dataclass(frozen=True)
class ProductPage:
    """One page of the catalog in id order."""

    items: list[Product]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        """How many pages the catalog has at this page size."""
        return -(-self.total // self.per_page)


def list_products(page: int, per_page: int) -> ProductPage:
    """Page `page` (from 1) of the catalog, with the total count."""
    total = db.session.scalar(select(func.count()).select_from(Product)) or 0
    items = db.session.scalars(
        select(Product).order_by(Product.id).offset((page - 1) * per_page).limit(per_page)
    ).all()
    return ProductPage(list(items), page, per_page, total)


def list_products_after(after_id: int, limit: int) -> tuple[list[Product], int | None]:
    """Up to `limit` products with ids above `after_id`, and the id to continue after (if any)."""
    rows = db.session.scalars(
        select(Product).where(Product.id > after_id).order_by(Product.id).limit(limit + 1)
    ).all()
    items = list(rows[:limit])
    return items, (items[-1].id if len(rows) > limit else None)


def simulate_downstream_work(delay_ms: int, cpu_ms: int) -> None:
    """Stand in for a slow dependency (sleep) and for CPU-heavy rendering (busy loop).

    Load experiments turn these on to make product reads cost something measurable; both are
    zero by default. CPU time is counted on this thread, so under a CPU quota the burn takes
    longer in wall time, as real work would.
    """
    if delay_ms:
        time.sleep(delay_ms / 1000)
    if cpu_ms:
        stop = time.thread_time() + cpu_ms / 1000
        while time.thread_time() < stop:
            sum(range(500))
