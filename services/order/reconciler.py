"""The reconciler: a thread in every order process that finishes what checkouts left undone.

On a short interval it takes a bounded batch of
- orders `pending` and untouched for longer than the grace period (their request died or lost
  an answer), and resolves each by asking product (resolution.py);
- `confirmed` orders whose lines have not left the cart yet, and takes them out (for a while:
  `cart_clear_window_seconds`).
Several order instances may run it at once with no leader: an order is leased with a
compare-and-set on its attempt count (one instance works on it, the others skip it), its next
look is backed off per attempt, and every step is idempotent and guarded anyway. It acts with
order's own service token, for the order's user. Each resolution is a span; outcomes are
counted in `breakwater_reconciled_total{outcome}` and the backlog shows in
`breakwater_oldest_pending_order_age_seconds`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from flask import Flask, has_app_context
from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import func, or_, select, update

from services.order.config import OrderSettings
from services.order.models import CONFIRMED, PENDING, Order, db, utcnow
from services.order.resolution import (
    CART_CLEARED,
    CONFIRMED_OUTCOME,
    UNRESOLVED,
    clear_ordered_lines,
    resolve_pending,
)
from services.order.upstreams import ShopUpstreams

RECONCILER_KEY = "order.reconciler"
MIN_LEASE = timedelta(seconds=5)  # longer than one resolution's few bounded calls
MAX_BACKOFF = timedelta(seconds=20)
log = logging.getLogger(__name__)
TRACER = trace.get_tracer("services.order.reconciler")


class ReconcilerMetrics:
    """The reconciler's Prometheus metrics, in the app's own registry."""

    def __init__(self, registry: CollectorRegistry, oldest_pending: Callable[[], float]) -> None:
        self.reconciled = Counter("breakwater_reconciled", "Orders the reconciler acted on, by outcome",
                                  ["outcome"], registry=registry)
        self.oldest = Gauge("breakwater_oldest_pending_order_age_seconds",
                            "Age of the oldest order still pending (0 when none is)", registry=registry)
        self.oldest.set_function(oldest_pending)


class Reconciler:
    """Finds stuck orders and resolves them; `run_once` is one pass (the thread calls it)."""

    def __init__(self, app: Flask, settings: OrderSettings,
                 upstreams_for: Callable[[int], ShopUpstreams], *,
                 clock: Callable[[], datetime] = utcnow,
                 registry: CollectorRegistry | None = None,
                 tracer: trace.Tracer | None = None) -> None:
        self.app, self.upstreams_for, self.clock = app, upstreams_for, clock
        self.tracer = tracer or TRACER
        self.grace = timedelta(seconds=settings.reconcile_grace_seconds)
        self.batch = settings.reconcile_batch
        self.interval = timedelta(seconds=settings.reconcile_interval_seconds)
        self.cart_window = timedelta(seconds=settings.cart_clear_window_seconds)
        self._oldest_seen = 0.0
        self.metrics = ReconcilerMetrics(registry or CollectorRegistry(), self._oldest_pending_age)

    def backoff(self, attempts: int) -> timedelta:
        """How long an order is left alone after its `attempts`-th look: doubling, bounded."""
        base = max(self.interval, MIN_LEASE)
        return min(base * (2 ** min(max(attempts - 1, 0), 10)), max(MAX_BACKOFF, base))

    def run_once(self) -> dict[str, int]:
        """One pass over the due orders; how many ended with each outcome."""
        outcomes: dict[str, int] = {}
        with self.app.app_context():
            try:
                now = self.clock()
                for order_id, status, attempts in self._due(now):
                    next_look = now + self.backoff(attempts + 1)
                    if not self._lease(order_id, status, attempts, now, next_look):
                        continue  # another instance took it, or it moved on
                    outcome = self._resolve(order_id, next_look)
                    outcomes[outcome] = outcomes.get(outcome, 0) + 1
                    self.metrics.reconciled.labels(outcome).inc()
                self._oldest_seen = self._query_oldest_age(now)
            finally:
                db.session.remove()
        return outcomes

    def _due(self, now: datetime) -> list[tuple[int, str, int]]:
        due_now = or_(Order.next_reconcile_at.is_(None), Order.next_reconcile_at <= now)
        stuck = db.session.execute(
            select(Order.id, Order.status, Order.reconcile_attempts)
            .where(Order.status == PENDING, Order.updated_at <= now - self.grace, due_now)
            .order_by(Order.updated_at).limit(self.batch)).all()
        uncleared = db.session.execute(
            select(Order.id, Order.status, Order.reconcile_attempts)
            .where(Order.status == CONFIRMED, Order.cart_cleared.is_(False),
                   Order.next_reconcile_at.is_not(None), Order.next_reconcile_at <= now,
                   Order.updated_at >= now - self.cart_window)
            .order_by(Order.next_reconcile_at).limit(self.batch)).all()
        db.session.rollback()
        return [(row[0], row[1], row[2]) for row in [*stuck, *uncleared]]

    def _lease(self, order_id: int, status: str, attempts: int, now: datetime,
               until: datetime) -> bool:
        """Compare-and-set on the attempt count: exactly one instance wins each look."""
        taken = db.session.execute(
            update(Order)
            .where(Order.id == order_id, Order.status == status,
                   Order.reconcile_attempts == attempts,
                   or_(Order.next_reconcile_at.is_(None), Order.next_reconcile_at <= now))
            .values(reconcile_attempts=attempts + 1, next_reconcile_at=until,
                    updated_at=Order.updated_at)
            .execution_options(synchronize_session=False)).rowcount
        db.session.commit()
        return taken == 1

    def _resolve(self, order_id: int, retry_at: datetime) -> str:
        order = db.session.get(Order, order_id)
        if order is None:
            return "error"
        with self.tracer.start_as_current_span("reconcile order", attributes={
                "order.id": order.id, "order.ref": order.ref, "order.status": order.status,
                "order.reconcile_attempt": order.reconcile_attempts}) as span:
            try:
                upstreams = self.upstreams_for(order.user_id)
                if order.status == PENDING:
                    outcome = resolve_pending(order, upstreams)
                    if outcome == CONFIRMED_OUTCOME:
                        clear_ordered_lines(order, upstreams, retry_at=retry_at)
                else:
                    cleared = clear_ordered_lines(order, upstreams, retry_at=retry_at)
                    outcome = CART_CLEARED if cleared else "cart_not_cleared"
            except Exception as exc:
                db.session.rollback()
                span.record_exception(exc)
                log.warning("could not reconcile order %s (attempt %s): %s", order_id,
                            order.reconcile_attempts, exc)
                outcome = "error"
            span.set_attribute("breakwater.reconcile.outcome", outcome)
            if outcome in (UNRESOLVED, "error", "cart_not_cleared"):
                span.set_status(trace.StatusCode.ERROR, outcome)
            log.info("order reconciled", extra={"fields": {"order_id": order_id, "outcome": outcome}})
            return outcome

    def _query_oldest_age(self, now: datetime) -> float:
        oldest = db.session.scalar(select(func.min(Order.created_at)).where(Order.status == PENDING))
        db.session.rollback()
        return max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0

    def _oldest_pending_age(self) -> float:
        """Read at scrape time when a request of this app is being served, else the last pass's."""
        if has_app_context():
            try:
                return self._query_oldest_age(self.clock())
            except Exception:  # a scrape must not fail because the database is down
                log.debug("oldest pending order age unavailable", exc_info=True)
        return self._oldest_seen
