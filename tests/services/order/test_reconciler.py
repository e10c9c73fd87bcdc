"""The reconciler, on a fake clock: what product says decides each stuck order; leases and
backoff; several instances at once; its metrics; its thread."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask

from services.order.models import utcnow
from tests.services.order.conftest import Shop
from tests.support.metrics import naming_problems
from tests.support.processes import wait_until

BY_REF = r"GET /api/v1/reservations/by-ref/.*"


class FakeClock:
    """Naive-UTC now, moved by hand. It starts at the real time of its first use, not of its
    creation: the orders a test makes are stamped with the real time (after set-up, which may
    take seconds on a busy MariaDB), and the clock must not lag behind them."""

    def __init__(self) -> None:
        self._now: datetime | None = None

    @property
    def now(self) -> datetime:
        if self._now is None:
            self._now = utcnow()
        return self._now

    @now.setter
    def now(self, value: datetime) -> None:
        self._now = value

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now = self.now + timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def order_app(shop: Shop, make_order_app: Callable[..., Flask], clock: FakeClock) -> Flask:
    """Order on the shop's database, its reconciler on the fake clock (grace 10 s)."""
    database = shop.order_app.config["SETTINGS"].database_url
    shop.order_app = make_order_app(database, shop.cart_server.url, shop.product_server.url,
                                    clock=clock, reconcile_grace_seconds=10)
    return shop.order_app


def stuck_order(shop: Shop, app: Flask, reservation: str | None, *, confirm_requested: bool = False,
                user_id: int = 1, quantity: int = 2) -> int:
    """A pending order as a dead checkout leaves it, and product's reservation for it."""
    from services.order import domain
    from services.order.upstreams import CartItem

    with app.app_context():
        order = domain.claim(user_id, None, [CartItem(1, "Blue Mug", 1250, quantity)])
        order_id, ref = order.id, order.ref
        if reservation is not None:
            with shop.product.lock:
                rid = len(shop.product.reservations) + 1
                shop.product.reservations[rid] = {
                    "id": rid, "order_ref": ref, "status": reservation, "expires_at": "later",
                    "lines": [{"product_id": 1, "quantity": quantity}]}
                if reservation in ("held", "confirmed"):
                    shop.product.products[1]["stock"] -= quantity
            if confirm_requested:
                assert domain.begin_confirm(order, str(rid))
        from services.order.models import db
        db.session.remove()
    return order_id


def status_of(app: Flask, order_id: int) -> dict[str, Any]:
    from services.order.models import Order, db

    with app.app_context():
        order = db.session.get(Order, order_id)
        view = {"status": order.status, "failure": order.failure_code, "key": order.idempotency_key,
                "history": [c.status for c in order.history], "cart_cleared": order.cart_cleared}
        db.session.remove()
    return view


def parse_metrics(text: str) -> dict[str, dict[tuple, float]]:
    """Prometheus text → {sample name: {sorted label items: value}}."""
    from prometheus_client.parser import text_string_to_metric_families

    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def run(app: Flask) -> dict[str, int]:
    return app.extensions["order.reconciler"].run_once()


@pytest.mark.parametrize(("reservation", "requested", "outcome", "stock", "product_status"), [
    (None, False, "failed", 10, None),
    ("released", False, "failed", 10, "released"),
    ("expired", True, "failed", 10, "expired"),
    ("confirmed", False, "confirmed", 8, "confirmed"),
    ("held", True, "confirmed", 8, "confirmed"),   # it had reached the confirm step
    ("held", False, "failed", 10, "released"),     # it had not: give the units back
])
def test_product_decides_how_a_stuck_order_ends(shop: Shop, order_app: Flask, clock: FakeClock,
                                                reservation, requested, outcome, stock,
                                                product_status) -> None:
    order_id = stuck_order(shop, order_app, reservation, confirm_requested=requested)
    assert run(order_app) == {}  # within the grace period: maybe still in progress
    clock.advance(11)
    assert run(order_app) == {outcome: 1}
    view = status_of(order_app, order_id)
    assert view["status"] == outcome and view["history"] == ["pending", outcome]
    assert shop.product.stock(1) == stock
    assert [r["status"] for r in shop.product.reservations.values()] == \
        ([product_status] if product_status else [])
    assert run(order_app) == {}  # resolved once; nothing left to do
    assert all(user == "1" for user in shop.product.acting_users)


