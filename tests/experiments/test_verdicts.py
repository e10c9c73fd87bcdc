"""Verdict logic on synthetic measurements: each clause passes and fails where it should."""

from __future__ import annotations

import pytest

from chaos.experiments.measurements import Request, group_table, percentile, timeline
from chaos.experiments.model import DefinitionError, parse
from chaos.experiments.verdicts import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    RunData,
    evaluate,
    hypothesis_holds,
)

EXPERIMENT = parse({
    "name": "t", "version": 1, "load": {"duration": 30},
    "windows": {"baseline": [0, 10], "fault": [10, 20], "recovery": [25, 30]},
    "faults": [{"target": "cart", "kind": "down", "at": 10, "until": 20}],
    "hypothesis": [
        {"name": "reads ok", "check": "error_rate", "groups": ["catalog"], "window": "fault",
         "max": 0},
        {"name": "reads fast", "check": "latency", "groups": ["catalog"], "window": "fault",
         "percentile": "p99", "max_vs_baseline": 1.25, "slack_ms": 1},
        {"name": "cart fast", "check": "latency", "groups": ["cart"], "window": "fault",
         "after_breaker_open": "cart", "max_ms": 10},
        {"name": "opens", "check": "breaker_opens_within", "upstream": "cart", "seconds": 2},
        {"name": "closes", "check": "breaker_closes_within", "upstream": "cart", "seconds": 2,
         "plus_reset_timeout": True},
        {"name": "busy", "check": "throughput", "groups": ["catalog"], "window": "fault",
         "min_vs_baseline": 0.8},
    ],
})


def requests(catalog_ms_during_fault: float = 5.0, cart_ms: float = 2.0,
             catalog_status: int = 200) -> list[Request]:
    rows = []
    for tenth in range(300):
        t = tenth / 10
        in_fault = 10 <= t < 20
        ms = catalog_ms_during_fault if in_fault else 5.0
        status = catalog_status if in_fault else 200
        rows.append(Request(t, "GET", "/api/v1/products/[id]", "catalog", status, ms,
                            "ok" if status < 400 else "failure"))
        if tenth % 3 == 0:
            rows.append(Request(t, "GET", "/api/v1/cart", "cart", 503 if in_fault else 200,
                                cart_ms if in_fault else 4.0, "failure" if in_fault else "ok"))
    return rows


def breaker_samples(opens_at: float | None, closes_at: float | None) -> list[dict]:
    samples = []
    for tenth in range(0, 300, 2):
        t = tenth / 10
        state = "open" if opens_at is not None and opens_at <= t < (closes_at or 99) else "closed"
        samples.append({"t": t, "probe": "gateway_upstreams", "body": {"upstreams": {"cart": {
            "policy": {"reset_timeout": 5.0}, "instances": [{"breaker": state}]}}}})
    return samples


FAULTS = [{"target": "cart", "kind": "down", "start": 10.0, "end": 20.0}]


def verdicts_for(reqs: list[Request], samples: list[dict]) -> dict[str, str]:
    found = evaluate(EXPERIMENT, RunData(reqs, EXPERIMENT.windows, samples, FAULTS))
    return {v.name: v.status for v in found}


def test_a_protected_run_passes_every_clause() -> None:
    found = evaluate(EXPERIMENT, RunData(requests(), EXPERIMENT.windows,
                                         breaker_samples(10.8, 26.0), FAULTS))
    assert {v.name: v.status for v in found} == dict.fromkeys(
        ["reads ok", "reads fast", "cart fast", "opens", "closes", "busy"], PASS)
    assert hypothesis_holds(found)
    opens = next(v for v in found if v.name == "opens")
    assert opens.measured == 0.8
    closes = next(v for v in found if v.name == "closes")
    assert closes.threshold == 7.0  # 2 s + the reset timeout the gateway reports


def test_an_unprotected_run_is_caught() -> None:
    # No breaker ever opens, cart calls hang, the catalog slows down and fails.
    found = verdicts_for(requests(catalog_ms_during_fault=900, cart_ms=3000, catalog_status=503),
                         breaker_samples(None, None))
    assert found["reads ok"] == FAIL
    assert found["reads fast"] == FAIL
    assert found["cart fast"] == FAIL
    assert found["opens"] == FAIL
    assert found["closes"] == FAIL


