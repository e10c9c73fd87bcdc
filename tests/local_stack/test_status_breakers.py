"""`breakwater status` shows the gateway's breaker figures per replica."""

from __future__ import annotations

from local_stack.status import BreakerFigures


def test_figures_come_from_the_gateways_upstream_view() -> None:
    entry = {"url": "http://127.0.0.1:21012", "breaker": "open", "failure_rate": 0.6,
             "slow_call_rate": 0.1, "calls_in_window": 10, "next_trial_in": 3.21, "ejected_for": 0.0}
    figures = BreakerFigures.from_view(entry)
    assert figures == BreakerFigures("open", 0.6, 0.1, 10, 3.21, 0.0)
    assert figures.describe() == "open, trial in 3.2s, 60% failed, 10% slow of 10"


def test_a_due_trial_and_an_ejection_are_said() -> None:
    figures = BreakerFigures.from_view({"breaker": "half-open", "next_trial_in": 0.0, "ejected_for": 4.5})
    assert figures.describe() == "half-open, trial due, 0% failed, 0% slow of 0, ejected 4.5s"


def test_an_older_gateway_without_figures_still_reads() -> None:
    assert BreakerFigures.from_view({"breaker": "closed"}).describe() == "closed, 0% failed, 0% slow of 0"
