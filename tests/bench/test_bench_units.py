"""Pure logic of `python -m bench`: statistics, targets, parsing, tables. No timing, no processes."""

from __future__ import annotations

import json

import pytest

from bench import gateway, loadclient, report, wrk
from bench.__main__ import parse_only
from bench.integrity import figures as integrity_figures
from bench.isolation import equal_windows
from bench.isolation import figures as isolation_figures
from bench.scaling import order, repetitions
from bench.stats import (
    ERROR,
    FAIL,
    INFO,
    PASS,
    BenchResult,
    Target,
    median,
    paired_ratios,
    percentile,
    ratio,
    rounded,
    spread,
)


def test_percentile_is_nearest_rank_and_ignores_order() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(values, 50) == 3.0
    assert percentile(values, 99) == 5.0
    assert percentile(values, 1) == 1.0
    assert percentile([], 50) is None


def test_median_and_ratio_skip_missing_values() -> None:
    assert median([3.0, None, 1.0, 2.0]) == 2.0
    assert median([None, None]) is None
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(None, 2.0) is None and ratio(1.0, 0) is None
    assert paired_ratios([2.0, None, 9.0], [1.0, 1.0, 3.0]) == [2.0, None, 3.0]
    assert spread([2.0, None, 1.0, 3.0]) == {"min": 1.0, "median": 2.0, "max": 3.0}


def test_paired_ratios_need_one_reference_per_repetition() -> None:
    with pytest.raises(ValueError):
        paired_ratios([1.0, 2.0], [1.0])


def test_rounded_rounds_nested_floats_and_drops_non_finite() -> None:
    assert rounded({"a": [1.23456, {"b": 2.0000001}], "c": float("nan")}) == \
        {"a": [1.235, {"b": 2.0}], "c": None}


@pytest.mark.parametrize(("op", "threshold", "measured", "status"), [
    (">=", 0.6, 0.61, PASS), (">=", 0.6, 0.59, FAIL), ("<", 1.0, 1.0, FAIL),
    ("<=", 1.25, 1.25, PASS), ("±", 5.0, -4.9, PASS), ("±", 5.0, 5.1, FAIL),
    ("==", 1.0, 1.0, PASS), ("", None, 3.0, INFO), (">=", 0.9, None, ERROR),
])
def test_target_judgement(op: str, threshold: float | None, measured: float | None,
                          status: str) -> None:
    assert Target("b", "t", op, threshold).judge(measured).status == status


def test_target_texts() -> None:
    ratio_target = Target("b", "t", ">=", 0.6, unit="x").judge(0.7154)
    assert ratio_target.target_text == ">= 0.6x" and ratio_target.measured_text() == "0.715x"
    ms = Target("b", "t", "±", 5.0, unit="ms").judge(0.5)
    assert ms.target_text == "within ±5 ms" and ms.measured_text() == "0.500 ms"
    assert Target("b", "t", "", None).target_text == "(reported)"
    assert Target("b", "t", "<", 1.0, unit="ms").measured_text() == "—"


def test_bench_result_round_trips_through_json() -> None:
    result = BenchResult("proxy", "Proxy", [Target("proxy", "ratio", ">=", 0.9, unit="x",
                                                   load_generator="gen").judge(0.95, "ok")],
                         raw={"x": 1.23456}, load_generator="gen", notes=["n"],
                         measured_at="2026-01-01 10:00:00", mode="full")
    back = BenchResult.from_dict(json.loads(json.dumps(result.as_dict())))
    assert back.name == "proxy" and back.notes == ["n"] and back.raw == {"x": 1.235}
    assert back.targets[0].status == PASS and back.targets[0].threshold == 0.9
    assert back.targets[0].measured == 0.95


def test_render_table_has_one_row_per_target_in_documented_order() -> None:
    results = {
        "scaling": BenchResult("scaling", "Scaling", [
            Target("scaling", "3 replicas", ">=", 2.5, unit="x", load_generator="Locust (x)")
            .judge(2.2)], measured_at="2026-01-01 10:00:00"),
        "gateway": BenchResult("gateway", "Gateway", [
            Target("gateway", "ratio | piped", ">=", 0.6, unit="x").judge(0.7),
            Target("gateway", "p50", "<", 1.0, unit="ms").judge(2.0)],
            load_generator="bench.loadclient (asyncio)", measured_at="2026-01-01 09:00:00"),
        "isolation": BenchResult("isolation", "Isolation", status="skipped"),
    }
    rows = report.render_table(results)
    assert rows[0].startswith("| # | benchmark | target | measured | result |")
    body = rows[2:]
    assert len(body) == 4
    assert "ratio \\| piped" in body[0] and "PASS" in body[0] and "bench.loadclient |" in body[0]
    assert "**FAIL**" in body[1] and "2.000 ms" in body[1]
    assert "SKIPPED" in body[2]
    assert "Locust |" in body[3] and "2026-01-01 10:00" in body[3]


