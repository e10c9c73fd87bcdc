"""Product's HTTP API: the catalog (v1, v2 and the seed's legacy path) and stock reservations.

Who may call what:
- reading the catalog is open;
- creating products needs an admin token (401, 403), except on the standalone development
  service on loopback (see `services.product.catalog_access`);
- reservations accept only the order service's own token (`services.common.service_identity`;
  a shopper's token gets 403), acting for the user named in `X-Breakwater-Acting-User`; the
  user id is recorded, and a reservation is found, confirmed or released only for that user
  (anyone else gets 404, so ids reveal nothing). One user may hold only so many units at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import current_app
from flask_smorest import Blueprint

from services.common.app import FORM_TYPES, JSON_TYPES, accepts
from services.common.errors import NotFound
from services.common.service_identity import acting_user_id, service_required
from services.product import domain, reservations
from services.product.catalog_access import catalog_writer_required
from services.product.config import ProductSettings
from services.product.models import Product, Reservation
from services.product.schemas import (
    ORDER_REF_PATTERN,
    CursorArgsSchema,
    LegacyProductCreateSchema,
    PageArgsSchema,
    ProductCreateSchema,
    ProductCursorPageSchema,
    ProductPageSchema,
    ProductSchema,
    ProductV2Schema,
    ReservationSchema,
    ReserveSchema,
    StockSchema,
    encode_cursor,
)

CLOCK_KEY = "product.clock"
BEARER = [{"bearerAuth": []}]
ORDER_SERVICE = "order"
ORDER_REF = re.compile(ORDER_REF_PATTERN)


class JsonOrFormBlueprint(Blueprint):
    """A flask-smorest Blueprint that also documents webargs' "json_or_form" location."""

    DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = {
        **Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING,
        "json_or_form": "application/json",
    }


products_blp = JsonOrFormBlueprint("products", __name__, url_prefix="/api/v1/products",
                                   description="The catalog (v1)")
legacy_blp = JsonOrFormBlueprint("legacy", __name__, url_prefix="/api/product",
                                 description="The seed document's paths, kept working")
products_v2_blp = Blueprint("products_v2", __name__, url_prefix="/api/v2/products",
                            description="The catalog (v2: money objects, cursor paging)")
reservations_blp = Blueprint("reservations", __name__, url_prefix="/api/v1/reservations",
                             description="Stock held for checkout")


def _settings() -> ProductSettings:
    return current_app.config["SETTINGS"]


def _now() -> datetime:
    clock: Callable[[], datetime] = current_app.extensions[CLOCK_KEY]
    return clock()


def _simulate_read_cost() -> None:
    settings = _settings()
    domain.simulate_downstream_work(settings.simulated_delay_ms, settings.simulated_cpu_ms)


def _create(fields: dict[str, Any]) -> Product:
    settings = _settings()
    return domain.create_product(
        **fields, default_stock=settings.default_stock, currency=settings.currency
    )


def _form_body_doc(schema: type) -> dict[str, Any]:
    return {"requestBody": {"content": {"application/x-www-form-urlencoded": {"schema": schema}}}}


@products_blp.post("")
@accepts(*JSON_TYPES, *FORM_TYPES)
@catalog_writer_required
@products_blp.arguments(ProductCreateSchema, location="json_or_form")
@products_blp.response(201, ProductSchema)
@products_blp.alt_response(409, description="the slug is taken")
@products_blp.alt_response(401, description="no valid access token")
@products_blp.alt_response(403, description="the token is not an admin's")
@products_blp.doc(security=BEARER, **_form_body_doc(ProductCreateSchema))
def create_product(fields: dict[str, Any]) -> Product:
    """Add a product (JSON or form fields; price in currency units, e.g. "12.50")."""
    return _create(fields)


@legacy_blp.post("/create")
@accepts(*JSON_TYPES, *FORM_TYPES)
@catalog_writer_required
@legacy_blp.arguments(LegacyProductCreateSchema, location="json_or_form")
@legacy_blp.response(201, ProductSchema)
@legacy_blp.alt_response(409, description="the slug is taken")
@legacy_blp.alt_response(401, description="no valid access token")
@legacy_blp.alt_response(403, description="the token is not an admin's")
@legacy_blp.doc(deprecated=True, security=BEARER, **_form_body_doc(LegacyProductCreateSchema))
def create_product_legacy(fields: dict[str, Any]) -> Product:
    """The seed's `curl -d "name=…&slug=…&image=…&price=100" /api/product/create`."""
    return _create(fields)


@products_blp.get("")
@products_blp.arguments(PageArgsSchema, location="query")
@products_blp.response(200, ProductPageSchema)
def list_products(args: dict[str, int]) -> domain.ProductPage:
    """A page of the catalog in id order, with the total count."""
    _simulate_read_cost()
    return domain.list_products(args["page"], args["per_page"])


