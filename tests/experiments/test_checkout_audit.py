"""The checkout audit counts what it claims, read over HTTP from a small fake shop."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from chaos.experiments.checkout_audit import checkout_audit

HOT = 7


def order(order_id: int, status: str, units: int, product_id: int = HOT) -> dict:
    return {"id": order_id, "status": status,
            "lines": [{"product_id": product_id, "quantity": units}]}


# Stock 20: ann has 2 keys and 3 confirmed orders (one too many), bob a pending order and a
# failed one, cat a confirmed order of another product only.
ORDERS = {
    "ann": [order(1, "confirmed", 2), order(2, "confirmed", 3), order(3, "confirmed", 1)],
    "bob": [order(4, "pending", 2), order(5, "failed", 1)],
    "cat": [order(6, "confirmed", 5, product_id=99)],
}


@pytest.fixture
def shop() -> Iterator[str]:
    app = Flask("fake-shop")
    reads = {"count": 0}

    @app.get("/api/v1/products/<slug>")
    def product(slug: str):
        reads["count"] += 1
        response = jsonify({"slug": slug, "stock": 99 if reads["count"] == 1 else 11})
        if reads["count"] == 1:  # the gateway's stale copy first: never to be trusted
            response.headers["X-Breakwater-Stale"] = "1"
        return response

    def buyer() -> str:
        return request.headers["Authorization"].removeprefix("Bearer ")

    @app.get("/api/v1/orders")
    def listing():
        mine = ORDERS[buyer()]
        return jsonify({"items": [{"id": o["id"]} for o in mine], "pages": 1})

    @app.get("/api/v1/orders/<int:order_id>")
    def detail(order_id: int):
        return jsonify(next(o for o in ORDERS[buyer()] if o["id"] == order_id))

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


def test_the_audit_counts_leaks_pending_orders_duplicates_and_broken_promises(
        shop: str, tmp_path: Path) -> None:
    log = tmp_path / "orders.jsonl"
    answers = [
        {"key": "a1", "attempt": 0, "order_id": 1, "order_status": "confirmed"},
        {"key": "a2", "attempt": 0, "order_id": None, "order_status": None},
        {"key": "a2", "attempt": 1, "order_id": 2, "order_status": "confirmed"},
        {"key": "a2", "attempt": 2, "order_id": 3, "order_status": "confirmed"},  # twice
        {"key": "b1", "attempt": 0, "order_id": 5, "order_status": "confirmed"},  # now failed
    ]
    log.write_text("".join(json.dumps(a) + "\n" for a in answers))
    tokens = {name: name for name in ORDERS}
    keys = {"ann": {"a1", "a2"}, "bob": {"b1", "b2"}, "cat": {"c1"}}
    audit = checkout_audit(shop, {"slug": "hot", "id": HOT, "stock": 20}, tokens, keys, log)

    assert audit["available_after"] == 11  # the fresh answer, not the stale 99
    assert audit["units_in_confirmed_orders"] == 6 and audit["oversold"] == 0
    assert audit["unaccounted_units"] == 20 - 11 - 6
    assert audit["unresolved_orders"] == 1 and audit["units_in_unresolved_orders"] == 2
    # a2 told as two orders, and ann holds one confirmed order more than her keys.
    assert audit["keys_with_two_orders"] == 2
    assert audit["told_confirmed_not_confirmed"] == 1
    assert audit["not_confirmed_order_ids"] == [5]
    assert audit["purchases"] == 5 and audit["confirmed_purchases"] == 2
    assert audit["confirmed_ratio"] == 0.4
    assert audit["orders_by_status"] == {"confirmed": 3, "pending": 1, "failed": 1}
    assert audit["checkout_attempts"] == 5 and audit["retried_keys"] == 1


def test_more_units_confirmed_than_stock_is_oversold(shop: str, tmp_path: Path) -> None:
    tokens = {"ann": "ann"}
    audit = checkout_audit(shop, {"slug": "hot", "id": HOT, "stock": 4}, tokens,
                           {"ann": {"a1", "a2", "a3"}}, tmp_path / "none.jsonl")
    assert audit["oversold"] == 2 and audit["unaccounted_units"] == 4 - 11 - 6


@pytest.fixture
def refusing_shop() -> Iterator[tuple[str, dict]]:
    """Order listings refused `state["refusals"]` times as an open breaker refuses them (503,
    Retry-After: 1), then answered; a 404 for an unknown buyer."""
    app = Flask("refusing-shop")
    state = {"refusals": 2, "asked": 0}

    @app.get("/api/v1/orders")
    def listing():
        state["asked"] += 1
        if request.headers["Authorization"] == "Bearer nobody":
            return jsonify(error={"code": "not_found"}), 404
        if state["asked"] <= state["refusals"]:
            return (jsonify(error={"code": "order_unavailable",
                                   "details": {"reason": "breaker_open"}}),
                    503, {"Retry-After": "1"})
        return jsonify({"items": [], "pages": 1})

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", state
    server.shutdown()
    thread.join(timeout=5)


def test_the_audit_comes_back_when_an_open_breaker_says_so(refusing_shop) -> None:
    import requests

    from chaos.experiments.integrity import _get

    url, state = refusing_shop
    waits: list[float] = []
    now = [0.0]

    def sleep(seconds: float) -> None:  # the audit's clock moves only when it waits
        waits.append(seconds)
        now[0] += seconds

    session = requests.Session()
    listing = _get(session, url + "/api/v1/orders", "ann", sleep=sleep, clock=lambda: now[0])
    assert listing == {"items": [], "pages": 1}
    assert waits == [1.0, 1.0] and state["asked"] == 3  # told "1 s", came back after 1 s

    # Refused for longer than its patience: it gives up, saying what it got and for how long.
    state.update(refusals=10**6, asked=0)
    with pytest.raises(RuntimeError, match=r"503 .*breaker_open.*asks again for 3 s"):
        _get(session, url + "/api/v1/orders", "ann", patience=3, sleep=sleep,
             clock=lambda: now[0])
    assert state["asked"] == 4  # at 0, 1, 2 and 3 s of its clock

    # An answer that will not change is not asked again.
    state["asked"] = 0
    with pytest.raises(RuntimeError, match="404"):
        _get(session, url + "/api/v1/orders", "nobody", sleep=sleep, clock=lambda: now[0])
    assert state["asked"] == 1
