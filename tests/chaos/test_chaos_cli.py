"""`breakwater chaos …` end to end against the embedded server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from breakwater.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def chaos(server, capsys):
    """Run `breakwater chaos ARGS` in-process; returns (exit status, stdout, stderr)."""

    def run(*args: str):
        try:
            status = main(["chaos", *args, "--toxiproxy", server.url])
        except SystemExit as exit_info:  # argparse refusing an argument
            status = exit_info.code
        out, err = capsys.readouterr()
        return status, out, err

    return run


@pytest.fixture
def shop(api, echo):
    for name in ("cart", "product-1", "product-2"):
        api.post("/proxies", json={"name": name, "listen": "127.0.0.1:0",
                                   "upstream": echo.address})
    return api


def test_list_shows_a_table(shop, chaos):
    shop.post("/proxies/cart/toxics", json={"type": "latency", "attributes": {"latency": 9}})
    shop.post("/proxies/product-2", json={"enabled": False})
    status, out, _ = chaos("list")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "ENABLED", "LISTEN", "UPSTREAM", "TOXICS"]
    assert "latency_downstream: latency latency=9 jitter=0" in lines[1]
    assert "NO (down)" in lines[3]


def test_fault_commands(shop, chaos):
    assert chaos("latency", "product", "--ms", "200", "--jitter", "20", "--upstream",
                 "--toxicity", "0.5")[0] == 0
    toxic = shop.get("/proxies/product-1/toxics/latency_upstream").json()
    assert toxic["attributes"] == {"latency": 200, "jitter": 20} and toxic["toxicity"] == 0.5
    for args, name in ((("timeout", "cart", "--ms", "100"), "timeout_downstream"),
                       (("reset-peer", "cart"), "reset_peer_downstream"),
                       (("bandwidth", "cart", "--kbps", "10"), "bandwidth_downstream"),
                       (("slicer", "cart"), "slicer_downstream"),
                       (("slow-close", "cart", "--ms", "5"), "slow_close_downstream"),
                       (("limit-data", "cart", "--bytes", "50"), "limit_data_downstream")):
        assert chaos(*args)[0] == 0, args
        assert shop.get(f"/proxies/cart/toxics/{name}").status_code == 200
    assert chaos("clear", "cart")[0] == 0
    assert shop.get("/proxies/cart/toxics").json() == []
    assert chaos("down", "product-2")[0] == 0
    assert not shop.get("/proxies/product-2").json()["enabled"]
    assert chaos("up", "product")[0] == 0
    assert shop.get("/proxies/product-2").json()["enabled"]
    assert chaos("reset")[0] == 0
    assert shop.get("/proxies/product-1/toxics").json() == []


def test_for_removes_the_fault_by_itself(shop, chaos):
    status, out, _ = chaos("latency", "cart", "--ms", "100", "--for", "200ms")
    assert status == 0 and "removed" in out
    assert shop.get("/proxies/cart/toxics").json() == []
    assert chaos("down", "cart", "--for", "0.1s")[0] == 0
    assert shop.get("/proxies/cart").json()["enabled"]


def test_for_notes_when_the_fault_ends_in_the_event_log(shop, chaos):
    """Watchers (the console) read the time left of a time-boxed fault from `/events`."""
    before = time.time()
    assert chaos("latency", "product", "--ms", "5", "--for", "300ms")[0] == 0
    notes = [e for e in shop.get("/events").json() if e["event"] == "fault_timed"]
    assert sorted(n["proxy"] for n in notes) == ["product-1", "product-2"]
    assert {n["fault"] for n in notes} == {"latency_downstream"}
    assert all(before + 0.3 <= n["until"] <= time.time() + 0.3 for n in notes)
    assert chaos("down", "cart", "--for", "0.1s")[0] == 0
    assert [e["fault"] for e in shop.get("/events").json()
            if e["event"] == "fault_timed" and e["proxy"] == "cart"] == ["down"]


def test_errors_are_one_line_with_status_2(shop, chaos, monkeypatch):
    status, _, err = chaos("latency", "basket", "--ms", "5")
    assert status == 2 and "unknown service 'basket'" in err and "cart" in err
    assert err.startswith("breakwater chaos latency: error: unknown service 'basket'")
    assert len(err.strip().splitlines()) == 1
    status, _, err = chaos("bandwidth", "cart", "--kbps", "0")
    assert status == 2 and "breakwater chaos bandwidth: error: argument --kbps: must be at " \
        "least 1, got 0" in err
    status, _, err = chaos("latency", "cart", "--ms", "5", "--toxicity", "1.5")
    assert status == 2 and "between 0 and 1" in err
    status = main(["chaos", "list", "--toxiproxy", "http://127.0.0.1:1"])
    assert status == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["chaos", "latency", "cart", "--ms", "soon"])
    assert exit_info.value.code == 2


def test_toxiproxy_cli_command_set(server, echo, chaos):
    status, out, _ = chaos("create", "db", "--listen", "127.0.0.1:0", "--upstream",
                           echo.address)
    assert status == 0 and "Created new proxy db" in out
    assert chaos("toxic", "add", "db", "-t", "latency", "-a", "latency=100", "-a",
                 "jitter=5", "-u")[0] == 0
    assert chaos("toxic", "update", "db", "-n", "latency_upstream", "-a", "latency=300",
                 "--toxicity", "0.5")[0] == 0
    status, out, _ = chaos("inspect", "db")
    assert "latency_upstream: latency latency=300 jitter=5 toxicity=0.5" in out
    assert "Enabled: True" in out
    assert "disabled" in chaos("toggle", "db")[1]
    assert "enabled" in chaos("toggle", "db")[1]
    assert chaos("toxic", "remove", "db", "-n", "latency_upstream")[0] == 0
    assert chaos("delete", "db")[0] == 0
    status, _, err = chaos("inspect", "db")
    assert status == 2 and "proxy not found" in err


def test_subprocess_list(server, shop):
    env = {**os.environ, "TOXIPROXY_URL": server.url,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-m", "breakwater", "chaos", "list"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "product-2" in result.stdout