def test_a_late_breaker_fails_its_clause() -> None:
    found = verdicts_for(requests(), breaker_samples(13.0, 29.5))
    assert found["opens"] == FAIL and found["closes"] == FAIL


def test_too_few_samples_are_inconclusive_not_passed() -> None:
    few = [r for r in requests() if r.group != "catalog" or r.t < 10 or r.t < 10.3]
    found = verdicts_for(few, breaker_samples(10.8, 26.0))
    assert found["reads fast"] == INCONCLUSIVE


def test_latency_limit_has_a_noise_floor_above_tiny_baselines() -> None:
    found = evaluate(EXPERIMENT, RunData(requests(catalog_ms_during_fault=6.0),
                                         EXPERIMENT.windows, breaker_samples(10.8, 26.0), FAULTS))
    fast = next(v for v in found if v.name == "reads fast")
    assert fast.threshold == 6.25 and fast.status == PASS  # max(1.25 x 5, 5 + 1)


def test_audit_clauses() -> None:
    experiment = parse({"name": "a", "version": 1, "load": {"duration": 5}, "hypothesis": [
        {"name": "sold", "check": "audit", "key": "units_sold", "equals_key": "stock"},
        {"name": "oversold", "check": "audit", "key": "oversold", "equals": 0},
        {"name": "missing", "check": "audit", "key": "nothing", "max": 0}]})
    found = evaluate(experiment, RunData([], {}, audit={"units_sold": 25, "stock": 25,
                                                         "oversold": 1}))
    assert [v.status for v in found] == [PASS, FAIL, INCONCLUSIVE]


def test_measurement_helpers() -> None:
    assert percentile([1, 2, 3, 4, 100], 99) == 100
    assert percentile([1, 2, 3, 4], 50) == 2
    assert percentile([], 50) is None
    table = group_table(requests(), {"fault": (10, 20)})
    assert table["fault"]["cart"]["error_rate"] == 1.0
    assert table["fault"]["catalog"]["rps"] == 10.0
    series = timeline(requests())
    assert series["catalog"][0]["requests"] == 10


def test_a_small_group_is_judged_at_the_percentile_its_sample_supports() -> None:
    # About a dozen catalog reads a window: their "p99" would be their maximum; p90 is judged.
    sparse = [r for i, r in enumerate(requests()) if r.group != "catalog" or i % 10 == 0]
    found = evaluate(EXPERIMENT, RunData(sparse, EXPERIMENT.windows, breaker_samples(10.8, 26.0),
                                         FAULTS))
    fast = next(v for v in found if v.name == "reads fast")
    assert fast.numbers["catalog"]["percentile"] == "p90"
    assert "too few for a p99" in fast.detail


def test_supported_percentile_steps_down_with_the_sample() -> None:
    from chaos.experiments.verdicts import supported_percentile

    assert supported_percentile(99, 100) == 99
    assert [supported_percentile(99, n) for n in (99, 20, 19, 10, 3)] == [95, 95, 90, 90, 50]
    assert supported_percentile(95, 500) == 95


def test_a_baseline_can_pool_the_steady_state_before_and_after_the_fault() -> None:
    experiment = parse({
        "name": "pooled", "version": 1, "load": {"duration": 30},
        "windows": {"baseline": [0, 10], "fault": [10, 20], "recovery": [20, 30]},
        "hypothesis": [{"name": "reads fast", "check": "latency", "groups": ["catalog"],
                        "window": "fault", "percentile": "p90", "max_vs_baseline": 1.25,
                        "slack_ms": 0, "baseline": ["baseline", "recovery"]}]})
    # 5 ms before the fault, 9 ms after: the pooled p90 (9 ms) lets an 8 ms fault window pass,
    # which the pre-fault window alone (limit 6.25 ms) would not.
    rows = [Request(t / 10, "GET", "/p", "catalog", 200, 5.0 if t < 100 else 8.0 if t < 200
                    else 9.0, "ok") for t in range(300)]
    (verdict,) = evaluate(experiment, RunData(rows, experiment.windows))
    assert verdict.status == PASS and verdict.numbers["catalog"]["baseline_requests"] == 200
    with pytest.raises(DefinitionError, match="no window named 'after'"):
        parse({**experiment.to_document(), "hypothesis": [
            {"check": "latency", "groups": ["catalog"], "window": "fault",
             "max_vs_baseline": 1.2, "baseline": ["baseline", "after"]}]})


