"""The route table: which upstream serves a path, and how the gateway protects each route group.

Every row declares, besides where it goes, its time budget (reads and writes; a retry must fit
inside it), which methods are safe to send twice (reads; and, where the route implements
`Idempotency-Key`, writes that carry one — never because a client sent the header to a route
that ignores it), and its admission limit (requests of the group in flight at the gateway at
once; past it the gateway answers 503 at once, so one group cannot take every worker thread).

Prefixes match on whole path segments (`/api/v1/products` matches `/api/v1/products` and
`/api/v1/products/7`, never `/api/v1/productsX`). The first matching row wins.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
NONE: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Route:
    """One row of the route table."""

    prefix: str
    upstream: str  # "" for a route the edge refuses (internal-only)
    group: str  # label for metrics, logs and admission
    protected: bool = False  # the edge verifies the access token
    rate_limited: bool = False  # login attempts, limited per client IP
    stale_fallback: bool = False  # GETs may be answered from the last good response
    exact: bool = False
    read_budget: float = 4.0  # seconds for a read, its one retry included
    write_budget: float = 5.0  # seconds for any other method
    repeatable: frozenset[str] = READ_METHODS  # methods safe to send twice
    keyed: frozenset[str] = NONE  # methods the upstream deduplicates by Idempotency-Key
    admission: int = 16  # requests of this group in flight at once at the gateway

    def matches(self, path: str) -> bool:
        """Whether `path` falls under this route."""
        if self.exact:
            return path == self.prefix
        return path == self.prefix or path.startswith(self.prefix + "/")

    def budget(self, method: str) -> float:
        """The seconds a request of `method` may take here, all attempts included."""
        return self.read_budget if method in READ_METHODS else self.write_budget

    def may_repeat(self, method: str, idempotency_key: bool) -> bool:
        """Whether a request may be sent to the upstream twice (after a failure)."""
        return method in self.repeatable or (idempotency_key and method in self.keyed)


ROUTES: tuple[Route, ...] = (
    # Service-only endpoints (service credentials, an order's cart lines, stock reservations)
    # are called between services, never from outside: the edge refuses them.
    Route("/api/v1/auth/service-token", "", "internal"),
    Route("/api/v1/cart/removals", "", "internal"),
    # A login is not repeatable: a replay would count twice against the account's limits.
    Route("/api/v1/auth/login", "auth", "auth_login", rate_limited=True, exact=True, admission=8),
    Route("/api/v1/auth", "auth", "auth", admission=8),
    Route("/api/v1/users", "auth", "users", protected=True, admission=8),
    Route("/register", "auth", "register_page", exact=True, admission=4),
    Route("/.well-known/jwks.json", "auth", "jwks", exact=True, admission=4),
    Route("/api/v1/reservations", "", "internal"),
    Route("/api/v1/products", "product", "products", stale_fallback=True, admission=40),
    Route("/api/v2/products", "product", "products_v2", stale_fallback=True, admission=16),
    Route("/api/product/create", "product", "products_legacy", exact=True, admission=4),
    # Adding a line is not deduplicated by cart: a POST here is sent once, key or no key.
    Route("/api/v1/cart", "cart", "cart", protected=True, admission=16),
    # Checkout implements Idempotency-Key: a keyed POST returns the same order when repeated.
    # Its budget covers order's own calls (cart, reserve, confirm), which order fits inside it.
    Route("/api/v1/orders", "order", "orders", protected=True, write_budget=8.0,
          keyed=frozenset({"POST"}), admission=16),
)

UPSTREAMS: tuple[str, ...] = ("auth", "product", "cart", "order")
TUNABLE = ("read_budget", "write_budget", "admission")


def match_route(path: str, routes: tuple[Route, ...] = ROUTES) -> Route | None:
    """The route serving `path`, or None (the edge answers 404)."""
    if not path.startswith(("/api/", "/register", "/.well-known/")):
        return None
    for route in routes:
        if route.matches(path):
            return route
    return None


def tuned_routes(overrides: str, routes: tuple[Route, ...] = ROUTES) -> tuple[Route, ...]:
    """The table with `group.field=value` overrides applied (e.g. "orders.write_budget=10,
    cart.admission=8"); ValueError naming the bad part otherwise."""
    groups = {route.group for route in routes}
    changes: dict[str, dict[str, float | int]] = {}
    for part in overrides.replace(";", ",").split(","):
        if not part.strip():
            continue
        name, _, raw = part.partition("=")
        group, _, field = name.strip().partition(".")
        if group not in groups or field not in TUNABLE or not raw.strip():
            raise ValueError(f"route override {part.strip()!r}: use <group>.<{'|'.join(TUNABLE)}>=<number> "
                             f"with a group among {', '.join(sorted(groups))}")
        try:
            value: float | int = int(raw) if field == "admission" else float(raw)
        except ValueError as exc:
            raise ValueError(f"route override {part.strip()!r}: {raw.strip()!r} is not a number") from exc
        if value <= 0:
            raise ValueError(f"route override {part.strip()!r}: must be positive")
        changes.setdefault(group, {})[field] = value
    return tuple(dataclasses.replace(route, **changes[route.group]) if route.group in changes else route
                 for route in routes)


def describe_route(route: Route) -> dict[str, object]:
    """A route as the upstream view shows it."""
    return {
        "prefix": route.prefix,
        "upstream": route.upstream or None,
        "group": route.group,
        "protected": route.protected,
        "read_budget": route.read_budget,
        "write_budget": route.write_budget,
        "repeatable": sorted(route.repeatable),
        "repeatable_with_idempotency_key": sorted(route.keyed),
        "admission": route.admission,
    }
