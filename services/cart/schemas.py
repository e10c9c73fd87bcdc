"""Request validation and the OpenAPI document of the cart API."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from services.cart.domain import MAX_LINE_QUANTITY

MAX_ID = 2**31 - 1

Quantity = fields.Integer(strict=True, validate=validate.Range(1, MAX_LINE_QUANTITY),
                          metadata={"description": f"1 to {MAX_LINE_QUANTITY}"})


class AddItemSchema(Schema):
    """`POST /api/v1/cart/items`."""

    product_id = fields.Integer(strict=True, required=True, validate=validate.Range(1, MAX_ID))
    quantity = fields.Integer(strict=True, load_default=1,
                              validate=validate.Range(1, MAX_LINE_QUANTITY),
                              metadata={"description": f"1 to {MAX_LINE_QUANTITY}; default 1"})


class SetQuantitySchema(Schema):
    """`PUT|PATCH /api/v1/cart/items/<product_id>`."""

    quantity = fields.Integer(strict=True, required=True,
                              validate=validate.Range(1, MAX_LINE_QUANTITY),
                              metadata={"description": f"1 to {MAX_LINE_QUANTITY}"})


ORDER_REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"


class OrderedLineSchema(Schema):
    """A product and the quantity an order bought of it."""

    product_id = fields.Integer(strict=True, required=True, validate=validate.Range(1, MAX_ID))
    quantity = fields.Integer(strict=True, required=True, validate=validate.Range(1, 100_000))


class RemovalSchema(Schema):
    """`POST /api/v1/cart/removals` (order service only): take an order's lines out."""

    order_ref = fields.String(required=True, validate=[validate.Length(1, 64),
                                                       validate.Regexp(ORDER_REF_PATTERN)])
    lines = fields.List(fields.Nested(OrderedLineSchema), required=True,
                        validate=validate.Length(1, 50))


class RemovalResultSchema(Schema):
    """Whether this call took the lines out (False: an earlier call for the order did)."""

    order_ref = fields.String()
    applied = fields.Boolean()


class CartLineSchema(Schema):
    """A product in the cart, priced as it was when added."""

    product_id = fields.Integer()
    name = fields.String()
    slug = fields.String()
    image = fields.String()
    unit_price = fields.String(metadata={"description": "exact decimal, e.g. \"12.50\""})
    unit_price_cents = fields.Integer()
    quantity = fields.Integer()
    line_total = fields.String()
    line_total_cents = fields.Integer()
    added_at = fields.DateTime()
    updated_at = fields.DateTime()


class CartSchema(Schema):
    """A user's cart and its exact totals."""

    user_id = fields.Integer()
    lines = fields.List(fields.Nested(CartLineSchema))
    line_count = fields.Integer()
    item_count = fields.Integer()
    total = fields.String(metadata={"description": "exact decimal, e.g. \"37.50\""})
    total_cents = fields.Integer()