def test_markdown_names_machine_and_notes() -> None:
    results = {"proxy": BenchResult("proxy", "Proxy", [Target("proxy", "r", ">=", 0.9).judge(
        0.5, "why it failed")], notes=["a note"], pinning="pinned")}
    text = report.render_markdown(results, {"machine": {"cores": 2, "cpu_model": "CPU"},
                                            "finished_at": "2026-01-01", "mode": "full",
                                            "load_generators": ["gen"]})
    assert "2 cores (CPU)" in text and "a note" in text and "why it failed" in text
    assert "| 1 | r | >= 0.9 | 0.500 | **FAIL** |" in text


def test_parse_only() -> None:
    assert parse_only(None)[0] == "gateway"
    assert parse_only("scaling, proxy") == ["proxy", "scaling"]
    with pytest.raises(ValueError, match="unknown benchmark"):
        parse_only("gateway,nope")


def test_scaling_order_and_repetitions() -> None:
    assert order((1, 2, 3), 3) == [1, 2, 3, 3, 2, 1, 1, 2, 3]
    steps = [{"kind": "product", "replicas": n, "ok_rps": n * 10.0} for n in order((1, 2), 2)]
    reps = repetitions([*steps, {"kind": "open-loop", "replicas": 1}], 2)
    assert [sorted(r) for r in reps] == [[1, 2], [1, 2]]
    assert reps[1][2]["ok_rps"] == 20.0


def test_isolation_figures_from_a_summary() -> None:
    summary = {"groups": {"baseline": {"catalog": {"p99_ms": 10.0, "p50_ms": 4.0}},
                          "fault": {"catalog": {"p99_ms": 12.0, "p50_ms": 4.0}}},
               "verdicts": [{"name": "v", "status": "PASS", "measured": 1}]}
    got = isolation_figures(summary)
    assert got["p99_ratio"] == pytest.approx(1.2) and got["p50_ratio"] == 1.0
    assert got["verdicts"] == {"v": {"status": "PASS", "measured": 1, "detail": ""}}


def test_isolation_equal_windows_cut_both_to_the_same_length() -> None:
    from chaos.experiments.measurements import Request

    requests = [Request(t / 10, "GET", "n", "catalog", 200, float(t), "ok") for t in range(100)]
    requests.append(Request(5.0, "GET", "n", "cart", 200, 999.0, "ok"))
    cut = equal_windows(requests, {"baseline": (1.0, 3.0), "fault": (3.0, 6.0)})
    assert cut["seconds"] == [2.0]
    assert cut["baseline"] == [float(t) for t in range(10, 30)]
    assert cut["fault"] == [float(t) for t in range(30, 50)]


def test_integrity_figures_from_a_summary() -> None:
    summary = {"audit": {"stock": 30, "units_sold": 30, "oversold": 0},
               "groups": {"sale": {"checkout": {"rps": 4.0, "requests": 40, "failures": 4,
                                                "seconds": 10.0}}}}
    got = integrity_figures(summary)
    assert got["sold_vs_stock"] == 1.0 and got["checkout_answered_share"] == 0.9
    assert got["confirmed_orders_per_s"] == 3.0


def _rep(rps: float, seq: float, p99: float = 10.0, cpu: float | None = None) -> dict:
    return {"closed": {"rps": rps, "p50_ms": 5.0, "p99_ms": p99},
            "sequential": {"p50_ms": seq}, "cpu": {"gateway": {"ms_per_request": cpu}}}


def test_gateway_compare_pairs_each_repetition() -> None:
    micro = {"endpoints": {
        "gateway/on/none": [_rep(70, 3.0, 20, 1.2), _rep(60, 3.5, 30, 1.3), _rep(90, 2.5)],
        "product/none": [_rep(100, 1.5), _rep(100, 1.5), _rep(100, 1.0)]}}
    got = gateway.compare(micro, "gateway/on/none", "product/none")
    assert got["throughput_ratio_reps"] == [0.7, 0.6, 0.9]
    assert got["throughput_ratio"] == 0.7
    assert got["added_p50_1conn_ms"] == 1.5
    assert got["added_p99_under_load_ms"] == 10.0
    assert got["cpu_ms_per_request"]["gateway"] == 1.25


def test_response_parser_content_length_split_across_reads() -> None:
    parser = loadclient._Response()
    assert not parser.feed(b"HTTP/1.1 200 OK\r\nContent-Len")
    assert not parser.feed(b"gth: 5\r\n\r\nab")
    assert parser.feed(b"cdeHTTP/1.1")
    assert parser.status == 200
    parser.reset()
    assert parser.buffer == b"HTTP/1.1"


