"""The shared Alembic environment, through Flask-Migrate's own command line, for every service.

Each service's `migrations/env.py` only calls `services.common.migrations.run_environment`;
`flask --app services.X db …` must still find that service's own folder and database.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SERVICES = ("auth", "product", "cart", "order")

pytestmark = pytest.mark.timeout(120)


def _flask(service: str, db_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, f"{service.upper()}_DATABASE_URL": f"sqlite:///{db_file}",
           f"{service.upper()}_AUTO_MIGRATE": "off", "OTEL_SDK_DISABLED": "true"}
    return subprocess.run([sys.executable, "-m", "flask", "--app", f"services.{service}", "db",
                           *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=90, check=False)


def _models_tables(service: str) -> set[str]:
    models = __import__(f"services.{service}.models", fromlist=["db"])
    return set(models.db.metadata.tables)


@pytest.mark.parametrize("service", SERVICES)
def test_flask_db_upgrade_builds_the_services_own_schema(service: str, tmp_path: Path) -> None:
    db_file = tmp_path / f"{service}.db"
    done = _flask(service, db_file, "upgrade")
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(db_file) as connection:
        tables = {row[0] for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        version = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    assert tables == _models_tables(service) | {"alembic_version"}
    assert len(version) == 1
    heads = _flask(service, db_file, "current")
    assert heads.returncode == 0 and version[0][0] in heads.stdout + heads.stderr


@pytest.mark.parametrize("service", ("product", "order"))
def test_offline_upgrade_prints_the_sql(service: str, tmp_path: Path) -> None:
    done = _flask(service, tmp_path / "unused.db", "upgrade", "--sql")
    assert done.returncode == 0, done.stderr
    assert "CREATE TABLE" in done.stdout and "alembic_version" in done.stdout
    assert not (tmp_path / "unused.db").exists() or (tmp_path / "unused.db").stat().st_size == 0


def test_autogenerate_on_an_up_to_date_schema_writes_no_revision(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(ROOT / "services" / "cart" / "migrations", folder,
                    ignore=shutil.ignore_patterns("__pycache__"))
    db_file = tmp_path / "cart.db"
    assert _flask("cart", db_file, "upgrade", "-d", str(folder)).returncode == 0
    before = sorted(p.name for p in (folder / "versions").iterdir())
    done = _flask("cart", db_file, "migrate", "-d", str(folder), "-m", "nothing")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (folder / "versions").iterdir()) == before
    assert "No changes in schema detected" in done.stdout + done.stderr
