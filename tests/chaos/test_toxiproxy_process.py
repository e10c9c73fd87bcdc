"""`python -m chaos.toxiproxy` as a process: config, printed address, clean SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


def test_runs_with_a_config_and_stops_on_sigterm(tmp_path, echo):
    config = tmp_path / "proxies.json"
    config.write_text(json.dumps([{"name": "cart", "listen": "127.0.0.1:0",
                                   "upstream": echo.address}]))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "chaos.toxiproxy", "--port", "0", "--config", str(config)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("toxiproxy API listening on 127.0.0.1:")
        url = "http://" + line.rsplit(" ", 1)[1].strip()
        proxies = requests.get(f"{url}/proxies", timeout=5).json()
        assert proxies["cart"]["upstream"] == echo.address and proxies["cart"]["enabled"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()


def _serve(config: Path) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "chaos.toxiproxy", "--port", "0", "--config", str(config)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    line = process.stdout.readline()
    assert line.startswith("toxiproxy API listening on 127.0.0.1:"), line
    return process, "http://" + line.rsplit(" ", 1)[1].strip()


def _stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    try:
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    stderr = process.stderr.read()
    process.stdout.close()
    process.stderr.close()
    return stderr


@pytest.mark.parametrize("content, message", [
    (json.dumps([{"name": "cart"}]), "missing required field: upstream at proxy 1"),
    ("{not json", "Expecting property name"),
    (None, "No such file or directory"),
])
def test_a_bad_config_is_reported_and_the_api_serves(tmp_path, content, message):
    """api.go `PopulateConfig` logs a config it cannot read or apply, and the server goes on."""
    config = tmp_path / "proxies.json"
    if content is not None:
        config.write_text(content)
    process, url = _serve(config)
    try:
        assert requests.get(f"{url}/proxies", timeout=5).json() == {}
    finally:
        stderr = _stop(process)
    assert message in stderr and str(config) in stderr


def test_a_config_failing_half_way_keeps_the_proxies_before_it(tmp_path, echo):
    """proxy_collection.go `PopulateJson` stops at the first runtime error; the proxies made
    before it stay (here the second entry's port is taken by the first)."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        config = tmp_path / "proxies.json"
        config.write_text(json.dumps([
            {"name": "cart", "listen": "127.0.0.1:0", "upstream": echo.address},
            {"name": "order", "listen": f"127.0.0.1:{port}", "upstream": echo.address},
        ]))
        process, url = _serve(config)
        try:
            assert set(requests.get(f"{url}/proxies", timeout=5).json()) == {"cart"}
        finally:
            stderr = _stop(process)
    assert f"listen tcp 127.0.0.1:{port}: bind: address already in use" in stderr


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_a_port_out_of_range_is_refused_before_listening(port):
    """A port the OS would wrap round (99999 → 34463) is an error, not a random listener."""
    result = subprocess.run(
        [sys.executable, "-m", "chaos.toxiproxy", "--port", port],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert "listening" not in result.stdout
    assert "--port" in result.stderr and port in result.stderr
