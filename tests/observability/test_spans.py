"""Reading traces back: span files and Jaeger JSON into one model, and out again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from observability.spans import (
    AmbiguousTraceId,
    SpanFiles,
    Trace,
    TraceNotFound,
    find_by_prefix,
    parse_jaeger,
    parse_otlp_json,
    select_traces,
    to_jaeger_json,
)
from tests.observability.shop_traces import write_shop_traces


@pytest.fixture
def shop(tmp_path: Path) -> tuple[SpanFiles, dict[str, str]]:
    ids = write_shop_traces(tmp_path / "traces")
    return SpanFiles(tmp_path / "traces"), ids


def test_span_files_become_traces_with_their_tree(shop) -> None:
    files, ids = shop

    checkout = files.trace(ids["checkout"])

    assert checkout.services == ["gateway", "order"]
    assert checkout.root.name == "POST /api/v1/orders"
    assert checkout.duration_ms == 120 and checkout.has_error
    assert [(depth, span.name) for depth, span in checkout.walk()] == [
        (0, "POST /api/v1/orders"), (1, "POST /orders"), (2, "GET /cart")]
    assert checkout.spans[0].instance.endswith("-1")


def test_selection_filters_and_orders(shop) -> None:
    files, ids = shop
    traces = files.traces()

    assert [t.trace_id for t in select_traces(traces)] == [ids["checkout"], ids["browse"]]
    assert [t.trace_id for t in select_traces(traces, errors=True)] == [ids["checkout"]]
    assert [t.trace_id for t in select_traces(traces, service="product")] == [ids["browse"]]
    assert [t.trace_id for t in select_traces(traces, slowest=1)] == [ids["checkout"]]
    assert len(select_traces(traces, limit=1)) == 1


def test_a_prefix_finds_one_trace_or_says_why_not(shop) -> None:
    files, ids = shop
    traces = files.traces()

    assert find_by_prefix(traces, ids["browse"][:10].upper()).trace_id == ids["browse"]
    with pytest.raises(TraceNotFound):
        find_by_prefix(traces, "zz")
    with pytest.raises(AmbiguousTraceId):
        find_by_prefix(traces, "")


def test_jaeger_json_round_trips(shop) -> None:
    files, ids = shop
    original = files.trace(ids["checkout"])

    exported = to_jaeger_json([original])
    (back,) = parse_jaeger(json.loads(json.dumps(exported)))

    assert exported["data"][0]["traceID"] == ids["checkout"]
    assert {p["serviceName"] for p in exported["data"][0]["processes"].values()} == {"gateway", "order"}

    def shape(item: Trace) -> list:
        return sorted((s.span_id, s.parent_id, s.service, s.name, s.kind, s.status,
                       s.start_ns // 1000, s.duration_ns // 1000,
                       [(e.name, e.attributes) for e in s.events]) for s in item.spans)

    assert shape(back) == shape(original)


def test_otlp_json_with_base64_ids_and_enum_names_is_read_too() -> None:
    document = {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "cart"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": "S/kvNXezTaajzpKdDg5HNg==", "spanId": "APBnqgupArc=", "name": "GET /cart",
            "kind": "SPAN_KIND_SERVER", "startTimeUnixNano": "5", "endTimeUnixNano": "9",
            "status": {"code": "STATUS_CODE_ERROR"}}]}]}]}

    (span,) = parse_otlp_json(document)

    assert span.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert span.span_id == "00f067aa0ba902b7"
    assert (span.kind, span.status, span.duration_ns, span.service) == ("server", "error", 4, "cart")


def test_a_line_cut_short_is_skipped(shop, tmp_path: Path) -> None:
    files, ids = shop
    with open(files.files()[0], "a") as out:
        out.write('{"resourceSpans": [{"resou')

    assert {t.trace_id for t in files.traces()} == set(ids.values())
