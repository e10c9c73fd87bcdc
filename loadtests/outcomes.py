"""What an answer means: a success, an expected business answer, or a failure of the system.

A shop that says "sold out" (409 `insufficient_stock`) to the 501st buyer of 500 units has
answered correctly: that is counted as *expected*, apart from successes, and never as a
failure. The same holds for the login rate limiter's 429 (the edge doing its job) and for a
409 `checkout_in_progress` on a retried checkout. Everything else at 4xx means the load
test sent something wrong (a bug to fix, so a failure), and a 5xx or no answer at all is a
failure of the system. A 503 `cart_unavailable` during a cart outage is a failure too — a
graceful one: the hypotheses decide where failing (fast) is allowed.

Requests are grouped by route for the hypotheses: `catalog`, `login`, `account`, `orders`
(history), `cart`, `checkout`.
"""

from __future__ import annotations

import json

OK, EXPECTED, FAILURE = "ok", "expected", "failure"

# (status, error code) pairs that are correct answers of a working shop under a flash sale.
EXPECTED_CODES = {
    409: {"insufficient_stock", "out_of_stock", "sold_out", "cart_empty", "checkout_in_progress",
          "checkout_conflict"},
    429: None,  # any 429: a limiter answering is the protection working
}

GROUPS = ("catalog", "login", "account", "orders", "cart", "checkout")


def classify(status: int, error_code: str | None = None) -> str:
    """`ok`, `expected` or `failure` for an answer with `status` and JSON error `code`."""
    if 0 < status < 400:
        return OK
    if status in EXPECTED_CODES:
        codes = EXPECTED_CODES[status]
        if codes is None or (error_code or "") in codes:
            return EXPECTED
    return FAILURE


def error_code(body: bytes | str | None) -> str | None:
    """The `error.code` of a Breakwater error body, or None."""
    if not body:
        return None
    try:
        document = json.loads(body)
    except (ValueError, TypeError, UnicodeDecodeError):
        return None
    error = document.get("error") if isinstance(document, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return str(code) if code is not None else None


def group_of(method: str, name: str) -> str:
    """The route group a request named `name` (Locust's name) belongs to."""
    path = name.split("?", 1)[0]
    if path.startswith("/api/v1/auth/login"):
        return "login"
    if path.startswith(("/api/v1/users", "/api/v1/auth")):
        return "account"
    if path.startswith("/api/v1/cart"):
        return "cart"
    if path.startswith("/api/v1/orders"):
        return "checkout" if method.upper() == "POST" else "orders"
    if path.startswith(("/api/v1/products", "/api/v2/products")):
        return "catalog"
    return "other"
