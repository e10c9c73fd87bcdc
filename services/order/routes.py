"""The order API: checkout and order history, always of the token's user."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app, request
from flask_smorest import Blueprint

from services.common.errors import NotFound
from services.common.tokens import current_principal, login_required
from services.order import domain
from services.order.checkout import checkout
from services.order.schemas import (
    CheckoutHeadersSchema,
    CheckoutSchema,
    OrderPageSchema,
    OrderSchema,
    PageArgsSchema,
)
from services.order.upstreams import CLIENT_KEY, TOKENS_KEY, ShopUpstreams

blp = Blueprint("orders", __name__, url_prefix="/api/v1/orders",
                description="Checkout and order history of the signed-in user")
SECURED = {"security": [{"bearerAuth": []}]}
MAX_ID = 2**31 - 1


@blp.route("", methods=["POST"])
@blp.doc(**SECURED)
@blp.arguments(CheckoutSchema, required=False)
@blp.arguments(CheckoutHeadersSchema, location="headers")
@blp.response(201, OrderSchema, description="the order was made now")
@blp.alt_response(200, schema=OrderSchema,
                  description="the order this Idempotency-Key already made")
@login_required
def create_order(_body: dict[str, Any], headers: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Check out the cart: reserve stock, confirm it, empty the cart."""
    user_id = current_principal().user_id
    upstreams = ShopUpstreams(current_app.extensions[CLIENT_KEY], current_app.extensions[TOKENS_KEY],
                              user_id, request.headers["Authorization"])
    grace = timedelta(seconds=current_app.config["SETTINGS"].reconcile_grace_seconds)
    order, created = checkout(user_id, headers["idempotency_key"], upstreams, grace=grace)
    return domain.order_view(order), 201 if created else 200


@blp.route("", methods=["GET"])
@blp.doc(**SECURED)
@blp.arguments(PageArgsSchema, location="query")
@blp.response(200, OrderPageSchema)
@login_required
def list_orders(args: dict[str, Any]) -> dict[str, Any]:
    """The user's orders, newest first (never calls cart or product)."""
    return domain.orders_of(current_principal().user_id, args["page"], args["per_page"])


@blp.route("/<int:order_id>", methods=["GET"])
@blp.doc(**SECURED)
@blp.response(200, OrderSchema)
@login_required
def show_order(order_id: int) -> dict[str, Any]:
    """One of the user's orders with its status history."""
    if not 1 <= order_id <= MAX_ID:  # Flask's int converter takes any size; the database does not
        raise NotFound(f"you have no order {order_id}", code="order_not_found",
                       details={"order_id": order_id})
    return domain.order_view(domain.order_of(current_principal().user_id, order_id))
