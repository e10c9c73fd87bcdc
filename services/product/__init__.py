"""The product service: the catalog and stock reservations (`python -m services.product`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Flask

from services.common.app import build_app, upgrade_database
from services.product import catalog_access
from services.product.config import ProductSettings
from services.product.models import db, utcnow
from services.product.routes import (
    CLOCK_KEY,
    legacy_blp,
    products_blp,
    products_v2_blp,
    reservations_blp,
)
from services.product.sweeper import start_hold_sweeper

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def create_app(
    config: Mapping[str, Any] | None = None, *, clock: Callable[[], datetime] = utcnow,
    open_catalog_writes: bool = False,
) -> Flask:
    """The product app; `config` overrides settings fields, `clock` gives naive-UTC now.

    Catalog writes need an admin token unless `open_catalog_writes` (only the standalone
    development service on loopback passes it; no setting turns it on).
    """
    settings = ProductSettings.from_env(overrides=config)
    app = build_app(
        settings, db, [products_blp, legacy_blp, products_v2_blp, reservations_blp],
        migrations_dir=MIGRATIONS, api_title="Breakwater product",
    )
    app.extensions[CLOCK_KEY] = clock
    if open_catalog_writes:
        catalog_access.open_catalog_writes(app)
    if settings.auto_migrate:
        upgrade_database(app)
    start_hold_sweeper(app, settings, clock)
    return app
