"""Careful shoppers: each buys a few times, one Idempotency-Key per purchase, and retries
under that same key on errors and timeouts until the shop gives a definite answer.

    plans = shopping_plans(tokens, seed=7, purchases=3, spread=40)
    outcome = run_shoppers(gateway_url, product_id, plans, out_dir, deadline_s=120)

This is what a careful client (a mobile app with a retry queue) does, and what a checkout
has to survive: the same purchase arriving again while the first attempt is still running,
or after it went through and only its answer was lost. Threads, not Locust: each purchase is
a small state machine of its own (put in the cart, check out, read the order, retry), and
every step is logged.

Every request goes to requests.csv (as Locust's runs do, for the timeline plots); every
checkout attempt to orders.jsonl: `{"key", "attempt", "status", "order_id", "order_status",
"code", "shopper", "t"}`. A purchase ends `confirmed`, `failed` (the shop said no for good:
sold out, or the order it made failed), or `gave_up` when its deadline passed without a
definite answer. Quantities, start times and backoff jitter come from the seed.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from loadtests.outcomes import error_code
from loadtests.recorder import RequestRecorder

CONFIRMED, FAILED, GAVE_UP = "confirmed", "failed", "gave_up"
# Answers that end a purchase for good: the shop decided (not a fault of the moment).
DEFINITE_CODES = {"insufficient_stock", "out_of_stock", "sold_out"}
# Answers after which the same key is tried again (after putting the item back if needed).
RETRY_CODES = {"checkout_in_progress", "checkout_conflict", "cart_empty"}
TIMEOUT = (3.0, 15.0)  # connect, read: longer than the shop's own budgets


@dataclass(frozen=True)
class Purchase:
    """One purchase: its key, how many units, when it may start (seconds from the sale)."""

    key: str
    quantity: int
    not_before: float


@dataclass(frozen=True)
class ShoppingPlan:
    """A shopper's token and purchases."""

    email: str
    token: str
    purchases: tuple[Purchase, ...]


@dataclass
class PurchaseResult:
    """How one purchase ended."""

    email: str
    key: str
    quantity: int
    outcome: str
    order_id: int | None = None
    attempts: int = 0
    seconds: float = 0.0
    last_answer: str = ""


@dataclass
class ShoppingOutcome:
    """Every purchase of a run, and when the shoppers started and finished."""

    started: float
    finished: float
    results: list[PurchaseResult] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(r.outcome == outcome for r in self.results)

    def summary(self) -> dict[str, Any]:
        return {"purchases": len(self.results), "told_confirmed": self.count(CONFIRMED),
                "told_failed": self.count(FAILED), "gave_up": self.count(GAVE_UP),
                "attempts": sum(r.attempts for r in self.results),
                "retried_purchases": sum(r.attempts > 1 for r in self.results),
                "seconds": round(self.finished - self.started, 1)}


def shopping_plans(tokens: dict[str, str], *, seed: int, purchases: int, spread: float,
                   max_quantity: int = 3) -> list[ShoppingPlan]:
    """Each shopper's purchases: quantities 1..max_quantity and start times spread over
    [0, spread) seconds, from `seed` (keys are random: a replay must not reuse them)."""
    plans = []
    for index, (email, token) in enumerate(sorted(tokens.items())):
        rng = random.Random(f"{seed}:shopper:{index}")
        starts = sorted(rng.uniform(0, spread) for _ in range(purchases))
        plans.append(ShoppingPlan(email, token, tuple(
            Purchase(uuid.uuid4().hex, rng.randint(1, max_quantity), round(at, 2))
            for at in starts)))
    return plans


