"""The route table: which upstream serves a path, and how the edge treats it.

Prefixes match on whole path segments (`/api/v1/products` matches `/api/v1/products` and
`/api/v1/products/7`, never `/api/v1/productsX`). The first matching row wins.
"""

from __future__ import annotations

from dataclasses import dataclass

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Route:
    """One row of the route table."""

    prefix: str
    upstream: str  # "" for a route the edge refuses (internal-only)
    group: str  # label for metrics and logs
    protected: bool = False  # the edge verifies the access token
    rate_limited: bool = False  # login attempts, limited per client IP
    stale_fallback: bool = False  # GETs may be answered from the last good response
    checkout_methods: frozenset[str] = frozenset()  # methods that get the long timeout
    exact: bool = False

    def matches(self, path: str) -> bool:
        """Whether `path` falls under this route."""
        if self.exact:
            return path == self.prefix
        return path == self.prefix or path.startswith(self.prefix + "/")

    def timeout_class(self, method: str) -> str:
        """ "read", "write" or "checkout": which timeout a call of `method` gets."""
        if method in self.checkout_methods:
            return "checkout"
        return "read" if method in READ_METHODS else "write"


ROUTES: tuple[Route, ...] = (
    Route("/api/v1/auth/login", "auth", "auth_login", rate_limited=True, exact=True),
    Route("/api/v1/auth", "auth", "auth"),
    Route("/api/v1/users", "auth", "users", protected=True),
    Route("/register", "auth", "register_page", exact=True),
    Route("/.well-known/jwks.json", "auth", "jwks", exact=True),
    # Stock reservations are order -> product only: never reachable from outside.
    Route("/api/v1/reservations", "", "internal"),
    Route("/api/v1/products", "product", "products", stale_fallback=True),
    Route("/api/v2/products", "product", "products_v2", stale_fallback=True),
    Route("/api/product/create", "product", "products_legacy", exact=True),
    Route("/api/v1/cart", "cart", "cart", protected=True),
    Route(
        "/api/v1/orders", "order", "orders", protected=True, checkout_methods=frozenset({"POST"})
    ),
)

UPSTREAMS: tuple[str, ...] = ("auth", "product", "cart", "order")


def match_route(path: str, routes: tuple[Route, ...] = ROUTES) -> Route | None:
    """The route serving `path`, or None (the edge answers 404)."""
    if not path.startswith(("/api/", "/register", "/.well-known/")):
        return None
    for route in routes:
        if route.matches(path):
            return route
    return None
