"""Deadlines: every call has a total budget, services honour the caller's and shrink it downstream."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from flask import Flask
from flask_smorest import Blueprint

from services.common.app import build_app
from services.common.client import ResilientClient, UpstreamPolicy, UpstreamTimedOut
from services.common.config import ServiceSettings
from services.common.db import make_db
from services.common.deadline import (
    DEADLINE_HEADER,
    Deadline,
    current_deadline,
    deadline_scope,
    parse_budget,
)
from services.common.errors import BadRequest
from tests.services.common.scripted import ScriptedUpstream, elapsed, scripted_upstreams

# Each test runs with the client on the calling thread and on an event loop (conftest).
pytestmark = pytest.mark.usefixtures("both_drivers")


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def sent_header(echoed: dict, name: str) -> str:
    """A header the echoing upstream received (names are case-insensitive on the wire)."""
    return {key.lower(): value for key, value in echoed["headers"].items()}[name.lower()]


def test_the_budget_sent_downstream_keeps_a_margin_to_answer_back() -> None:
    clock = FakeClock()
    deadline = Deadline.after(8.0, clock)
    assert deadline.header_value() == "7750"  # 8 s less the 0.25 s cap
    clock.now += 7.9
    assert deadline.header_value() == "90"  # 0.1 s less the 0.01 s floor
    clock.now += 1
    assert deadline.expired and deadline.remaining() == 0 and deadline.header_value() == "0"


@pytest.mark.parametrize("value", ["soon", "-5", "1.5", "", "9" * 12])
def test_a_malformed_budget_header_is_a_clear_400(value: str) -> None:
    with pytest.raises(BadRequest) as error:
        parse_budget(value)
    assert error.value.code == "bad_deadline"


def test_a_received_budget_is_capped_and_scopes_nest_to_the_earliest() -> None:
    clock = FakeClock()
    assert parse_budget("999999999", clock).remaining() == 300.0
    assert parse_budget(None) is None
    outer, inner = Deadline.after(1.0), Deadline.after(5.0)
    with deadline_scope(outer):
        with deadline_scope(inner) as effective:
            assert effective is outer
        assert current_deadline() is outer
    assert current_deadline() is None


@dataclasses.dataclass(frozen=True)
class DemoSettings(ServiceSettings):
    prefix: ClassVar[str] = "DEMO"
    service_name: ClassVar[str] = "demo"


@pytest.fixture
def downstream() -> Iterator[ScriptedUpstream]:
    with scripted_upstreams(1) as (server,):
        yield server


@pytest.fixture
def client(downstream: ScriptedUpstream) -> Iterator[ResilientClient]:
    client = ResilientClient()
    # A long read timeout of its own: only the caller's deadline can end a held call early.
    client.add_upstream("product", [downstream.url], UpstreamPolicy(read_timeout=10, failure_threshold=2))
    yield client
    client.close()


@pytest.fixture
def app(tmp_path: Path, key_files, client: ResilientClient) -> Flask:
    blueprint = Blueprint("calls", __name__, url_prefix="/api/v1/calls")
    served: list[str] = []

    @blueprint.route("/<path:path>", methods=["GET"])
    def call(path: str) -> dict:
        served.append(path)
        response = client.request("product", "GET", f"/{path}")
        return {"downstream": response.json()}

    settings = DemoSettings.from_env({"database_url": f"sqlite:///{tmp_path / 'demo.db'}",
                                      "token_public_key_file": str(key_files[1])})
    app = build_app(settings, make_db(), [blueprint], migrations_dir=tmp_path / "migrations", api_title="Demo")
    app.config["SERVED"] = served
    return app


def test_a_request_whose_budget_is_spent_is_answered_504_at_once(app: Flask, downstream) -> None:
    response = app.test_client().get("/api/v1/calls/echo", headers={DEADLINE_HEADER: "0"})
    assert response.status_code == 504
    assert response.get_json()["error"]["code"] == "deadline_exceeded"
    assert app.config["SERVED"] == [] and downstream.count() == 0


def test_a_malformed_budget_is_refused_before_any_work(app: Flask, downstream) -> None:
    response = app.test_client().get("/api/v1/calls/echo", headers={DEADLINE_HEADER: "later"})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_deadline"
    assert downstream.count() == 0


def test_calls_made_while_serving_honour_and_shrink_the_callers_budget(app: Flask, downstream) -> None:
    response = app.test_client().get("/api/v1/calls/echo", headers={DEADLINE_HEADER: "2000"})
    assert response.status_code == 200
    sent = int(sent_header(response.get_json()["downstream"], DEADLINE_HEADER))
    assert 1000 < sent < 2000  # what was left, less the margin


def test_a_held_downstream_call_ends_at_the_callers_deadline(app: Flask, downstream, client) -> None:
    client_app = app.test_client()
    for _ in range(3):
        response, seconds = elapsed(lambda: client_app.get("/api/v1/calls/hold/never",
                                                           headers={DEADLINE_HEADER: "300"}))
        assert response.status_code == 504
        assert response.get_json()["error"]["code"] == "product_timeout"
        assert seconds < 2.0  # the caller's 0.3 s, not the client's own 10 s read timeout
    # Cut short by the caller, these timeouts say nothing about the replica.
    (replica,) = client.snapshot()["upstreams"]["product"]["instances"]
    assert replica["breaker"] == "closed" and replica["failures_in_a_row"] == 0


def test_a_call_outside_any_request_sends_its_own_budget(downstream, client) -> None:
    answer = client.request("product", "GET", "/echo", deadline=1.5)
    assert 1000 < int(sent_header(answer.json(), DEADLINE_HEADER)) <= 1500
    # Without one given: twice connect + read, room for the one retry.
    answer = client.request("product", "GET", "/echo", timeout=(0.5, 1.0))
    assert 2000 < int(sent_header(answer.json(), DEADLINE_HEADER)) <= 3000


def test_a_call_made_after_the_deadline_passed_is_not_sent(downstream, client) -> None:
    with deadline_scope(Deadline.after(0.0)), pytest.raises(UpstreamTimedOut) as error:
        client.request("product", "GET", "/echo")
    assert error.value.reason == "deadline_exceeded" and error.value.uncertain is False
    assert downstream.count() == 0


def test_a_caller_budget_never_lengthens_a_calls_own(downstream, client) -> None:
    with deadline_scope(Deadline.after(30.0)):
        error, seconds = elapsed(lambda: client.request("product", "GET", "/hold/x", deadline=0.3))
    assert isinstance(error, UpstreamTimedOut) and error.uncertain
    assert seconds < 2.0


def test_a_call_refused_for_lack_of_time_is_marked_on_the_span(downstream, client) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from observability.resilience import DEADLINE_EXCEEDED, TracingListener

    provider, exporter = TracerProvider(), InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    client.events.listeners.append(TracingListener())
    with (provider.get_tracer("t").start_as_current_span("GET /x"), deadline_scope(Deadline.after(0.0)),
          pytest.raises(UpstreamTimedOut)):
        client.request("product", "GET", "/echo")
    (span,) = exporter.get_finished_spans()
    assert [e.name for e in span.events] == [DEADLINE_EXCEEDED]
    assert span.events[0].attributes["breakwater.reason"] == "deadline_exceeded"
