"""The flash-sale audit: nothing lost, nothing oversold, no order twice.

A fresh hot product (`flash-sale-<time>`, S units) is created for each run, so a reused
stack gives a clean slate. After the load, the audit reads the public APIs (not the
databases: what a customer or an auditor can verify, the same in local and compose mode):

- the product's `stock` (available units) now;
- every buyer's orders (GET /api/v1/orders, then each order) with each buyer's token;
- the load generator's log of checkout attempts (Idempotency-Key → order ids answered).

From those: `units_sold` (hot units in confirmed orders), `oversold` (sold beyond S),
`unaccounted_units` (units off the shelf but in no confirmed order: held by a pending order
or leaked), `inconsistent_orders` (a confirmed order whose reservation is not confirmed, or a
failed one whose reservation is), `duplicate_orders` (a key answered with two order ids, or
a buyer holding two confirmed orders of the hot product).
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests


def prepare_sale(info: Any, stock: int, *, admin_token: str,
                 log: Callable[[str], None] = print) -> dict[str, Any]:
    """Create the hot product with `stock` units (catalog writes need an admin's token);
    its slug, id and stock."""
    slug = f"flash-sale-{int(time.time() * 1000) % 10**10}"
    response = requests.post(f"{info.gateway_url}/api/v1/products", timeout=10,
                             headers={"Authorization": f"Bearer {admin_token}"}, json={
        "name": f"Flash sale {slug[-6:]}", "slug": slug, "image": "flash-sale.jpg",
        "price": "9.99", "stock": stock})
    if response.status_code != 201:
        raise RuntimeError(f"cannot create the sale's product: {response.status_code} "
                           f"{response.text[:200]}")
    product = response.json()
    log(f"hot product {slug} (id {product['id']}) with {stock} units")
    return {"slug": slug, "id": product["id"], "stock": stock}


# How long the audit waits for the shop to answer it. A breaker that opened under the sale's
# load (order's, at the gateway) answers 503 with Retry-After until its trial; an auditor comes
# back when told, as any client should, instead of giving up on the shop's own fail-fast answer.
AUDIT_PATIENCE_S = 30.0
COME_BACK_STATUSES = frozenset({429, 502, 503, 504})


def _get(session: requests.Session, url: str, token: str, *,
         patience: float = AUDIT_PATIENCE_S, sleep: Callable[[float], None] = time.sleep,
         clock: Callable[[], float] = time.monotonic) -> Any:
    """The JSON of a 200; a refusal that says to come back (503, 429, 502, 504) is asked again
    after its Retry-After, for up to `patience` seconds; anything else fails at once."""
    give_up = clock() + patience
    while True:
        response = session.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        if response.status_code == 200:
            return response.json()
        left = give_up - clock()
        if response.status_code not in COME_BACK_STATUSES or left <= 0:
            break
        sleep(min(_retry_after(response), left))
    raise RuntimeError(f"GET {url}: {response.status_code} {response.text[:200].strip()} (the audit "
                       f"asks again for {patience:g} s when told to come back)")


def _retry_after(response: requests.Response) -> float:
    """The answer's Retry-After in seconds (0.2 to 5; 0.5 without one)."""
    try:
        seconds = float(response.headers.get("Retry-After", "0.5"))
    except ValueError:
        seconds = 0.5
    return min(5.0, max(0.2, seconds))


def available_units(session: requests.Session, gateway_url: str, slug: str) -> int:
    """The product's available units now, from product itself (never the gateway's stale copy
    served while product is unreachable)."""
    for _ in range(20):
        response = session.get(f"{gateway_url}/api/v1/products/{slug}", timeout=10)
        if response.status_code == 200 and not response.headers.get("X-Breakwater-Stale"):
            return int(response.json()["stock"])
        time.sleep(0.25)
    raise RuntimeError(f"GET /api/v1/products/{slug}: no fresh answer "
                       f"({response.status_code} {response.text[:200]})")


def hot_orders(session: requests.Session, gateway_url: str, tokens: dict[str, str],
               product_id: int) -> list[tuple[str, dict[str, Any], int]]:
    """(buyer, order, units of the product) for every order of `tokens`' buyers that holds
    `product_id`, read through the public order API with each buyer's token."""
    found = []
    for email, token in tokens.items():
        page, pages = 1, 1
        while page <= pages:
            listing = _get(session, f"{gateway_url}/api/v1/orders?page={page}&per_page=100",
                           token)
            pages = int(listing.get("pages") or 1)
            for summary in listing.get("items", []):
                order = _get(session, f"{gateway_url}/api/v1/orders/{summary['id']}", token)
                units = sum(line["quantity"] for line in order.get("lines", [])
                            if line.get("product_id") == product_id)
                if units:
                    found.append((email, order, units))
            page += 1
    return found


def audit(info: Any, sale: dict[str, Any], tokens: dict[str, str], orders_log: Path, *,
          settle_s: float = 2.0, log: Callable[[str], None] = print) -> dict[str, Any]:
    """The audit figures of one sale (see the module docstring)."""
    time.sleep(settle_s)  # let in-flight checkouts finish their last step
    session = requests.Session()
    available = available_units(session, info.gateway_url, sale["slug"])
    units_sold = 0
    held_units = 0
    inconsistent = []
    status_counts: Counter[str] = Counter()
    per_user: dict[str, int] = defaultdict(int)
    for email, order, hot in hot_orders(session, info.gateway_url, tokens, sale["id"]):
        status = order.get("status")
        status_counts[status] += 1
        reservation = order.get("reservation_state")
        if status == "confirmed":
            units_sold += hot
            per_user[email] += 1
            if reservation != "confirmed":
                inconsistent.append({"order": order["id"], "status": status,
                                     "reservation_state": reservation})
        elif status == "pending":
            held_units += hot
        elif reservation == "confirmed":
            inconsistent.append({"order": order["id"], "status": status,
                                 "reservation_state": reservation})
    key_duplicates, attempts, retried = _key_duplicates(orders_log)
    user_duplicates = sum(count - 1 for count in per_user.values() if count > 1)
    taken = sale["stock"] - available
    result = {
        "stock": sale["stock"], "available_after": available, "units_taken": taken,
        "units_sold": units_sold, "oversold": max(0, units_sold - sale["stock"]),
        "pending_units": held_units, "unaccounted_units": taken - units_sold,
        "inconsistent_orders": len(inconsistent),
        "duplicate_orders": key_duplicates + user_duplicates,
        "duplicate_keys": key_duplicates, "buyers_with_two_orders": user_duplicates,
        "checkout_attempts": attempts, "retried_checkouts": retried,
        "orders_by_status": dict(status_counts), "buyers": len(tokens),
        "inconsistent": inconsistent[:20],
    }
    log(f"audit: {units_sold}/{sale['stock']} sold, {available} left, "
        f"{result['oversold']} oversold, {result['duplicate_orders']} duplicates, "
        f"{retried} checkouts retried with the same key")
    return result


def _key_duplicates(orders_log: Path) -> tuple[int, int, int]:
    """(keys answered with more than one order id, attempts, keys retried)."""
    ids: dict[str, set[Any]] = defaultdict(set)
    attempts = 0
    retried = set()
    if orders_log.exists():
        for line in orders_log.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            attempts += 1
            if entry.get("attempt", 0) > 0:
                retried.add(entry["key"])
            if entry.get("order_id") is not None:
                ids[entry["key"]].add(entry["order_id"])
    return sum(len(v) - 1 for v in ids.values() if len(v) > 1), attempts, len(retried)
