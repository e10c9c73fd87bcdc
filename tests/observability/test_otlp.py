"""Spans reach an OTLP/HTTP receiver (as Jaeger's on 4318) when an endpoint is set."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.observability.conftest import tracing_env
from tests.support.processes import wait_until

pytestmark = pytest.mark.integration


class OtlpReceiver(ThreadingHTTPServer):
    """Accepts `POST /v1/traces` (protobuf) and keeps every decoded request."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[ExportTraceServiceRequest] = []
        self.paths: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def spans(self) -> list[tuple[str, str, str]]:
        """(service.name, span name, trace id hex) of every span received."""
        out = []
        for request in list(self.requests):
            for resource_spans in request.resource_spans:
                attributes = {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}
                for scope in resource_spans.scope_spans:
                    out.extend((attributes["service.name"], span.name, span.trace_id.hex())
                               for span in scope.spans)
        return out


class _Handler(BaseHTTPRequestHandler):
    server: OtlpReceiver

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.paths.append(self.path)
        if self.path == "/v1/traces" and self.headers["Content-Type"] == "application/x-protobuf":
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            self.server.requests.append(request)
        payload = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_spans_are_sent_over_otlp_http(start_service, receiver: OtlpReceiver, tmp_path: Path) -> None:
    env = tracing_env(tmp_path / "var", OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url)
    back = start_service("back", env)
    front = start_service("front", env, downstream=back.url)

    trace_id = requests.get(f"{front.url}/buy", timeout=10).headers["X-Trace-Id"]

    def arrived() -> bool:
        names = {(service, name) for service, name, tid in receiver.spans() if tid == trace_id}
        return {("front", "GET /buy"), ("front", "GET /stock"), ("back", "GET /stock")} <= names

    wait_until(arrived, timeout=10, message="spans at the OTLP receiver")
    assert set(receiver.paths) == {"/v1/traces"}
    # The exporter's own POSTs are never traced, and no span file is written.
    assert not any(name == "POST /v1/traces" for _, name, _ in receiver.spans())
    assert not (tmp_path / "var" / "traces").exists()


def test_the_traces_endpoint_variable_wins(start_service, receiver: OtlpReceiver,
                                           tmp_path: Path) -> None:
    env = tracing_env(tmp_path / "var", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{receiver.url}/custom",
                      OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")
    back = start_service("back", env)

    requests.get(f"{back.url}/stock", timeout=5)

    wait_until(lambda: "/custom" in receiver.paths, timeout=10, message="POST /custom")
