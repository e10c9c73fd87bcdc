"""Long-running processes import only what they serve with (the stack's RSS target is 600 MB).

Each check starts a fresh interpreter, builds what the process builds, and lists the heavy
packages it loaded: a worker that never runs a migration must not carry Alembic and Mako, a
process without a database must not carry SQLAlchemy, and the parents that only supervise
(Granian's main process, gunicorn's master of the console, the stack's keeper) must not load
the apps their workers serve.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WATCHED = ("alembic", "mako", "flask_migrate", "requests", "sqlalchemy", "flask", "jinja2",
           "redis", "opentelemetry.instrumentation.flask", "opentelemetry.instrumentation.sqlalchemy",
           "opentelemetry.instrumentation.urllib3")


def loaded_after(code: str, tmp_path: Path, **env: str) -> set[str]:
    """The WATCHED packages a fresh interpreter holds after running `code`."""
    script = textwrap.dedent(code) + textwrap.dedent(f"""
        import json, sys
        print("LOADED=" + json.dumps(sorted(m for m in {WATCHED!r} if m in sys.modules)))
    """)
    environment = {**os.environ, "BREAKWATER_VAR_DIR": str(tmp_path / "var"),
                   "OTEL_TRACES_EXPORTER": "file", "OTEL_TRACES_DIR": str(tmp_path / "traces"),
                   **env}
    environment.pop("FLASK_RUN_FROM_CLI", None)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(text for text in done.stdout.splitlines() if text.startswith("LOADED="))
    return set(json.loads(line.removeprefix("LOADED=")))


@pytest.mark.parametrize("service", ["auth", "product", "cart", "order"])
def test_a_served_worker_carries_no_migration_tool(service, tmp_path):
    loaded = loaded_after(f"""
        from services.{service} import create_app
        create_app({{"database_url": "sqlite:///{tmp_path}/db.sqlite"}})
    """, tmp_path)
    assert not loaded & {"alembic", "mako", "flask_migrate"}, loaded
    assert "requests" not in loaded, loaded  # no JWKS endpoint, no OTLP exporter configured
    # pybreaker's optional Redis storage is never used; the login limiter's is not configured.
    assert "redis" not in loaded, loaded
    # Spans are Breakwater's own (observability.server_spans, .statements); the urllib3
    # instrumentation waits for requests, which such a worker never imports.
    assert not {m for m in loaded if m.startswith("opentelemetry.instrumentation")}, loaded


def test_the_gateway_worker_loads_no_database_library(tmp_path):
    loaded = loaded_after("""
        from gateway.front import create_front
        create_front()
    """, tmp_path, GATEWAY_UPSTREAM_PRODUCT="http://127.0.0.1:9", GATEWAY_ADMIN_PORT="0")
    assert "sqlalchemy" not in loaded, loaded
    assert "redis" not in loaded, loaded  # pybreaker's Redis storage: 5 MB never used
    assert "opentelemetry.instrumentation.urllib3" not in loaded, loaded
    assert "flask" in loaded  # the check itself sees what a worker loads


@pytest.mark.parametrize("entry", ["gateway.__main__", "console.__main__", "local_stack.__main__"])
def test_supervising_parents_do_not_load_their_workers_apps(entry, tmp_path):
    loaded = loaded_after(f"import {entry}", tmp_path)
    assert not loaded & {"flask", "sqlalchemy", "requests", "jinja2"}, loaded


def test_the_flask_cli_still_has_the_db_commands(tmp_path):
    environment = {**os.environ, "BREAKWATER_VAR_DIR": str(tmp_path / "var"),
                   "OTEL_TRACES_EXPORTER": "none",
                   "PRODUCT_DATABASE_URL": f"sqlite:///{tmp_path}/product.db"}
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "services.product", "db",
                           "upgrade"], cwd=ROOT, env=environment, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "product.db").stat().st_size > 0


def test_a_service_that_migrates_itself_still_migrates(tmp_path):
    loaded = loaded_after(f"""
        from services.cart import create_app
        from services.cart.models import db
        import sqlalchemy
        app = create_app({{"database_url": "sqlite:///{tmp_path}/cart.db", "auto_migrate": True}})
        with app.app_context():
            assert "alembic_version" in sqlalchemy.inspect(db.engine).get_table_names()
    """, tmp_path)
    assert "flask_migrate" in loaded


def test_requests_calls_are_traced_once_requests_is_imported(tmp_path):
    loaded = loaded_after("""
        from observability.tracing import init_tracing
        init_tracing("auth")
        import sys
        assert "opentelemetry.instrumentation.urllib3" not in sys.modules
        import requests
        from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor
        assert URLLib3Instrumentor().is_instrumented_by_opentelemetry
    """, tmp_path)
    assert {"requests", "opentelemetry.instrumentation.urllib3"} <= loaded

