"""Shoppers of the Breakwater shop, for Locust.

    locust -f loadtests/locustfile.py --host http://127.0.0.1:8080        # web UI on :8089
    BREAKWATER_SHAPE=flash-sale locust -f loadtests/locustfile.py --headless
    locust -f loadtests/locustfile.py --master   /   --worker             # distributed
    breakwater load flash-sale --users 60 --duration 60s                  # the runner

Users: `Browser` (list, page, view, look up by slug), `FlashSaleBuyer` (hammers the hot
product, adds it to the cart, checks out with an Idempotency-Key, retrying once with the
same key), `RegularCustomer` (cart, checkout, order history), `AccountHolder` (one user
logging in through the gateway every 2.2 s, below the edge's login limit) and
`HotProductWatcher` (refreshes the hot product with next to no think time) and
`CatalogReader` (open loop: paced to `BREAKWATER_RATE` requests a second in total).

Answers are judged by `loadtests.outcomes.classify`: 409 sold-out and 429 rate-limited are
correct answers (marked success, counted as `expected` in requests.csv); 5xx, no answer,
and other 4xx are failures. Environment: BREAKWATER_SEED_FILE, BREAKWATER_TOKENS_FILE,
BREAKWATER_HOT_SLUG, BREAKWATER_RATE (+ BREAKWATER_RATE_USERS), BREAKWATER_SHAPE (+
BREAKWATER_SHAPE_PARAMS as JSON), BREAKWATER_REQUEST_LOG, BREAKWATER_ORDER_LOG.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import uuid
from typing import Any

from locust import LoadTestShape, between, constant_pacing, constant_throughput, events, task
from locust.contrib.fasthttp import FastHttpUser

from loadtests import recorder
from loadtests.accounts import accounts_from_seed, hot_slug, read_tokens, seed_document
from loadtests.outcomes import EXPECTED, FAILURE, classify, error_code
from loadtests.profiles import build_profile

HOST = os.environ.get("BREAKWATER_HOST", "http://127.0.0.1:8080")
SEED = seed_document()
ACCOUNTS = accounts_from_seed(SEED)
HOT_SLUG = os.environ.get("BREAKWATER_HOT_SLUG") or hot_slug(SEED)
OPEN_LOOP_RATE = float(os.environ.get("BREAKWATER_RATE") or 0) or None
OPEN_LOOP_USERS = int(os.environ.get("BREAKWATER_RATE_USERS") or 0) or None
ORDER_LOG = os.environ.get("BREAKWATER_ORDER_LOG")

_tokens = read_tokens()
_token_cycle = itertools.cycle(_tokens) if _tokens else None
_account_cycle = itertools.cycle(ACCOUNTS)
_catalog: dict[str, Any] = {"ids": [], "slugs": [], "hot_id": None}


@events.init.add_listener
def _record_requests(environment: Any, **_: Any) -> None:
    recorder.attach(environment)


def judge(response: Any) -> str:
    """Mark a caught response success/failure by Breakwater's rules; return the outcome."""
    status = response.status_code or 0
    code = error_code(response.content) if status >= 400 else None
    outcome = classify(status, code)
    if outcome == FAILURE:
        response.failure(f"{status} {code or getattr(response, 'error', '') or ''}".strip())
    else:
        response.success()
    return outcome


class Shopper(FastHttpUser):
    """A user of the shop through the gateway, with a signed-in session when needed."""

    abstract = True
    host = HOST
    network_timeout = 30.0
    connection_timeout = 5.0
    token: str | None = None

    def sign_in(self) -> None:
        """Take a pooled token; log in through the gateway when there is no pool."""
        if _token_cycle is not None:
            self.token = next(_token_cycle)[1]
        else:
            self.login()

    def login(self) -> bool:
        account = next(_account_cycle)
        with self.client.post("/api/v1/auth/login", name="/api/v1/auth/login", catch_response=True,
                              json={"email": account.email, "password": account.password}) as r:
            if judge(r) == "ok":
                self.token = r.json()["access_token"]
                return True
        return False

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def get(self, path: str, name: str, **kwargs: Any) -> tuple[Any, str]:
        with self.client.get(path, name=name, catch_response=True, **kwargs) as r:
            return r, judge(r)

    def learn_catalog(self) -> None:
        if _catalog["ids"]:
            return
        r, outcome = self.get("/api/v1/products?page=1&per_page=50", "/api/v1/products")
        if outcome == "ok":
            items = r.json().get("items", [])
            _catalog["ids"] = [item["id"] for item in items]
            _catalog["slugs"] = [item["slug"] for item in items]
            for item in items:
                if item["slug"] == HOT_SLUG:
                    _catalog["hot_id"] = item["id"]

    def hot_product_id(self) -> int | None:
        if _catalog["hot_id"] is None:
            r, outcome = self.get(f"/api/v1/products/{HOT_SLUG}", "/api/v1/products/[slug]")
            if outcome == "ok":
                _catalog["hot_id"] = r.json()["id"]
        return _catalog["hot_id"]

    def checkout(self) -> str:
        """POST /api/v1/orders with an Idempotency-Key; retry once with it on a failure."""
        key = uuid.uuid4().hex
        outcome, order_id = FAILURE, None
        for attempt in range(2):
            headers = {**self.auth(), "Idempotency-Key": key}
            with self.client.post("/api/v1/orders", name="/api/v1/orders", headers=headers,
                                  catch_response=True) as r:
                outcome = judge(r)
                if outcome == "ok":
                    order_id = r.json().get("id")
            _log_order(key, attempt, r.status_code or 0, order_id)
            if outcome != FAILURE:
                break
        return outcome


