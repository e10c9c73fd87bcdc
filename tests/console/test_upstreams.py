"""The breaker view: states, time to the next trial, rates when the gateway reports them."""

from __future__ import annotations

from console.sources.upstreams import breaker_view, rejections

NAMES = {"127.0.0.1:25003": "cart"}


def view(instance: dict, rejected: int = 0) -> dict:
    return {"upstreams": {"cart": {
        "policy": {"reset_timeout": 5.0},
        "bulkhead": {"limit": 16, "in_use": 3, "rejected": rejected},
        "counts": {"requests": 10},
        "instances": [{"url": "http://127.0.0.1:25003", "outstanding": 1, "served": 9,
                       "failures": 4, "ejected_for": 0.0, "failures_in_a_row": 4,
                       "recent_errors": [{"at": 1.0, "error": "connection refused"}],
                       **instance}],
    }}}


def test_an_open_breaker_on_todays_gateway_gets_an_estimated_trial() -> None:
    rows = breaker_view(view({"breaker": "open", "breaker_changes": [
        {"at": 100.0, "from": "closed", "to": "open"}]}), NAMES, now=102.0)
    instance = rows[0]["instances"][0]
    assert instance["name"] == "cart" and instance["state"] == "open"
    assert instance["next_trial_in"] == 3.0 and instance["next_trial_estimated"] is True
    assert instance["failure_rate"] is None and instance["slow_call_rate"] is None
    assert instance["last_error"] == "connection refused"
    assert rows[0]["bulkhead"] == {"in_use": 3, "limit": 16, "rejected": 0,
                                   "rejected_per_s": None}


def test_reported_rates_and_trial_are_shown_as_they_are() -> None:
    rows = breaker_view(view({"breaker": "open", "failure_rate": 0.5, "slow_call_rate": 0.25,
                              "next_trial_in": 1.24, "calls_in_window": 20}), NAMES, now=0.0)
    instance = rows[0]["instances"][0]
    assert instance["next_trial_in"] == 1.2 and instance["next_trial_estimated"] is False
    assert instance["failure_rate"] == 0.5 and instance["slow_call_rate"] == 0.25
    assert instance["calls_in_window"] == 20


def test_closed_has_no_trial_and_unknown_listeners_show_their_address() -> None:
    rows = breaker_view(view({"breaker": "closed"}), {}, now=0.0)
    instance = rows[0]["instances"][0]
    assert instance["next_trial_in"] is None and instance["name"] == "127.0.0.1:25003"


def test_rejections_become_a_rate_between_reads() -> None:
    first = view({"breaker": "closed"}, rejected=10)
    second = view({"breaker": "closed"}, rejected=16)
    rows = breaker_view(second, NAMES, now=3.0, previous=rejections(first), elapsed=2.0)
    assert rows[0]["bulkhead"]["rejected_per_s"] == 3.0
