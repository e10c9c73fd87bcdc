"""The embedded server driven by Chaos Toolkit's `chaostoolkit-toxiproxy`, unchanged.

First a whole experiment through `chaos run` (the way Chaos Toolkit users run it), then each
action and probe of the extension called as a function, with the effect checked on the wire.
The extension has no action that updates a toxic; the Node client test covers updates.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from chaostoxi.proxy import actions as proxy_actions
from chaostoxi.proxy import probes as proxy_probes
from chaostoxi.toxic import actions as toxic_actions

from tests.chaos import ctk_probes

ROOT = Path(__file__).resolve().parents[2]
CHAOS = Path(sys.executable).parent / "chaos"


def _python(module: str, func: str, **arguments) -> dict:
    return {"type": "python", "module": module, "func": func, "arguments": arguments}


def _step(kind: str, name: str, provider: dict) -> dict:
    return {"type": kind, "name": name, "provider": provider}


def test_chaos_run_drives_a_proxy_through_an_experiment(server, echo, api, tmp_path):
    """`chaos run`: create a proxy, add latency, measure it on the wire, take it off, disable and
    enable the proxy, and roll back by deleting it — every call through the extension."""
    probes = "tests.chaos.ctk_probes"
    toxics, proxies = "chaostoxi.toxic.actions", "chaostoxi.proxy.actions"
    port = "env:wire_PORT"  # create_proxy exports the bound port as <proxy>_PORT
    experiment = {
        "version": "1.0.0",
        "title": "Latency through the embedded fault proxy",
        "description": "chaostoolkit-toxiproxy against chaos.toxiproxy",
        "configuration": {"toxiproxy_url": server.url},
        "steady-state-hypothesis": {"title": "the proxy answers", "probes": [
            {**_step("probe", "no proxy yet or it exists", _python(
                "chaostoxi.proxy.probes", "proxy_exist", proxy_name="absent")),
             "tolerance": False},
        ]},
        "method": [
            _step("action", "create", _python(
                proxies, "create_proxy", proxy_name="wire", upstream_host="127.0.0.1",
                upstream_port=echo.port, listen_host="127.0.0.1")),
            _step("probe", "baseline", _python(probes, "round_trip_ms", port=port)),
            _step("action", "slow", _python(
                toxics, "create_latency_toxic", for_proxy="wire", toxic_name="slow",
                latency=300)),
            _step("probe", "slowed", _python(probes, "round_trip_ms", port=port)),
            _step("action", "cure", _python(
                toxics, "delete_toxic", for_proxy="wire", toxic_name="slow")),
            _step("probe", "cured", _python(probes, "round_trip_ms", port=port)),
            _step("action", "down", _python(proxies, "disable_proxy", proxy_name="wire")),
            _step("probe", "refused", _python(probes, "refuses_connections", port=port)),
            _step("action", "up", _python(proxies, "enable_proxy", proxy_name="wire")),
            _step("probe", "back", _python(probes, "round_trip_ms", port=port)),
        ],
        "rollbacks": [
            _step("action", "reset", _python(proxies, "reset")),
            _step("action", "remove", _python(proxies, "delete_proxy", proxy_name="wire")),
        ],
    }
    source = tmp_path / "experiment.json"
    source.write_text(json.dumps(experiment))
    journal_path = tmp_path / "journal.json"
    result = subprocess.run(
        [str(CHAOS), "--no-version-check", "--no-log-file", "run", "--journal-path",
         str(journal_path), str(source)],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
        text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    journal = json.loads(journal_path.read_text())
    assert journal["status"] == "completed"
    outputs = {step["activity"]["name"]: step for step in journal["run"]}
    assert all(step["status"] == "succeeded" for step in outputs.values()), outputs
    assert outputs["baseline"]["output"] < 200
    assert outputs["slowed"]["output"] >= 295
    assert outputs["cured"]["output"] < 200
    assert outputs["refused"]["output"] is True
    assert outputs["back"]["output"] < 200
    assert [step["status"] for step in journal["rollbacks"]] == ["succeeded", "succeeded"]
    assert api.get("/proxies").json() == {}


# -- every action and probe of the extension, as functions -------------------------------------
@pytest.fixture
def configuration(server, monkeypatch) -> dict:
    """The extension's configuration; `create_proxy` writes `<proxy>_PORT` into os.environ,
    which monkeypatch removes again."""
    monkeypatch.setenv("wire_PORT", "")
    return {"toxiproxy_url": server.url}


@pytest.fixture
def wire(configuration, echo) -> int:
    """A proxy `wire` created by the extension's default listen host (0.0.0.0); its port."""
    assert proxy_actions.create_proxy("wire", "127.0.0.1", echo.port,
                                      configuration=configuration)
    return int(configuration["wire_PORT"])


