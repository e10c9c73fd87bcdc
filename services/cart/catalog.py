"""Cart's view of the product service: look a product up to snapshot its name and price."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from services.cart.config import CartSettings
from services.common.client import (
    FAILED_DEPENDENCY_HEADER,
    ResilientClient,
    UpstreamPolicy,
    build_client,
)
from services.common.errors import ApiError, NotFound

CLIENT_KEY = "breakwater.client"


@dataclass(frozen=True)
class ProductSnapshot:
    """What cart keeps of a product: as it was when it was added."""

    id: int
    name: str
    slug: str
    image: str
    price_cents: int
    stock: int | None


class ProductBadResponse(ApiError):
    """Product answered something cart cannot use (not the caller's fault, not cart's either)."""

    status, code = 502, "product_bad_response"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message, details={"service": "product", **details},
                         headers={FAILED_DEPENDENCY_HEADER: "product"})


def product_client(settings: CartSettings) -> ResilientClient:
    """The app's one client, with product found from the settings."""
    policy = UpstreamPolicy(
        connect_timeout=settings.product_connect_timeout,
        read_timeout=settings.product_read_timeout,
        max_concurrent=settings.product_max_concurrent,
    )
    return build_client(resilience=settings.resilience, registry_file=settings.registry_file,
                        upstreams={"product": (settings.product_url, policy)})


def price_in_cents(body: dict[str, Any]) -> int:
    """The exact price of a product body, preferring integer cents over the decimal string."""
    cents = body.get("price_cents")
    if isinstance(cents, int) and not isinstance(cents, bool):
        return cents
    try:
        price = Decimal(str(body["price"]))
    except (KeyError, InvalidOperation) as exc:
        raise ProductBadResponse("the product service sent a product without a usable price") from exc
    cents_decimal = price * 100
    if cents_decimal != cents_decimal.to_integral_value():
        raise ProductBadResponse(f"the product service sent a price with sub-cent digits: {price}")
    return int(cents_decimal)


def fetch_product(client: ResilientClient, product_id: int, authorization: str) -> ProductSnapshot:
    """The product as product knows it now; `NotFound` if it does not exist."""
    response = client.request("product", "GET", f"/api/v1/products/{product_id}",
                              headers={"Authorization": authorization, "Accept": "application/json"})
    if response.status == 404:
        raise NotFound(f"there is no product with id {product_id}", code="product_not_found",
                       details={"product_id": product_id})
    if response.status != 200:
        raise ProductBadResponse(f"the product service answered {response.status} for product "
                                 f"{product_id}", status=response.status)
    try:
        body = response.json()
        stock = body.get("stock")
        snapshot = ProductSnapshot(
            id=int(body.get("id", product_id)),
            name=str(body["name"])[:200],
            slug=str(body.get("slug") or "")[:200],
            image=str(body.get("image") or "")[:500],
            price_cents=price_in_cents(body),
            stock=stock if isinstance(stock, int) and not isinstance(stock, bool) else None,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ProductBadResponse("the product service sent a product cart cannot read") from exc
    if snapshot.price_cents < 0:
        raise ProductBadResponse("the product service sent a negative price")
    return snapshot