def test_product_unreachable_backs_off_and_retries(shop: Shop, order_app: Flask,
                                                   clock: FakeClock) -> None:
    order_id = stuck_order(shop, order_app, "held", confirm_requested=True)
    shop.product_server.fault(BY_REF, "error")
    clock.advance(11)
    assert run(order_app) == {"error": 1}
    assert run(order_app) == {}  # backed off: not asked again at once
    clock.advance(4)
    assert run(order_app) == {}
    clock.advance(2)
    assert run(order_app) == {"error": 1}  # second attempt, after 5 s
    clock.advance(6)
    assert run(order_app) == {}  # the third waits twice as long
    shop.product_server.heal()
    clock.advance(5)
    assert run(order_app) == {"confirmed": 1}
    assert status_of(order_app, order_id)["status"] == "confirmed"


def test_a_batch_is_bounded(shop: Shop, make_order_app: Callable[..., Flask],
                            clock: FakeClock) -> None:
    database = shop.order_app.config["SETTINGS"].database_url
    app = make_order_app(database, shop.cart_server.url, shop.product_server.url, clock=clock,
                         reconcile_batch=3)
    for _ in range(5):
        stuck_order(shop, app, None)
    clock.advance(11)
    assert run(app) == {"failed": 3}
    assert run(app) == {"failed": 2}


def test_several_instances_resolve_each_order_once(shop: Shop, make_order_app: Callable[..., Flask],
                                                  clock: FakeClock) -> None:
    database = shop.order_app.config["SETTINGS"].database_url
    apps = [make_order_app(database, shop.cart_server.url, shop.product_server.url, clock=clock)
            for _ in range(3)]
    orders = [stuck_order(shop, apps[0], "held", quantity=1) for _ in range(8)]
    clock.advance(11)
    with ThreadPoolExecutor(3) as pool:
        passes = list(pool.map(run, apps))
    assert sum(p.get("failed", 0) for p in passes) == 8, passes
    assert sum(sum(p.values()) for p in passes) == 8  # nobody worked on an order twice
    releases = [line for line in shop.product_server.requests if line.endswith("/release")]
    assert len(releases) == 8
    assert shop.product.stock(1) == 10
    assert {status_of(apps[1], o)["status"] for o in orders} == {"failed"}


def test_a_failed_order_gives_its_key_back(shop: Shop, order_app: Flask, clock: FakeClock) -> None:
    from services.order import domain
    from services.order.models import db
    from services.order.upstreams import CartItem

    with order_app.app_context():
        order_id = domain.claim(1, "key-7", [CartItem(1, "Blue Mug", 1250, 1)]).id
        db.session.remove()
    clock.advance(11)
    assert run(order_app) == {"failed": 1}
    assert status_of(order_app, order_id)["key"] is None
    shop.fill_cart(1, (1, 1))
    assert shop.checkout(1, key="key-7").status_code == 201


def test_the_metrics_count_outcomes_and_show_the_backlog(shop: Shop, order_app: Flask,
                                                         clock: FakeClock) -> None:
    stuck_order(shop, order_app, None)
    stuck_order(shop, order_app, "confirmed")
    clock.advance(30)
    before = parse_metrics(order_app.test_client().get("/metrics").get_data(as_text=True))
    assert before["breakwater_oldest_pending_order_age_seconds"][()] >= 25
    run(order_app)
    text = order_app.test_client().get("/metrics").get_data(as_text=True)
    assert naming_problems(text) == []
    after = parse_metrics(text)
    assert after["breakwater_reconciled_total"][(("outcome", "failed"),)] == 1
    assert after["breakwater_reconciled_total"][(("outcome", "confirmed"),)] == 1
    assert after["breakwater_oldest_pending_order_age_seconds"][()] == 0


@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_the_reconciler_runs_by_itself_in_the_service(shop: Shop,
                                                      make_order_app: Callable[..., Flask]) -> None:
    database = shop.order_app.config["SETTINGS"].database_url
    app = make_order_app(database, shop.cart_server.url, shop.product_server.url, reconciler=True,
                         reconcile_interval_seconds=0.05, reconcile_grace_seconds=0)
    order_id = stuck_order(shop, app, "held", confirm_requested=True)
    wait_until(lambda: status_of(app, order_id)["status"] == "confirmed", timeout=15,
               message="the reconciler confirmed the order")
    assert shop.product.stock(1) == 8


def test_each_resolution_is_a_span(shop: Shop, order_app: Flask, clock: FakeClock) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider, exporter = TracerProvider(), InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    order_app.extensions["order.reconciler"].tracer = provider.get_tracer("test")
    first = stuck_order(shop, order_app, None)
    second = stuck_order(shop, order_app, "held", confirm_requested=True)
    clock.advance(11)
    run(order_app)
    spans = {span.attributes["order.id"]: span for span in exporter.get_finished_spans()}
    assert set(spans) == {first, second}
    assert spans[first].attributes["breakwater.reconcile.outcome"] == "failed"
    assert spans[second].attributes["breakwater.reconcile.outcome"] == "confirmed"
    assert all(span.name == "reconcile order" for span in spans.values())
