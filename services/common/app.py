"""The application-factory helper every service builds on.

`build_app` gives a Flask app with: settings in `app.config["SETTINGS"]`, JSON errors for
everything, a request size limit (413), a media-type check (415), the service's database with
its own migrations, token verification, OpenAPI 3 from the marshmallow schemas at
`/openapi.json`, `/healthz`, `/readyz`, `/metrics`, bounds on hostile input
(`services.common.request_limits`), and the caller's deadline
(`X-Breakwater-Deadline-Ms`, see `services.common.deadline`) as the request's deadline.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import marshmallow as ma
from flask import Flask, Response, current_app, g, jsonify, request
from flask_smorest import Api, Blueprint
from flask_sqlalchemy import SQLAlchemy
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from observability.tracing import init_tracing
from services.common.config import ServiceSettings
from services.common.db import database_reachable, engine_options, prepare_sqlite_path
from services.common.deadline import DEADLINE_HEADER, enter, leave, parse_budget, spent
from services.common.errors import ApiError, register_error_handlers
from services.common.logs import configure_logging
from services.common.request_limits import install_request_limits, prepare_url_map
from services.common.tokens import EXTENSION_KEY, TokenVerifier

JSON_TYPES = ("application/json",)
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
METRICS_REGISTRY_KEY = "breakwater.metrics_registry"

log = logging.getLogger(__name__)



MIGRATIONS_KEY = "breakwater.migrations"


def register_migrations(app: Flask) -> None:
    """Flask-Migrate for `app` (what `flask db ...` and `upgrade()` use), once.

    A served worker never needs it: Flask-Migrate imports Alembic and Mako (about 12 MB per
    process), so `build_app` registers it only under the flask CLI (whose `db` commands it
    adds) or when Flask-Migrate is already imported, and `upgrade_database` when a service
    migrates itself.
    """
    if "migrate" in app.extensions:
        return
    from flask_migrate import Migrate

    db, directory = app.extensions[MIGRATIONS_KEY]
    Migrate(app, db, directory=str(directory), render_as_batch=True)


def upgrade_database(app: Flask) -> None:
    """Run the service's migrations up to head (`*_AUTO_MIGRATE`), then drop the pooled
    connections, so that none outlives the migration into a forked gunicorn worker."""
    from flask_migrate import upgrade

    register_migrations(app)
    db, directory = app.extensions[MIGRATIONS_KEY]
    with app.app_context():
        upgrade(directory=str(directory))
        db.engine.dispose()

def accepts(*media_types: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare the request media types a view takes (JSON only when undeclared)."""

    def mark(view: Callable[..., Any]) -> Callable[..., Any]:
        view._breakwater_accepts = media_types  # type: ignore[attr-defined]
        return view

    return mark


def _check_media_type() -> None:
    has_body = bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "")
    if request.method not in BODY_METHODS or not has_body:
        return
    view = current_app.view_functions.get(request.endpoint or "")
    allowed = getattr(view, "_breakwater_accepts", JSON_TYPES)
    if request.mimetype not in allowed:
        raise ApiError(
            f"content type {request.mimetype or '(none)'!r} is not accepted here; "
            f"send one of: {', '.join(allowed)}",
            code="unsupported_media_type",
            status=415,
        )


def _enter_deadline() -> None:
    """Serve the request under the budget its caller sent; 504 at once when none is left."""
    deadline = parse_budget(request.headers.get(DEADLINE_HEADER))
    if deadline is None:
        return
    if deadline.expired:
        raise spent(deadline)
    g._breakwater_deadline = enter(deadline)


def _leave_deadline(_error: BaseException | None) -> None:
    token = g.pop("_breakwater_deadline", None)
    if token is not None:
        leave(token)


class ErrorBodySchema(ma.Schema):
    """The inside of every error answer."""

    code = ma.fields.String(required=True, metadata={"description": "stable, machine-readable"})
    message = ma.fields.String(required=True, metadata={"description": "what went wrong, what to do"})
    details = ma.fields.Dict(metadata={"description": "fields, service, reason …"})


