"""The hold sweeper: every few seconds, return the units of holds that expired unconfirmed.

Without it an abandoned checkout's units stay out of `stock` until the next reserve happens to
sweep them, and the catalog says "sold out" for stock nobody bought. Every replica (and every
worker) sweeps; `_end_hold` is a compare-and-set, so a hold's units come back exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from flask import Flask

from services.common.periodic import PeriodicTask
from services.product.config import ProductSettings
from services.product.models import db
from services.product.reservations import SWEEP_BATCH, release_expired_holds

SWEEPER_KEY = "product.hold_sweeper"
MAX_BATCHES = 10  # per run: a backlog drains over a few runs, never in one long transaction
log = logging.getLogger(__name__)


def sweep_expired_holds(app: Flask, clock: Callable[[], datetime]) -> int:
    """One sweep: release expired holds in bounded batches; how many holds ended."""
    ended = 0
    with app.app_context():
        try:
            for _ in range(MAX_BATCHES):
                batch = release_expired_holds(clock())
                ended += batch
                if batch < SWEEP_BATCH:
                    break
        finally:
            db.session.remove()
    if ended:
        log.info("expired holds released", extra={"fields": {"holds": ended}})
    return ended


def start_hold_sweeper(app: Flask, settings: ProductSettings,
                       clock: Callable[[], datetime]) -> PeriodicTask | None:
    """Run the sweeper in this process (and in any worker forked from it); None when off."""
    if settings.hold_sweep_interval_seconds <= 0:
        return None
    task = PeriodicTask("hold-sweeper", lambda: sweep_expired_holds(app, clock),
                        interval=settings.hold_sweep_interval_seconds)
    app.extensions[SWEEPER_KEY] = task
    task.ensure_running()
    app.before_request(task.ensure_running)
    return task
