"""Marshmallow schemas of product: request validation and the OpenAPI document."""

from __future__ import annotations

import base64
import binascii
import unicodedata
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

MAX_ID = 2**31 - 1
MAX_PRICE = Decimal("999999999.99")
PRICE_PATTERN = r"^[0-9]{1,9}(\.[0-9]{1,2})?$"
MAX_STOCK = 1_000_000_000
MAX_QUANTITY = 10_000
MAX_LINES = 50
MAX_PER_PAGE = 100
MAX_PAGE = 1_000_000
SLUG_PATTERN = r"^(?=[a-z0-9-]*[a-z])[a-z0-9]+(?:-[a-z0-9]+)*$"  # not all digits: ids are
ORDER_REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"


class Text(fields.String):
    """A string with surrounding blanks removed; control characters refused."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if any(unicodedata.category(char) in ("Cc", "Cs") for char in text):
            raise ValidationError("Must not contain control characters.")
        return text


class Slug(Text):
    """A URL name: lower-case letters, digits and single hyphens, not only digits."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            validate=[
                validate.Length(min=1, max=200),
                validate.Regexp(SLUG_PATTERN, error="Use lower-case letters, digits and hyphens."),
            ],
            metadata={"pattern": SLUG_PATTERN},
            **kwargs,
        )

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).lower()


class WholeNumber(fields.Integer):
    """An integer (from JSON or a form string); refuses 2.5 instead of truncating it to 2."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class Price(fields.Decimal):
    """An amount in currency units with at most two decimals, e.g. 100 or "12.50".

    Documented as a decimal string (JSON numbers are accepted too); the bounds are checked
    here rather than by a Range validator, which apispec would publish as non-numbers.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            metadata={
                "type": "string", "pattern": PRICE_PATTERN, "example": "12.50",
                "description": "currency units, at most 2 decimals (a JSON number is accepted too)",
            },
            **kwargs,
        )

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        amount = super()._deserialize(value, attr, data, **kwargs)
        if not Decimal(0) < amount <= MAX_PRICE:
            raise ValidationError(f"Must be more than 0 and at most {MAX_PRICE}.")
        exponent = amount.normalize().as_tuple().exponent  # 12.500 is fine, 12.505 is not
        if isinstance(exponent, int) and exponent < -2:
            raise ValidationError("Use at most two decimal places.")
        return amount


class ImageReference(Text):
    """Where the product's picture is: an http(s) URL or a relative path (`product1.jpg`).

    Anything else (`javascript:`, `data:`, `//host/…`, backslashes, blanks inside) is refused:
    the value ends up in pages as a link or an image source.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if text and not _is_safe_image_reference(text):
            raise ValidationError(
                "Use an http(s) URL (https://example.com/p.jpg) or a relative path (product1.jpg)."
            )
        return text


def _is_safe_image_reference(text: str) -> bool:
    if any(char.isspace() or char == "\\" for char in text):
        return False
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. an unbalanced "[" in the host part
        return False
    if parts.scheme:
        return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    # No scheme: a path, but not "//host/…" (a URL of whatever scheme the page has) and not
    # "x:y" that a browser would read as a scheme.
    return not text.startswith("//") and ":" not in text.split("/", 1)[0]


class Cursor(fields.String):
    """An opaque position in the v2 listing (the last product id seen, encoded)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
            after = int(decoded.removeprefix("after:")) if decoded.startswith("after:") else -1
        except (binascii.Error, UnicodeDecodeError, ValueError):
            after = -1
        if not 0 <= after <= MAX_ID:
            raise ValidationError("Not a cursor this service gave out; start without one.")
        return after


def encode_cursor(after_id: int) -> str:
    """The opaque cursor for "products after this id"."""
    return base64.urlsafe_b64encode(f"after:{after_id}".encode()).decode().rstrip("=")


class ProductCreateSchema(Schema):
    """A new product (JSON or form fields)."""

    name = Text(required=True, validate=validate.Length(min=1, max=200))
    slug = Slug(required=True)
    image = ImageReference(
        load_default="", validate=validate.Length(max=255),
        metadata={"description": "an http(s) URL or a relative path", "example": "product1.jpg"},
    )
    price = Price(required=True)
    stock = WholeNumber(
        load_default=None, validate=validate.Range(min=0, max=MAX_STOCK),
        metadata={"description": "units on the shelf; the service default when omitted"},
    )


