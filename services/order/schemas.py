"""Request validation and the OpenAPI document of the order API."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

IDEMPOTENCY_KEY = "Idempotency-Key"


class CheckoutHeadersSchema(Schema):
    """The optional `Idempotency-Key` that makes a repeated checkout return the first order."""

    idempotency_key = fields.String(
        data_key=IDEMPOTENCY_KEY, load_default=None,
        validate=[validate.Length(1, 128), validate.Regexp(r"^[\x21-\x7e]+$")],
        metadata={"description": "1-128 visible ASCII characters; the same key returns the same "
                                 "order (a key of a failed checkout may be used again)"},
    )


class CheckoutSchema(Schema):
    """The checkout body: nothing (the cart is the order); `{}` or no body at all."""


class PageArgsSchema(Schema):
    """`?page=&per_page=` of a list."""

    page = fields.Integer(load_default=1, validate=validate.Range(1, 100_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(1, 100))


class FailureSchema(Schema):
    """Why an order failed."""

    code = fields.String()
    message = fields.String()


class OrderLineSchema(Schema):
    """A product bought, at the price the cart held."""

    product_id = fields.Integer()
    name = fields.String()
    unit_price = fields.String(metadata={"description": "exact decimal, e.g. \"12.50\""})
    unit_price_cents = fields.Integer()
    quantity = fields.Integer()
    line_total = fields.String()
    line_total_cents = fields.Integer()


class StatusChangeSchema(Schema):
    """One step of the order's life."""

    status = fields.String()
    at = fields.DateTime()
    note = fields.String()


class OrderSummarySchema(Schema):
    """An order in a list."""

    id = fields.Integer()
    ref = fields.String(metadata={"description": "the reservation reference at product"})
    status = fields.String(metadata={"description": "pending | confirmed | failed"})
    item_count = fields.Integer()
    total = fields.String(metadata={"description": "exact decimal, e.g. \"37.50\""})
    total_cents = fields.Integer()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    failure = fields.Nested(FailureSchema, allow_none=True)


class OrderSchema(OrderSummarySchema):
    """An order with its lines and status history."""

    lines = fields.List(fields.Nested(OrderLineSchema))
    status_history = fields.List(fields.Nested(StatusChangeSchema))
    reservation_id = fields.String(allow_none=True)
    reservation_state = fields.String(
        metadata={"description": "none | held | confirmed | released | unknown"})
    cart_cleared = fields.Boolean()


class OrderPageSchema(Schema):
    """A page of the user's orders, newest first."""

    items = fields.List(fields.Nested(OrderSummarySchema))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()
    pages = fields.Integer()
