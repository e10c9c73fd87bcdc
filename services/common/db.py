"""Database per service: Flask-SQLAlchemy with Flask-Migrate, SQLite by default, any URL by env.

Each service makes its own `db = make_db()` so its models and migrations never see another
service's tables, even when several services are imported into one test process.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Engine, MetaData, event, text
from sqlalchemy.exc import SQLAlchemyError

from services.common.settings import var_dir

# Stable constraint names so Alembic migrations are identical on SQLite and MySQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def make_db() -> SQLAlchemy:
    """A fresh Flask-SQLAlchemy extension with its own metadata."""
    return SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION))


def default_sqlite_url(service: str) -> str:
    """`sqlite:///var/<service>.db` under the stack's var folder."""
    return f"sqlite:///{Path(var_dir()) / f'{service}.db'}"


def engine_options(url: str) -> dict[str, Any]:
    """Pool settings that suit the database behind `url`."""
    if url.startswith("sqlite"):
        # Several gunicorn threads and replicas share one file: wait for the lock, never fail.
        return {"connect_args": {"timeout": 15, "check_same_thread": False}}
    return {"pool_pre_ping": True, "pool_recycle": 280, "pool_size": 10, "max_overflow": 20}


@event.listens_for(Engine, "connect")
def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the single writer; busy_timeout queues writers instead of
    # failing them with "database is locked" when replicas check out at the same time.
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def prepare_sqlite_path(url: str) -> None:
    """Create the folder of a SQLite file URL so the first connection does not fail."""
    if url.startswith("sqlite:///") and ":memory:" not in url:
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def database_reachable(db: SQLAlchemy) -> tuple[bool, str]:
    """Run `SELECT 1`; return whether it worked and, if not, why."""
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True, "ok"
    except SQLAlchemyError as exc:
        return False, f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