class LegacyProductCreateSchema(ProductCreateSchema):
    """The seed's form post; fields this service does not know are ignored, not refused."""

    class Meta:
        unknown = EXCLUDE


class ProductSchema(Schema):
    """A product in API v1: price as a decimal string in `currency`."""

    id = fields.Integer(required=True)
    name = fields.String(required=True)
    slug = fields.String(required=True)
    image = fields.String(required=True)
    price = fields.Decimal(required=True, as_string=True, places=2, metadata={"example": "12.50"})
    currency = fields.String(required=True, metadata={"example": "EUR"})
    stock = fields.Integer(required=True, attribute="available", metadata={"description": "units available"})
    created_at = fields.DateTime(required=True)


class PageArgsSchema(Schema):
    """Page-number paging of API v1."""

    page = WholeNumber(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))
    per_page = WholeNumber(load_default=20, validate=validate.Range(min=1, max=MAX_PER_PAGE))


class ProductPageSchema(Schema):
    """One page of the v1 catalog with the total count."""

    items = fields.List(fields.Nested(ProductSchema), required=True)
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    total = fields.Integer(required=True)
    pages = fields.Integer(required=True)


class MoneySchema(Schema):
    """An exact amount of money."""

    amount = fields.Decimal(required=True, as_string=True, places=2, metadata={"example": "12.50"})
    currency = fields.String(required=True, metadata={"example": "EUR"})


class ProductV2Schema(Schema):
    """A product in API v2: price as money, stock as a count and a flag."""

    id = fields.Integer(required=True)
    slug = fields.String(required=True)
    name = fields.String(required=True)
    image = fields.String(required=True)
    price = fields.Nested(MoneySchema, required=True, attribute="money")
    available = fields.Integer(required=True)
    in_stock = fields.Function(lambda product: product.available > 0, required=True,
                               metadata={"type": "boolean"})


class CursorArgsSchema(Schema):
    """Cursor paging of API v2."""

    cursor = Cursor(load_default=None, metadata={"description": "next_cursor of the previous page"})
    limit = WholeNumber(load_default=20, validate=validate.Range(min=1, max=MAX_PER_PAGE))


class ProductCursorPageSchema(Schema):
    """A slice of the v2 catalog; `next_cursor` is null on the last one."""

    items = fields.List(fields.Nested(ProductV2Schema), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class ReservationLineSchema(Schema):
    """Units of one product."""

    product_id = WholeNumber(required=True, validate=validate.Range(min=1, max=MAX_ID))
    quantity = WholeNumber(required=True, validate=validate.Range(min=1, max=MAX_QUANTITY))


class ReserveSchema(Schema):
    """Hold stock for one order; a retry with the same `order_ref` gets the same reservation."""

    order_ref = Text(
        required=True,
        validate=[validate.Length(min=1, max=64), validate.Regexp(ORDER_REF_PATTERN)],
        metadata={"description": "the order's idempotency reference", "pattern": ORDER_REF_PATTERN},
    )
    lines = fields.List(
        fields.Nested(ReservationLineSchema), required=True,
        validate=validate.Length(min=1, max=MAX_LINES),
    )


class ReservationSchema(Schema):
    """A reservation and its lines."""

    id = fields.Integer(required=True)
    order_ref = fields.String(required=True)
    user_id = fields.Integer(required=True)
    status = fields.String(
        required=True, metadata={"enum": ["held", "confirmed", "released", "expired"]}
    )
    expires_at = fields.DateTime(required=True)
    created_at = fields.DateTime(required=True)
    lines = fields.List(fields.Nested(ReservationLineSchema), required=True)


class StockSchema(Schema):
    """Where a product's units are: available + held + expired_held + sold is what it was
    stocked with."""

    product_id = fields.Integer(required=True)
    available = fields.Integer(required=True, metadata={"description": "on the shelf (the product's `stock`)"})
    held = fields.Integer(required=True, metadata={"description": "in unconfirmed, unexpired holds"})
    expired_held = fields.Integer(required=True, metadata={
        "description": "in holds past their expiry the sweeper has not returned yet"})
    sold = fields.Integer(required=True, metadata={"description": "in confirmed reservations"})