class ErrorSchema(ma.Schema):
    """`{"error": {"code", "message", "details"}}`, the shape of every error answer."""

    error = ma.fields.Nested(ErrorBodySchema, required=True)


class ServiceApi(Api):
    """flask-smorest's Api, documenting errors in the shape the services really send."""

    ERROR_SCHEMA = ErrorSchema


class _Metrics:
    """Request count and latency by route, in this app's own Prometheus registry."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "breakwater_http_requests", "HTTP requests served", ["service", "route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "breakwater_http_request_seconds", "Time to serve a request", ["service", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.service = service

    def install(self, app: Flask) -> None:
        @app.before_request
        def _start_timer() -> None:
            g._breakwater_started = time.perf_counter()

        @app.after_request
        def _observe(response: Response) -> Response:
            started = g.pop("_breakwater_started", None)
            route = request.url_rule.rule if request.url_rule else "unmatched"
            if started is not None and route not in PROBE_PATHS:
                self.latency.labels(self.service, route).observe(time.perf_counter() - started)
                self.requests.labels(self.service, route, request.method, response.status_code).inc()
            return response


def build_app(
    settings: ServiceSettings,
    db: SQLAlchemy,
    blueprints: Iterable[Blueprint],
    *,
    migrations_dir: Path,
    api_title: str,
    readiness: Callable[[], dict[str, tuple[bool, str]]] | None = None,
) -> Flask:
    """A service's Flask app, wired with the shared kit; the service adds only its domain."""
    configure_logging(settings.service_name, settings.instance_id, settings.log_level)
    app = Flask(settings.service_name)
    prepare_url_map(app)
    prepare_sqlite_path(settings.database_url)
    app.config.update(
        SETTINGS=settings,
        TESTING=settings.testing,
        MAX_CONTENT_LENGTH=settings.max_content_length,
        MAX_FORM_MEMORY_SIZE=settings.max_content_length,
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        SQLALCHEMY_ENGINE_OPTIONS=engine_options(settings.database_url),
        API_TITLE=api_title,
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "components": {
                "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
            }
        },
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    db.init_app(app)
    app.extensions[MIGRATIONS_KEY] = (db, migrations_dir)
    if os.environ.get("FLASK_RUN_FROM_CLI") == "true" or "flask_migrate" in sys.modules:
        register_migrations(app)  # `flask db ...`, or a caller that migrates itself
    app.extensions[EXTENSION_KEY] = TokenVerifier(
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        public_pem=settings.token_public_key,
        public_key_file=settings.token_public_key_file,
        jwks_file=settings.token_jwks_file,
        jwks_url=settings.token_jwks_endpoint,
    )
    api = ServiceApi(app)
    for blueprint in blueprints:
        api.register_blueprint(blueprint)
    register_error_handlers(app)  # after Api(), whose own HTTP error handler this replaces
    metrics = _Metrics(settings.service_name)
    metrics.install(app)
    app.extensions[METRICS_REGISTRY_KEY] = metrics.registry  # a service adds its own metrics here
    # Every ResilientClient call made while serving the request stops at its deadline.
    app.before_request(_enter_deadline)
    app.teardown_request(_leave_deadline)
    app.before_request(_check_media_type)
    install_request_limits(app)

    init_tracing(settings.service_name, app, instance_id=settings.instance_id,
                 environment=settings.environment)

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok", service=settings.service_name, instance=settings.instance_id)

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        checks = {"database": database_reachable(db)}
        if readiness is not None:
            checks.update(readiness())
        ready = all(ok for ok, _ in checks.values())
        body = {name: {"ok": ok, "detail": detail} for name, (ok, detail) in checks.items()}
        return jsonify(status="ready" if ready else "not_ready", checks=body), 200 if ready else 503

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), mimetype=CONTENT_TYPE_LATEST)

    return app
