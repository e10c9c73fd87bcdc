"""One database per service: a SQLite file in var/ by default, or a server URL template.

`--db mysql+pymysql://root@127.0.0.1:3306/bw_{service}` gives each service its own database
on one server; missing databases are created before migrations run.
"""

from __future__ import annotations

from pathlib import Path

SQLITE = "sqlite"


class DatabaseError(RuntimeError):
    """A database URL template that cannot work, or a server that refused to create one."""


def database_url(template: str, service: str, var_dir: str | Path) -> str:
    """The URL of `service`'s database from `template` ("sqlite" = var/<service>.db)."""
    if template == SQLITE:
        return f"sqlite:///{Path(var_dir) / f'{service}.db'}"
    if "{service}" not in template:
        raise DatabaseError(f"--db {template!r} must contain {{service}} so every service gets "
                            "its own database "
                            "(e.g. mysql+pymysql://root@127.0.0.1:3306/bw_{service})")
    return template.replace("{service}", service)


def validate_template(template: str) -> None:
    """Raise DatabaseError now for a template that cannot give one URL per service."""
    database_url(template, "check", ".")
    if template != SQLITE and "://" not in template:
        raise DatabaseError(f"--db {template!r} is neither 'sqlite' nor a database URL")


def ensure_database(url: str) -> bool:
    """Create the database `url` names on its server if missing; whether it was created.

    SQLite files are created by the service itself; MySQL/MariaDB and PostgreSQL are handled.
    """
    if url.startswith("sqlite"):
        return False
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    target = make_url(url)
    name = target.database
    if not name:
        raise DatabaseError(f"{target.render_as_string(hide_password=True)} names no database")
    backend = target.get_backend_name()
    try:
        if backend in ("mysql", "mariadb"):
            engine = create_engine(target._replace(database=None))
            with engine.connect() as connection:
                exists = connection.execute(
                    text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :n"),
                    {"n": name},
                ).first()
                if not exists:
                    connection.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
            engine.dispose()
            return not exists
        if backend == "postgresql":
            engine = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
            with engine.connect() as connection:
                exists = connection.execute(
                    text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
                ).first()
                if not exists:
                    connection.execute(text(f'CREATE DATABASE "{name}"'))
            engine.dispose()
            return not exists
    except SQLAlchemyError as exc:
        shown = target.render_as_string(hide_password=True)
        raise DatabaseError(f"cannot prepare database {shown}: {str(exc).splitlines()[0]}") \
            from exc
    return False
