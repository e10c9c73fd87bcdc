"""The fault schedule (with rollback) and the report written from fixture data."""

from __future__ import annotations

import json
from pathlib import Path

from chaos.experiments.measurements import Request
from chaos.experiments.model import FaultStep
from chaos.experiments.probes import ProbeSampler
from chaos.experiments.schedule import FaultSchedule, windows_from_events
from chaos.experiments.verdicts import PASS, Verdict
from observability.report import write_report
from observability.report.runs import find_run, list_runs, new_run_dir


class FakeFaults:
    """Records what the schedule asks of the fault library."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def apply(self, service: str, kind: str, **params: object) -> list[str]:
        self.calls.append(("apply", service, kind, params))
        return [service]

    def undo(self, service: str, kind: str, stream: str = "downstream") -> None:
        self.calls.append(("undo", service, kind))

    def clear_all(self) -> None:
        self.calls.append(("clear_all",))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_schedule_applies_and_undoes_in_time_order_and_always_rolls_back() -> None:
    faults, clock = FakeFaults(), Clock()
    steps = [FaultStep("cart", "latency", 0.0, 0.0 + 1e-9, {"ms": 300}),
             FaultStep("cart", "down", 0.0, None)]
    schedule = FaultSchedule(steps, faults, started=clock.now, clock=clock)
    schedule.run()
    assert [c[0] for c in faults.calls] == ["apply", "apply", "undo"]
    assert schedule.rollback() is None
    assert faults.calls[-1] == ("clear_all",)
    windows = schedule.windows()
    assert windows[1]["end"] == 0.0  # the open-ended fault was closed by the rollback


def test_a_failing_fault_is_recorded_and_rollback_still_runs() -> None:
    class Broken(FakeFaults):
        def apply(self, service: str, kind: str, **params: object) -> list[str]:
            raise RuntimeError("proxy unreachable")

    faults = Broken()
    schedule = FaultSchedule([FaultStep("cart", "down", 0.0, 1e-9)], faults, started=0.0,
                             clock=lambda: 5.0)
    schedule.run()
    assert "proxy unreachable" in schedule.records[0]["error"]
    schedule.rollback()
    assert faults.calls[-1] == ("clear_all",)


def test_fault_windows_from_proxy_events() -> None:
    events = [
        {"time": 110.0, "event": "proxy_disabled", "proxy": "cart"},
        {"time": 120.0, "event": "proxy_enabled", "proxy": "cart"},
        {"time": 130.0, "event": "toxic_added", "proxy": "cart",
         "toxic": {"name": "latency_downstream", "type": "latency"}},
        {"time": 135.0, "event": "proxy_reset", "proxy": "cart"},
    ]
    assert windows_from_events(events, started=100.0) == [
        {"target": "cart", "kind": "down", "start": 10.0, "end": 20.0},
        {"target": "cart", "kind": "latency", "start": 30.0, "end": 35.0}]


def test_probe_failures_are_samples_not_crashes() -> None:
    from chaos.experiments.model import Probe

    sampler = ProbeSampler([Probe("gateway_upstreams", 0.1)], "http://127.0.0.1:9")
    sample = sampler.sample_once(Probe("gateway_upstreams", 0.1))
    assert sample["ok"] is False and "error" in sample


def fixture_requests() -> list[Request]:
    rows = []
    for tenth in range(200):
        t = tenth / 10
        down = 8 <= t < 14
        rows.append(Request(t, "GET", "/api/v1/products/[id]", "catalog", 200, 4 + tenth % 7,
                            "ok", "", f"{tenth:032x}"))
        rows.append(Request(t, "GET", "/api/v1/cart", "cart", 503 if down else 200,
                            2 if down else 6, "failure" if down else "ok",
                            "cart_unavailable" if down else "", f"{tenth + 1000:032x}"))
    return rows


def test_report_from_fixture_data(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("BREAKWATER_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.delenv("JAEGER_URL", raising=False)
    monkeypatch.delenv("BREAKWATER_JAEGER_URL", raising=False)
    run_dir = new_run_dir("cart-outage")
    verdict = Verdict("breaker opens", "breaker_opens_within", PASS, 0.8, 2.0, "opened 0.80 s")
    samples = [{"t": t / 5, "probe": "gateway_upstreams", "body": {"upstreams": {"cart": {
        "instances": [{"breaker": "open" if 9 <= t / 5 < 17 else "closed"}]}}}}
        for t in range(100)]
    summary = {"experiment": "cart-outage", "resilience": True, "mode": "closed-loop",
               "verdicts": [verdict.as_dict()], "hypothesis_holds": True,
               "groups": {"fault": {"cart": {"requests": 60, "failures": 60, "expected": 0,
                                             "error_rate": 1.0, "rps": 10.0, "p50_ms": 2,
                                             "p95_ms": 2, "p99_ms": 2}}}}
    html = write_report(run_dir, summary, requests=fixture_requests(), samples=samples,
                        faults=[{"target": "cart", "kind": "down", "start": 8.0, "end": 14.0}])
    for name in ("latency.png", "throughput.png", "errors.png", "breakers.png"):
        assert (run_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    written = json.loads((run_dir / "summary.json").read_text())
    assert written["verdicts"][0]["status"] == "PASS"
    assert written["verdicts"][0]["measured"] == 0.8
    assert len(written["traces"]["failed"]) == 10
    assert written["traces"]["slowest"][0]["ms"] == 10
    page = html.read_text()
    assert "hypothesis: PASS" in page and "latency.png" in page and "breakers.png" in page
    runs = list_runs()
    assert runs[0]["verdict"] == "PASS" and runs[0]["name"] == "cart-outage"
    assert find_run("cart-outage") == run_dir


def test_report_links_traces_to_jaeger_when_configured(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("JAEGER_URL", "http://127.0.0.1:16686")
    run_dir = tmp_path / "run"
    write_report(run_dir, {"experiment": "x"}, requests=fixture_requests())
    written = json.loads((run_dir / "summary.json").read_text())
    assert written["traces"]["failed"][0]["link"].startswith("http://127.0.0.1:16686/trace/")
