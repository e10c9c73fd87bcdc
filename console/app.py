"""The console's Flask app: the page, its live stream, a trace's waterfall and fault controls."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from flask import Flask, Response, jsonify, render_template, request, stream_with_context
from prometheus_client import CONTENT_TYPE_LATEST

from chaos.client import ToxiproxyClient
from chaos.faults import Faults
from console.controls import FaultControls, FaultRequestError, parse_fault_request, parse_target
from console.exporter import fault_metrics, render
from console.guard import TOKEN_HEADER, PageTokens, host_allowed, same_origin
from console.hub import Hub, TooManyListeners
from console.settings import ConsoleSettings
from console.sources.traces import waterfall
from console.watch import Watch
from observability.spans import AmbiguousTraceId, TraceNotFound
from services.common.errors import ApiError, register_error_handlers

KEEP_ALIVE_SECONDS = 15.0
TRACE_ID = re.compile(r"[0-9a-fA-F]{4,32}")
SECURITY_HEADERS = {
    # Everything the page uses is served from here: scripts, styles, the chart library.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
                               "form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def create_app(settings: ConsoleSettings | None = None, *, controls: FaultControls | None = None,
               watch: Watch | None = None, tokens: PageTokens | None = None) -> Flask:
    """The console as a Flask app; the parts can be handed in by tests."""
    settings = settings or ConsoleSettings.from_env()
    controls = controls or FaultControls(Faults(settings.toxiproxy_url or None))
    watch = watch or Watch(settings, controls)
    hub = Hub(watch.read, settings.poll_seconds, settings.max_streams)
    tokens = tokens or PageTokens()
    allowed_hosts = settings.host_names()
    registry = fault_metrics(ToxiproxyClient(settings.toxiproxy_url or None, timeout=2.0))

    app = Flask("console")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["console"] = {"hub": hub, "watch": watch, "controls": controls,
                                 "settings": settings}
    register_error_handlers(app)

    @app.before_request
    def _guard() -> None:
        if not host_allowed(request.host, allowed_hosts):
            raise ApiError(f"this console answers only as {', '.join(sorted(allowed_hosts))}",
                           code="forbidden_host", status=403)
        if request.method == "POST":
            if not same_origin(request.headers, request.scheme, request.host):
                raise ApiError("cross-site request refused: send it from the console's page",
                               code="cross_site_request", status=403)
            if not tokens.valid(request.headers.get(TOKEN_HEADER)):
                raise ApiError("missing or stale page token: reload the console",
                               code="bad_page_token", status=403)
            if not request.is_json:
                raise ApiError("send JSON (Content-Type: application/json)",
                               code="unsupported_media_type", status=415)

    @app.after_request
    def _headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.errorhandler(FaultRequestError)
    def _fault_error(exc: FaultRequestError) -> Response:
        body = {"error": {"code": exc.code, "message": str(exc), "details": {}}}
        return Response(json.dumps(body), exc.status, mimetype="application/json")

    @app.get("/")
    def page() -> str:
        return render_template("console.html", token=tokens.issue(), sources=watch.describe(),
                               jaeger_url=settings.jaeger_link or settings.jaeger_url,
                               interval=settings.poll_seconds)

    @app.get("/stream")
    def stream() -> Response:
        try:
            listener = hub.subscribe()
        except TooManyListeners as exc:
            raise ApiError(f"{exc}: close another console tab", code="too_many_streams",
                           status=503, retry_after=5) from None

        def events() -> Iterator[str]:
            try:
                yield "retry: 2000\n\n"
                yield _event("history", {"traffic": watch.traffic.history()})
                while True:
                    update = listener.next(KEEP_ALIVE_SECONDS)
                    yield _event("update", update) if update is not None else ": alive\n\n"
            finally:
                hub.unsubscribe(listener)

        return Response(stream_with_context(events()), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @app.get("/api/traces/<trace_id>")
    def trace(trace_id: str) -> Response:
        if not TRACE_ID.fullmatch(trace_id):
            raise ApiError("a trace id is 4 to 32 hexadecimal digits", code="invalid_trace_id",
                           status=400)
        try:
            return jsonify(waterfall(watch.traces.trace(trace_id.lower())))
        except TraceNotFound as exc:
            raise ApiError(str(exc.args[0]), code="trace_not_found", status=404) from None
        except AmbiguousTraceId as exc:
            raise ApiError(str(exc.args[0]), code="ambiguous_trace_id", status=400) from None
        except OSError as exc:
            raise ApiError(f"cannot read traces: {exc}", code="traces_unavailable",
                           status=502) from None

    @app.post("/api/faults")
    def add_fault() -> tuple[Response, int]:
        done = controls.add(parse_fault_request(_body()))
        return jsonify(done), 201

    @app.post("/api/faults/clear")
    def clear_fault() -> Response:
        return jsonify({"proxies": controls.clear(parse_target(_body()))})

    @app.post("/api/faults/reset")
    def reset_faults() -> Response:
        controls.reset()
        return jsonify({"reset": True})

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        return Response(render(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok", service="console")

    @app.get("/readyz")
    def readyz() -> Response:
        return jsonify(status="ready", listening=hub.listening, polling=hub.polling)

    return app


def _body() -> Any:
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError("the body is not valid JSON", code="bad_request", status=400)
    return body


def _event(name: str, data: Any) -> str:
    """One server-sent event (JSON has no raw newlines, so one `data:` line)."""
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
