"""The cart API: `/api/v1/cart`, always the cart of the token's user."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask_smorest import Blueprint

from services.cart import domain
from services.cart.catalog import CLIENT_KEY, fetch_product
from services.cart.schemas import (
    MAX_ID,
    AddItemSchema,
    CartSchema,
    RemovalResultSchema,
    RemovalSchema,
    SetQuantitySchema,
)
from services.common.errors import NotFound
from services.common.service_identity import acting_user_id, service_required
from services.common.tokens import current_principal, login_required

blp = Blueprint("cart", __name__, url_prefix="/api/v1/cart",
                description="The signed-in user's cart; prices are snapshotted from product")
SECURED = {"security": [{"bearerAuth": []}]}


def _checked_product_id(product_id: int) -> int:
    # Flask's int converter takes any size; the database does not.
    if not 1 <= product_id <= MAX_ID:
        raise NotFound(f"product {product_id} is not in your cart", code="cart_item_not_found",
                       details={"product_id": product_id})
    return product_id


@blp.route("", methods=["GET"])
@blp.doc(**SECURED)
@blp.response(200, CartSchema)
@login_required
def show_cart() -> dict[str, Any]:
    """The cart, with exact totals."""
    return domain.cart_of(current_principal().user_id)


@blp.route("", methods=["DELETE"])
@blp.doc(**SECURED)
@blp.response(204)
@login_required
def clear_cart() -> None:
    """Empty the cart."""
    domain.clear_cart(current_principal().user_id)


@blp.route("/items", methods=["POST"])
@blp.doc(**SECURED)
@blp.arguments(AddItemSchema)
@blp.response(201, CartSchema, description="a new line was added")
@blp.alt_response(200, schema=CartSchema, description="the product was already in the cart")
@login_required
def add_item(item: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Add a product (its price and name are taken from product now)."""
    user_id = current_principal().user_id
    client = current_app.extensions[CLIENT_KEY]
    product = fetch_product(client, item["product_id"], request.headers["Authorization"])
    created = domain.add_item(user_id, product, item["quantity"])
    return domain.cart_of(user_id), 201 if created else 200


@blp.route("/items/<int:product_id>", methods=["PUT", "PATCH"])
@blp.doc(**SECURED)
@blp.arguments(SetQuantitySchema)
@blp.response(200, CartSchema)
@login_required
def set_quantity(change: dict[str, Any], product_id: int) -> dict[str, Any]:
    """Set how many of a product in the cart."""
    user_id = current_principal().user_id
    domain.set_quantity(user_id, _checked_product_id(product_id), change["quantity"])
    return domain.cart_of(user_id)


@blp.route("/items/<int:product_id>", methods=["DELETE"])
@blp.doc(**SECURED)
@blp.response(200, CartSchema)
@login_required
def remove_item(product_id: int) -> dict[str, Any]:
    """Take a product out of the cart."""
    user_id = current_principal().user_id
    domain.remove_item(user_id, _checked_product_id(product_id))
    return domain.cart_of(user_id)


@blp.route("/removals", methods=["POST"])
@blp.doc(**SECURED)
@blp.arguments(RemovalSchema)
@blp.response(200, RemovalResultSchema)
@blp.alt_response(403, description="not the order service (a shopper's token)")
@service_required("order")
def remove_ordered_lines(removal: dict[str, Any]) -> dict[str, Any]:
    """Take a confirmed order's lines out of the acting user's cart, exactly and once
    (the order service only; lines added since the checkout stay)."""
    lines: dict[int, int] = {}
    for line in removal["lines"]:
        lines[line["product_id"]] = lines.get(line["product_id"], 0) + line["quantity"]
    applied = domain.remove_ordered_lines(acting_user_id(), removal["order_ref"], lines)
    return {"order_ref": removal["order_ref"], "applied": applied}
