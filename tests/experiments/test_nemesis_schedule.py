"""The nemesis schedule is a pure function of its seed and parameters, covers every link and
service of checkout, and replays exactly; the settle loop stops as soon as the audit holds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable

import pytest

from chaos.experiments.model import find
from chaos.experiments.nemesis import (
    CRASHES,
    LINK_FAULTS,
    NemesisParams,
    NemesisSchedule,
    ScheduleError,
    plan_nemesis,
)
from chaos.experiments.nemesis_run import nemesis_settings, settle
from loadtests.careful import shopping_plans

PARAMS = NemesisParams(duration=40)


def test_the_same_seed_gives_the_same_schedule_and_another_seed_another() -> None:
    first, again = plan_nemesis(11, PARAMS), plan_nemesis(11, PARAMS)
    assert first == again and first.to_json() == again.to_json()
    assert plan_nemesis(12, PARAMS).steps != first.steps
    # The parameters are part of the schedule: the same seed over a longer run differs.
    assert plan_nemesis(11, NemesisParams(duration=60)).steps != first.steps


def test_a_schedule_replays_from_its_saved_document_and_in_another_process() -> None:
    schedule = plan_nemesis(5, PARAMS)
    document = json.loads(json.dumps(schedule.to_json()))
    assert NemesisSchedule.from_json(document) == schedule
    assert plan_nemesis(document["seed"], NemesisParams.from_json(document["params"])) == schedule
    code = ("import json; from chaos.experiments.nemesis import NemesisParams, plan_nemesis; "
            "print(json.dumps(plan_nemesis(5, NemesisParams(duration=40)).to_json()))")
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=env, check=True, cwd=os.getcwd())
    assert json.loads(other.stdout) == document


@pytest.mark.parametrize("seed", range(8))
def test_faults_stay_in_the_window_and_never_overlap_on_one_service(seed: int) -> None:
    schedule = plan_nemesis(seed, PARAMS)
    windows = defaultdict(list)
    for step in schedule.steps:
        assert PARAMS.start <= step.at <= PARAMS.duration
        assert step.target in PARAMS.targets
        if step.kind in CRASHES:
            assert step.until is None
        else:
            assert step.kind in LINK_FAULTS and step.at < step.until <= PARAMS.duration
            windows[step.target].append((step.at, step.until))
        if step.kind == "latency":  # beyond order's read timeouts (2-3 s)
            assert step.params["ms"] >= 3500 and step.params["stream"] == "downstream"
        if step.kind in ("timeout", "reset_peer"):  # the reply is lost, the request served
            assert step.params["stream"] == "downstream"
    for spans in windows.values():
        spans.sort()
        assert all(end <= start for (_, end), (start, _) in zip(spans, spans[1:], strict=False))
    assert [s.at for s in schedule.steps] == sorted(s.at for s in schedule.steps)
    crashes = [s for s in schedule.steps if s.kind in CRASHES]
    assert len(crashes) == round(PARAMS.crashes_per_minute * (40 - PARAMS.start) / 60)


def test_over_a_few_seeds_every_fault_hits_every_link_and_service() -> None:
    seen = {(s.target, s.kind) for seed in range(10) for s in plan_nemesis(seed, PARAMS).steps}
    for target in PARAMS.targets:
        for kind in (*LINK_FAULTS, *CRASHES):
            assert (target, kind) in seen, (target, kind)


def test_the_printout_names_links_and_times() -> None:
    lines = plan_nemesis(2, PARAMS).describe()
    assert len(lines) == len(plan_nemesis(2, PARAMS).steps)
    text = "\n".join(lines)
    assert "gateway → order" in text or "order → product" in text or "order → cart" in text
    assert "SIGKILL" in text


@pytest.mark.parametrize("params, message", [
    (NemesisParams(duration=2, start=2), "start < duration"),
    (NemesisParams(window=(3, 1)), "window"),
    (NemesisParams(targets=()), "at least one target"),
    (NemesisParams(link_faults=("flood",)), "unknown link fault"),
    (NemesisParams(instance_share=2), "instance_share"),
])
def test_impossible_parameters_are_refused(params: NemesisParams, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        plan_nemesis(1, params)


def test_the_definition_and_its_short_variant_give_schedules_scaled_with_the_run() -> None:
    experiment = find("checkout-nemesis")
    options, schedule = nemesis_settings(experiment, 9)
    assert options["shoppers"] == 60 and schedule.params.duration == experiment.duration
    short = find("checkout-nemesis.short").scaled(0.5)
    _, quick = nemesis_settings(short, 9)
    assert quick.params.duration == 7.5 and quick.end <= 7.5
    assert nemesis_settings(short, 9)[1] == quick


def test_shopping_plans_follow_the_seed_and_keys_are_fresh() -> None:
    tokens = {f"user{i}@breakwater.test": f"token-{i}" for i in range(5)}
    first = shopping_plans(tokens, seed=4, purchases=3, spread=30)
    again = shopping_plans(tokens, seed=4, purchases=3, spread=30)
    shape = [[(p.quantity, p.not_before) for p in plan.purchases] for plan in first]
    assert shape == [[(p.quantity, p.not_before) for p in plan.purchases] for plan in again]
    assert all(1 <= p.quantity <= 3 and 0 <= p.not_before < 30
               for plan in first for p in plan.purchases)
    keys = [p.key for plan in first + again for p in plan.purchases]
    assert len(set(keys)) == len(keys), "a replay must not reuse Idempotency-Keys"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def audit_sequence(*audits: dict) -> tuple[list[int], Callable[[], dict]]:
    calls = []

    def audit() -> dict:
        calls.append(1)
        result = audits[min(len(calls), len(audits)) - 1]
        if "raise" in result:
            raise RuntimeError(result["raise"])
        return result

    return calls, audit


HOLDING = {"oversold": 0, "unaccounted_units": 0, "unresolved_orders": 0,
           "keys_with_two_orders": 0, "told_confirmed_not_confirmed": 0, "confirmed_ratio": 1.0}


def test_settle_stops_as_soon_as_the_audit_holds() -> None:
    experiment = find("checkout-nemesis")
    clock = FakeClock()
    calls, audit = audit_sequence({"raise": "order is restarting"},
                                  {**HOLDING, "unresolved_orders": 2}, HOLDING)
    result, after = settle(audit, experiment, 60, 3, log=lambda _: None, clock=clock,
                           sleep=clock.sleep)
    assert result == HOLDING and after == 6.0 and len(calls) == 3


def test_settle_gives_up_at_its_limit_with_the_last_audit() -> None:
    experiment = find("checkout-nemesis")
    clock, lines = FakeClock(), []
    leaking = {**HOLDING, "unaccounted_units": 4}
    calls, audit = audit_sequence(leaking)
    result, after = settle(audit, experiment, 10, 3, log=lines.append, clock=clock,
                           sleep=clock.sleep)
    assert after is None and result == leaking and clock.now == 10
    assert len(calls) == 5  # at 0, 3, 6, 9 and the limit
    assert "unaccounted_units=4" in lines[-1]


def test_the_command_refuses_a_bad_database_before_starting_anything(
        tmp_path, monkeypatch, capsys) -> None:
    from breakwater.cli import main

    monkeypatch.setenv("BREAKWATER_VAR_DIR", str(tmp_path / "var"))
    assert main(["experiment", "run", "checkout-nemesis", "--seed", "3", "--port-base", "0",
                 "--db", "nonsense"]) == 2
    assert "must contain {service}" in capsys.readouterr().err
    assert not (tmp_path / "var" / "stack.json").exists()
