"""OpenTelemetry's conventions: the environment wins over the code's resource, the OTLP
protocol variable is honoured (http/protobuf, http/json, grpc), the current name of the
deployment environment, prompt export in local mode, and incomplete traces said to be so."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import pytest
import requests
from google.protobuf import json_format
from opentelemetry.instrumentation.utils import suppress_http_instrumentation
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from breakwater.cli import main
from observability.settings import TracingConfigError, TracingSettings
from observability.spans import SpanFiles, parse_otlp_json
from observability.tracing import build_provider, build_resource
from tests.observability.conftest import tracing_env
from tests.observability.shop_traces import write_shop_traces
from tests.support.processes import wait_until

RESOURCE_VARIABLES = ("OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES")


@pytest.fixture
def clean_resource_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in RESOURCE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_code_gives_the_defaults_with_the_current_environment_key(clean_resource_env) -> None:
    attributes = build_resource("product", instance_id="product-2", version="1.2.3",
                                environment="local").attributes
    assert attributes["service.name"] == "product"
    assert attributes["service.instance.id"] == "product-2"
    assert attributes["service.version"] == "1.2.3"
    assert attributes["deployment.environment.name"] == "local"
    assert "deployment.environment" not in attributes


def test_otel_variables_win_over_the_codes_resource(clean_resource_env) -> None:
    clean_resource_env.setenv("OTEL_SERVICE_NAME", "catalog-eu")
    clean_resource_env.setenv("OTEL_RESOURCE_ATTRIBUTES",
                              "service.instance.id=pod-7,deployment.environment.name=staging,"
                              "team=shop,service.name=ignored-when-OTEL_SERVICE_NAME-is-set")
    attributes = build_resource("product", instance_id="product-2", version="1.2.3",
                                environment="local").attributes
    assert attributes["service.name"] == "catalog-eu"
    assert attributes["service.instance.id"] == "pod-7"
    assert attributes["deployment.environment.name"] == "staging"
    assert attributes["team"] == "shop"
    assert attributes["service.version"] == "1.2.3"  # what the environment does not say


@pytest.mark.parametrize(("variables", "protocol", "endpoint"), [
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, "http/protobuf", "http://c:4318/v1/traces"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
     "http/json", "http://c:4318/v1/traces"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
     "grpc", "http://c:4317"),
    ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
     "grpc", "http://localhost:4317"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
      "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}, "http/json", "http://c:4318/v1/traces"),
])
def test_the_protocol_variable_chooses_encoding_and_endpoint(variables: dict[str, str],
                                                              protocol: str, endpoint: str) -> None:
    settings = TracingSettings.from_env(variables)
    assert (settings.exporter, settings.otlp_protocol, settings.otlp_traces_endpoint) == (
        "otlp", protocol, endpoint)


def test_an_unknown_protocol_is_an_error_not_a_default() -> None:
    with pytest.raises(TracingConfigError, match="http/protobuf, http/json, grpc"):
        TracingSettings.from_env({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/xml"})


def test_local_mode_batches_briefly_unless_told_otherwise() -> None:
    assert TracingSettings.from_env({}).schedule_delay_ms == 200
    assert TracingSettings.from_env({"OTEL_BSP_SCHEDULE_DELAY": "3000"}).schedule_delay_ms is None
    assert TracingSettings.from_env({"BREAKWATER_ENVIRONMENT": "compose"}).schedule_delay_ms is None


class JsonReceiver(ThreadingHTTPServer):
    """Takes OTLP/HTTP JSON export requests on /v1/traces."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _JsonHandler)
        self.bodies: list[dict] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1/traces"


