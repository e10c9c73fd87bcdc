"""The fault-proxy benchmark's own logic: HAProxy's relay, the figures and how they are judged."""

from __future__ import annotations

import shutil
import socket
import threading
from pathlib import Path

import pytest

from bench import haproxy
from bench.common import Context, RunSettings
from bench.proxy import _judge
from bench.responder import stop
from bench.stats import FAIL, INFO, PASS


def test_haproxy_config_is_one_thread_tcp_relay_on_loopback() -> None:
    text = haproxy.config(4100, 4200)
    assert "nbthread 1" in text and "mode tcp" in text
    assert "bind 127.0.0.1:4100" in text and "server upstream 127.0.0.1:4200" in text


@pytest.mark.skipif(not (shutil.which("haproxy") or Path("/usr/sbin/haproxy").exists()),
                    reason="haproxy is not installed (the bench installs it with apt-get)")
def test_started_haproxy_relays_to_its_upstream(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as upstream:
        def answer(conn: socket.socket) -> None:
            with conn:
                if data := conn.recv(100):
                    conn.sendall(data)

        def echo() -> None:  # every connection: HAProxy's readiness probe reaches it too
            while True:
                try:
                    conn, _ = upstream.accept()
                except OSError:
                    return
                threading.Thread(target=answer, args=(conn,), daemon=True).start()

        threading.Thread(target=echo, daemon=True).start()
        process, port = haproxy.start_haproxy(upstream.getsockname()[1], None, tmp_path)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
                client.sendall(b"relayed")
                assert client.recv(100) == b"relayed"
        finally:
            stop(process)
    assert process.poll() is not None


def _window(rps: float, cpu: float | None, rtt: float) -> dict:
    return {"rps": rps, "cpu": cpu, "ceiling_rps": rps / cpu if cpu else None,
            "rtt_p50_ms": rtt}


def _raw(proxy_cpu: float, bulk_s: float, toxic_added: float) -> dict:
    rep = {"direct": _window(100_000, None, 0.10),
           "haproxy": _window(60_000, 0.60, 0.15),
           "minimal": _window(57_000, 0.60, 0.15),
           "proxied": _window(54_000, proxy_cpu, 0.16),
           "toxic_added_p50_ms": toxic_added}
    real = {"throughput_ratio": 0.99, "proxied_rps": 990, "direct_rps": 1000,
            "added_p50_ms": 0.08, "proxied_p50_ms": 1.08, "direct_p50_ms": 1.0}
    return {"reps": [rep, rep, rep], "real_upstream": real,
            "bulk": {"bytes": 4 * 2**20, "latency_ms": 1000, "seconds": [bulk_s] * 3,
                     "median_s": bulk_s}}


def _targets(raw: dict) -> dict[str, object]:
    ctx = Context(RunSettings.quick(), Path("/nonexistent"))
    result = _judge(ctx, raw, {"load": 0, "server": 1})
    return {target.name.split(" (")[0]: target for target in result.targets}


def test_ceiling_is_requests_per_cpu_second_against_haproxys() -> None:
    targets = _targets(_raw(proxy_cpu=0.6, bulk_s=1.05, toxic_added=100.5))
    ceiling = targets["relay ceiling on one core ÷ HAProxy's"]
    assert ceiling.measured == pytest.approx(0.9) and ceiling.status == PASS
    assert targets["throughput through the proxy ÷ through HAProxy"].status == INFO
    assert targets["the least Python relay's ceiling ÷ HAProxy's"].measured == \
        pytest.approx(0.95)
    assert targets["latency toxic accuracy"].status == PASS
    assert targets["4 MiB through a 1000 ms latency toxic, connect to last byte"].status == PASS


def test_a_costlier_relay_a_slow_bulk_and_an_inexact_toxic_fail() -> None:
    targets = _targets(_raw(proxy_cpu=0.9, bulk_s=4.0, toxic_added=103.0))
    assert targets["relay ceiling on one core ÷ HAProxy's"].measured == pytest.approx(0.6)
    assert targets["relay ceiling on one core ÷ HAProxy's"].status == FAIL
    assert targets["latency toxic accuracy"].status == FAIL
    assert targets["4 MiB through a 1000 ms latency toxic, connect to last byte"].status == FAIL
