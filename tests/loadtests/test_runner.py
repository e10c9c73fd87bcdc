"""The runner drives real Locust (in a child process) against a fake shop on loopback."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from loadtests.runner import LoadSpec, run_load_in_subprocess
from tests.support.upstreams import fake_upstreams


def test_a_short_run_keeps_locusts_files_and_every_request(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A relative run folder is the caller's, whatever the folder the package is installed in
    # (the child once ran in the package's parent and wrote its files there).
    monkeypatch.chdir(tmp_path)
    with fake_upstreams(1) as (shop,):
        spec = LoadSpec(scenario="browse", out_dir="run", host=shop.url,
                        shape="steady", users=4, duration=3, progress=True, grace_s=5)
        result = run_load_in_subprocess(spec, echo=False, timeout=60)
    out = tmp_path / "run"
    for name in ("locust_stats.csv", "locust_stats_history.csv", "locust.html", "load.json",
                 "requests.csv"):
        assert (out / name).exists(), name
    assert result["mode"] == "closed-loop" and result["offered_rate"] is None
    assert result["requests"] > 0 and result["failures"] == 0
    with open(out / "requests.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["group"] for row in rows} == {"catalog"}
    assert {row["outcome"] for row in rows} == {"ok"}
    assert json.loads((out / "load.json").read_text())["requests"] == result["requests"]


def test_open_loop_reports_offered_and_achieved(tmp_path: Path) -> None:
    with fake_upstreams(1) as (shop,):
        spec = LoadSpec(scenario="catalog", out_dir=str(tmp_path / "run"), host=shop.url,
                        rate=20, duration=3, shape_params={"warmup": 1}, grace_s=5)
        result = run_load_in_subprocess(spec, echo=False, timeout=60)
    assert result["mode"] == "open-loop" and result["offered_rate"] == 20
    assert 0 < result["achieved_rate"] <= 25


def test_web_runs_locusts_own_ui_beside_the_run_and_announces_it(tmp_path: Path) -> None:
    """`breakwater load --web`: Locust's web UI (library mode) answers while the load runs,
    its address is in the announce file the console reads, and both go when the run ends."""
    import time

    import requests

    from loadtests.runner import LoadProcess
    from tests.support.processes import free_port

    announce = tmp_path / "load-web.json"
    with fake_upstreams(1) as (shop,):
        spec = LoadSpec(scenario="browse", out_dir=str(tmp_path / "run"), host=shop.url,
                        shape="steady", users=2, duration=4, grace_s=5,
                        web_port=free_port(), web_announce=str(announce))
        process = LoadProcess(spec, echo=False).start()
        try:
            process.wait_started()
            url = json.loads(announce.read_text())["url"]
            assert url == f"http://127.0.0.1:{spec.web_port}"
            deadline = time.monotonic() + 10
            stats = None
            while time.monotonic() < deadline:
                stats = requests.get(f"{url}/stats/requests", timeout=2).json()
                if stats["stats"] and stats["stats"][-1]["num_requests"] > 0:
                    break
                time.sleep(0.2)
            assert stats is not None and stats["stats"][-1]["num_requests"] > 0
            result = process.wait(timeout=60)
        finally:
            process.stop()
    assert result["requests"] > 0
    assert not announce.exists()


def test_workers_run_locust_distributed_with_the_same_outputs(tmp_path: Path) -> None:
    with fake_upstreams(1) as (shop,):
        spec = LoadSpec(scenario="browse", out_dir=str(tmp_path / "run"), host=shop.url,
                        shape="steady", users=4, duration=3, progress=False, grace_s=5,
                        workers=2)
        result = run_load_in_subprocess(spec, echo=False, timeout=90)
        served = shop.hit_count()
    out = tmp_path / "run"
    for name in ("locust_stats.csv", "locust_stats_history.csv", "locust.html", "load.json",
                 "requests.csv", "locust-worker-1.log", "locust-worker-2.log"):
        assert (out / name).exists(), name
    assert not list(out.glob("requests.csv.*")), "every worker's log was merged"
    workers = result["workers"]
    per_worker = {int(pid): count for pid, count in workers["requests"].items()}
    # Two worker processes, neither the master, each ran users that sent requests.
    assert len(per_worker) == 2 and workers["master_pid"] not in per_worker
    assert all(count > 0 for count in per_worker.values()), per_worker
    with open(out / "requests.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    # The master's statistics are the workers' requests, every one of which is in the log.
    assert result["requests"] == len(rows) == sum(per_worker.values()) > 0
    assert served >= len(rows) and result["failures"] == 0