class CarefulShopper:
    """One shopper's purchases, made in order on one HTTP session."""

    def __init__(self, gateway: str, product_id: int, plan: ShoppingPlan, *, started: float,
                 deadline: float, purchase_s: float, recorder: Callable[..., None],
                 orders_log: Callable[[dict[str, Any]], None], rng: random.Random) -> None:
        self.gateway, self.product_id, self.plan = gateway.rstrip("/"), product_id, plan
        self.started, self.deadline, self.purchase_s = started, deadline, purchase_s
        self.record, self.log_order, self.rng = recorder, orders_log, rng
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {plan.token}"
        self.results: list[PurchaseResult] = []

    def run(self) -> list[PurchaseResult]:
        # A reused stack keeps carts from earlier sales: this sale starts from an empty one.
        self.empty_cart(time.time() + self.purchase_s)
        for purchase in self.plan.purchases:
            wait = self.started + purchase.not_before - time.time()
            if wait > 0:
                time.sleep(wait)  # the purchase's planned moment in the sale
            self.results.append(self.buy(purchase))
        self.session.close()
        return self.results

    def empty_cart(self, ends: float) -> bool:
        """DELETE the whole cart, retried with backoff until it answers or `ends`."""
        pause = 0.25
        while time.time() < ends:
            response = self.request("DELETE", "/api/v1/cart", "/api/v1/cart")
            if response is not None and response.status_code in (200, 204):
                return True
            time.sleep(min(pause, max(0.0, ends - time.time())))
            pause = min(pause * 2, 2.0)
        return False

    # -- one purchase ---------------------------------------------------------------------
    def buy(self, purchase: Purchase) -> PurchaseResult:
        began = time.time()
        ends = min(self.deadline, began + self.purchase_s)
        result = PurchaseResult(self.plan.email, purchase.key, purchase.quantity, GAVE_UP)
        in_cart = False
        backoff = 0.25
        while time.time() < ends:
            if not in_cart:
                in_cart = self.put_in_cart(purchase.quantity, ends)
                if not in_cart:
                    break
            answer = self.check_out(purchase.key, result.attempts)
            result.attempts += 1
            result.last_answer = answer["label"]
            if answer["order_id"] is not None:
                result.order_id = answer["order_id"]
            if answer["order_status"] == CONFIRMED:
                result.outcome = CONFIRMED
                break
            if answer["order_status"] == "pending":
                # Made but not finished: ask the order, then the same key again.
                status = self.follow(answer["order_id"], min(ends, time.time() + 5))
                if status is not None:  # what the client was told, as a checkout answer is
                    self.log_order({**{k: answer[k] for k in ("key", "attempt", "shopper",
                                                              "order_id")},
                                    "t": round(time.time() - self.started, 3), "status": 200,
                                    "order_status": status, "code": None, "source": "order"})
                if status in (CONFIRMED, FAILED):
                    result.outcome = status
                    break
            elif answer["order_status"] == FAILED or (answer["code"] in DEFINITE_CODES
                                                      and not answer.get("retry_after")):
                # Sold out is final; "held by other checkouts" comes with Retry-After.
                result.outcome = FAILED
                break
            elif answer["code"] == "cart_empty":
                in_cart = False  # the item went missing: put it back, same key
            pause = float(answer.get("retry_after") or backoff)
            time.sleep(min(pause + self.rng.uniform(0, 0.25), max(0.0, ends - time.time())))
            backoff = min(backoff * 2, 4.0)
        result.seconds = round(time.time() - began, 2)
        return result

    def put_in_cart(self, quantity: int, ends: float) -> bool:
        """Make the cart hold exactly `quantity` of the product: add it (201: a new line),
        and when it was there already (200: added to it), set the quantity."""
        pause, add = 0.25, True
        while time.time() < ends:
            if add:
                response = self.request("POST", "/api/v1/cart/items", "/api/v1/cart/items",
                                        json={"product_id": self.product_id,
                                              "quantity": quantity})
                if response is not None and response.status_code == 201:
                    return True
                add = response is None or response.status_code != 200
            if not add:
                response = self.request("PUT", f"/api/v1/cart/items/{self.product_id}",
                                        "/api/v1/cart/items/[id]", json={"quantity": quantity})
                if response is not None and response.status_code == 200:
                    return True
                add = response is not None and response.status_code == 404
            time.sleep(min(pause, max(0.0, ends - time.time())))
            pause = min(pause * 2, 2.0)
        return False

    def check_out(self, key: str, attempt: int) -> dict[str, Any]:
        """One POST /api/v1/orders under `key`; what it answered, logged to orders.jsonl."""
        response = self.request("POST", "/api/v1/orders", "/api/v1/orders",
                                headers={"Idempotency-Key": key})
        answer: dict[str, Any] = {"key": key, "attempt": attempt, "shopper": self.plan.email,
                                  "t": round(time.time() - self.started, 3), "status": 0,
                                  "order_id": None, "order_status": None, "code": None,
                                  "retry_after": None, "label": "no answer"}
        if response is not None:
            answer["status"] = response.status_code
            answer["retry_after"] = response.headers.get("Retry-After")
            if response.status_code in (200, 201):
                body = _json(response)
                answer["order_id"] = body.get("id")
                answer["order_status"] = body.get("status")
                answer["label"] = f"{response.status_code} {answer['order_status']}"
            else:
                answer["code"] = error_code(response.content)
                answer["label"] = f"{response.status_code} {answer['code'] or ''}".strip()
        self.log_order({k: v for k, v in answer.items() if k not in ("label", "retry_after")})
        return answer

    def follow(self, order_id: int | None, until: float) -> str | None:
        """Poll the order until it is confirmed or failed (or `until`); its last status."""
        status = None
        while order_id is not None and time.time() < until:
            response = self.request("GET", f"/api/v1/orders/{order_id}", "/api/v1/orders/[id]")
            if response is not None and response.status_code == 200:
                status = _json(response).get("status")
                if status in (CONFIRMED, FAILED):
                    return status
            time.sleep(0.5)
        return status

    def request(self, method: str, path: str, name: str, **kwargs: Any) -> Any:
        """One request, recorded; the response, or None when none came (logged as status 0)."""
        began = time.time()
        response, error = None, None
        try:
            response = self.session.request(method, self.gateway + path, timeout=TIMEOUT,
                                            **kwargs)
        except requests.RequestException as exc:
            error = exc
        self.record(method, name, (time.time() - began) * 1000.0, response, error, began)
        return response