def test_response_parser_chunked() -> None:
    parser = loadclient._Response()
    head = b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert not parser.feed(head + b"4\r\nab")
    assert not parser.feed(b"cd\r\n0\r\n")
    assert parser.feed(b"\r\n")
    assert parser.status == 503 and parser.buffer == b""


def test_merge_pools_windows() -> None:
    one = loadclient.LoadResult(4, 1.0, 2, 2, 0, 2.0, None, None, None, {200: 2}, [1.0, 3.0])
    two = loadclient.LoadResult(4, 1.0, 2, 1, 1, 2.0, None, None, None, {200: 1, 503: 1},
                             [2.0, 4.0])
    merged = loadclient.merge([one, two])
    assert merged.rps == 2.0 and merged.requests == 4 and merged.errors == 1
    assert merged.p50_ms == 2.0 and merged.statuses == {200: 3, 503: 1}


def test_load_generator_refuses_other_hosts() -> None:
    with pytest.raises(ValueError, match="127.0.0.1"):
        loadclient.run(loadclient.sequential("10.0.0.1", 80, "/", count=1))


def test_wrk_durations_and_percentile_merge_without_samples() -> None:
    assert wrk.to_ms("635.00us") == pytest.approx(0.635)
    assert wrk.to_ms("1.23ms") == 1.23 and wrk.to_ms("2.01s") == pytest.approx(2010.0)
    assert wrk.to_ms("n/a") is None
    windows = [loadclient.LoadResult(16, 1.0, 100, 100, 0, 100.0, p, None, p * 2, {})
               for p in (1.0, 3.0, 2.0)]
    merged = loadclient.merge(windows)
    assert merged.rps == 100.0 and merged.p50_ms == 2.0 and merged.p99_ms == 4.0


WRK_REPORT = """Running 2s test @ http://127.0.0.1:18765/
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.01ms    1.15ms   9.66ms   69.91%
    Req/Sec   643.70     46.86   710.00     80.00%
  Latency Distribution
     50%    2.92ms
     75%    3.73ms
     90%    4.41ms
     99%    6.12ms
  1284 requests in 2.00s, 824.44KB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:    640.43
Transfer/sec:    822.42KB
"""


def test_wrk_report_parsed_into_a_load_result() -> None:
    result = wrk.parse(WRK_REPORT, connections=16, seconds=2)
    assert result.requests == 1284 and result.rps == 640.43 and result.seconds == 2.0
    assert result.errors == 10 and result.ok == 1274
    assert (result.p50_ms, result.p90_ms, result.p99_ms) == (2.92, 4.41, 6.12)
    with pytest.raises(ValueError, match="not a wrk report"):
        wrk.parse("unable to connect to 127.0.0.1:1 Connection refused", 1, 1)


def test_wrk_refuses_other_hosts() -> None:
    with pytest.raises(ValueError, match="loopback"):
        wrk.run_wrk(80, "/", connections=1, seconds=1, host="10.0.0.1")


def test_with_warmup_shifts_windows_and_faults() -> None:
    from bench.isolation import with_warmup
    from chaos.experiments.model import parse

    experiment = parse({"name": "x", "version": 1, "load": {"duration": 10},
                        "windows": {"baseline": [1, 3], "fault": [3, 6]},
                        "faults": [{"target": "cart", "kind": "down", "at": 3, "until": 6}]})
    shifted = with_warmup(experiment, 2.0)
    assert shifted.duration == 12.0
    assert shifted.windows == {"baseline": (3.0, 5.0), "fault": (5.0, 8.0)}
    assert (shifted.faults[0].at, shifted.faults[0].until) == (5.0, 8.0)
    assert with_warmup(experiment, 0) is experiment


def test_cpu_per_window_from_cgroup_samples() -> None:
    from chaos.experiments.cpu import per_window

    def sample(usage: float, throttled: float) -> dict:
        return {"gateway": {"cpus": 1.0, "usage_s": usage, "throttled_s": throttled}}

    samples = [(100.0, sample(0.0, 0.0)), (101.0, sample(0.5, 0.0)), (102.0, sample(1.0, 0.1)),
               (103.0, sample(1.2, 0.3))]
    got = per_window(samples, 100.0, {"baseline": (0.0, 1.0), "fault": (1.0, 3.0),
                                      "empty": (5.0, 6.0)})
    assert got["baseline"]["gateway"] == {"cpu_share": 0.5, "quota": 1.0,
                                          "throttled_ms_per_s": 0.0}
    assert got["fault"]["gateway"]["cpu_share"] == 0.35
    assert got["fault"]["gateway"]["throttled_ms_per_s"] == 150.0
    assert got["empty"] == {}