class _JsonHandler(BaseHTTPRequestHandler):
    server: JsonReceiver

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/v1/traces" and self.headers["Content-Type"] == "application/json":
            self.server.bodies.append(json.loads(body))
            self.send_response(200)
        else:
            self.send_response(415)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def json_receiver() -> Iterator[JsonReceiver]:
    server = JsonReceiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _as_protobuf_json(document: dict) -> dict:
    """OTLP/JSON writes ids in hex; the plain protobuf JSON mapping wants base64."""
    for resource_spans in document["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
    return document


def test_http_json_sends_otlp_json_export_requests(json_receiver: JsonReceiver,
                                                   clean_resource_env) -> None:
    settings = TracingSettings.from_env({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": json_receiver.url,
                                         "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})
    provider, _ = build_provider("cart", instance_id="cart-1", settings=settings)
    with provider.get_tracer("test").start_as_current_span("GET /cart") as span:
        span.set_attribute("http.response.status_code", 200)
    assert provider.force_flush(5000)
    provider.shutdown()

    [body] = json_receiver.bodies
    [read] = parse_otlp_json(body)
    assert (read.service, read.name, read.attributes["http.response.status_code"]) == (
        "cart", "GET /cart", 200)
    # Every other field is the protobuf message's own JSON mapping.
    request = json_format.ParseDict(_as_protobuf_json(body),
                                    trace_service_pb2.ExportTraceServiceRequest())
    assert request.resource_spans[0].scope_spans[0].spans[0].name == "GET /cart"


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []

    def Export(self, request, context):  # noqa: N802 - the generated service's naming
        self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()


def test_grpc_sends_to_an_otlp_grpc_receiver(clean_resource_env) -> None:
    service = _TraceService()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        settings = TracingSettings.from_env({
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
        provider, _ = build_provider("order", instance_id="order-1", settings=settings)
        with provider.get_tracer("test").start_as_current_span("POST /orders"):
            pass
        assert provider.force_flush(10000)
        provider.shutdown()
    finally:
        server.stop(grace=None)
    [request] = service.requests
    resource = {kv.key: kv.value.string_value
                for kv in request.resource_spans[0].resource.attributes}
    assert resource["service.name"] == "order"
    assert request.resource_spans[0].scope_spans[0].spans[0].name == "POST /orders"


@pytest.mark.integration
def test_local_mode_exports_a_request_within_moments(start_service, tmp_path: Path) -> None:
    """Both services' spans are in the files soon after the answer, with the SDK's 5 s batch
    delay no longer standing in the way (OTEL_BSP_SCHEDULE_DELAY left unset)."""
    env = tracing_env(tmp_path / "var", OTEL_BSP_SCHEDULE_DELAY="")
    back = start_service("back", env)
    front = start_service("front", env, downstream=back.url)
    with suppress_http_instrumentation():
        response = requests.get(f"{front.url}/buy", timeout=10)
    trace_id = response.headers["X-Trace-Id"]

    def whole() -> bool:
        found = [t for t in SpanFiles(tmp_path / "var" / "traces").traces()
                 if t.trace_id == trace_id]
        return bool(found) and found[0].complete and {"front", "back"} <= set(found[0].services)

    wait_until(whole, timeout=3.0, message="both services' spans in the span files")


def test_a_trace_whose_root_has_not_arrived_is_marked(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "traces"
    ids = write_shop_traces(folder)
    for path in folder.glob("gateway-1-*.jsonl"):
        path.unlink()  # the gateway's batch not exported yet

    assert main(["traces", "show", ids["checkout"], "--dir", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "INCOMPLETE: 1 span(s) name a parent span that is not here" in out
    assert "POST /orders (parent not here)" in out
    assert main(["traces", "list", "--dir", str(folder)]) == 0
    listed = capsys.readouterr().out
    assert "order: POST /orders (INCOMPLETE)" in listed
    assert "product: GET /products (INCOMPLETE)" in listed


def test_a_whole_trace_is_not_marked(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "traces"
    ids = write_shop_traces(folder)
    assert main(["traces", "show", ids["checkout"], "--dir", str(folder)]) == 0
    assert "INCOMPLETE" not in capsys.readouterr().out
