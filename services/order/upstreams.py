"""Order's calls to cart and product: the cart read on the shopper's own token, everything
else (reservations, taking the order's lines out of the cart) on order's service token,
acting for the order's user — so the reconciler can make the same calls with no shopper.

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
from services.common.errors import ApiError, Conflict, DependencyUnavailable
from services.common.service_identity import ServiceTokenSource, load_service_secret
from services.order.config import OrderSettings

CLIENT_KEY = "breakwater.client"
TOKENS_KEY = "order.service_tokens"


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
    """The app's one client, with auth, cart and product found from the settings."""
    return build_client(resilience=settings.resilience, registry_file=settings.registry_file, upstreams={
        "auth": (settings.auth_url, UpstreamPolicy(
            connect_timeout=settings.auth_connect_timeout, read_timeout=settings.auth_read_timeout,
            max_concurrent=4)),
        "cart": (settings.cart_url, UpstreamPolicy(
            connect_timeout=settings.cart_connect_timeout, read_timeout=settings.cart_read_timeout,
            max_concurrent=settings.cart_max_concurrent)),
        "product": (settings.product_url, UpstreamPolicy(
            connect_timeout=settings.product_connect_timeout,
            read_timeout=settings.product_read_timeout,
            max_concurrent=settings.product_max_concurrent)),
    })


def service_tokens(settings: OrderSettings, client: ResilientClient) -> ServiceTokenSource:
    """Order's own token from auth, with the secret the settings name (or local mode made)."""
    secret = load_service_secret("order", secret=settings.order_service_secret,
                                 secret_file=settings.order_service_secret_file,
                                 environment=settings.environment)
    return ServiceTokenSource(client, "order", secret)


def is_uncertain(error: Exception) -> bool:
    """Whether a failed call may still have been carried out (so its effect must be checked):
    any attempt that may have reached the server counts, not only the last one."""
    return isinstance(error, UpstreamError) and error.uncertain


def _upstream_error(response: UpstreamResponse) -> dict[str, Any]:
    try:
        body = response.json()
        error = body.get("error") if isinstance(body, dict) else None
        return error if isinstance(error, dict) else {}
    except ValueError:
        return {}


def _retry_after(response: UpstreamResponse) -> int | None:
    """The upstream's Retry-After in whole seconds (1..60), when it sent a usable one."""
    raw = response.headers.get("Retry-After", "")
    return min(max(int(raw), 1), 60) if raw.strip().isdigit() else None


@dataclass(frozen=True)
class ReservationView:
    """What product says of an order's reservation."""

    id: str
    status: str  # held | confirmed | released | expired