@products_blp.get("/<string:id_or_slug>")
@products_blp.response(200, ProductSchema)
@products_blp.alt_response(404, description="no such product")
def get_product(id_or_slug: str) -> Product:
    """One product, by numeric id or by slug."""
    _simulate_read_cost()
    return domain.find_product(id_or_slug)


@products_blp.get("/<string:id_or_slug>/stock")
@products_blp.response(200, StockSchema)
@products_blp.alt_response(404, description="no such product")
def get_stock(id_or_slug: str) -> dict[str, int]:
    """Where the product's units are: available, held, sold (an audit's view of the shelf)."""
    return reservations.stock_accounting(domain.find_product(id_or_slug), _now())


@products_v2_blp.get("")
@products_v2_blp.arguments(CursorArgsSchema, location="query")
@products_v2_blp.response(200, ProductCursorPageSchema)
def list_products_v2(args: dict[str, Any]) -> dict[str, Any]:
    """A slice of the catalog; pass `next_cursor` back as `cursor` for the next one."""
    _simulate_read_cost()
    items, last_id = domain.list_products_after(args["cursor"] or 0, args["limit"])
    return {"items": items, "next_cursor": None if last_id is None else encode_cursor(last_id)}


@products_v2_blp.get("/<string:id_or_slug>")
@products_v2_blp.response(200, ProductV2Schema)
@products_v2_blp.alt_response(404, description="no such product")
def get_product_v2(id_or_slug: str) -> Product:
    """One product in the v2 shape."""
    _simulate_read_cost()
    return domain.find_product(id_or_slug)


@reservations_blp.post("")
@service_required(ORDER_SERVICE)
@reservations_blp.arguments(ReserveSchema)
@reservations_blp.response(201, ReservationSchema, description="units held")
@reservations_blp.alt_response(200, schema=ReservationSchema, description="the same order_ref again")
@reservations_blp.alt_response(401, description="no valid service token")
@reservations_blp.alt_response(403, description="not the order service (a shopper's token)")
@reservations_blp.alt_response(409, description="insufficient_stock, or order_ref reused")
@reservations_blp.doc(security=BEARER)
def reserve(fields: dict[str, Any]) -> tuple[Reservation, int]:
    """Hold all lines for one order, or none (409 `insufficient_stock` says what is short)."""
    reservation, created = reservations.reserve_stock(
        user_id=acting_user_id(),
        order_ref=fields["order_ref"],
        lines=[(line["product_id"], line["quantity"]) for line in fields["lines"]],
        ttl_seconds=_settings().hold_ttl_seconds,
        now=_now(),
        max_held_units=_settings().max_held_units_per_user,
    )
    return reservation, 201 if created else 200


@reservations_blp.get("/by-ref/<string:order_ref>")
@service_required(ORDER_SERVICE)
@reservations_blp.response(200, ReservationSchema)
@reservations_blp.alt_response(404, description="nothing is held or sold under this reference")
@reservations_blp.doc(security=BEARER)
def get_reservation_by_ref(order_ref: str) -> Reservation:
    """The reservation of one order, by its reference (an expired hold reads `expired`)."""
    if len(order_ref) > 64 or not ORDER_REF.fullmatch(order_ref):
        raise NotFound(f"no reservation for order {order_ref[:64]}", code="reservation_not_found")
    return reservations.reservation_by_ref(order_ref, acting_user_id(), _now())


@reservations_blp.get("/<int:reservation_id>")
@service_required(ORDER_SERVICE)
@reservations_blp.response(200, ReservationSchema)
@reservations_blp.alt_response(404, description="no such reservation of yours")
@reservations_blp.doc(security=BEARER)
def get_reservation(reservation_id: int) -> Reservation:
    """One of the caller's reservations."""
    return reservations.find_reservation(reservation_id, acting_user_id())


@reservations_blp.post("/<int:reservation_id>/confirm")
@service_required(ORDER_SERVICE)
@reservations_blp.response(200, ReservationSchema)
@reservations_blp.alt_response(404, description="no such reservation of yours")
@reservations_blp.alt_response(409, description="released or expired")
@reservations_blp.doc(security=BEARER)
def confirm(reservation_id: int) -> Reservation:
    """Turn the hold into a sale (idempotent)."""
    return reservations.confirm_reservation(reservation_id, acting_user_id(), _now())


@reservations_blp.post("/<int:reservation_id>/release")
@service_required(ORDER_SERVICE)
@reservations_blp.response(200, ReservationSchema)
@reservations_blp.alt_response(404, description="no such reservation of yours")
@reservations_blp.alt_response(409, description="already confirmed")
@reservations_blp.doc(security=BEARER)
def release(reservation_id: int) -> Reservation:
    """Give the held units back (idempotent)."""
    return reservations.release_reservation(reservation_id, acting_user_id(), _now())
