"""Apply one service's migrations once, however many replicas start at the same moment.

`entrypoint.sh migrate <service>` (a compose one-shot job, a Kubernetes init container):
waits, with a deadline, for the database to answer; on MySQL takes a named lock so that
concurrent migrators run one after another (Alembic's DDL is not transactional there); then
runs the service's `flask db upgrade`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

from flask_migrate import upgrade
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

SERVICES = ("auth", "product", "cart", "order")


def wait_for_database(engine: Engine, timeout: float) -> None:
    """Return once `SELECT 1` works; raise the last error after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return
        except SQLAlchemyError as exc:
            if time.monotonic() >= deadline:
                raise
            print(f"waiting for the database: {str(exc).splitlines()[0]}", file=sys.stderr)
            time.sleep(1.0)


def migrate(service: str, timeout: float) -> None:
    """Bring `service`'s database to its latest migration."""
    from services.common.app import register_migrations

    package = importlib.import_module(f"services.{service}")
    app = package.create_app()
    register_migrations(app)  # a served app leaves Flask-Migrate out; this job needs it
    directory = str(package.MIGRATIONS)
    with app.app_context():
        engine = app.extensions["sqlalchemy"].engine
        wait_for_database(engine, timeout)
        if engine.dialect.name != "mysql":
            upgrade(directory=directory)
            return
        lock = f"breakwater-migrate-{service}"
        with engine.connect() as connection:
            got = connection.execute(text("SELECT GET_LOCK(:name, :timeout)"),
                                     {"name": lock, "timeout": int(timeout)}).scalar()
            if got != 1:
                raise SystemExit(f"{service}: another migrator held {lock!r} for {timeout:g}s")
            try:
                upgrade(directory=directory)
            finally:
                connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": lock})


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and migrate."""
    parser = argparse.ArgumentParser(prog="migrate", description=__doc__.splitlines()[0])
    parser.add_argument("service", choices=SERVICES)
    parser.add_argument("--timeout", type=float, default=180.0,
                        help="seconds to wait for the database and for the lock (default 180)")
    args = parser.parse_args(argv)
    migrate(args.service, args.timeout)
    print(f"{args.service}: migrations applied")
    return 0


if __name__ == "__main__":
    sys.exit(main())
