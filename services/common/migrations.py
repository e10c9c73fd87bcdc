"""The Alembic environment every service's migrations share.

Each service keeps its own migrations folder (`services/<name>/migrations`, found by
Flask-Migrate, so `flask --app services.<name> db upgrade` works as usual); its `env.py` is
two lines calling `run_environment()`, which runs Alembic against the service's own
Flask-SQLAlchemy engine and metadata, online or offline (`flask db upgrade --sql`).
"""

from __future__ import annotations

import logging
from logging.config import fileConfig
from typing import Any

from alembic import context
from flask import current_app

log = logging.getLogger("alembic.env")


def _engine() -> Any:
    return current_app.extensions["migrate"].db.engine


def _metadata() -> Any:
    db = current_app.extensions["migrate"].db
    return db.metadatas[None] if hasattr(db, "metadatas") else db.metadata


def _skip_empty_autogenerate(config: Any) -> Any:
    """A `process_revision_directives` hook: `flask db migrate` with no change writes nothing."""

    def hook(_context: Any, _revision: Any, directives: list[Any]) -> None:
        if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
            directives[:] = []
            log.info("No changes in schema detected.")

    return hook


def run_environment() -> None:
    """Run the migrations Alembic was asked for, on the current app's database."""
    config = context.config
    # The service configures logging itself (JSON lines); alembic.ini's logging would replace it
    # and silence every logger created before the migration ran, so it is applied only when the
    # process has no logging yet (a bare `flask db ...` on the command line).
    if config.config_file_name and not logging.getLogger().handlers:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    url = _engine().url.render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=_metadata(), literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    options = dict(current_app.extensions["migrate"].configure_args)
    if options.get("process_revision_directives") is None:
        options["process_revision_directives"] = _skip_empty_autogenerate(config)
    with _engine().connect() as connection:
        context.configure(connection=connection, target_metadata=_metadata(), **options)
        with context.begin_transaction():
            context.run_migrations()