def _json(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def run_shoppers(gateway: str, product_id: int, plans: list[ShoppingPlan], out_dir: Path, *,
                 seed: int, deadline_s: float, purchase_s: float = 60.0,
                 started: float | None = None) -> ShoppingOutcome:
    """Run every plan on its own thread until all purchases end or `deadline_s` passes;
    requests.csv and orders.jsonl are written into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    started = started or time.time()
    deadline = started + deadline_s
    recorder = RequestRecorder(out_dir / "requests.csv")
    lock = threading.Lock()
    orders = open(out_dir / "orders.jsonl", "a")  # noqa: SIM115 - closed below

    def record(*args: Any) -> None:
        method, name, ms, response, error, began = args
        with lock:
            if not orders.closed:  # a straggler past the deadline is not recorded
                recorder.on_request(method, name, ms, response=response, exception=error,
                                    start_time=began)

    def log_order(entry: dict[str, Any]) -> None:
        with lock:
            if not orders.closed:
                orders.write(json.dumps(entry) + "\n")
                orders.flush()

    shoppers = [CarefulShopper(gateway, product_id, plan, started=started, deadline=deadline,
                               purchase_s=purchase_s, recorder=record, orders_log=log_order,
                               rng=random.Random(f"{seed}:backoff:{index}"))
                for index, plan in enumerate(plans)]
    threads = [threading.Thread(target=s.run, name=f"shopper-{i}", daemon=True)
               for i, s in enumerate(shoppers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        # A purchase never outlives the deadline by more than one request's timeout.
        thread.join(timeout=max(0.0, deadline - time.time()) + sum(TIMEOUT) + 5)
    with lock:
        recorder.close()
        orders.close()
    outcome = ShoppingOutcome(started, time.time())
    for shopper in shoppers:
        outcome.results.extend(shopper.results)
    return outcome
