"""Fresh databases for tests: a SQLite file, or a database created on the local MariaDB."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pymysql

MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}


def mysql_available() -> bool:
    """Whether the MariaDB/MySQL server on 127.0.0.1:3306 answers."""
    try:
        pymysql.connect(connect_timeout=2, **MYSQL).close()
        return True
    except pymysql.MySQLError:
        return False


@contextmanager
def mysql_database(prefix: str = "bw_test") -> Iterator[str]:
    """Create an empty MySQL database, yield its SQLAlchemy URL, drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    connection = pymysql.connect(autocommit=True, **MYSQL)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        yield f"mysql+pymysql://{MYSQL['user']}@{MYSQL['host']}:{MYSQL['port']}/{name}?charset=utf8mb4"
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        connection.close()


@contextmanager
def database_url(backend: str, tmp_path: Path, name: str) -> Iterator[str]:
    """A fresh database of `backend` ('sqlite' or 'mysql') for the service `name`."""
    if backend == "mysql":
        with mysql_database(f"bw_{name}") as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / f'{name}.db'}"
