"""The gateway-beside-nginx, ceiling, tracing and memory rows: parsing, figures, targets.
Pure logic on made-up measurements: no processes, no timing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench import ceiling, gateway, memory, nginx, report, tracing
from bench.__main__ import parse_only
from bench.harness import tracing_environment
from bench.stats import FAIL, INFO, PASS

PROXIED = ("gateway/on/none", "gateway/off/none", "gateway/on/file", "gateway/on/all",
           "gateway/on/otlp")


def _rep(rps: float, p50_1conn: float, cpu: dict[str, float]) -> dict:
    return {"closed": {"rps": rps, "p50_ms": 5.0, "p99_ms": 9.0},
            "sequential": {"p50_ms": p50_1conn},
            "cpu": {name: {"ms_per_request": value} for name, value in cpu.items()}}


def _micro(gateway_p50: float, traced_rps: dict[str, float] | None = None) -> dict:
    """Two repetitions: product 1.0 ms / 800 req/s, nginx 1.1 ms / 780 req/s."""
    traced_rps = traced_rps or {}
    endpoints: dict[str, list] = {}
    for key in ("product/none", "product/file", "product/all", "product/otlp"):
        endpoints[key] = [_rep(800, 1.0, {"product": 1.2})] * 2
    endpoints["nginx/none"] = [_rep(780, 1.1, {"nginx": 0.08, "product": 1.2})] * 2
    for key in PROXIED:
        endpoints[key] = [_rep(traced_rps.get(key, 700), gateway_p50,
                               {"gateway": 0.9, "product": 1.2})] * 2
    return {"endpoints": endpoints, "connections": 16, "load_generator": "wrk; one: client",
            "closed_generator": "wrk 4.1 (closed loop), 16 connections",
            "sequential_generator": "bench.loadclient (asyncio), endpoints interleaved"}


def _target(result, words: str):
    """The one row whose name starts with `words` (or, failing that, contains them)."""
    found = [t for t in result.targets if t.name.startswith(words)] or [
        t for t in result.targets if words in t.name]
    assert len(found) == 1, [t.name for t in found]
    [found] = found
    return found


@pytest.mark.parametrize(("gateway_p50", "status"), [(1.2, PASS), (1.3, PASS), (1.5, FAIL)])
def test_gateway_p50_ratio_target_is_the_issue_goal(gateway_p50: float, status: str) -> None:
    result = gateway.evaluate(_micro(gateway_p50))

    row = _target(result, "p50 at 1 connection, gateway ÷ direct")
    assert row.threshold == 1.3 and row.op == "<="
    assert row.measured == pytest.approx(gateway_p50)
    assert row.status == status
    assert row.load_generator.startswith("bench.loadclient")


def test_gateway_rows_set_nginx_beside_the_gateway_and_name_their_generators() -> None:
    result = gateway.evaluate(_micro(1.2))

    assert _target(result, "p50 at 1 connection, nginx ÷ direct").measured == pytest.approx(1.1)
    assert _target(result, "16 connections, nginx ÷ direct").measured == pytest.approx(780 / 800)
    throughput = _target(result, "throughput at 16 connections, gateway ÷ nginx")
    assert throughput.measured == pytest.approx(700 / 780) and throughput.status == INFO
    assert _target(result, "nginx CPU per proxied read").measured == pytest.approx(0.08)
    assert _target(result, "gateway CPU per proxied read").measured == pytest.approx(0.9)
    assert all(t.load_generator for t in result.targets)
    assert _target(result, "throughput at 16 connections, gateway ÷ direct").load_generator \
        .startswith("wrk 4.1")


def test_gateway_rows_without_nginx_still_evaluate() -> None:
    micro = _micro(1.2)
    del micro["endpoints"]["nginx/none"]

    result = gateway.evaluate(micro)

    assert not [t for t in result.targets if "nginx" in t.name]
    assert _target(result, "p50 at 1 connection, gateway ÷ direct").status == PASS


def test_the_goals_allowance_is_shown_beside_what_each_proxy_adds() -> None:
    micro = _micro(1.5)
    micro["endpoints"]["floor/none"] = [_rep(760, 1.25, {"floor": 0.3, "product": 1.2})] * 2
    micro["endpoints"]["asyncio_floor/none"] = [
        _rep(770, 1.2, {"asyncio_floor": 0.25, "product": 1.2})] * 2

    result = gateway.evaluate(micro)

    row = _target(result, "added p50 at 1 connection the 1.3x goal allows")
    assert row.measured == pytest.approx(0.3) and row.status == INFO  # direct 1.0 ms x 0.3
    assert row.detail == ("added p50 (ms): gateway 0.50; the least RSGI proxy on Granian 0.25; "
                          "the least Python proxy without Granian 0.20; nginx 0.10")
    floor = _target(result, "p50 at 1 connection ÷ direct, the least Python proxy without")
    assert floor.measured == pytest.approx(1.2)


def test_the_asyncio_floor_proxies_keep_alive_to_its_upstream() -> None:
    import subprocess
    import sys

    import requests

    from bench.responder import start_responder
    from bench.responder import stop as stop_responder

    upstream, upstream_port = start_responder()
    floor = subprocess.Popen([sys.executable, "-m", "bench.asyncio_floor", "--port", "0",
                              "--upstream", f"127.0.0.1:{upstream_port}", "--max-seconds", "60"],
                             stdout=subprocess.PIPE, text=True)
    try:
        line = floor.stdout.readline()  # type: ignore[union-attr]
        assert "listening on" in line, line
        port = int(line.rsplit(":", 1)[1])
        with requests.Session() as session:
            answers = [session.get(f"http://127.0.0.1:{port}/api/v1/products/7", timeout=5)
                       for _ in range(3)]
    finally:
        stop_responder(floor)
        stop_responder(upstream)
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert all(a.json() == {"id": 42, "ok": 1} for a in answers)
    assert answers[0].headers["Content-Type"].startswith("application/json")


def test_tracing_targets_default_and_all_sampled_against_off() -> None:
    micro = _micro(1.2, {"gateway/on/none": 700, "gateway/on/file": 650,
                         "gateway/on/all": 540, "gateway/on/otlp": 600})

    result = tracing.evaluate(micro)

    default = _target(result, "throughput with tracing (default sampler, span files)")
    every = _target(result, "throughput with tracing (every request sampled")
    otlp = _target(result, "throughput with tracing (default sampler, OTLP")
    assert (default.threshold, default.measured, default.status) == (0.9, pytest.approx(650 / 700),
                                                                     PASS)
    assert (every.threshold, every.status) == (0.8, FAIL)  # 540 / 700 = 0.77
    assert otlp.threshold is None and otlp.status == INFO
    assert all(isinstance(t.load_generator, str) and t.load_generator for t in result.targets)


def test_the_machines_own_speed_is_reported_beside_the_tracing_rows() -> None:
    micro = _micro(1.2)
    assert not [t for t in tracing.evaluate(micro).targets if "machine speed" in t.name]

    for key, reps in micro["endpoints"].items():
        micro["endpoints"][key] = [{**rep, "speed_probe_ms": [4.0, 5.0 if key == "product/all"
                                                             else 4.2]} for rep in reps]
    row = _target(tracing.evaluate(micro), "machine speed spread")

    assert row.measured == pytest.approx(1.25) and row.threshold is None


def test_the_speed_probe_times_the_same_work_on_the_cpu_asked_for() -> None:
    from bench.common import cpu_speed_ms, cpus

    before = os.sched_getaffinity(0)
    assert cpu_speed_ms(cpus()[-1], repeats=1) > 0
    assert os.sched_getaffinity(0) == before  # the bench's own pinning is given back


def test_the_all_sampled_mode_sets_always_on_and_the_default_mode_leaves_the_sampler(
        tmp_path: Path) -> None:
    assert tracing_environment("all", tmp_path, None)["OTEL_TRACES_SAMPLER"] == "always_on"
    assert "OTEL_TRACES_SAMPLER" not in tracing_environment("file", tmp_path, None)
    with pytest.raises(ValueError, match="unknown tracing mode"):
        tracing_environment("sampled", tmp_path, None)


def test_ceiling_compares_requests_per_cpu_second() -> None:
    reps = [{"gateway": {"ceiling_rps": 2000.0, "p50_1conn_ms": 0.8},
             "nginx": {"ceiling_rps": 40000.0, "p50_1conn_ms": 0.2}},
            {"gateway": {"ceiling_rps": 3000.0, "p50_1conn_ms": 0.6},
             "nginx": {"ceiling_rps": 30000.0, "p50_1conn_ms": 0.3}}]

    result = ceiling.evaluate({"reps": reps, "connections": 16, "cpu_layout": {"server": 1,
                                                                              "load": 0}})

    ratio = _target(result, "ceiling on one core ÷ nginx's")
    assert ratio.measured == pytest.approx((0.05 + 0.1) / 2)
    assert _target(result, "p50 at 1 connection, gateway ÷ nginx").measured == pytest.approx(3.0)
    assert "CPU 1" in result.pinning and "wrk" in ratio.load_generator
    assert ceiling.ceilings(500, 0.25) == 2000.0 and ceiling.ceilings(10, 0.0) is None


def test_nginx_config_is_one_process_keep_alive_to_the_upstream(tmp_path: Path) -> None:
    text = nginx.config(8081, 9001, tmp_path)

    assert "listen 127.0.0.1:8081;" in text and "server 127.0.0.1:9001;" in text
    assert "master_process off;" in text and "daemon off;" in text
    assert "keepalive 32;" in text and "proxy_http_version 1.1;" in text
    assert 'proxy_set_header Connection "";' in text
    assert f"pid {tmp_path / 'nginx.pid'};" in text and "access_log off;" in text


def test_memory_reads_rss_and_pss_from_proc(tmp_path: Path) -> None:
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "status").write_text("Name:\tgunicorn\nVmPeak:\t 90000 kB\n"
                                            "VmRSS:\t   51200 kB\nThreads:\t9\n")
    (tmp_path / "42" / "smaps_rollup").write_text("Rss:   51200 kB\nPss:   30720 kB\n")

    assert memory.process_memory(42, tmp_path) == {"pid": 42, "name": "gunicorn",
                                                   "rss_kb": 51200, "pss_kb": 30720}
    assert memory.process_memory(43, tmp_path) is None
    assert memory.status_kb("VmRSS: x kB", "VmRSS") is None


def _process(rss_mb: float) -> dict:
    return {"pid": 1, "name": "p", "rss_kb": int(rss_mb * 1024), "pss_kb": int(rss_mb * 512)}


@pytest.mark.parametrize(("each_mb", "status"), [(40.0, PASS), (60.0, FAIL)])
def test_memory_target_is_600_mb_for_the_whole_stack(each_mb: float, status: str) -> None:
    by_instance = {name: [_process(each_mb), _process(each_mb)]
                   for name in ("auth", "product-1", "cart", "order", "gateway", "console")}
    measured = memory.totals(by_instance)

    result = memory.evaluate(measured)

    whole = _target(result, "whole local stack, 12 processes")
    assert whole.measured == pytest.approx(12 * each_mb, abs=0.01)
    assert (whole.threshold, whole.status) == (600.0, status)
    assert _target(result, "without the live console (10 processes)").measured == pytest.approx(
        10 * each_mb, abs=0.01)
    assert _target(result, "PSS").measured == pytest.approx(6 * each_mb, abs=0.01)


def test_new_rows_run_alone_and_generators_stay_readable_in_the_table() -> None:
    assert parse_only("ceiling,memory") == ["ceiling", "memory"]
    assert report._short("wrk 4.1 (closed loop), 16 connections") == "wrk 4.1, 16 connections"
    assert report.ordered({"memory": None, "gateway": None, "ceiling": None}) == [  # type: ignore[dict-item]
        "gateway", "ceiling", "memory"]


def test_every_transport_reads_the_whole_answer_from_the_responder() -> None:
    from bench import transport
    from bench.responder import start_responder, stop

    process, port = start_responder()
    try:
        made = {name: make(port) for name, make in transport.TRANSPORTS.items()}
        lengths = {name: [fn(), fn()] for name, fn in made.items() if fn is not None}
    finally:
        stop(process)
    assert {"breakwater", "urllib3", "http.client", "httptools", "bare"} <= lengths.keys()
    assert all(got == [16, 16] for got in lengths.values()), lengths  # keep-alive, twice


@pytest.mark.skipif(not nginx._binary(), reason="nginx is not installed (the bench installs it)")
def test_started_nginx_proxies_to_its_upstream(tmp_path: Path) -> None:
    import requests

    from bench.responder import start_responder
    from bench.responder import stop as stop_responder

    upstream, upstream_port = start_responder()
    process, port = nginx.start_nginx(upstream_port, None, tmp_path)
    try:
        answer = requests.get(f"http://127.0.0.1:{port}/api/v1/products/7", timeout=5)
    finally:
        nginx.stop(process)
        stop_responder(upstream)
    assert answer.status_code == 200 and answer.json() == {"id": 42, "ok": 1}
    assert process.poll() is not None
