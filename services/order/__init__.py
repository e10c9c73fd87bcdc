"""The order service: checkout of the cart into orders, and their history."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from flask_migrate import upgrade

from services.common.app import build_app
from services.order.config import OrderSettings
from services.order.models import db
from services.order.routes import blp
from services.order.upstreams import CLIENT_KEY, order_client

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The order app; `config` overrides settings fields (tests)."""
    settings = OrderSettings.from_env(config)
    app = build_app(settings, db, [blp], migrations_dir=MIGRATIONS, api_title="Breakwater order")
    app.extensions[CLIENT_KEY] = order_client(settings)
    if settings.auto_migrate:
        with app.app_context():
            upgrade(directory=str(MIGRATIONS))
            db.engine.dispose()  # no migration connection may outlive a gunicorn fork
    return app
