"""OpenTelemetry set up once per process: resource, exporter, instrumentations, trace headers.

`init_tracing("product", app, instance_id="product-2")` at the end of the app factory is all a
service needs. Under gunicorn it is safe to call before or after the fork: the batch processor,
its thread and its exporter are made in each process on its first finished span (see
`PerProcessSpanProcessor`), and `post_fork`/`worker_exit` hooks start and flush them eagerly.
`OTEL_TRACES_EXPORTER=none` leaves OpenTelemetry's no-op API in place and instruments nothing.
"""

from __future__ import annotations

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
from opentelemetry.trace import format_span_id, format_trace_id

from observability.exporters import PerProcessSpanProcessor, SpanFileExporter
from observability.http_client import (
    INSTANCE_ATTRIBUTE,
    PROBE_PATHS,
    drop_trace_context,
    span_name,
    use_tracer_provider,
)
from observability.sampling import choose_sampler
from observability.settings import (
    EXPORTER_CONSOLE,
    EXPORTER_FILE,
    EXPORTER_OTLP,
    TracingSettings,
)

log = logging.getLogger("breakwater.tracing")

# Probe paths as URL patterns (for the HTTP client's exclusions: a path, then a query or the end).
PROBE_URL_PATTERNS = tuple(rf"://[^/]+{re.escape(path)}(\?|$)" for path in sorted(PROBE_PATHS))
TRACE_ID_HEADER = "X-Trace-Id"


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

    Probe paths get no span. Instrumenting the same app twice does nothing. A request the
    sampler will not sample skips the Flask instrumentation altogether (`Presampler`).
    """
    from flask import Flask
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    if not isinstance(app, Flask):
        raise TypeError(f"{type(app).__name__} is not a Flask app; wrap it with traced_wsgi()")
    if getattr(app, "_is_instrumented_by_opentelemetry", False):
        return app
    excluded = ",".join(rf"{re.escape(path)}(\?|$)" for path in excluded_paths)
    FlaskInstrumentor.instrument_app(app, tracer_provider=tracer_provider, excluded_urls=excluded,
                                     enable_commenter=False)
    # The span must exist before the app's own before_request checks can refuse a request
    # (415, 401...), or refused requests would have no span and no trace id.
    funcs = app.before_request_funcs.setdefault(None, [])
    funcs.remove(app._before_request)
    funcs.insert(0, app._before_request)
    app.after_request(_add_trace_headers_to_response)
    _skip_unsampled_requests(app, tracer_provider, excluded_paths)
    extension = app.extensions.get("sqlalchemy")
    if extension is not None:
        with app.app_context():
            for engine in extension.engines.values():
                instrument_sqlalchemy(engine, tracer_provider=tracer_provider)
    return app


def _skip_unsampled_requests(app: Any, tracer_provider: TracerProvider | None,
                             excluded_paths: Iterable[str]) -> None:
    """Put the sampling decision in front of the Flask instrumentation: an unsampled request
    runs the app as it was before instrumenting (`app._original_wsgi_app`, kept by the
    instrumentation), and the instrumentation's request hooks step aside for it."""
    from observability.presampling import Presampled, Presampler

    provider = tracer_provider or trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        return
    app.wsgi_app = Presampled(app.wsgi_app, app._original_wsgi_app, Presampler(provider),
                               excluded_paths)
    for funcs, hook in ((app.before_request_funcs[None], app._before_request),
                        (app.teardown_request_funcs[None], app._teardown_request)):
        funcs[funcs.index(hook)] = _unless_unsampled(hook)


def _unless_unsampled(hook: Callable[..., Any]) -> Callable[..., Any]:
    from flask import request

    from observability.presampling import UNSAMPLED_ENVIRON_KEY

    def run(*args: Any) -> Any:
        if request.environ.get(UNSAMPLED_ENVIRON_KEY):
            return None
        return hook(*args)

    return run


def _add_trace_headers_to_response(response: Any) -> Any:
    for name, value in response_trace_headers().items():
        response.headers[name] = value
    return response


