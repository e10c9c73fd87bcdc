"""`breakwater traces list|show|export` on span files and against a Jaeger query API."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from breakwater.cli import main
from observability.spans import SpanFiles, parse_jaeger, to_jaeger_json
from tests.observability.shop_traces import write_shop_traces


def run(*argv: str) -> int:
    return main(list(argv))


@pytest.fixture
def shop(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    folder = tmp_path / "traces"
    return folder, write_shop_traces(folder)


def test_list_shows_one_line_a_trace(shop, capsys) -> None:
    folder, ids = shop

    assert run("traces", "list", "--dir", str(folder)) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["TRACE", "ID", "ROOT", "SERVICES", "SPANS", "DURATION", "STATUS",
                                "START"]
    assert lines[1].split()[:8] == [ids["checkout"], "gateway:", "POST", "/api/v1/orders",
                                    "gateway,order", "3", "120.0", "ms"]
    assert "ERROR" in lines[1] and lines[2].split()[0] == ids["browse"]


@pytest.mark.parametrize(("options", "expected"), [
    (["--errors"], ["checkout"]), (["--service", "product"], ["browse"]),
    (["--slowest", "1"], ["checkout"]), (["--limit", "1"], ["checkout"]),
])
def test_list_filters(shop, capsys, options: list[str], expected: list[str]) -> None:
    folder, ids = shop

    run("traces", "list", "--dir", str(folder), *options)

    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]]
    assert listed == [ids[name] for name in expected]


def test_show_draws_a_waterfall_with_events(shop, capsys) -> None:
    folder, ids = shop

    assert run("traces", "show", ids["checkout"][:8], "--dir", str(folder), "--width", "20") == 0

    out = capsys.readouterr().out
    assert f"trace {ids['checkout']}  3 spans  2 services  120.0 ms  ERROR" in out
    lines = out.splitlines()[3:]
    assert lines[0].split() == ["POST", "/api/v1/orders", "gateway-1", "120.0", "ms",
                                "|████████████████████|"]
    assert lines[1].startswith("  POST /orders") and lines[1].endswith("|  ERROR")
    assert lines[2] == ("    • +100.0 ms breakwater.breaker.state upstream=cart "
                        "breaker.from=closed breaker.to=open")
    assert lines[3].startswith("    GET /cart") and "order-1" in lines[3]
    assert lines[3].endswith("ERROR cart_unavailable")


def test_show_explains_a_missing_trace(shop, capsys) -> None:
    folder, _ = shop

    assert run("traces", "show", "abcdef", "--dir", str(folder)) == 2
    err = capsys.readouterr().err
    assert err.startswith("breakwater traces show: error: no trace id starts with 'abcdef'")
    assert "`breakwater traces list` shows the traces there are" in err


def test_export_writes_jaeger_ui_json(shop, tmp_path: Path) -> None:
    folder, ids = shop
    target = tmp_path / "checkout.json"

    assert run("traces", "export", ids["checkout"][:6], "--dir", str(folder), "-o", str(target)) == 0

    document = json.loads(target.read_text())
    assert list(document["data"][0]) == ["traceID", "spans", "processes", "warnings"]
    (exported,) = parse_jaeger(document)
    assert exported.trace_id == ids["checkout"] and len(exported.spans) == 3


class FakeJaeger(ThreadingHTTPServer):
    """Jaeger's query API over a fixed set of traces."""

    def __init__(self, traces) -> None:
        super().__init__(("127.0.0.1", 0), _JaegerHandler)
        self.traces = {t.trace_id: t for t in traces}
        self.queries: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _JaegerHandler(BaseHTTPRequestHandler):
    server: FakeJaeger

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        self.server.queries.append(self.path)
        traces = self.server.traces
        status, body = 200, None
        if url.path == "/api/services":
            body = {"data": sorted({s for t in traces.values() for s in t.services} | {"jaeger-all-in-one"})}
        elif url.path == "/api/traces":
            found = [t for t in traces.values() if query["service"][0] in t.services]
            body = to_jaeger_json(found[: int(query["limit"][0])])
        elif url.path.startswith("/api/traces/"):
            found = traces.get(url.path.rsplit("/", 1)[1])
            status, body = (200, to_jaeger_json([found])) if found else (
                404, {"data": None, "errors": [{"code": 404, "msg": "trace not found"}]})
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def jaeger(shop) -> Iterator[FakeJaeger]:
    server = FakeJaeger(SpanFiles(shop[0]).traces())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_list_from_jaeger_asks_every_service(shop, jaeger: FakeJaeger, capsys) -> None:
    _, ids = shop

    assert run("traces", "list", "--jaeger", jaeger.url) == 0

    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]]
    assert listed == [ids["checkout"], ids["browse"]]
    assert not any("jaeger-all-in-one" in q for q in jaeger.queries)


def test_list_from_jaeger_for_one_service(shop, jaeger: FakeJaeger, capsys) -> None:
    _, ids = shop

    run("traces", "list", "--jaeger", jaeger.url, "--service", "order")

    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]] == [ids["checkout"]]
    assert jaeger.queries == ["/api/traces?service=order&limit=20"]


def test_show_from_jaeger_by_id_and_by_prefix(shop, jaeger: FakeJaeger, capsys) -> None:
    _, ids = shop

    assert run("traces", "show", ids["browse"], "--jaeger", jaeger.url) == 0
    assert jaeger.queries == [f"/api/traces/{ids['browse']}"]
    assert run("traces", "show", ids["checkout"][:7], "--jaeger", jaeger.url) == 0

    out = capsys.readouterr().out
    assert f"trace {ids['browse']}  3 spans" in out and f"trace {ids['checkout']}  3 spans" in out
    assert "product-1" in out


def test_a_missing_trace_in_jaeger(jaeger: FakeJaeger, capsys) -> None:
    assert run("traces", "show", "0" * 32, "--jaeger", jaeger.url) == 2
    assert "breakwater traces show: error: Jaeger has no trace" in capsys.readouterr().err


def test_an_unreachable_jaeger_is_reported(capsys) -> None:
    from tests.support.processes import free_port

    assert run("traces", "list", "--jaeger", f"http://127.0.0.1:{free_port()}") == 2
    err = capsys.readouterr().err
    assert err.startswith("breakwater traces list: error: ") and "Connection refused" in err
    assert len(err.strip().splitlines()) == 1
