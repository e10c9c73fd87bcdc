"""`breakwater seed`: a catalog, one flash-sale product and shoppers, through the gateway.

Everything goes through the public API, so seeding also proves the stack works end to end.
Catalog writes need an admin: the local stack's own (`local_stack.admins.local_admin`) unless
credentials are given (a compose or Kubernetes stack's admin); its token also lifts auth's
limits on registrations for the shoppers. It is idempotent: a product whose slug
exists or a user whose email is registered (409) is counted as already there. What the load
tests need (users, password, the flash-sale product) is written to `var/seed.json`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests

from local_stack.admins import AdminCredentials, admin_token, local_admin
from local_stack.progress import Progress
from local_stack.state import utc_now, write_json_atomic

FLASH_SALE_SLUG = "flash-sale"
SEED_PASSWORD = "breakwater-shopper-1"
SEED_FILE = "seed.json"


class SeedError(RuntimeError):
    """The gateway refused what seeding needs (not a 409)."""


@dataclass
class SeedResult:
    """What seeding created or found, as saved to `var/seed.json`."""

    gateway: str
    password: str
    users: list[str]
    products: int
    flash_sale: dict[str, Any]
    created: dict[str, int] = field(default_factory=dict)
    existing: dict[str, int] = field(default_factory=dict)
    seeded_at: str = field(default_factory=utc_now)


def user_email(number: int) -> str:
    """The email of seeded shopper `number` (1-based)."""
    return f"user{number}@breakwater.test"


def catalog(count: int, stock: int = 1000) -> list[dict[str, Any]]:
    """`count` ordinary products with deterministic names, slugs and prices."""
    return [
        {"name": f"Product {n}", "slug": f"product-{n}", "image": f"product{n}.jpg",
         "price": f"{5 + (n * 37) % 195}.{(n * 13) % 100:02d}", "stock": stock}
        for n in range(1, count + 1)
    ]


def seed(gateway: str, var: Path, *, products: int = 200, flash_sale_stock: int = 100,
         users: int = 50, workers: int = 4, progress: Progress | None = None,
         session: requests.Session | None = None,
         admin: AdminCredentials | None = None) -> SeedResult:
    """Create the catalog, the flash-sale product and the users; save and return the result.

    `admin` logs in to write the catalog; None means the local stack's own admin in `var`."""
    progress = progress or Progress()
    gateway = gateway.rstrip("/")
    http = session or requests.Session()
    with progress.step("admin login"):
        token = admin_token(gateway, admin or local_admin(var),
                            var=None if admin else var, session=http)
    authorization = {"Authorization": f"Bearer {token}"}
    created = {"products": 0, "users": 0}
    existing = {"products": 0, "users": 0}

    def post(path: str, body: dict[str, Any], kind: str) -> None:
        response = _post(http, f"{gateway}{path}", body, authorization)
        if response.status_code in (200, 201):
            created[kind] += 1
        elif response.status_code == 409:
            existing[kind] += 1
        else:
            raise SeedError(f"POST {path} answered {response.status_code}: {response.text[:300]}")

    items = catalog(products)
    flash = {"name": "Flash sale: limited edition", "slug": FLASH_SALE_SLUG,
             "image": "flash-sale.jpg", "price": "49.99", "stock": flash_sale_stock}
    _run(progress, f"catalog ({products} products + flash sale)", [flash, *items], workers,
         lambda item: post("/api/v1/products", item, "products"))
    emails = [user_email(n) for n in range(1, users + 1)]
    _run(progress, f"users ({users})", emails, workers,
         lambda email: post("/api/v1/auth/register",
                            {"email": email, "password": SEED_PASSWORD,
                             "name": email.partition("@")[0].capitalize()}, "users"))
    response = http.get(f"{gateway}/api/v1/products/{FLASH_SALE_SLUG}", timeout=10)
    flash_sale = response.json() if response.status_code == 200 else {"slug": FLASH_SALE_SLUG}
    result = SeedResult(gateway, SEED_PASSWORD, emails, products + 1, flash_sale, created,
                        existing)
    write_json_atomic(var / SEED_FILE, asdict(result))
    return result


def _post(http: requests.Session, url: str, body: dict[str, Any], headers: dict[str, str],
          attempts: int = 3) -> requests.Response:
    # A fresh stack may shed load for a moment (429/503 with Retry-After): retry a little.
    for attempt in range(attempts):
        response = http.post(url, json=body, headers=headers, timeout=30)
        if response.status_code not in (429, 502, 503, 504) or attempt == attempts - 1:
            return response
        time.sleep(min(float(response.headers.get("Retry-After", "1") or 1), 5.0))
    return response


def _run(progress: Progress, label: str, items: list[Any], workers: int,
         action: Callable[[Any], None]) -> None:
    with progress.step(label) as step, ThreadPoolExecutor(max_workers=workers) as pool:
        for done, _ in enumerate(pool.map(action, items), start=1):
            step.update(f"{done}/{len(items)}")
