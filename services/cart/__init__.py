"""The cart service: a cart per user, priced from product at the time each item is added."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from services.cart.catalog import CLIENT_KEY, product_client
from services.cart.config import CartSettings
from services.cart.models import db
from services.cart.routes import blp
from services.common.app import build_app, upgrade_database

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The cart app; `config` overrides settings fields (tests)."""
    settings = CartSettings.from_env(config)
    app = build_app(settings, db, [blp], migrations_dir=MIGRATIONS, api_title="Breakwater cart")
    app.extensions[CLIENT_KEY] = product_client(settings)
    if settings.auto_migrate:
        upgrade_database(app)
    return app
