"""The scaling experiment's verdicts on synthetic steps: targets, bound, counter-case, open loop."""

from __future__ import annotations

from chaos.experiments.scaling import limiter, scaling_verdicts
from chaos.experiments.verdicts import FAIL, INCONCLUSIVE, PASS

SETTINGS = {"targets": {"2": 1.9, "3": 2.7}}


def step(kind: str, replicas: int, rps: float, p95: float = 200.0, **extra: object) -> dict:
    return {"kind": kind, "replicas": replicas, "ok_rps": rps, "p95_ms": p95,
            "limited_by": "product CPU quota", "label": f"{kind}-{replicas}", **extra}


def by_name(verdicts) -> dict[str, str]:
    return {v.name.split(" (")[0].split(":")[0]: v.status for v in verdicts}


def test_near_linear_steps_pass_and_a_flat_one_fails() -> None:
    steps = [step("product", 1, 30), step("product", 2, 58), step("product", 3, 70)]
    found = by_name(scaling_verdicts(steps, SETTINGS, True, 400))
    assert found["2 replicas >= 1.9x one replica's throughput"] == PASS
    assert found["3 replicas >= 2.7x one replica's throughput"] == FAIL


def test_throughput_bought_with_latency_beyond_the_bound_fails() -> None:
    steps = [step("product", 1, 30), step("product", 2, 60, p95=650)]
    found = by_name(scaling_verdicts(steps, {"targets": {"2": 1.9}}, True, 400))
    assert found["2 replicas >= 1.9x one replica's throughput"] == FAIL


def test_without_quotas_no_scaling_claim_is_made() -> None:
    steps = [step("product", 1, 30), step("product", 2, 60), step("cart", 3, 31)]
    verdicts = scaling_verdicts(steps, {"targets": {"2": 1.9}}, False, 400)
    assert {v.status for v in verdicts} == {INCONCLUSIVE}
    assert all("not capacity-bounded" in v.detail for v in verdicts)


def test_the_counter_case_must_gain_nothing() -> None:
    flat = scaling_verdicts([step("product", 1, 30), step("cart", 3, 31)], {}, True, 400)
    gain = scaling_verdicts([step("product", 1, 30), step("cart", 3, 45)], {}, True, 400)
    assert [v.status for v in flat] == [PASS] and [v.status for v in gain] == [FAIL]


def test_open_loop_judges_one_replica_and_the_most_at_the_judged_rate() -> None:
    steps = [step("product", 1, 30),
             step("open-loop", 1, 29, p95=990, offered_rate=48, judged=True),
             step("open-loop", 2, 47, p95=401, offered_rate=48, judged=True),
             step("open-loop", 3, 48, p95=250, offered_rate=48, judged=True),
             step("open-loop", 3, 15, p95=80, offered_rate=15, judged=False)]
    verdicts = scaling_verdicts(steps, {}, True, 400)
    assert [(v.name.split(",")[1].strip(), v.status) for v in verdicts] == [
        ("1 replica(s) at 48 req/s offered: falls short (achieved < offered or p95 climbs)", PASS),
        ("3 replica(s) at 48 req/s offered: keeps up", PASS)]


def test_the_limiter_names_the_resource() -> None:
    quota = {"cpu": {"product-1": {"cpus": 0.25, "utilisation": 0.95, "throttled_s": 3.0},
                     "gateway": {"cpus": 1.0, "utilisation": 0.2, "throttled_s": 0.0}}}
    assert limiter(quota).startswith("product CPU quota")
    gateway = {"cpu": {"product-1": {"cpus": 0.25, "utilisation": 0.4, "throttled_s": 0.0},
                       "gateway": {"cpus": 1.0, "utilisation": 0.9, "throttled_s": 1.0}}}
    assert limiter(gateway) == "gateway CPU"
    assert limiter({"cpu": {}}).startswith("unknown")
