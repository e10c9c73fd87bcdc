"""Tracing in real processes: one trace across two services, span files, the fork, `none`."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from opentelemetry.instrumentation.utils import suppress_http_instrumentation

from observability.spans import SpanFiles
from tests.observability.conftest import tracing_env, wait_for_trace
from tests.support.processes import ROOT, free_port, wait_until

pytestmark = pytest.mark.integration
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


@pytest.fixture(autouse=True)
def untraced_test_client() -> Iterator[None]:
    """This test's own requests carry no span: an in-process gateway test may have traced this
    process's urllib3, and its client spans would become the services' parents."""
    with suppress_http_instrumentation():
        yield


def test_one_trace_spans_both_services(start_service, tmp_path: Path) -> None:
    env = tracing_env(tmp_path / "var")
    back = start_service("back", env)
    front = start_service("front", env, downstream=back.url)

    response = requests.get(f"{front.url}/buy", timeout=10)

    assert response.status_code == 200
    trace_id = response.headers["X-Trace-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id)
    assert response.headers["traceparent"].split("-")[1] == trace_id
    found = wait_for_trace(tmp_path / "var" / "traces", trace_id, spans=4)
    by_name = {(s.service, s.name): s for s in found.spans}
    server_a = by_name["front", "GET /buy"]
    client = by_name["front", "GET /stock"]
    server_b = by_name["back", "GET /stock"]
    query = next(s for s in found.spans if s.attributes.get("db.statement", "").startswith("SELECT qty"))
    assert server_a.parent_id is None and server_a.kind == "server"
    assert (client.parent_id, client.kind) == (server_a.span_id, "client")
    assert (server_b.parent_id, server_b.kind) == (client.span_id, "server")
    assert query.parent_id == server_b.span_id and query.service == "back"
    # The pool checkout makes no `connect` span; the statement's span is the only SQL one.
    assert [s.name for s in found.spans if s.service == "back" and s.kind == "client"] == [query.name]
    assert client.attributes["breakwater.instance"] == back.url
    assert server_b.resource["service.instance.id"] == "back-1"
    assert server_b.resource["service.version"] == "9.9.9"
    assert server_b.resource["deployment.environment.name"] == "test"
    assert "deployment.environment" not in server_b.resource  # the deprecated key
    # Exactly one traceparent reached back, carrying the client span.
    [received] = response.json()["back"]["traceparents"]
    assert received.startswith(f"00-{trace_id}-{client.span_id}-")
    files = sorted(p.name for p in (tmp_path / "var" / "traces").glob("*.jsonl"))
    assert [re.sub(r"-\d+\.jsonl$", "", name) for name in files] == ["back-1", "front-1"]
    # The service's JSON log line carries the trace id.
    assert re.search(rf'"message": "stock looked up", "trace_id": "{trace_id}"',
                     back.log_path.read_text())


def test_a_forwarded_traceparent_is_continued_and_sent_once(start_service, tmp_path: Path) -> None:
    env = tracing_env(tmp_path / "var")
    back = start_service("back", env)
    front = start_service("front", env, downstream=back.url)

    # front forwards the caller's `Traceparent` like the gateway does, and the resilient client
    # injects its own: back must still receive a single header, from front's client span.
    response = requests.get(f"{front.url}/buy", timeout=10,
                            headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"})

    assert response.headers["X-Trace-Id"] == CALLER_TRACE
    found = wait_for_trace(tmp_path / "var" / "traces", CALLER_TRACE, spans=4)
    client = next(s for s in found.spans if s.kind == "client" and s.service == "front")
    assert response.json()["back"]["traceparents"] == [f"00-{CALLER_TRACE}-{client.span_id}-01"]
    assert found.root.parent_id == CALLER_SPAN


def test_engines_made_after_init_are_traced_once(start_service, tmp_path: Path) -> None:
    back = start_service("back", tracing_env(tmp_path / "var"))

    trace_id = requests.get(f"{back.url}/late-engine", timeout=10).json()["trace_id"]

    found = wait_for_trace(tmp_path / "var" / "traces", trace_id, spans=2)
    statements = [s for s in found.spans if s.attributes.get("db.statement") == "SELECT 42"]
    assert len(statements) == 1


def test_probes_get_no_span(start_service, tmp_path: Path) -> None:
    back = start_service("back", tracing_env(tmp_path / "var"))

    assert "X-Trace-Id" not in requests.get(f"{back.url}/healthz", timeout=5).headers
    trace_id = requests.get(f"{back.url}/stock", timeout=5).headers["X-Trace-Id"]
    wait_for_trace(tmp_path / "var" / "traces", trace_id, spans=2)
    names = {s.name for t in SpanFiles(tmp_path / "var" / "traces").traces() for s in t.spans}
    assert "GET /healthz" not in names


def test_traces_exporter_none_records_nothing(start_service, tmp_path: Path) -> None:
    back = start_service("back", tracing_env(tmp_path / "var", OTEL_TRACES_EXPORTER="none"))

    response = requests.get(f"{back.url}/stock", timeout=5)
    provider = requests.get(f"{back.url}/tracer", timeout=5).json()["provider"]
    back.stop()  # a normal exit: anything buffered would be written now

    assert response.status_code == 200 and response.json()["trace_id"] is None
    assert "X-Trace-Id" not in response.headers and "traceparent" not in response.headers
    assert provider == "ProxyTracerProvider"  # the API's no-op: no SDK cost per request
    assert not (tmp_path / "var" / "traces").exists()


def test_gunicorn_workers_forked_after_init_export_their_own_spans(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, **tracing_env(tmp_path / "var", TRACED_APP_SERVICE="back")}
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 - closed below
    master = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:tests.observability.gunicorn_conf",
         "-b", f"127.0.0.1:{port}", "tests.observability.traced_app:create_app()"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: requests.get(f"{url}/healthz", timeout=1).ok, timeout=20,
                   message="gunicorn serving")
        answers = [requests.get(f"{url}/stock", timeout=5).json() for _ in range(6)]
        worker_pids = {a["pid"] for a in answers}
        assert master.pid not in worker_pids
        for answer in answers:
            wait_for_trace(tmp_path / "var" / "traces", answer["trace_id"], spans=2)
        files = {p.name for p in (tmp_path / "var" / "traces").glob("*.jsonl")}
        assert files == {f"back-1-{pid}.jsonl" for pid in worker_pids}
    finally:
        os.killpg(master.pid, signal.SIGTERM)
        try:
            master.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(master.pid, signal.SIGKILL)
            master.wait(timeout=5)
        log.close()