def test_create_proxy_on_the_default_host_and_probes(configuration, wire, echo):
    """create_proxy's default `0.0.0.0:0` binds every interface; its probes read it back."""
    assert os.environ["wire_PORT"] == str(wire)  # noqa: SIM112 - the extension's own name
    assert ctk_probes.round_trip_ms(wire) < 1000
    assert proxy_probes.proxy_exist("wire", configuration=configuration) is True
    assert proxy_probes.proxy_exist("nope", configuration=configuration) is False
    assert proxy_probes.get_proxy_attribute("wire", "upstream", configuration=configuration) \
        == echo.address
    assert proxy_probes.get_proxy_attribute("wire", "listen", configuration=configuration) \
        == f"[::]:{wire}"


def test_create_toxic_upstream_with_toxicity(configuration, recorder, api, monkeypatch, wait):
    """create_toxic with every field: stream, toxicity and attributes arrive as sent, and an
    upstream limit_data cuts what the upstream receives."""
    monkeypatch.setenv("rec_PORT", "")
    assert proxy_actions.create_proxy("rec", "127.0.0.1", recorder.port, listen_host="127.0.0.1",
                                      configuration=configuration)
    assert toxic_actions.create_toxic("rec", "cut", "limit_data", stream="upstream",
                                      toxicity=1.0, attributes={"bytes": 2},
                                      configuration=configuration)
    toxic = api.get("/proxies/rec/toxics/cut").json()
    assert toxic["stream"] == "upstream" and toxic["attributes"] == {"bytes": 2}
    with socket.create_connection(("127.0.0.1", int(configuration["rec_PORT"])), timeout=3) as sock:
        sock.sendall(b"abcd")
        wait(lambda: recorder.connections)
        assert recorder.connections[0].eof.wait(3)
        assert bytes(recorder.connections[0].data) == b"ab"


def test_typed_toxic_actions_act_on_the_wire(configuration, wire, api):
    """The extension's typed actions (latency, timeout, limiter, slicer, slow close,
    bandwidth) each create the toxic they name, with the attributes they take."""
    assert toxic_actions.create_timeout_toxic("wire", "cut", 0, configuration=configuration)
    with socket.create_connection(("127.0.0.1", wire), timeout=0.5) as sock:
        sock.sendall(b"lost")
        with pytest.raises(TimeoutError):
            sock.recv(10)  # a timeout toxic of 0 swallows the data and never closes
    assert toxic_actions.delete_toxic("wire", "cut", configuration=configuration)
    assert toxic_actions.create_limiter_toxic("wire", "limit", 3, configuration=configuration)
    with socket.create_connection(("127.0.0.1", wire), timeout=3) as sock:
        sock.sendall(b"abcdef")
        assert sock.recv(10) == b"abc"
    assert toxic_actions.create_slicer_toxic("wire", "slices", 10, 2, 100,
                                             configuration=configuration)
    assert toxic_actions.create_slow_connection_close_toxic("wire", "slowclose", 100,
                                                            configuration=configuration)
    assert toxic_actions.create_bandwith_degradation_toxic("wire", "narrow", 0,
                                                           configuration=configuration)
    assert toxic_actions.create_latency_toxic("wire", "slow", 50, jitter=5,
                                              configuration=configuration)
    toxics = {t["name"]: t for t in api.get("/proxies/wire/toxics").json()}
    assert toxics["slices"]["attributes"] == {"average_size": 10, "size_variation": 2,
                                              "delay": 100}
    assert toxics["narrow"]["attributes"] == {"rate": 0}
    assert toxics["slow"]["attributes"] == {"latency": 50, "jitter": 5}
    assert proxy_actions.reset(configuration=configuration)
    assert api.get("/proxies/wire/toxics").json() == []


def test_modify_proxy_moves_the_upstream(configuration, wire, hangup):
    """modify_proxy with a new upstream restarts the proxy towards it (same port)."""
    assert proxy_actions.modify_proxy("wire", upstream_address=hangup.address,
                                      configuration=configuration)
    assert configuration["wire_PORT"] == str(wire)
    with socket.create_connection(("127.0.0.1", wire), timeout=3) as sock:
        assert sock.recv(10) == b"bye"


def test_disable_enable_and_delete(configuration, wire, api):
    """disable_proxy refuses connections, enable_proxy takes them again, delete_proxy forgets."""
    assert proxy_actions.disable_proxy("wire", configuration=configuration)
    assert ctk_probes.refuses_connections(wire)
    assert proxy_actions.enable_proxy("wire", configuration=configuration)
    assert ctk_probes.round_trip_ms(wire) < 1000
    proxy_actions.delete_proxy("wire", configuration=configuration)
    assert api.get("/proxies/wire").status_code == 404