LOGIN = parse({
    "name": "login", "version": 1, "load": {"duration": 45},
    "windows": {"baseline": [5, 15], "fault": [15, 30], "recovery": [38, 45]},
    "hypothesis": [{"name": "logins keep their latency", "check": "latency",
                    "groups": ["login"], "window": "fault", "percentile": "p99",
                    "max_vs_baseline": 1.25, "baseline": ["baseline", "recovery"],
                    "slack_ms": 10, "min_samples": 3}]})


def _logins(at_ms: list[tuple[float, float]]) -> list[Request]:
    return [Request(t, "POST", "/api/v1/auth/login", "login", 200, ms, "ok") for t, ms in at_ms]


def test_a_median_of_a_few_requests_is_not_failed_by_the_steady_states_own_spread() -> None:
    # A cart-outage run's logins (password hashing on a shared 2-core host): either about
    # 125 ms or about 180 ms, before, during and after the fault alike. Five before and six
    # after it set a median of 126 ms; five during it happened to take the slow mode. That is
    # the steady state's own spread (its p90: 190 ms), not the cart outage.
    steady = [(6, 123.1), (8, 190.4), (10, 179.1), (12, 124.1), (14, 126.4),
              (39, 125.4), (40, 183.0), (41, 124.0), (42, 191.7), (43, 126.0), (44, 122.9)]
    during = [(16, 178.0), (19, 185.8), (22, 178.7), (25, 178.9), (28, 184.4)]

    [verdict] = evaluate(LOGIN, RunData(_logins(steady + during), LOGIN.windows))

    entry = verdict.numbers["login"]
    assert entry["percentile"] == "p50" and entry["baseline_ms"] == 126.0
    assert entry["baseline_p90_ms"] == 190.4 and entry["limit_ms"] == 190.4
    assert verdict.status == PASS, verdict.detail
    assert "steady-state p90 190.4 ms" in verdict.detail


def test_a_few_requests_that_all_slow_down_still_fail() -> None:
    steady = [(6 + i, 125.0 + i) for i in range(8)] + [(39 + i, 126.0 + i) for i in range(5)]
    during = [(16, 2100.0), (19, 2400.0), (22, 130.0), (25, 2250.0), (28, 2300.0)]

    [verdict] = evaluate(LOGIN, RunData(_logins(steady + during), LOGIN.windows))

    assert verdict.status == FAIL and verdict.measured == 2250.0


def test_a_well_sampled_group_is_judged_without_the_spread_allowance() -> None:
    steady = [(5 + i / 10, 10.0 if i % 10 else 40.0) for i in range(100)]
    steady += [(38 + i / 20, 10.0) for i in range(140)]
    during = [(15 + i / 10, 14.0) for i in range(150)]
    experiment = parse({**{"name": "many", "version": 1, "load": {"duration": 45}},
                        "windows": {"baseline": [5, 15], "fault": [15, 30],
                                    "recovery": [38, 45]},
                        "hypothesis": [{"name": "fast", "check": "latency",
                                        "groups": ["login"], "window": "fault",
                                        "percentile": "p50", "max_vs_baseline": 1.25,
                                        "baseline": ["baseline", "recovery"], "slack_ms": 1}]})

    [verdict] = evaluate(experiment, RunData(_logins(steady + during), experiment.windows))

    # A median of 150 requests is a median, not a small sample: 14 ms fails its 12.5 ms limit
    # even though the steady state's p90 (40 ms) is higher.
    assert verdict.status == FAIL and verdict.threshold == 12.5
    assert "baseline_p90_ms" not in verdict.numbers["login"]
