"""`python -m chaos.toxiproxy` as a process: config, printed address, clean SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

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


def test_a_bad_config_fails_clearly(tmp_path):
    config = tmp_path / "proxies.json"
    config.write_text(json.dumps([{"name": "cart"}]))
    result = subprocess.run(
        [sys.executable, "-m", "chaos.toxiproxy", "--port", "0", "--config", str(config)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
        text=True, timeout=30,
    )
    assert result.returncode == 2
    assert "missing required field: upstream at proxy 1" in result.stderr