def test_last_full_run_survives_only_runs(tmp_path) -> None:
    path = tmp_path / "latest.json"
    path.write_text(json.dumps({"mode": "full", "only": None, "started_at": "a",
                                "finished_at": "b", "duration_s": 600.0, "benchmarks": {}}))
    assert report.last_full_run(path) == {"started_at": "a", "finished_at": "b",
                                          "duration_s": 600.0}
    path.write_text(json.dumps({"mode": "full", "only": ["proxy"], "last_full_run":
                                {"finished_at": "b", "duration_s": 600.0}}))
    assert report.last_full_run(path)["finished_at"] == "b"
    assert report.last_full_run(tmp_path / "missing.json") is None


def test_tracing_profile_note_names_the_costs() -> None:
    from bench.tracing import _profile_notes

    notes = _profile_notes({"none": {"cpu_ms_per_request": 0.9},
                            "noop": {"cpu_ms_per_request": 1.5, "spans_per_request": 3.0,
                                     "request_thread_areas_ms": {"OpenTelemetry SDK": 0.3}},
                            "file": {"cpu_ms_per_request": 1.6}})
    assert len(notes) == 1 and "+0.60 ms" in notes[0] and "OpenTelemetry SDK 0.3" in notes[0]
    assert _profile_notes({}) == []


def test_a_slice_waits_for_the_last_endpoints_background_work_to_end():
    import subprocess
    import sys
    import time

    from bench.harness import cpu_seconds
    from bench.micro import _settle

    # Busy for a moment after "its load stopped" (an exporter draining its queue), then idle.
    child = subprocess.Popen([sys.executable, "-c",
                              "import time\nend = time.monotonic() + 0.8\n"
                              "while time.monotonic() < end: pass\ntime.sleep(60)"],
                             start_new_session=True)
    try:
        while cpu_seconds(child.pid) < 0.05:  # it is spinning
            pass
        _settle([child.pid], limit=10)
        before = cpu_seconds(child.pid)
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < 0.3:
            pass
        assert cpu_seconds(child.pid) - before < 0.05  # quiet once _settle returned
    finally:
        child.kill()
        child.wait()


def test_one_connection_latencies_are_interleaved_within_compared_groups(monkeypatch):
    from bench import micro
    from bench.harness import Server

    rounds: list[list[int]] = []

    def run(ports):  # every run of a round answers with p50 = its round's number
        rounds.append(ports)
        p50 = float(len(rounds))
        return [loadclient.LoadResult(1, 1.0, 1, 1, 0, 1.0, p50, p50, p50, {}) for _ in ports]

    monkeypatch.setattr(micro.loadclient, "interleaved", lambda ports, *a, **k: ports)
    monkeypatch.setattr(micro.loadclient, "run", run)
    keys = list(micro.ENDPOINTS)
    servers = {k: Server(k, f"http://127.0.0.1:{9000 + i}", 0, None) for i, k in enumerate(keys)}

    class Ctx:
        class settings:  # noqa: N801 - a stand-in for RunSettings
            sequential_count = 10

    measured = micro._sequential_round(Ctx, keys, servers)

    assert sorted(measured) == sorted(keys)
    by_port = {9000 + i: k for i, k in enumerate(keys)}
    assert [[by_port[p] for p in ports] for ports in rounds] == [
        ["product/none", "gateway/on/none", "nginx/none"],
        ["product/none", "gateway/off/none", "gateway/threads/none"],
        ["product/none", "floor/none", "asyncio_floor/none"],
        ["product/file", "gateway/on/file"], ["product/all", "gateway/on/all"],
        ["product/otlp", "gateway/on/otlp"]]
    # Each endpoint is divided by the direct run of its own interleave; the reference keeps
    # the figures of its first one.
    assert measured["product/none"]["p50_ms"] == 1.0
    assert "direct_p50_ms" not in measured["product/none"]
    assert [measured[k]["direct_p50_ms"] for k in (
        "gateway/on/none", "nginx/none", "gateway/off/none", "gateway/threads/none",
        "floor/none", "asyncio_floor/none", "gateway/on/file")] == [1.0, 1.0, 2.0, 2.0, 3.0,
                                                                   3.0, 4.0]


def test_gateway_ratios_use_the_direct_run_of_the_same_interleave() -> None:
    def rep(seq: float, direct: float | None = None) -> dict:
        found = _rep(100, seq)
        if direct is not None:
            found["sequential"]["direct_p50_ms"] = direct
        return found

    micro = {"endpoints": {"floor/none": [rep(1.2, 1.0), rep(1.5, 1.25)],
                           "product/none": [rep(2.0), rep(2.0)]}}

    got = gateway.compare(micro, "floor/none", "product/none")

    assert got["p50_1conn_ratio_reps"] == [pytest.approx(1.2), pytest.approx(1.2)]
    assert got["added_p50_1conn_ms"] == pytest.approx(0.225)
