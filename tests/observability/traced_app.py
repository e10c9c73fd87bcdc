"""A two-service shop in miniature for the tracing tests, run as real processes.

`python -m tests.observability.traced_app --service back --port P` serves `GET /stock`
(a SQL query through Flask-SQLAlchemy, the propagation headers it received, a log line).
`--service front --downstream URL` serves `GET /buy`, which calls back through the resilient
client the way the gateway does: forwarding the caller's headers, `Traceparent` included.
Under gunicorn: `gunicorn -c python:tests.observability.gunicorn_conf
'tests.observability.traced_app:create_app()'` with `TRACED_APP_SERVICE` set.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from typing import Any

from flask import Flask, jsonify, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import text

from observability.resilience import TracingListener
from observability.tracing import current_trace_id, init_tracing
from services.common.client import ResilientClient
from services.common.logs import configure_logging

log = logging.getLogger("traced_app")


def create_app(service: str | None = None, downstream: str | None = None,
               database: str | None = None) -> Flask:
    """The app of one of the two services."""
    service = service or os.environ.get("TRACED_APP_SERVICE", "back")
    instance = f"{service}-1"
    configure_logging(service, instance)
    app = Flask(service)
    db = SQLAlchemy()
    app.config["SQLALCHEMY_DATABASE_URI"] = database or "sqlite://"
    db.init_app(app)
    with app.app_context():
        db.session.execute(text("CREATE TABLE IF NOT EXISTS stock (sku TEXT, qty INTEGER)"))
        db.session.execute(text("INSERT INTO stock VALUES ('kettle', 3)"))
        db.session.commit()

    client = ResilientClient(listeners=[TracingListener()])
    if downstream:
        client.add_upstream("back", [downstream])

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify(status="ok", pid=os.getpid())

    @app.get("/stock")
    def stock() -> Any:
        qty = db.session.execute(text("SELECT qty FROM stock WHERE sku = 'kettle'")).scalar()
        log.info("stock looked up")
        return jsonify(qty=qty, trace_id=current_trace_id(), pid=os.getpid(),
                       traceparents=request.headers.getlist("traceparent"))

    @app.get("/buy")
    def buy() -> Any:
        forwarded = {k: v for k, v in request.headers.items() if k.lower() == "traceparent"}
        answer = client.request("back", "GET", "/stock", headers=forwarded)
        return jsonify(back=answer.json(), trace_id=current_trace_id())

    @app.get("/late-engine")
    def late_engine() -> Any:
        # An engine made after init_tracing: traced by the create_engine patch, and asking
        # again explicitly must not trace its statements twice.
        from sqlalchemy import create_engine

        from observability.tracing import instrument_sqlalchemy

        engine = create_engine("sqlite://")
        instrument_sqlalchemy(engine)
        with engine.connect() as connection:
            value = connection.execute(text("SELECT 42")).scalar()
        engine.dispose()
        return jsonify(value=value, trace_id=current_trace_id())

    @app.get("/tracer")
    def tracer() -> Any:
        from opentelemetry import trace

        return jsonify(provider=type(trace.get_tracer_provider()).__name__)

    init_tracing(service, app, instance_id=instance, version="9.9.9", environment="test")
    return app


def main(argv: list[str] | None = None) -> int:
    """Serve one service on a threaded development server until SIGTERM."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--service", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--downstream")
    args = parser.parse_args(argv)
    from werkzeug.serving import make_server

    app = create_app(args.service, args.downstream)
    server = make_server("127.0.0.1", args.port, app, threaded=True)
    # SIGTERM ends the process normally, so the tracer provider flushes at exit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
