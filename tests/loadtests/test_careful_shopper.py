"""The careful shopper of the checkout nemesis: which answers end a purchase."""

from __future__ import annotations

import json
import random
import time
from typing import Any

from loadtests.careful import CONFIRMED, FAILED, CarefulShopper, Purchase, ShoppingPlan


class Answer:
    def __init__(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        self.status_code, self.headers = status, headers or {}
        self.content = json.dumps(body).encode()

    def json(self) -> Any:
        return json.loads(self.content)


class ScriptedShopper(CarefulShopper):
    """Answers its checkouts from a script instead of the network (the cart always takes)."""

    def __init__(self, checkouts: list[Answer]) -> None:
        plan = ShoppingPlan("a@example.com", "t", (Purchase("k-1", 2, 0.0),))
        now = time.time()
        super().__init__("http://127.0.0.1:1", 1, plan, started=now, deadline=now + 30,
                         purchase_s=30, recorder=lambda *a: None, orders_log=lambda e: None,
                         rng=random.Random(1))
        self.checkouts = checkouts
        self.calls: list[tuple[str, str]] = []

    def request(self, method: str, path: str, name: str, **kwargs: Any) -> Any:
        self.calls.append((method, path))
        if path == "/api/v1/cart":
            return Answer(204, {})
        if path == "/api/v1/cart/items":
            return Answer(201, {})
        return self.checkouts.pop(0)


SOLD_OUT = {"error": {"code": "insufficient_stock", "message": "not enough stock"}}


def test_sold_out_ends_the_purchase() -> None:
    shopper = ScriptedShopper([Answer(409, SOLD_OUT)])
    result = shopper.buy(shopper.plan.purchases[0])
    assert (result.outcome, result.attempts) == (FAILED, 1)


def test_units_held_for_now_are_waited_for_under_the_same_key() -> None:
    shopper = ScriptedShopper([Answer(409, SOLD_OUT, {"Retry-After": "0"}),
                               Answer(201, {"id": 9, "status": "confirmed"})])
    result = shopper.buy(shopper.plan.purchases[0])
    assert (result.outcome, result.attempts, result.order_id) == (CONFIRMED, 2, 9)


def test_a_shopper_starts_the_sale_with_an_empty_cart() -> None:
    """A reused stack keeps carts from earlier sales; their lines (another sale's product,
    sold out) would make every checkout of this one fail."""
    shopper = ScriptedShopper([Answer(201, {"id": 3, "status": "confirmed"})])
    [result] = shopper.run()
    assert result.outcome == CONFIRMED
    assert shopper.calls[0] == ("DELETE", "/api/v1/cart")
    assert ("POST", "/api/v1/cart/items") in shopper.calls[1:]
