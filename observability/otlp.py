"""OTLP span exporters for the three protocols of `OTEL_EXPORTER_OTLP_PROTOCOL`.

- `http/protobuf` (the default): OpenTelemetry's own OTLP/HTTP exporter.
- `http/json`: `OtlpJsonSpanExporter`, the same export request in OTLP's JSON encoding (hex
  ids, enums as numbers; the encoder the span files use), POSTed as `application/json`.
- `grpc`: OpenTelemetry's OTLP/gRPC exporter, from the optional `grpc` extra
  (`pip install 'breakwater[grpc]'`); without it, `otlp_exporter_factory` says so at start-up.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Mapping, Sequence

import requests
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.util.re import parse_env_headers
from urllib3.util.retry import Retry

from observability.exporters import encode_spans_text
from observability.settings import (
    PROTOCOL_GRPC,
    PROTOCOL_JSON,
    TracingConfigError,
    TracingSettings,
)

log = logging.getLogger("breakwater.tracing")

GRPC_MODULE = "opentelemetry.exporter.otlp.proto.grpc.trace_exporter"
RETRY_STATUSES = (429, 502, 503, 504)


class OtlpJsonSpanExporter(SpanExporter):
    """OTLP/HTTP with the JSON encoding; retries what the OTLP spec calls retryable."""

    def __init__(self, endpoint: str, *, headers: Mapping[str, str] | None = None,
                 timeout: float = 10.0) -> None:
        self.endpoint, self.timeout = endpoint, timeout
        self.session = requests.Session()
        retry = Retry(total=3, backoff_factor=0.5, status_forcelist=RETRY_STATUSES,
                      allowed_methods=frozenset({"POST"}), raise_on_status=False)
        self.session.mount("http://", requests.adapters.HTTPAdapter(max_retries=retry))
        self.session.mount("https://", requests.adapters.HTTPAdapter(max_retries=retry))
        self.session.headers.update({**(headers or {}), "Content-Type": "application/json"})

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """POST one export request holding the batch."""
        if not spans:
            return SpanExportResult.SUCCESS
        body = encode_spans_text(spans).encode()
        try:
            response = self.session.post(self.endpoint, data=body, timeout=self.timeout)
        except requests.RequestException as exc:
            log.warning("OTLP/JSON export to %s failed: %s", self.endpoint, exc)
            return SpanExportResult.FAILURE
        if not response.ok:
            log.warning("OTLP/JSON export to %s answered %s", self.endpoint,
                        response.status_code)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Close the connection pool."""
        self.session.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is held: each batch is sent as it comes."""
        return True


def otlp_exporter_factory(settings: TracingSettings) -> Callable[[], SpanExporter]:
    """Makes the OTLP exporter of `settings.otlp_protocol` (called once in each process)."""
    endpoint = settings.otlp_traces_endpoint
    if settings.otlp_protocol == PROTOCOL_JSON:
        headers = parse_env_headers(settings.otlp_headers, liberal=True)
        return lambda: OtlpJsonSpanExporter(endpoint, headers=headers)
    if settings.otlp_protocol == PROTOCOL_GRPC:
        if importlib.util.find_spec(GRPC_MODULE.rsplit(".", 1)[0]) is None:
            raise TracingConfigError(
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs OpenTelemetry's gRPC exporter: "
                "pip install 'breakwater[grpc]' (opentelemetry-exporter-otlp-proto-grpc), "
                "or use http/protobuf")

        def grpc() -> SpanExporter:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            return OTLPSpanExporter(endpoint=endpoint, insecure=endpoint.startswith("http://"))
        return grpc

    def protobuf() -> SpanExporter:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=endpoint)
    return protobuf
