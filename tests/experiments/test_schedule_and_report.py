"""The fault schedule (with rollback) and the report written from fixture data."""

from __future__ import annotations

from chaos.experiments.model import FaultStep
from chaos.experiments.probes import ProbeSampler
from chaos.experiments.schedule import FaultSchedule, windows_from_events


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
