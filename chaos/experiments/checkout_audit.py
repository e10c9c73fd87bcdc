"""The checkout audit after a nemesis run, through the public APIs only (as a customer or an
auditor can check it, the same in local, compose and Kubernetes mode).

Read: the hot product's available units (fresh, from product), every buyer's orders with
their own tokens, and what each client was told (orders.jsonl: key → answers). Figures:

- `oversold`: units in confirmed orders beyond the stock;
- `unaccounted_units`: stock − available − units in confirmed orders: units held by an order
  that never finished, or leaked (> 0), or sold twice (< 0); 0 when the books balance;
- `unresolved_orders`: orders neither confirmed nor failed (pending, or any other state that
  nothing has finished);
- `keys_with_two_orders`: keys a client was told were confirmed as two different orders, plus
  confirmed orders beyond the number of keys their buyer used (a key can buy once);
- `told_confirmed_not_confirmed`: orders a client was told were confirmed that are not
  confirmed now (or not there at all);
- `confirmed_ratio`: purchases with a confirmed order / purchases.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from chaos.experiments.integrity import available_units, hot_orders

FINISHED = ("confirmed", "failed")


def client_answers(orders_log: Path) -> list[dict[str, Any]]:
    """Every checkout answer the clients logged (orders.jsonl), in order."""
    answers = []
    if orders_log.exists():
        for line in orders_log.read_text().splitlines():
            try:
                answers.append(json.loads(line))
            except ValueError:
                continue
    return answers


def checkout_audit(gateway_url: str, sale: dict[str, Any], tokens: dict[str, str],
                   keys_by_buyer: dict[str, set[str]], orders_log: Path) -> dict[str, Any]:
    """The audit figures (see the module docstring); raises when the shop does not answer."""
    session = requests.Session()
    available = available_units(session, gateway_url, sale["slug"])
    orders = hot_orders(session, gateway_url, tokens, sale["id"])
    status_of = {order["id"]: order.get("status") for _, order, _ in orders}
    statuses = Counter(str(order.get("status")) for _, order, _ in orders)
    units_confirmed = sum(units for _, order, units in orders if order.get("status") == "confirmed")
    unresolved_units = sum(units for _, order, units in orders
                           if order.get("status") not in FINISHED)
    confirmed_per_buyer: Counter[str] = Counter(
        email for email, order, _ in orders if order.get("status") == "confirmed")
    extra_confirmed = sum(max(0, count - len(keys_by_buyer.get(email, ())))
                          for email, count in confirmed_per_buyer.items())

    answers = client_answers(orders_log)
    told_confirmed: dict[str, set[Any]] = defaultdict(set)
    for answer in answers:
        if answer.get("order_status") == "confirmed" and answer.get("order_id") is not None:
            told_confirmed[answer["key"]].add(answer["order_id"])
    told_twice = sum(1 for ids in told_confirmed.values() if len(ids) > 1)
    told_ids = {order_id for ids in told_confirmed.values() for order_id in ids}
    not_confirmed = sorted(i for i in told_ids if status_of.get(i) != "confirmed")

    purchases = sum(len(keys) for keys in keys_by_buyer.values())
    confirmed_purchases = min(purchases, sum(confirmed_per_buyer.values()) - extra_confirmed)
    stock = int(sale["stock"])
    return {
        "stock": stock, "available_after": available,
        "units_in_confirmed_orders": units_confirmed,
        "oversold": max(0, units_confirmed - stock),
        "unaccounted_units": stock - available - units_confirmed,
        "units_in_unresolved_orders": unresolved_units,
        "unresolved_orders": sum(n for s, n in statuses.items() if s not in FINISHED),
        "keys_with_two_orders": told_twice + extra_confirmed,
        "told_confirmed_not_confirmed": len(not_confirmed),
        "purchases": purchases, "confirmed_purchases": confirmed_purchases,
        "confirmed_ratio": round(confirmed_purchases / purchases, 4) if purchases else 0.0,
        "checkout_attempts": len(answers),
        "retried_keys": len({a["key"] for a in answers if a.get("attempt", 0) > 0}),
        "orders_by_status": dict(statuses),
        "not_confirmed_order_ids": not_confirmed[:20],
    }


def audit_or_error(audit: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The audit, or {"error": …} when the shop did not answer it (still settling)."""
    try:
        return audit()
    except (requests.RequestException, RuntimeError, KeyError, ValueError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}
