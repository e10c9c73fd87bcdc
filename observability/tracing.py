"""OpenTelemetry set up once per process: resource, exporter, instrumentations, trace headers.

`init_tracing("product", app, instance_id="product-2")` at the end of the app factory is all a
service needs. Under gunicorn it is safe to call before or after the fork: the batch processor,
its thread and its exporter are made in each process on its first finished span (see
`PerProcessSpanProcessor`), and `post_fork`/`worker_exit` hooks start and flush them eagerly.
`OTEL_TRACES_EXPORTER=none` leaves OpenTelemetry's no-op API in place and instruments nothing.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import Sampler
from opentelemetry.trace import Status, StatusCode, format_span_id, format_trace_id

from observability.exporters import PerProcessSpanProcessor, SpanFileExporter
from observability.http_client import (
    INSTANCE_ATTRIBUTE,
    PROBE_PATHS,
    drop_trace_context,
    span_name,
    use_tracer_provider,
)
from observability.sampling import choose_sampler
from observability.server_spans import TRACE_ID_HEADER, ServerSpans
from observability.settings import (
    EXPORTER_CONSOLE,
    EXPORTER_FILE,
    EXPORTER_OTLP,
    TracingSettings,
)
from observability.statements import trace_engine, trace_statements

log = logging.getLogger("breakwater.tracing")

# Probe paths as URL patterns (for the HTTP client's exclusions: a path, then a query or the end).
PROBE_URL_PATTERNS = tuple(rf"://[^/]+{re.escape(path)}(\?|$)" for path in sorted(PROBE_PATHS))


@dataclass(frozen=True)
class TracingState:
    """What `init_tracing` set up in this process (`provider` is None when disabled)."""

    service_name: str
    instance_id: str
    settings: TracingSettings
    provider: TracerProvider | None
    processor: PerProcessSpanProcessor | None = None

    @property
    def enabled(self) -> bool:
        """Whether this process records spans."""
        return self.provider is not None


_lock = threading.Lock()
_state: TracingState | None = None


def init_tracing(service_name: str, app: Any = None, *, instance_id: str | None = None,
                 version: str | None = None, environment: str | None = None,
                 exporter: SpanExporter | None = None,
                 settings: TracingSettings | None = None,
                 sampler: Sampler | None = None) -> TracingState:
    """Set tracing up for this process (once) and instrument the Flask `app` if given.

    Later calls return the first call's state and only instrument their `app`. `exporter`
    replaces the one the environment chooses (tests pass an in-memory exporter), `sampler` the
    one `build_provider` would choose.
    """
    global _state
    with _lock:
        if _state is None:
            _state = _configure(service_name, instance_id or service_name, version, environment,
                                exporter, settings or TracingSettings.from_env(), sampler)
        elif _state.service_name != service_name:
            log.warning("tracing already set up for %s; %s shares it", _state.service_name,
                        service_name)
        state = _state
    if app is not None and state.enabled:
        instrument_app(app, tracer_provider=state.provider)
    return state


def current_state() -> TracingState | None:
    """The state `init_tracing` set up in this process, if it ran."""
    return _state


def _configure(service_name: str, instance_id: str, version: str | None,
               environment: str | None, exporter: SpanExporter | None,
               settings: TracingSettings, sampler: Sampler | None = None) -> TracingState:
    if not settings.enabled and exporter is None:
        log.info("tracing disabled (OTEL_TRACES_EXPORTER=none)")
        return TracingState(service_name, instance_id, settings, None)
    provider, processor = build_provider(service_name, instance_id=instance_id, version=version,
                                         environment=environment, exporter=exporter,
                                         settings=settings, sampler=sampler)
    trace.set_tracer_provider(provider)
    instrument_http_clients(provider, excluded_urls=re.escape(settings.otlp_traces_endpoint)
                            if settings.exporter == EXPORTER_OTLP else "")
    if "sqlalchemy" in sys.modules:  # a process without a database (the gateway) skips ~15 MB
        instrument_sqlalchemy_engines(provider)
    install_log_correlation()
    log.info("tracing %s as %s (%s)", service_name, instance_id,
             "custom exporter" if exporter else settings.exporter)
    return TracingState(service_name, instance_id, settings, provider, processor)


def build_provider(service_name: str, *, instance_id: str | None = None,
                   version: str | None = None, environment: str | None = None,
                   exporter: SpanExporter | None = None, settings: TracingSettings | None = None,
                   sampler: Sampler | None = None,
                   ) -> tuple[TracerProvider, PerProcessSpanProcessor]:
    """A tracer provider with Breakwater's resource and a per-process batch processor.

    The sampler is Breakwater's default (`observability.sampling`: every request but catalog
    reads, those at `settings.catalog_ratio`) unless `OTEL_TRACES_SAMPLER` is set, in which
    case the SDK reads it and `OTEL_TRACES_SAMPLER_ARG` itself; `sampler` replaces both.
    """
    from observability.presampling import ReservedTraceIds  # only where tracing is on

    settings = settings or TracingSettings.from_env()
    resource = build_resource(service_name, instance_id=instance_id, version=version,
                              environment=environment or settings.environment)
    provider = TracerProvider(resource=resource,
                              sampler=sampler or choose_sampler(settings.catalog_ratio),
                              id_generator=ReservedTraceIds())
    factory = (lambda: exporter) if exporter is not None else exporter_factory(
        settings, instance_id or service_name)
    delay = settings.schedule_delay_ms
    processor = PerProcessSpanProcessor(
        factory, lambda made: BatchSpanProcessor(made, schedule_delay_millis=delay))
    provider.add_span_processor(processor)
    return provider, processor


def build_resource(service_name: str, *, instance_id: str | None = None,
                   version: str | None = None, environment: str = "local") -> Resource:
    """The process's resource: Breakwater's defaults, under what `OTEL_SERVICE_NAME` and
    `OTEL_RESOURCE_ATTRIBUTES` say (the environment wins, as the specification asks)."""
    defaults = Resource.create({
        "service.name": service_name,
        "service.instance.id": instance_id or service_name,
        "service.version": version or _package_version(),
        "deployment.environment.name": environment,
    })
    return defaults.merge(OTELResourceDetector().detect())


def exporter_factory(settings: TracingSettings, instance_id: str) -> Callable[[], SpanExporter]:
    """Makes the exporter the settings choose (called once in each process that exports)."""
    if settings.exporter == EXPORTER_OTLP:
        from observability.otlp import otlp_exporter_factory  # requests: only when exporting

        return otlp_exporter_factory(settings)
    if settings.exporter == EXPORTER_CONSOLE:
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter
    if settings.exporter == EXPORTER_FILE:
        return lambda: SpanFileExporter(settings.traces_dir, instance_id,
                                        max_bytes=settings.file_max_bytes,
                                        backups=settings.file_backups)
    raise ValueError(f"no exporter for {settings.exporter!r}")


def _package_version() -> str:
    try:
        return metadata.version("breakwater")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


# --- servers -------------------------------------------------------------------------------

def instrument_app(app: Any, *, tracer_provider: TracerProvider | None = None,
                   excluded_paths: Iterable[str] = PROBE_PATHS) -> Any:
    """Trace a Flask app's requests (in place) and answer with `X-Trace-Id` and `traceparent`.

    A `ServerSpans` middleware around `app.wsgi_app` decides first and makes a lean span only
    for a sampled request, named after the route the request matches (a request the app's own
    checks refuse, 415 or 401, included); an exception the app turns into a 500 is recorded on
    it. Probe paths get no span. The app's database engines get statement spans.
    Instrumenting the same app twice does nothing; nothing runs per request beyond the
    middleware.
    """
    from flask import Flask, got_request_exception

    if not isinstance(app, Flask):
        raise TypeError(f"{type(app).__name__} is not a Flask app; wrap it with traced_wsgi()")
    if app.extensions.get(_FLASK_EXTENSION):
        return app
    provider = tracer_provider or trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        return app  # tracing is off: OpenTelemetry's no-op API
    app.wsgi_app = ServerSpans(app.wsgi_app, provider, excluded_paths=excluded_paths,
                               route=_route_of(app), end_when_closed=False)
    got_request_exception.connect(_record_exception, app, weak=False)
    app.extensions[_FLASK_EXTENSION] = True
    extension = app.extensions.get("sqlalchemy")
    if extension is not None:
        with app.app_context():
            for engine in extension.engines.values():
                instrument_sqlalchemy(engine, tracer_provider=provider)
    return app


_FLASK_EXTENSION = "breakwater.tracing"


def _route_of(app: Any) -> Callable[[dict[str, Any]], str | None]:
    """The route (`/api/v1/products/<id_or_slug>`) a request's environ matches, or None.
    Asked for sampled requests only (the app matches again as it dispatches). Routes that do
    not depend on the host (the shop's) are matched against one adapter, made on first use:
    every route is added by the time a request comes."""
    from werkzeug.exceptions import HTTPException

    by_host = app.url_map.host_matching or app.subdomain_matching
    adapter = None

    def route(environ: dict[str, Any]) -> str | None:
        nonlocal adapter
        if by_host:
            adapter = app.url_map.bind_to_environ(environ)
        elif adapter is None:
            adapter = app.url_map.bind("localhost")
        # WSGI hands the path over as latin-1; routes are matched on its UTF-8 reading.
        path = (environ.get("PATH_INFO") or "/").encode("latin-1", "replace").decode(
            "utf-8", "replace")
        try:
            rule, _ = adapter.match(path, environ.get("REQUEST_METHOD") or "GET",
                                    return_rule=True)
        except HTTPException:  # 404, 405, a redirect: no route
            return None
        return rule.rule

    return route


def _record_exception(sender: Any, exception: BaseException, **extra: Any) -> None:
    span = trace.get_current_span()
    if span.is_recording():
        span.record_exception(exception)
        span.set_status(Status(StatusCode.ERROR, f"{type(exception).__name__}: {exception}"))


def trace_id_headers() -> dict[str, str]:
    """`{"X-Trace-Id": <32 hex>}` for the current span, `{}` when nothing is traced."""
    trace_id = current_trace_id()
    return {TRACE_ID_HEADER: trace_id} if trace_id else {}


def current_trace_id() -> str | None:
    """The current trace id as 32 hex digits, or None."""
    context = trace.get_current_span().get_span_context()
    return format_trace_id(context.trace_id) if context.is_valid else None


class TracedWSGI(ServerSpans):
    """A raw WSGI app (the gateway) traced by `ServerSpans`, its spans named after the path
    with numeric ids folded (`GET /api/v1/orders/{id}`); other attributes pass through to the
    wrapped app."""

    def __init__(self, app: Callable[..., Any], *, tracer_provider: TracerProvider | None = None,
                 excluded_paths: Iterable[str] = PROBE_PATHS) -> None:
        provider = tracer_provider or trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            raise TypeError("TracedWSGI needs the SDK's TracerProvider (tracing is off?)")
        super().__init__(app, provider, excluded_paths=excluded_paths, name=span_name)


def traced_wsgi(app: Callable[..., Any], *,
                excluded_paths: Iterable[str] = (*PROBE_PATHS, "/gateway/upstreams")) -> Any:
    """`app` wrapped in a `TracedWSGI` when tracing is on, `app` itself otherwise."""
    state = _state
    if state is None or not state.enabled:
        return app
    return TracedWSGI(app, tracer_provider=state.provider, excluded_paths=excluded_paths)


# --- clients and databases -----------------------------------------------------------------

def instrument_http_clients(tracer_provider: TracerProvider | None = None,
                            excluded_urls: str = "") -> None:
    """Client spans for every HTTP call, with exactly one set of propagation headers: the
    resilient client's (`observability.http_client`) and any other urllib3 user's (requests).

    Calls to a probe path (`/healthz`, `/readyz`, `/metrics`) and to `excluded_urls` (regular
    expressions, comma-separated) get none, as probes get no server span. The urllib3
    instrumentation (1.7 MB with wrapt) is loaded when requests is, which most processes
    never import: the resilient client has its own transport.
    """
    provider = tracer_provider or trace.get_tracer_provider()
    use_tracer_provider(provider)
    excluded = ",".join([*PROBE_URL_PATTERNS, *([excluded_urls] if excluded_urls else [])])
    if "requests" in sys.modules:
        _instrument_urllib3(tracer_provider, excluded)
    elif not any(isinstance(f, _OnRequestsImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _OnRequestsImport(
            lambda: _instrument_urllib3(tracer_provider, excluded)))


def _instrument_urllib3(tracer_provider: TracerProvider | None, excluded: str) -> None:
    from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor

    instrumentor = URLLib3Instrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=tracer_provider, request_hook=_urllib3_request_hook,
                                excluded_urls=excluded)


class _OnRequestsImport:
    """An import finder that finds nothing: on the first `import requests` it runs `hook`
    (before requests' own code, which needs nothing of it) and steps out of the way."""

    def __init__(self, hook: Callable[[], None]) -> None:
        self.hook = hook

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        """Run the hook once `requests` is asked for; never find a module."""
        if name == "requests":
            with contextlib.suppress(ValueError):
                sys.meta_path.remove(self)
            self.hook()
        return None


def _urllib3_request_hook(span: trace.Span, pool: Any, request_info: Any) -> None:
    headers = request_info.headers
    # A caller may pass trace headers of its own: drop every spelling so the instrumentation's
    # inject (the client span's context, in lower case) is the only one sent.
    if isinstance(headers, dict):
        drop_trace_context(headers)
    if span.is_recording():
        port = f":{pool.port}" if pool.port else ""
        span.set_attribute(INSTANCE_ATTRIBUTE, f"{pool.scheme}://{pool.host}{port}")
        path = urlsplit(request_info.url).path or "/"
        span.update_name(span_name(request_info.method.upper(), path))


def instrument_sqlalchemy_engines(tracer_provider: TracerProvider | None = None) -> None:
    """Trace the statements of every SQLAlchemy engine, made now or later
    (`observability.statements`)."""
    trace_statements(tracer_provider or trace.get_tracer_provider())


def instrument_sqlalchemy(engine: Any, *, tracer_provider: TracerProvider | None = None) -> None:
    """Trace one engine's statements with `tracer_provider` (the process's by default)."""
    trace_engine(engine, tracer_provider or trace.get_tracer_provider())


# --- logs ----------------------------------------------------------------------------------

def install_log_correlation() -> None:
    """Give every log record `otelTraceID`/`otelSpanID` (what `services.common.logs` prints)."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "_breakwater_trace_ids", False):
        return

    def record_with_trace_ids(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.otelTraceID = format_trace_id(context.trace_id)
            record.otelSpanID = format_span_id(context.span_id)
            record.otelTraceSampled = context.trace_flags.sampled
        else:
            record.otelTraceID, record.otelSpanID, record.otelTraceSampled = "0", "0", False
        return record

    record_with_trace_ids._breakwater_trace_ids = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(record_with_trace_ids)


# --- process lifecycle (gunicorn hooks) ----------------------------------------------------

def post_fork(server: Any = None, worker: Any = None) -> None:
    """gunicorn `post_fork` hook: start this worker's exporter now, not on its first span."""
    state = _state
    if state is not None and state.processor is not None:
        state.processor.current()


def worker_exit(server: Any = None, worker: Any = None) -> None:
    """gunicorn `worker_exit` hook: export what the worker still holds."""
    shutdown_tracing()


def force_flush(timeout_millis: int = 5000) -> bool:
    """Export every span queued in this process now."""
    state = _state
    if state is None or state.provider is None:
        return True
    return state.provider.force_flush(timeout_millis)


def shutdown_tracing() -> None:
    """Flush and stop this process's exporter (also done at interpreter exit)."""
    state = _state
    if state is not None and state.processor is not None:
        state.processor.shutdown()
