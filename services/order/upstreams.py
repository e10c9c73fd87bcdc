"""Order's calls to cart and product, on the user's own bearer token.

Every call goes through the app's one ResilientClient; an upstream that cannot answer raises
`UpstreamUnavailable` (503 `<service>_unavailable`) or `UpstreamTimedOut` (504), which reach
the caller as they are. Answers that make no sense become 502 `<service>_bad_response`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.common.client import (
    FAILED_DEPENDENCY_HEADER,
    ResilientClient,
    UpstreamError,
    UpstreamPolicy,
    UpstreamResponse,
    build_client,
)
from services.common.errors import ApiError, Conflict
from services.order.config import OrderSettings

CLIENT_KEY = "breakwater.client"

# Reasons after which a request may or may not have been carried out by the upstream.
UNCERTAIN_REASONS = frozenset({"timeout", "server_error", "connection_failed"})


@dataclass(frozen=True)
class CartItem:
    """A line of the user's cart as order reads it."""

    product_id: int
    name: str
    unit_price_cents: int
    quantity: int


class BadUpstreamResponse(ApiError):
    """An upstream answered something order cannot use."""

    status = 502

    def __init__(self, service: str, message: str) -> None:
        super().__init__(message, code=f"{service}_bad_response", details={"service": service},
                         headers={FAILED_DEPENDENCY_HEADER: service})


def order_client(settings: OrderSettings) -> ResilientClient:
    """The app's one client, with cart and product found from the settings."""
    return build_client(resilience=settings.resilience, registry_file=settings.registry_file, upstreams={
        "cart": (settings.cart_url, UpstreamPolicy(
            connect_timeout=settings.cart_connect_timeout, read_timeout=settings.cart_read_timeout,
            max_concurrent=settings.cart_max_concurrent)),
        "product": (settings.product_url, UpstreamPolicy(
            connect_timeout=settings.product_connect_timeout,
            read_timeout=settings.product_read_timeout,
            max_concurrent=settings.product_max_concurrent)),
    })


def is_uncertain(error: Exception) -> bool:
    """Whether a failed call may still have been carried out (so its effect must be undone)."""
    return isinstance(error, UpstreamError) and error.reason in UNCERTAIN_REASONS


def _upstream_error(response: UpstreamResponse) -> dict[str, Any]:
    try:
        body = response.json()
        error = body.get("error") if isinstance(body, dict) else None
        return error if isinstance(error, dict) else {}
    except ValueError:
        return {}


class ShopUpstreams:
    """Cart and product as one checkout sees them: the calls, on behalf of one user."""

    def __init__(self, client: ResilientClient, authorization: str) -> None:
        self.client = client
        self.headers = {"Authorization": authorization, "Accept": "application/json"}

    def read_cart(self) -> list[CartItem]:
        """The user's cart lines."""
        response = self.client.request("cart", "GET", "/api/v1/cart", headers=self.headers)
        if response.status != 200:
            raise BadUpstreamResponse("cart", f"the cart service answered {response.status}")
        try:
            return [
                CartItem(int(line["product_id"]), str(line.get("name", "")),
                         int(line["unit_price_cents"]), int(line["quantity"]))
                for line in response.json()["lines"]
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise BadUpstreamResponse("cart", "the cart service sent a cart order cannot read") from exc

    def clear_cart(self) -> bool:
        """Empty the user's cart; whether it worked (a failure here never fails a checkout)."""
        try:
            response = self.client.request("cart", "DELETE", "/api/v1/cart", headers=self.headers,
                                           idempotent=True)
        except UpstreamError:
            return False
        return response.status in (200, 204)

    def reserve(self, order_ref: str, items: list[CartItem], *,
                timeout: tuple[float, float] | None = None) -> str:
        """Hold stock for every line (all or nothing); the reservation id.

        Product answers the same reservation for the same `order_ref`, so the call is safe to
        repeat. A refusal (409 insufficient_stock, an unknown product …) raises 409.
        """
        body = {"order_ref": order_ref,
                "lines": [{"product_id": i.product_id, "quantity": i.quantity} for i in items]}
        response = self.client.request("product", "POST", "/api/v1/reservations",
                                       headers=self.headers, json=body, idempotent=True,
                                       timeout=timeout)
        if response.status in (200, 201):
            try:
                return str(response.json()["id"])
            except (ValueError, KeyError, TypeError) as exc:
                raise BadUpstreamResponse("product", "the product service sent a reservation "
                                                     "without an id") from exc
        error = _upstream_error(response)
        raise Conflict(
            error.get("message") or f"the product service refused the reservation ({response.status})",
            code=error.get("code") or "reservation_refused",
            details={**(error.get("details") or {}), "upstream_status": response.status},
        )

    def confirm(self, reservation_id: str) -> None:
        """Turn the hold into a sale; 409 if product refuses (the hold expired or was released)."""
        response = self.client.request("product", "POST",
                                       f"/api/v1/reservations/{reservation_id}/confirm",
                                       headers=self.headers, idempotent=True)
        if response.status != 200:
            error = _upstream_error(response)
            raise Conflict(
                error.get("message") or f"the product service refused to confirm ({response.status})",
                code=error.get("code") or "reservation_not_confirmed",
                details={**(error.get("details") or {}), "upstream_status": response.status},
            )

    def release(self, reservation_id: str) -> str:
        """Give the held stock back: `released`, `confirmed` (too late: it was sold) or `unknown`."""
        try:
            response = self.client.request("product", "POST",
                                           f"/api/v1/reservations/{reservation_id}/release",
                                           headers=self.headers, idempotent=True)
        except UpstreamError:
            return "unknown"
        if response.status in (200, 204):
            return "released"
        if response.status == 404:
            return "released"  # nothing is held under that id
        body_text = response.data.decode("utf-8", "replace").lower()
        return "confirmed" if "confirmed" in body_text else "unknown"

    def release_by_ref(self, order_ref: str, items: list[CartItem]) -> str:
        """Undo a reservation whose answer never came: ask for it again by ref, then release it."""
        try:
            reservation_id = self.reserve(order_ref, items)
        except Conflict:
            return "released"  # product holds nothing for this ref and could not make it now
        except (UpstreamError, BadUpstreamResponse):
            return "unknown"
        return self.release(reservation_id)