class ShopUpstreams:
    """Cart and product as one order sees them: the calls, on behalf of its user."""

    def __init__(self, client: ResilientClient, tokens: ServiceTokenSource, user_id: int,
                 authorization: str | None = None) -> None:
        self.client, self.tokens, self.user_id = client, tokens, user_id
        self.authorization = authorization

    def _as_service(self, service: str, method: str, path: str, **kwargs: Any) -> UpstreamResponse:
        """A call on order's own token, acting for the user; a refused (401) token is fetched
        anew once (it may have expired early, or auth's key rotated)."""
        for attempt in (1, 2):
            try:
                headers = {**self.tokens.headers(self.user_id), "Accept": "application/json"}
            except UpstreamError as exc:  # auth could not be asked: nothing reached `service`
                raise DependencyUnavailable(
                    f"order could not get its service token from auth ({exc.reason}); try again "
                    "shortly", code="service_identity_unavailable",
                    headers={FAILED_DEPENDENCY_HEADER: "auth"}) from exc
            response = self.client.request(service, method, path, headers=headers, **kwargs)
            if response.status == 401 and attempt == 1:
                self.tokens.invalidate()
                continue
            return response
        raise AssertionError("unreachable")

    def read_cart(self) -> list[CartItem]:
        """The user's cart lines (on the shopper's own token: only a shopper checks out)."""
        headers = {"Authorization": self.authorization or "", "Accept": "application/json"}
        response = self.client.request("cart", "GET", "/api/v1/cart", headers=headers)
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

    def remove_ordered_lines(self, order_ref: str, items: list[CartItem]) -> bool:
        """Take exactly the order's lines out of the user's cart (once per order, however often
        asked); whether cart confirmed it (a failure here never fails a checkout)."""
        body = {"order_ref": order_ref,
                "lines": [{"product_id": i.product_id, "quantity": i.quantity} for i in items]}
        try:
            response = self._as_service("cart", "POST", "/api/v1/cart/removals", json=body,
                                        idempotent=True)
        except ApiError:
            return False
        return response.status == 200

    def reserve(self, order_ref: str, items: list[CartItem], *,
                timeout: tuple[float, float] | None = None) -> str:
        """Hold stock for every line (all or nothing); the reservation id.

        Product answers the same reservation for the same `order_ref`, so the call is safe to
        repeat. A refusal (409 insufficient_stock, an unknown product …) raises 409.
        """
        body = {"order_ref": order_ref,
                "lines": [{"product_id": i.product_id, "quantity": i.quantity} for i in items]}
        response = self._as_service("product", "POST", "/api/v1/reservations", json=body,
                                    idempotent=True, timeout=timeout)
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
            # Product asks for a retry when the shortage is units other checkouts hold.
            retry_after=_retry_after(response),
        )

    def confirm(self, reservation_id: str) -> None:
        """Turn the hold into a sale; 409 if product refuses (the hold expired or was released)."""
        response = self._as_service("product", "POST", f"/api/v1/reservations/{reservation_id}/confirm",
                                    idempotent=True)
        if response.status != 200:
            error = _upstream_error(response)
            raise Conflict(
                error.get("message") or f"the product service refused to confirm ({response.status})",
                code=error.get("code") or "reservation_not_confirmed",
                details={**(error.get("details") or {}), "upstream_status": response.status},
            )

    def release(self, reservation_id: str) -> str:
        """Give the held stock back: how the reservation ended — `released`, `expired`,
        `confirmed` (too late: it was sold), `absent`, or `unknown` (no answer)."""
        try:
            response = self._as_service("product", "POST",
                                        f"/api/v1/reservations/{reservation_id}/release",
                                        idempotent=True)
        except ApiError:
            return "unknown"
        if response.status == 200:
            status = _status_of(response)
            return status if status in ("released", "expired") else "unknown"
        if response.status == 404:
            return "absent"
        if response.status == 409 and _upstream_error(response).get("code") == "reservation_confirmed":
            return "confirmed"
        return "unknown"

    def reservation_by_ref(self, order_ref: str) -> ReservationView | None:
        """The order's reservation as product has it now; None when product has none."""
        response = self._as_service("product", "GET", f"/api/v1/reservations/by-ref/{order_ref}")
        if response.status == 404:
            return None
        if response.status != 200:
            raise BadUpstreamResponse("product", f"the product service answered {response.status} "
                                                 "to a reservation look-up")
        status = _status_of(response)
        try:
            reservation_id = str(response.json()["id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise BadUpstreamResponse("product", "the product service sent a reservation without "
                                                 "an id") from exc
        if status not in ("held", "confirmed", "released", "expired"):
            raise BadUpstreamResponse("product", f"the product service sent a reservation in an "
                                                 f"unknown state {status!r}")
        return ReservationView(reservation_id, status)

    def release_by_ref(self, order_ref: str) -> str:
        """Undo a reservation whose answer never came: find it by ref and release it; how it
        ended (`absent` when product never made it), `unknown` when product cannot say."""
        try:
            reservation = self.reservation_by_ref(order_ref)
        except ApiError:
            return "unknown"
        if reservation is None:
            return "absent"
        if reservation.status != "held":
            return reservation.status
        return self.release(reservation.id)


def _status_of(response: UpstreamResponse) -> str:
    try:
        body = response.json()
        return str(body.get("status", "")) if isinstance(body, dict) else ""
    except ValueError:
        return ""
