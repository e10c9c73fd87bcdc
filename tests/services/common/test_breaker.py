"""The rate-judging breaker on a fake clock: windows, thresholds, the trial, the view."""

from __future__ import annotations

import pybreaker
import pytest

from services.common.breaker import Breaker, BreakerOpen, BreakerPolicy


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Transitions(pybreaker.CircuitBreakerListener):
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def state_change(self, cb, old_state, new_state) -> None:
        self.seen.append((old_state.name if old_state else "none", new_state.name))


def make(clock: FakeClock, **policy: object) -> tuple[Breaker, Transitions]:
    listener = Transitions()
    settings = {"consecutive_failures": 0, "window_size": 10, "minimum_calls": 4, "reset_timeout": 5.0,
                **policy}
    return Breaker("product:1", BreakerPolicy(**settings), [listener], clock), listener


def call(breaker: Breaker, clock: FakeClock, *, failed: bool = False, seconds: float = 0.01) -> None:
    permit = breaker.acquire()
    clock.now += seconds
    breaker.record(permit, failed=failed)


def test_the_failure_rate_is_judged_once_the_window_holds_the_minimum_calls() -> None:
    clock = FakeClock()
    breaker, _ = make(clock)
    for failed in (True, False, True):
        call(breaker, clock, failed=failed)
    assert breaker.state == "closed"  # 2 of 3 failed, but 3 calls are too few to judge
    call(breaker, clock, failed=False)
    assert breaker.state == "open"  # 2 of 4: the 50 % threshold
    assert breaker.view()["last_trip"] == {"reason": "failure_rate", "failure_rate": 0.5,
                                           "slow_call_rate": 0.0, "calls": 4, "failures_in_a_row": 0}


def test_a_count_window_forgets_the_oldest_calls() -> None:
    clock = FakeClock()
    breaker, _ = make(clock, window_size=4, failure_rate_threshold=0.75)
    for failed in (True, True, False, False, False, False, True, True):
        call(breaker, clock, failed=failed)
    assert breaker.state == "closed"  # the last four: 2 failures, below 75 %
    assert breaker.view()["failure_rate"] == 0.5


def test_a_time_window_forgets_calls_older_than_its_seconds() -> None:
    clock = FakeClock()
    breaker, _ = make(clock, window="time", window_size=10, minimum_calls=3)
    call(breaker, clock, failed=True)
    call(breaker, clock, failed=True)
    clock.now += 11
    call(breaker, clock, failed=False)
    call(breaker, clock, failed=False)
    call(breaker, clock, failed=True)
    view = breaker.view()
    assert view["state"] == "closed" and view["calls_in_window"] == 3
    assert view["failure_rate"] == pytest.approx(0.333, abs=0.001)


def test_a_slow_call_rate_trips_even_when_every_call_succeeds() -> None:
    clock = FakeClock()
    breaker, _ = make(clock, slow_call_seconds=0.5, slow_call_rate_threshold=0.75)
    for seconds in (0.6, 0.1, 0.7, 0.8):
        call(breaker, clock, seconds=seconds)
    assert breaker.state == "open"
    assert breaker.view()["slow_call_rate"] == 0.0  # the window starts afresh in each state
    assert breaker.view()["last_trip"]["reason"] == "slow_call_rate"


def test_a_run_of_failures_trips_before_the_minimum_calls() -> None:
    clock = FakeClock()
    breaker, _ = make(clock, consecutive_failures=2, minimum_calls=10)
    call(breaker, clock, failed=True)
    call(breaker, clock, failed=True)
    assert breaker.state == "open"


def test_open_becomes_half_open_by_time_alone_and_the_view_says_when() -> None:
    clock = FakeClock()
    breaker, transitions = make(clock, consecutive_failures=1)
    call(breaker, clock, failed=True)
    with pytest.raises(BreakerOpen):
        breaker.acquire()
    clock.now += 2
    assert breaker.view()["next_trial_in"] == 3.0 and breaker.view()["state"] == "open"
    clock.now += 3
    view = breaker.view()  # no call: looking is enough
    assert (view["state"], view["next_trial_in"]) == ("half-open", 0.0)
    assert transitions.seen == [("closed", "open"), ("open", "half-open")]


def test_half_open_lets_one_trial_through_and_only_it_decides() -> None:
    clock = FakeClock()
    breaker, transitions = make(clock, consecutive_failures=1, slow_call_seconds=1.0)
    early = breaker.acquire()  # admitted while closed
    call(breaker, clock, failed=True)
    clock.now += 5
    trial = breaker.acquire()
    assert trial.trial and not breaker.admits() and not breaker.trial_due()
    with pytest.raises(BreakerOpen):
        breaker.acquire()
    breaker.record(early, failed=False)  # from an older state: ignored
    assert breaker.state == "half-open"
    breaker.record(trial, failed=False)
    assert breaker.state == "closed"
    assert transitions.seen[-1] == ("half-open", "closed")


@pytest.mark.parametrize(("failed", "seconds"), [(True, 0.01), (False, 2.0)])
def test_a_failed_or_slow_trial_opens_again(failed: bool, seconds: float) -> None:
    clock = FakeClock()
    breaker, _ = make(clock, consecutive_failures=1, slow_call_seconds=1.0)
    call(breaker, clock, failed=True)
    clock.now += 5
    call(breaker, clock, failed=failed, seconds=seconds)
    assert breaker.state == "open"
    assert breaker.view()["next_trial_in"] == 5.0


def test_a_released_trial_leaves_the_next_call_to_be_the_trial() -> None:
    clock = FakeClock()
    breaker, _ = make(clock, consecutive_failures=1)
    call(breaker, clock, failed=True)
    clock.now += 5
    breaker.release(breaker.acquire())
    assert breaker.trial_due()
    assert breaker.acquire().trial


def test_pybreaker_keeps_the_state() -> None:
    clock = FakeClock()
    breaker, _ = make(clock, consecutive_failures=1)
    call(breaker, clock, failed=True)
    assert breaker.machine.current_state == pybreaker.STATE_OPEN


@pytest.mark.parametrize("policy", [{"window": "sliding"}, {"window_size": 0}, {"failure_rate_threshold": 0},
                                    {"slow_call_rate_threshold": 1.5}])
def test_nonsense_policies_are_refused(policy: dict) -> None:
    with pytest.raises(ValueError):
        BreakerPolicy(**policy)
