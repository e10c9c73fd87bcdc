"""The experiment progress file the console reads: written as the run goes, atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from chaos.experiments.model import FaultStep, find
from chaos.experiments.progress import ProgressFile, default_progress_path
from chaos.experiments.runner import run_experiment
from chaos.experiments.schedule import FaultSchedule
from chaos.experiments.verdicts import Verdict
from tests.experiments.test_schedule_and_report import Clock, FakeFaults


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def test_each_step_of_a_run_is_in_the_file(tmp_path: Path) -> None:
    path, clock = tmp_path / "progress.json", Clock()
    progress = ProgressFile(path, clock=clock)
    experiment = find("cart-outage")
    progress.begin(experiment, True, tmp_path / "run")
    first = read(path)
    assert first["experiment"] == "cart-outage" and first["status"] == "running"
    assert first["pid"] == os.getpid() and first["resilience"] is True
    assert first["windows"]["fault"] == list(experiment.windows["fault"])
    assert first["faults"][0]["planned_start"] == experiment.faults[0].at
    assert first["faults"][0]["start"] is None
    clock.now += 3
    progress.load_started(clock.now)
    assert read(path)["phase"] == "load" and read(path)["load"]["started"] == clock.now
    progress.verdict(Verdict("breaker opens", "breaker_opens_within", "PASS", 1.1, 2.0, "1.1 s"))
    assert [v["status"] for v in read(path)["verdicts"]] == ["PASS"]
    progress.finish(True)
    last = read(path)
    assert last["status"] == "done" and last["holds"] is True and last["phase"] == "done"
    assert [p.name for p in tmp_path.iterdir()] == ["progress.json"]  # no temporary left


def test_the_fault_schedule_reports_each_start_and_end(tmp_path: Path) -> None:
    path, clock = tmp_path / "progress.json", Clock()
    progress = ProgressFile(path, clock=clock)
    progress.begin(find("cart-outage"), True, tmp_path)
    steps = [FaultStep("cart", "down", 0.0, 1e-9)]
    seen: list[list[dict]] = []

    def both(records: list[dict]) -> None:
        seen.append(records)
        progress.faults(records)

    schedule = FaultSchedule(steps, FakeFaults(), started=clock.now, clock=clock, on_change=both)
    schedule.run()
    assert [(r[0]["start"], r[0]["end"]) for r in seen] == [(0.0, None), (0.0, 0.0)]
    assert read(path)["faults"][0]["end"] == 0.0 and read(path)["faults"][0]["label"]


def test_the_schedule_notes_when_each_timed_fault_ends() -> None:
    class Announcing(FakeFaults):
        def announce_until(self, proxies: list[str], fault: str, until: float) -> bool:
            self.calls.append(("announce", tuple(proxies), fault, until))
            return True

    faults, clock = Announcing(), Clock()
    steps = [FaultStep("cart", "latency", 0.0, 12.5, {"ms": 300, "stream": "upstream"}),
             FaultStep("product", "down", 0.0, None)]
    schedule = FaultSchedule(steps, faults, started=clock.now, clock=clock)
    schedule._do("apply", 0)  # noqa: SLF001 - one action, without the schedule's waits
    schedule._do("apply", 1)  # noqa: SLF001
    notes = [c for c in faults.calls if c[0] == "announce"]
    assert notes == [("announce", ("cart",), "latency_upstream", clock.now + 12.5)]
    assert all(r["error"] is None for r in schedule.records)


def test_a_run_that_fails_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class NoStack:
        def ensure(self, options, log):  # noqa: ANN001, ANN201
            raise RuntimeError("port 8080 is taken")

    path = tmp_path / "progress.json"
    with pytest.raises(RuntimeError):
        run_experiment("cart-outage", stack=NoStack(), reports_root=tmp_path / "reports",
                       log=lambda _: None, progress=ProgressFile(path))
    document = read(path)
    assert document["status"] == "failed" and "port 8080 is taken" in document["error"]
    assert document["phase"] == "done"


def test_without_a_path_nothing_is_written_and_a_bad_path_only_warns(tmp_path: Path) -> None:
    ProgressFile(None).begin(find("cart-outage"), True, tmp_path)
    assert list(tmp_path.iterdir()) == []
    blocked = tmp_path / "file"
    blocked.write_text("")
    ProgressFile(blocked / "progress.json").begin(find("cart-outage"), True, tmp_path)
    assert blocked.read_text() == ""


def test_the_default_file_is_in_the_var_folder(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BREAKWATER_VAR_DIR", str(tmp_path))
    assert default_progress_path() == tmp_path / "experiment-progress.json"


def test_a_second_run_in_the_same_var_folder_is_refused_before_it_touches_the_stack(
        tmp_path: Path) -> None:
    """Two runs sharing one var folder share one stack: the second would stop the first's."""
    import socket
    import subprocess
    import sys

    from chaos.experiments.progress import ExperimentRunning

    class NoStack:
        def ensure(self, options, log):  # noqa: ANN001, ANN201
            raise AssertionError("the stack must not be touched")

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        path = tmp_path / "progress.json"
        path.write_text(json.dumps({"status": "running", "experiment": "checkout-nemesis",
                                    "pid": other.pid, "host": socket.gethostname()}))
        with pytest.raises(ExperimentRunning, match="checkout-nemesis.*" + str(other.pid)):
            run_experiment("cart-outage", stack=NoStack(), reports_root=tmp_path / "reports",
                           log=lambda _: None, progress=ProgressFile(path))
        assert not (tmp_path / "reports").exists()
    finally:
        other.kill()
        other.wait()
    # Once that process is gone, its "running" file is stale and a new run may start.
    with pytest.raises(RuntimeError, match="port 8080"):
        class Taken:
            def ensure(self, options, log):  # noqa: ANN001, ANN201
                raise RuntimeError("port 8080 is taken")
        run_experiment("cart-outage", stack=Taken(), reports_root=tmp_path / "reports",
                       log=lambda _: None, progress=ProgressFile(path))