def _log_order(key: str, attempt: int, status: int, order_id: Any) -> None:
    if ORDER_LOG:
        with open(ORDER_LOG, "a") as log:
            log.write(json.dumps({"key": key, "attempt": attempt, "status": status,
                                  "order_id": order_id}) + "\n")


class Browser(Shopper):
    """Looks around the catalog: pages, product pages, look-ups by slug."""

    weight = 6
    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        self.learn_catalog()

    @task(2)
    def list_page(self) -> None:
        page = random.randint(1, 3)
        self.get(f"/api/v1/products?page={page}&per_page=20", "/api/v1/products")

    @task(5)
    def view_product(self) -> None:
        if _catalog["ids"]:
            product_id = random.choice(_catalog["ids"])
            self.get(f"/api/v1/products/{product_id}", "/api/v1/products/[id]")
        else:
            self.learn_catalog()

    @task(2)
    def find_by_slug(self) -> None:
        slug = random.choice(_catalog["slugs"]) if _catalog["slugs"] else HOT_SLUG
        self.get(f"/api/v1/products/{slug}", "/api/v1/products/[slug]")


class FlashSaleBuyer(Shopper):
    """Refreshes the hot product and buys one unit, once, until it has one or it sells out."""

    weight = 3
    wait_time = between(0.2, 1.0)

    def on_start(self) -> None:
        self.sign_in()
        self.done = False

    @task(4)
    def watch_hot_product(self) -> None:
        self.get(f"/api/v1/products/{HOT_SLUG}", "/api/v1/products/[slug]")

    @task(2)
    def buy_hot_product(self) -> None:
        if self.done or not self.token:
            return
        product_id = self.hot_product_id()
        if product_id is None:
            return
        with self.client.post("/api/v1/cart/items", name="/api/v1/cart/items", headers=self.auth(),
                              json={"product_id": product_id, "quantity": 1},
                              catch_response=True) as r:
            outcome = judge(r)
            if outcome == "ok" and r.status_code == 200:  # already in the cart: keep it at 1
                with self.client.put(f"/api/v1/cart/items/{product_id}", headers=self.auth(),
                                     name="/api/v1/cart/items/[id]", json={"quantity": 1},
                                     catch_response=True) as put:
                    judge(put)
        if outcome != "ok":
            return
        result = self.checkout()
        if result == "ok":
            self.done = True
        elif result == EXPECTED:  # sold out: empty the cart, stop buying
            with self.client.delete(f"/api/v1/cart/items/{product_id}", headers=self.auth(),
                                    name="/api/v1/cart/items/[id]", catch_response=True) as r:
                judge(r)
            self.done = True


class RegularCustomer(Shopper):
    """Looks at the cart and past orders, sometimes buys an ordinary product."""

    weight = 2
    wait_time = between(0.3, 1.2)

    def on_start(self) -> None:
        self.sign_in()
        self.learn_catalog()

    @task(2)
    def who_am_i(self) -> None:
        self.get("/api/v1/users/me", "/api/v1/users/me", headers=self.auth())

    @task(4)
    def order_history(self) -> None:
        self.get("/api/v1/orders?page=1&per_page=10", "/api/v1/orders", headers=self.auth())

    # The cart badge refreshes on most pages a signed-in shopper sees.
    @task(5)
    def view_cart(self) -> None:
        self.get("/api/v1/cart", "/api/v1/cart", headers=self.auth())

    @task(2)
    def view_product(self) -> None:
        ordinary = [i for i in _catalog["ids"] if i != _catalog["hot_id"]]
        if ordinary:
            self.get(f"/api/v1/products/{random.choice(ordinary)}", "/api/v1/products/[id]")

    @task(1)
    def buy_something(self) -> None:
        ordinary = [i for i in _catalog["ids"] if i != _catalog["hot_id"]]
        if not ordinary or not self.token:
            return
        with self.client.post("/api/v1/cart/items", name="/api/v1/cart/items", headers=self.auth(),
                              json={"product_id": random.choice(ordinary), "quantity": 1},
                              catch_response=True) as r:
            if judge(r) != "ok":
                return
        self.checkout()


class AccountHolder(Shopper):
    """One shopper logging in through the gateway every 2.2 s (the edge allows 30 a minute)."""

    fixed_count = 1
    wait_time = constant_pacing(2.2)

    @task
    def log_in_and_look(self) -> None:
        if self.login():
            self.get("/api/v1/users/me", "/api/v1/users/me", headers=self.auth())


class HotProductWatcher(Shopper):
    """Refreshes the hot product page as fast as answers come (closed loop, for scaling)."""

    weight = 1
    wait_time = between(0.0, 0.05)

    @task
    def refresh(self) -> None:
        self.get(f"/api/v1/products/{HOT_SLUG}", "/api/v1/products/[slug]")


class CatalogReader(Shopper):
    """Open loop: one product page a task, paced so all readers offer BREAKWATER_RATE req/s."""

    weight = 1
    wait_time = constant_throughput(
        OPEN_LOOP_RATE / OPEN_LOOP_USERS if OPEN_LOOP_RATE and OPEN_LOOP_USERS else 1.0)

    @task
    def read_product(self) -> None:
        self.get(f"/api/v1/products/{HOT_SLUG}", "/api/v1/products/[slug]")


if os.environ.get("BREAKWATER_SHAPE"):

    class ConfiguredShape(LoadTestShape):
        """The profile named by BREAKWATER_SHAPE (steady, ramp, flash-sale, rate)."""

        profile = build_profile(os.environ["BREAKWATER_SHAPE"],
                                **json.loads(os.environ.get("BREAKWATER_SHAPE_PARAMS") or "{}"))

        def tick(self) -> tuple[int, float] | None:
            return self.profile.tick(self.get_run_time())
