"""The order service: checkout of the cart into orders, their history, and the reconciler
that finishes checkouts a crash or a lost reply left undone."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Flask

from services.common.app import METRICS_REGISTRY_KEY, build_app, upgrade_database
from services.common.periodic import PeriodicTask
from services.order.config import OrderSettings
from services.order.models import db, utcnow
from services.order.reconciler import RECONCILER_KEY, Reconciler
from services.order.routes import blp
from services.order.upstreams import (
    CLIENT_KEY,
    TOKENS_KEY,
    ShopUpstreams,
    order_client,
    service_tokens,
)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
RECONCILER_TASK_KEY = "order.reconciler_task"


def create_app(config: Mapping[str, Any] | None = None, *,
               clock: Callable[[], datetime] = utcnow) -> Flask:
    """The order app; `config` overrides settings fields (tests), `clock` is the reconciler's."""
    settings = OrderSettings.from_env(config)
    app = build_app(settings, db, [blp], migrations_dir=MIGRATIONS, api_title="Breakwater order")
    client = order_client(settings)
    tokens = service_tokens(settings, client)
    app.extensions[CLIENT_KEY] = client
    app.extensions[TOKENS_KEY] = tokens
    reconciler = Reconciler(app, settings, lambda user_id: ShopUpstreams(client, tokens, user_id),
                            clock=clock, registry=app.extensions[METRICS_REGISTRY_KEY])
    app.extensions[RECONCILER_KEY] = reconciler
    if settings.auto_migrate:
        upgrade_database(app)
    if settings.reconciler:
        task = PeriodicTask("order-reconciler", reconciler.run_once,
                            interval=settings.reconcile_interval_seconds)
        app.extensions[RECONCILER_TASK_KEY] = task
        task.ensure_running()
        app.before_request(task.ensure_running)  # a worker forked after the start gets its own
    return app