def response_trace_headers() -> dict[str, str]:
    """`X-Trace-Id` and `traceparent` for the current span, or nothing when there is none."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    trace_id = format_trace_id(context.trace_id)
    return {TRACE_ID_HEADER: trace_id,
            "traceparent": f"00-{trace_id}-{format_span_id(context.span_id)}-"
                           f"{int(context.trace_flags):02x}"}


def trace_id_headers() -> dict[str, str]:
    """`{"X-Trace-Id": <32 hex>}` for the current span, `{}` when nothing is traced."""
    trace_id = current_trace_id()
    return {TRACE_ID_HEADER: trace_id} if trace_id else {}


def current_trace_id() -> str | None:
    """The current trace id as 32 hex digits, or None."""
    context = trace.get_current_span().get_span_context()
    return format_trace_id(context.trace_id) if context.is_valid else None


class TracedWSGI:
    """A raw WSGI app (the gateway) traced by the official WSGI instrumentation, behind a
    `Presampler`; other attributes pass through to the wrapped app."""

    def __init__(self, app: Callable[..., Any], *, tracer_provider: TracerProvider | None = None,
                 excluded_paths: Iterable[str] = PROBE_PATHS) -> None:
        from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

        from observability.presampling import Presampled, Presampler

        self.wrapped = app
        self.excluded_paths = frozenset(excluded_paths)
        self._middleware = OpenTelemetryMiddleware(self._with_trace_headers,
                                                   request_hook=_name_wsgi_span,
                                                   tracer_provider=tracer_provider)
        provider = tracer_provider or trace.get_tracer_provider()
        self._entry: Callable[..., Any] = self._middleware
        if isinstance(provider, TracerProvider):
            self._entry = Presampled(self._middleware, self._with_trace_headers,
                                      Presampler(provider), self.excluded_paths)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") in self.excluded_paths:
            return self.wrapped(environ, start_response)
        return self._entry(environ, start_response)

    def _with_trace_headers(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        ours = response_trace_headers()
        if not ours:
            return self.wrapped(environ, start_response)
        names = {name.lower() for name in ours}

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            # An upstream's own trace headers would otherwise reach the client twice.
            kept = [(k, v) for k, v in headers if k.lower() not in names]
            return start_response(status, kept + list(ours.items()), exc_info)

        return self.wrapped(environ, start)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


def traced_wsgi(app: Callable[..., Any], *,
                excluded_paths: Iterable[str] = (*PROBE_PATHS, "/gateway/upstreams")) -> Any:
    """`app` wrapped in a `TracedWSGI` when tracing is on, `app` itself otherwise."""
    state = _state
    if state is None or not state.enabled:
        return app
    return TracedWSGI(app, tracer_provider=state.provider, excluded_paths=excluded_paths)


def _name_wsgi_span(span: trace.Span, environ: dict[str, Any]) -> None:
    if span.is_recording():
        span.update_name(span_name(environ.get("REQUEST_METHOD", "GET"),
                                   environ.get("PATH_INFO") or "/"))


# --- clients and databases -----------------------------------------------------------------

def instrument_http_clients(tracer_provider: TracerProvider | None = None,
                            excluded_urls: str = "") -> None:
    """Client spans for every HTTP call, with exactly one set of propagation headers: the
    resilient client's (`observability.http_client`) and any other urllib3 user's (requests).

    Calls to a probe path (`/healthz`, `/readyz`, `/metrics`) and to `excluded_urls` (regular
    expressions, comma-separated) get none, as probes get no server span.
    """
    from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor

    use_tracer_provider(tracer_provider or trace.get_tracer_provider())
    instrumentor = URLLib3Instrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        excluded = ",".join([*PROBE_URL_PATTERNS, *([excluded_urls] if excluded_urls else [])])
        instrumentor.instrument(tracer_provider=tracer_provider, request_hook=_urllib3_request_hook,
                                excluded_urls=excluded)


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
    """Trace every SQLAlchemy engine created from now on."""
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    instrumentor = SQLAlchemyInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        # 0.66b1 declares "sqlalchemy < 2.1" and would refuse 2.1.x, whose engine events it
        # handles unchanged (checked by tests/observability); hence no dependency check.
        instrumentor.instrument(tracer_provider=tracer_provider, enable_commenter=False,
                                skip_dep_check=True)
        drop_connect_spans()


def drop_connect_spans() -> None:
    """No `connect` span per checkout: the instrumentation wraps `Engine.connect` to make one
    around every pool checkout (a third span per read that says nothing the statement spans do
    not). Its statement spans and connection-usage metrics are engine events, kept as they are.
    """
    from opentelemetry.instrumentation.utils import unwrap
    from sqlalchemy.engine.base import Engine

    unwrap(Engine, "connect")


def instrument_sqlalchemy(engine: Any, *, tracer_provider: TracerProvider | None = None) -> None:
    """Trace one existing engine's statements (a no-op if it is traced already)."""
    from opentelemetry import metrics
    from opentelemetry.instrumentation.sqlalchemy import __version__
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

    sync_engine = getattr(engine, "sync_engine", engine)
    registered = getattr(EngineTracer, "_remove_event_listener_params", [])
    if any(ref() is sync_engine for ref, *_ in registered):
        return
    name = "opentelemetry.instrumentation.sqlalchemy"
    tracer = trace.get_tracer(name, __version__, tracer_provider)
    usage = metrics.get_meter(name, __version__).create_up_down_counter(
        "db.client.connections.usage", unit="connections")
    EngineTracer(tracer, sync_engine, usage)


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
